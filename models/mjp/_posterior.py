"""Bayesian inference of rate matrices from noisy snapshots with probkit's samplers.

The NumPyro model puts a prior on the log-rates of the allowed jumps (an adjacency
matrix marks known zero rates), a flat Dirichlet prior on the initial distribution, and
adds the exact log-likelihood as a factor: from transition counts for exact labels
(:func:`counts_log_likelihood`, a cost independent of the number of paths), by the
forward algorithm for noisy ones (:func:`forward_log_likelihood`). :func:`posterior`
samples it with NUTS (:func:`probkit.mcmc.sample`) or with a waste-free tempered SMC
sampler (:func:`probkit.smc.tempered`, prior to posterior).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from probkit.models.mjp._likelihood import (
    TransitionCounts,
    counts_log_likelihood,
    emission_matrix,
    forward_log_likelihood,
    transition_counts,
    unique_intervals,
)
from probkit.models.mjp._process import rate_matrix_from_rates
from probkit.models.mjp._simulate import check_times

from probkit._checks import check_seed
from probkit._repr import summary_repr

__all__ = [
    "SMC_DEFAULTS",
    "MJPPosterior",
    "NoisySnapshots",
    "posterior",
    "snapshot_model",
    "snapshot_statistics",
    "check_observations",
    "edges",
]

METHODS = ("nuts", "smc")

#: Settings of :func:`probkit.smc.tempered` used by ``posterior(method="smc")`` unless
#: overridden: waste-free SMC with chains of 5 states, each move 5 leapfrog steps of a
#: whitened HMC kernel. On a 2-state chain (tests/models/mjp) this matches the
#: quadrature posterior within Monte Carlo error at a fifth of the gradient evaluations
#: of 1000 particles x 5 HMC moves each (and a twentieth of probkit.smc's defaults).
SMC_DEFAULTS = {
    "kernel": "hmc",
    "waste_free": True,
    "num_mcmc_steps": 5,
    "num_integration_steps": 5,
}


class MJPPosterior(NamedTuple):
    """Posterior draws of a rate matrix.

    Attributes:
        rate_matrix: ``(chains, draws, K, K)`` for NUTS, ``(particles, K, K)`` (equally
            weighted) for SMC.
        initial: the matching draws of the initial distribution, ``(..., K)``.
        method: ``"nuts"`` or ``"smc"``.
        result: the sampler's :class:`~probkit.results.MCMCResult` or
            :class:`~probkit.smc.SMCResult`.
    """

    rate_matrix: np.ndarray
    initial: np.ndarray
    method: str
    result: Any

    def __repr__(self) -> str:
        return summary_repr(self)

    @property
    def draws(self) -> np.ndarray:
        """All draws of the rate matrix flattened to ``(S, K, K)``."""
        k = self.rate_matrix.shape[-1]
        return self.rate_matrix.reshape(-1, k, k)

    def mean(self) -> np.ndarray:
        """Posterior mean rate matrix."""
        return self.draws.mean(0)

    def std(self) -> np.ndarray:
        """Posterior standard deviation of every entry."""
        return self.draws.std(0)

    def to_arviz(self):
        """ArviZ ``InferenceData`` of the run (sites ``log_rates``, ``initial``,
        ``rate_matrix``)."""
        return self.result.to_arviz()


def check_observations(observations, num_states: int) -> np.ndarray:
    """Check observed labels eagerly: an integer ``(N, T)`` array in ``[0, num_states)``.

    Args:
        observations: the labels.
        num_states: ``K``.

    Returns:
        The labels as an ``int32`` numpy array.

    Raises:
        ValueError: wrong shape, non-integer values or labels out of range.

    Example:
        >>> from probkit.models.mjp import check_observations
        >>> check_observations([[0, 1, 1]], 2).shape
        (1, 3)
    """
    if not isinstance(num_states, int | np.integer) or num_states < 2:
        raise ValueError(f"num_states must be an int >= 2, got {num_states!r}.")
    y = np.asarray(observations)
    if y.ndim != 2 or y.shape[1] < 1:
        raise ValueError(f"observations must have shape (num_paths, T), got {y.shape}.")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError("observations must be integer state labels.")
    if y.min() < 0 or y.max() >= num_states:
        raise ValueError(
            f"observations must lie in [0, {num_states}) (num_states={num_states}); found "
            f"labels {int(y.min())}..{int(y.max())}."
        )
    return y.astype(np.int32)


def edges(num_states: int, adjacency=None) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the allowed jumps (off-diagonal entries of ``adjacency``).

    Args:
        num_states: ``K``.
        adjacency: ``(K, K)`` boolean matrix of allowed jumps; ``None`` allows every jump.

    Returns:
        ``(rows, cols)`` integer arrays of length ``E``.

    Raises:
        ValueError: wrong shape, or no allowed jump.

    Example:
        >>> from probkit.models.mjp import edges
        >>> [len(e) for e in edges(3)]
        [6, 6]
    """
    if adjacency is None:
        adjacency = np.ones((num_states, num_states), bool)
    a = np.asarray(adjacency, bool)
    if a.shape != (num_states, num_states):
        raise ValueError(f"adjacency must have shape ({num_states}, {num_states}), got {a.shape}.")
    a = a & ~np.eye(num_states, dtype=bool)
    if not a.any():
        raise ValueError("adjacency allows no jump: mark at least one off-diagonal entry.")
    rows, cols = np.nonzero(a)
    return rows.astype(np.int32), cols.astype(np.int32)


