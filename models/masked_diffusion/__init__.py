"""Masked (absorbing-state) discrete diffusion: time-free denoisers, exact samplers.

* Masking schedules with their ELBO weights; time-agnostic and time-conditioned
  losses (:func:`time_agnostic_loss`, :func:`time_conditioned_loss`).
* A time-free transformer :class:`Denoiser` trained with optax (:func:`fit`), saved
  and loaded in the format of ``probkit.models`` (:func:`save`, :func:`load`,
  :func:`load_pretrained`).
* Samplers: first-hitting (exact, one call per token), step-wise ancestral /
  tau-leaping with caching, parallel unmasking; float64 categorical sampling by
  default (:func:`categorical`).
* Likelihoods: any-order autoregressive form over random orders and the exact ELBO.
* Conditional generation (:func:`initial_sequences`) and classifier-free guidance.
* EDLM's energy-based importance-sampling correction on probkit's SMC loop.
* Known distributions over short sequences with their exact denoiser, for testing.

Example:
    >>> import probkit.models.masked_diffusion as md
    >>> dist = md.random_markov_chain(0, vocab_size=3, length=5)
    >>> out = md.sample(md.exact_denoiser(dist), md.initial_sequences(4, 5, 3), mask_token=3)
    >>> out.sequences.shape, int(out.num_network_calls)
    ((4, 5), 5)
"""

from probkit.models.masked_diffusion._categorical import PRECISIONS as PRECISIONS
from probkit.models.masked_diffusion._categorical import categorical
from probkit.models.masked_diffusion._drivers import (
    energy_corrected_sample,
    initial_sequences,
    sample,
)
from probkit.models.masked_diffusion._edlm import (
    EnergyCorrectedResult,
    energy_corrected_loop,
    step_feynman_kac,
)
from probkit.models.masked_diffusion._io import load, save
from probkit.models.masked_diffusion._likelihood import (
    AnyOrderLikelihood,
    any_order_log_likelihood,
    negative_elbo,
    order_log_likelihood,
)
from probkit.models.masked_diffusion._losses import (
    masked_cross_entropy,
    time_agnostic_loss,
    time_conditioned_loss,
)
from probkit.models.masked_diffusion._network import Denoiser
from probkit.models.masked_diffusion._pretrained import load_pretrained, pretrained_distribution
from probkit.models.masked_diffusion._sampling import (
    SampleResult,
    classifier_free_guidance,
    first_hitting_loop,
    first_hitting_times,
    stepwise_loop,
)
from probkit.models.masked_diffusion._schedules import (
    MaskingSchedule,
    cosine,
    get_schedule,
    linear,
    log_linear,
)
from probkit.models.masked_diffusion._toy import (
    SequenceDistribution,
    empirical_distribution,
    exact_denoiser,
    markov_chain,
    random_markov_chain,
    sample_sequences,
    sequence_index,
    total_variation,
    tv_noise_floor,
)
from probkit.models.masked_diffusion._training import FitResult, fit, train_step

# Importable, but not in __all__ (constants and internals): PRECISIONS.
__all__ = [
    "MaskingSchedule",
    "linear",
    "cosine",
    "log_linear",
    "get_schedule",
    "masked_cross_entropy",
    "time_agnostic_loss",
    "time_conditioned_loss",
    "Denoiser",
    "fit",
    "train_step",
    "FitResult",
    "save",
    "load",
    "load_pretrained",
    "pretrained_distribution",
    "categorical",
    "SampleResult",
    "first_hitting_loop",
    "stepwise_loop",
    "first_hitting_times",
    "classifier_free_guidance",
    "initial_sequences",
    "sample",
    "AnyOrderLikelihood",
    "any_order_log_likelihood",
    "order_log_likelihood",
    "negative_elbo",
    "EnergyCorrectedResult",
    "energy_corrected_loop",
    "energy_corrected_sample",
    "step_feynman_kac",
    "SequenceDistribution",
    "markov_chain",
    "random_markov_chain",
    "exact_denoiser",
    "sample_sequences",
    "sequence_index",
    "empirical_distribution",
    "total_variation",
    "tv_noise_floor",
]
