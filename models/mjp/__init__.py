"""Markov jump processes: simulation, exact and Bayesian inference from noisy snapshots,
and an amortised (foundation-style) inference network.

* :class:`MJP` (validated generator + initial distribution) and its long-time
  properties; the discrete flashing ratchet (:func:`flashing_ratchet`).
* Simulation: Gillespie paths (:func:`simulate_paths`), snapshots on regular or
  per-path grids with label noise (:func:`simulate`, :func:`observe`).
* Inference: maximum likelihood from complete paths (:func:`maximum_likelihood`), the
  exact forward-algorithm likelihood of noisy snapshots (:func:`log_likelihood`), and
  posteriors by NUTS or tempered SMC (:func:`posterior`).
* Amortised inference: a small FIM-style recognition network trained on a synthetic prior
  over MJPs (:func:`fit`, script ``python -m probkit.models.mjp.train_amortized``), shipped
  in ``models/data/mjp``, evaluated by :func:`amortized_posterior` in milliseconds (rates
  and the initial distribution); its closed-form moment features (:func:`pair_counts`,
  :func:`moment_generators`) are usable on their own.

Example:
    >>> import jax, jax.numpy as jnp
    >>> import probkit.models.mjp as mjp
    >>> process = mjp.MJP(mjp.flashing_ratchet(1.0, 1.0, 1.0))
    >>> y = mjp.simulate(jax.random.key(0), process, 10, jnp.linspace(0, 5, 20), label_noise=0.1)
    >>> y.shape
    (10, 20)
"""

from ._amortized import (
    PRETRAINED_PATH as PRETRAINED_PATH,
)
from ._amortized import (
    AmortizedEstimate,
    amortized_posterior,
    load_network,
    pretrained_network,
    save_network,
)
from ._likelihood import (
    TransitionCounts,
    counts_log_likelihood,
    emission_matrix,
    forward_log_likelihood,
    log_likelihood,
    transition_counts,
    transition_matrices,
    unique_intervals,
)
from ._mle import JumpStatistics, jump_statistics, maximum_likelihood
from ._moments import moment_generators, pair_counts
from ._network import MOMENT_LAGS as MOMENT_LAGS
from ._network import NOISE_BANK as NOISE_BANK
from ._network import AmortizedMJPNetwork, NetworkOutput, snapshot_features
from ._posterior import (
    SMC_DEFAULTS as SMC_DEFAULTS,
)
from ._posterior import (
    MJPPosterior,
    NoisySnapshots,
    check_observations,
    edges,
    posterior,
    snapshot_model,
    snapshot_statistics,
)
from ._process import (
    MJP,
    check_rate_matrix,
    entropy_production_rate,
    mean_first_passage_times,
    rate_matrix_from_rates,
    relaxation_times,
    stationary_distribution,
)
from ._ratchet import (
    flashing_ratchet,
    flashing_ratchet_adjacency,
    flashing_ratchet_parameters,
)
from ._simulate import (
    JumpPaths,
    add_label_noise,
    check_times,
    observe,
    sample_snapshots,
    simulate,
    simulate_paths,
)
from ._training import (
    FitResult,
    SyntheticBatch,
    fit,
    sample_synthetic,
    train_step,
    training_loss,
)
from ._training import (
    dirichlet_nll as dirichlet_nll,
)
from ._training import (
    gaussian_nll as gaussian_nll,
)

# Importable, but not in __all__ (constants and internals): NOISE_BANK, MOMENT_LAGS,
# SMC_DEFAULTS, PRETRAINED_PATH, gaussian_nll, dirichlet_nll.
__all__ = [
    "MJP",
    "check_rate_matrix",
    "rate_matrix_from_rates",
    "stationary_distribution",
    "mean_first_passage_times",
    "relaxation_times",
    "entropy_production_rate",
    "flashing_ratchet",
    "flashing_ratchet_adjacency",
    "flashing_ratchet_parameters",
    "JumpPaths",
    "simulate_paths",
    "observe",
    "add_label_noise",
    "simulate",
    "sample_snapshots",
    "check_times",
    "JumpStatistics",
    "jump_statistics",
    "maximum_likelihood",
    "emission_matrix",
    "transition_matrices",
    "log_likelihood",
    "forward_log_likelihood",
    "unique_intervals",
    "TransitionCounts",
    "transition_counts",
    "counts_log_likelihood",
    "MJPPosterior",
    "NoisySnapshots",
    "snapshot_statistics",
    "posterior",
    "snapshot_model",
    "check_observations",
    "edges",
    "pair_counts",
    "moment_generators",
    "AmortizedMJPNetwork",
    "NetworkOutput",
    "snapshot_features",
    "SyntheticBatch",
    "sample_synthetic",
    "training_loss",
    "train_step",
    "fit",
    "FitResult",
    "AmortizedEstimate",
    "amortized_posterior",
    "save_network",
    "load_network",
    "pretrained_network",
]
