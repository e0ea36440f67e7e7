"""Inference-time scaling as Feynman-Kac models: particle filters over generation steps.

Spending more compute at inference time is posterior inference (Puri et al. 2025):
a partial solution is a particle, the generator proposes the next step (``M_t``), and
a reward of the partial solution gives the potential (``G_t``). :func:`step_feynman_kac`
builds that :class:`probkit.smc.FeynmanKac` model from a :class:`StepModel`
(``propose``, ``score``, ``is_done``, ``answer``); :func:`particle_filter` runs it with
:func:`probkit.smc.loop`, and the baselines (:func:`best_of_n`, :func:`self_consistency`,
:func:`beam_search`) run on the same loop and the same budget (steps proposed).
:func:`host_particle_filter` is the same filter as a Python loop for proposers JAX
cannot trace, such as a Hugging Face model (:func:`transformers_step_model`, needs the
``llm`` extra). Potentials (when each is right): see :func:`log_reward`,
:func:`softmax_reward`, :func:`reward_difference`.

Flow and diffusion models (Kim et al. 2025): a velocity on a Gaussian path becomes an
SDE with the same marginals (:func:`sde_step`), moves to another path by a change of
time and scale (:func:`convert_velocity`, :func:`vp_interpolant`,
:func:`velocity_from_score`), and is searched for a reward by :func:`flow_best_of_n`,
SMC (:func:`flow_smc`) or rollover budget forcing (:func:`rollover_budget_forcing`).

Example:
    >>> import jax, jax.numpy as jnp
    >>> import probkit.scaling as scaling
    >>> coin = scaling.StepModel(
    ...     init=lambda key, n: jnp.zeros(n, jnp.int32),
    ...     propose=lambda key, t, x: x + jax.random.bernoulli(key, 0.5, x.shape),
    ...     score=lambda t, x: jnp.where(x == t + 1, 0.9, 0.1),  # "all heads so far"
    ...     is_done=lambda x: jnp.zeros(x.shape, bool),
    ...     answer=lambda x: x,
    ...     max_steps=6,
    ... )
    >>> int(scaling.particle_filter(jax.random.key(0), coin, 32).answer)
    6
"""

from probkit._renamed import renamed
from probkit.scaling._feynman_kac import StepModel, StepParticles, step_feynman_kac
from probkit.scaling._flow import (
    convert_velocity,
    diffusion_schedule,
    gaussian_mixture_marginal,
    gaussian_mixture_velocity,
    posterior_means,
    score_from_velocity,
    sde_step,
    velocity_from_score,
    vp_interpolant,
)
from probkit.scaling._flow_search import (
    FlowParticles,
    FlowSearchResult,
    flow_best_of_n,
    flow_feynman_kac,
    flow_smc,
    rollover_budget_forcing,
)
from probkit.scaling._host import gather_particles, host_particle_filter
from probkit.scaling._methods import (
    ScalingResult,
    beam_search,
    best_of_n,
    particle_filter,
    self_consistency,
    top_k_resampling,
)
from probkit.scaling._potentials import (
    PotentialFn,
    get_potential,
    log_reward,
    reward_difference,
    softmax_reward,
)
from probkit.scaling._selection import (
    majority_vote,
    max_weight,
    sample_answer,
    weighted_majority_vote,
)
from probkit.scaling._transformers import (
    TextParticles,
    gather_text_particles,
    transformers_step_model,
)

__all__ = [
    "StepModel",
    "StepParticles",
    "step_feynman_kac",
    "PotentialFn",
    "log_reward",
    "softmax_reward",
    "reward_difference",
    "get_potential",
    "weighted_majority_vote",
    "majority_vote",
    "max_weight",
    "sample_answer",
    "ScalingResult",
    "particle_filter",
    "best_of_n",
    "self_consistency",
    "beam_search",
    "top_k_resampling",
    "host_particle_filter",
    "gather_particles",
    "TextParticles",
    "transformers_step_model",
    "gather_text_particles",
    "vp_interpolant",
    "posterior_means",
    "score_from_velocity",
    "velocity_from_score",
    "convert_velocity",
    "gaussian_mixture_velocity",
    "gaussian_mixture_marginal",
    "diffusion_schedule",
    "sde_step",
    "FlowParticles",
    "FlowSearchResult",
    "flow_feynman_kac",
    "flow_smc",
    "flow_best_of_n",
    "rollover_budget_forcing",
]

# The old name (it read as probkit.distributed.gather, which collects across processes).
gather = renamed(gather_particles, "probkit.scaling.gather")