def _check_prior(prior, num_edges: int):
    import numpyro.distributions as dist

    if prior is None:
        prior = dist.Normal(0.0, 2.0)
    if not isinstance(prior, dist.Distribution):
        raise TypeError(
            f"prior must be a NumPyro distribution over one log-rate (e.g. "
            f"dist.Normal(0.0, 2.0)), got {type(prior).__name__}."
        )
    if prior.event_shape != () or prior.batch_shape not in ((), (num_edges,)):
        raise ValueError(
            f"prior must be a scalar distribution or have batch shape ({num_edges},) (one "
            f"per allowed jump); got batch shape {prior.batch_shape}, event shape "
            f"{prior.event_shape}."
        )
    return prior.expand((num_edges,)).to_event(1)


class NoisySnapshots(NamedTuple):
    """Snapshots with label noise, as the forward algorithm needs them.

    Attributes:
        interval_index: ``(T - 1,)`` or ``(N, T - 1)`` index of each observation interval
            among the distinct ones (:func:`unique_intervals`).
        observations: ``(N, T)`` integer labels.
    """

    interval_index: np.ndarray
    observations: np.ndarray


def snapshot_statistics(
    times, observations, num_states: int, label_noise: float = 0.0
) -> tuple[np.ndarray, TransitionCounts | NoisySnapshots]:
    """The distinct observation intervals and what the likelihood needs of the data.

    Exact labels (``label_noise == 0``) reduce to :class:`TransitionCounts` (the
    likelihood then costs one matrix exponential per distinct interval, whatever the
    number of paths); noisy labels keep every path for the forward algorithm.

    Args:
        times: ``(T,)`` or ``(N, T)`` observation times (concrete).
        observations: ``(N, T)`` integer labels in ``[0, num_states)``.
        num_states: ``K``.
        label_noise: probability of a wrong label.

    Returns:
        ``(intervals, statistics)``: the ``(U,)`` distinct intervals and a
        :class:`TransitionCounts` or :class:`NoisySnapshots`.

    Example:
        >>> import numpy as np
        >>> from probkit.models.mjp import snapshot_statistics
        >>> intervals, counts = snapshot_statistics(np.linspace(0, 1, 3), [[0, 1, 1]], 2)
        >>> intervals.shape, counts.transitions.shape
        ((1,), (1, 2, 2))
    """
    y = check_observations(observations, num_states)
    intervals, interval_index = unique_intervals(times)
    intervals = intervals.astype(np.result_type(float))
    if float(label_noise) == 0.0:
        return intervals, transition_counts(interval_index, y, num_states, len(intervals))
    return intervals, NoisySnapshots(interval_index, y)


def snapshot_model(
    num_states: int, *, prior=None, num_edges: int, label_noise: float = 0.0
) -> Callable:
    """The NumPyro model of noisy snapshots, as a function of the data.

    Args:
        num_states: ``K``.
        prior: NumPyro distribution of each log-rate (default ``Normal(0, 2)``).
        num_edges: ``E``, the number of allowed jumps.
        label_noise: known probability of a wrong label.

    Returns:
        ``model(intervals, statistics, rows, cols)`` (the distinct observation intervals
        and the data from :func:`snapshot_statistics`, the allowed jumps from
        :func:`edges`) with sites ``log_rates`` (``(E,)``), ``initial`` (Dirichlet),
        deterministic ``rate_matrix`` and the likelihood factor ``snapshots``: the
        transition-count likelihood for :class:`TransitionCounts`, the forward algorithm
        for :class:`NoisySnapshots`.

    Example:
        >>> import numpy as np, numpyro
        >>> from probkit.models.mjp import edges, snapshot_model, snapshot_statistics
        >>> rows, cols = edges(2)
        >>> model = snapshot_model(2, num_edges=len(rows))
        >>> intervals, counts = snapshot_statistics(np.array([0.0, 1.0]), [[0, 1]], 2)
        >>> trace = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace(
        ...     intervals, counts, rows, cols)
        >>> trace["rate_matrix"]["value"].shape
        (2, 2)
    """
    import numpyro
    import numpyro.distributions as dist

    log_rate_prior = _check_prior(prior, num_edges)

    def model(intervals, statistics, rows, cols):
        log_rates = numpyro.sample("log_rates", log_rate_prior)
        rates = jnp.zeros((num_states, num_states), log_rates.dtype)
        rate_matrix = rate_matrix_from_rates(rates.at[rows, cols].set(jnp.exp(log_rates)))
        numpyro.deterministic("rate_matrix", rate_matrix)
        initial = numpyro.sample("initial", dist.Dirichlet(jnp.ones(num_states)))
        dts = jnp.asarray(intervals, rate_matrix.dtype)
        expm = jax.vmap(lambda dt: jax.scipy.linalg.expm(rate_matrix * dt))(dts)
        if isinstance(statistics, TransitionCounts):
            log_lik = counts_log_likelihood(expm, initial, statistics)
        else:
            emission = emission_matrix(num_states, label_noise).astype(rate_matrix.dtype)
            log_lik = forward_log_likelihood(
                expm[statistics.interval_index], emission, initial, statistics.observations
            )
        numpyro.factor("snapshots", log_lik)

    return model


@functools.lru_cache(maxsize=16)
def _shared_snapshot_model(num_states: int, prior, num_edges: int, label_noise: float):
    # One model function per setting, so that probkit.mcmc reuses its compiled sampler
    # for new data of the same shapes (it memoises on the model).
    return snapshot_model(num_states, prior=prior, num_edges=num_edges, label_noise=label_noise)


def _new_snapshot_model(num_states: int, prior, num_edges: int, label_noise: float):
    return snapshot_model(num_states, prior=prior, num_edges=num_edges, label_noise=label_noise)


def posterior(
    times,
    observations,
    num_states: int,
    *,
    method: str = "nuts",
    prior=None,
    adjacency=None,
    label_noise: float = 0.0,
    seed: int = 0,
    num_chains: int = 2,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_particles: int = 1000,
    **sampler_options: Any,
) -> MJPPosterior:
    """Posterior over the rate matrix given noisy snapshots, by NUTS or tempered SMC.

    Args:
        times: ``(T,)`` observation times shared by all paths, or ``(N, T)`` per path.
        observations: ``(N, T)`` integer labels in ``[0, num_states)``.
        num_states: ``K``.
        method: ``"nuts"`` (:func:`probkit.mcmc.sample`) or ``"smc"``
            (:func:`probkit.smc.tempered` from the prior).
        prior: NumPyro distribution of each log-rate (default ``Normal(0, 2)``: rates
            within a factor ``e^4`` of 1 with 95% probability).
        adjacency: ``(K, K)`` boolean matrix of allowed jumps (``False`` = a known zero
            rate); ``None`` allows all.
        label_noise: known probability that an observation is mislabelled (uniformly).
        seed: the random seed of the sampler.
        num_chains: NUTS chains.
        num_warmup: NUTS warm-up iterations per chain.
        num_samples: NUTS draws per chain.
        num_particles: SMC particles (a multiple of ``num_mcmc_steps``, 5 by default,
            for waste-free SMC).
        **sampler_options: passed on to :func:`probkit.mcmc.sample` or
            :func:`probkit.smc.tempered` (e.g. ``chain_method``, ``num_mcmc_steps``);
            for SMC they override ``SMC_DEFAULTS`` (waste-free, ``num_mcmc_steps=5``,
            ``num_integration_steps=5``, HMC).

    Returns:
        :class:`MJPPosterior` with ``rate_matrix`` draws.

    Raises:
        ValueError: an unknown method, bad observations, times, adjacency or prior.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.mjp import MJP, posterior, simulate
        >>> process = MJP(jnp.array([[-1.0, 1.0], [2.0, -2.0]]))
        >>> times = jnp.linspace(0.0, 5.0, 20)
        >>> y = simulate(jax.random.key(0), process, 50, times, max_jumps=100)
        >>> post = posterior(times, y, 2, num_warmup=100, num_samples=100)
        >>> post.rate_matrix.shape
        (2, 100, 2, 2)
    """
    seed = check_seed(seed)
    import probkit as pk

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    y = check_observations(observations, num_states)
    check_times(times, y.shape[0])
    t = np.asarray(times, dtype=np.result_type(float))
    if t.shape[-1] != y.shape[1]:
        raise ValueError(
            f"times has {t.shape[-1]} observation times but observations has {y.shape[1]} per path."
        )
    if not 0.0 <= float(label_noise) < 1.0 - 1.0 / num_states:
        raise ValueError(
            f"label_noise must lie in [0, 1 - 1/num_states) = [0, {1 - 1 / num_states:.3g}), "
            f"got {label_noise!r}."
        )
    rows, cols = edges(num_states, adjacency)
    try:
        hash(prior)
        share = True
    except TypeError:
        share = False
    make_model = _shared_snapshot_model if share else _new_snapshot_model
    model = make_model(num_states, prior, len(rows), float(label_noise))
    intervals, statistics = snapshot_statistics(times, y, num_states, label_noise)
    target = pk.from_numpyro(
        model, intervals=intervals, statistics=statistics, rows=rows, cols=cols
    )
    if method == "nuts":
        result = pk.mcmc.sample(
            target,
            num_chains=num_chains,
            num_warmup=num_warmup,
            num_samples=num_samples,
            seed=seed,
            **sampler_options,
        )
        samples = result.samples
    else:
        import probkit.smc as smc

        options = {**SMC_DEFAULTS, **sampler_options}
        result = smc.tempered(target, num_particles=num_particles, seed=seed, **options)
        samples = {k: np.asarray(v) for k, v in result.samples.items()}
    return MJPPosterior(
        rate_matrix=np.asarray(samples["rate_matrix"]),
        initial=np.asarray(samples["initial"]),
        method=method,
        result=result,
    )
