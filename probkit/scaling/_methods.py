"""Inference-time scaling methods on one budget: the particle filter and its baselines.

Every method draws the same kind of proposals from the same :class:`StepModel` and
counts its budget the same way: the number of steps proposed to live particles
(``num_proposals``). With ``n`` particles and solutions of ``T`` steps each method
spends ``n * T`` proposals, so "budget ``n``" compares them at equal compute:

* :func:`particle_filter`: Puri et al. (2025), resampling on the reward potential
  (every step by default, or when the ESS falls below a threshold);
* :func:`particle_filter` with ``ess_threshold=0``: the same weights, no resampling
  (sequential importance sampling);
* :func:`best_of_n`: ``n`` independent solutions, the one the verifier scores highest;
* :func:`self_consistency`: ``n`` independent solutions, the most frequent answer
  (optionally weighted by the verifier);
* :func:`beam_search`: keep the ``n / expansions`` best partial solutions at every step
  and extend each ``expansions`` times (greedy top-k "resampling" in the same loop).

All are pure and jittable: they build a Feynman-Kac model with
:func:`step_feynman_kac` and run :func:`probkit.smc.loop`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import probkit.smc as smc
from probkit._checks import check_key
from probkit._repr import summary_repr
from probkit.scaling._feynman_kac import StepModel, check_step_model, step_feynman_kac
from probkit.scaling._potentials import PotentialFn
from probkit.scaling._selection import SELECTIONS, select

__all__ = [
    "ScalingResult",
    "particle_filter",
    "best_of_n",
    "self_consistency",
    "beam_search",
    "top_k_resampling",
]

PyTree = Any


class ScalingResult(NamedTuple):
    """The outcome of an inference-time scaling method.

    Attributes:
        answer: the selected answer (``-1``: none of the particles has one).
        answers: ``(n,)`` each particle's answer.
        log_weights: ``(n,)`` normalised log-weights used by the selection.
        rewards: ``(n,)`` final reward of each particle.
        states: the final states.
        num_proposals: steps proposed to live particles in total (the budget spent).
        ess: ESS after every step, ``(max_steps,)``; entries from ``num_steps`` on are
            padding (the loop stops once every particle has finished).
        num_steps: the number of steps run.
    """

    answer: jax.Array
    answers: jax.Array
    log_weights: jax.Array
    rewards: jax.Array
    states: PyTree
    num_proposals: jax.Array
    ess: jax.Array
    num_steps: jax.Array

    def __repr__(self) -> str:
        return summary_repr(self)


def _check(model, num_particles, selection):
    check_step_model(model)
    if not isinstance(num_particles, int | np.integer) or num_particles < 1:
        raise ValueError(f"num_particles must be a positive int, got {num_particles!r}.")
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}.")


def _finish(key, model, result: smc.SMCResult, selection, log_weights=None) -> ScalingResult:
    particles = result.particles
    answers = jnp.asarray(model.answer(particles.state)).astype(jnp.int32)
    log_weights = result.log_weights if log_weights is None else log_weights
    answer = select(selection, key, answers, log_weights)
    return ScalingResult(
        answer=answer,
        answers=answers,
        log_weights=log_weights,
        rewards=particles.reward,
        states=particles.state,
        num_proposals=particles.num_proposals[0],
        ess=result.ess,
        num_steps=result.num_steps,
    )


def particle_filter(
    key: jax.Array,
    model: StepModel,
    num_particles: int,
    *,
    potential: str | PotentialFn = "log",
    temperature: float = 1.0,
    resampling_fn: smc.ResamplingFn = smc.systematic,
    ess_threshold: float = 1.0,
    selection: str = "weighted_vote",
) -> ScalingResult:
    """Particle filtering over generation steps (Puri et al. 2025), pure and jittable.

    Args:
        key: a ``jax.random`` key.
        model: the step-wise generator and its reward.
        num_particles: ``n``.
        potential: ``"log"`` (rewards are step probabilities), ``"softmax"`` or
            ``"difference"``, or a function ``(t, previous_reward, reward) -> log G``.
        temperature: of the softmax and difference potentials.
        resampling_fn: a :mod:`probkit.smc` resampling scheme.
        ess_threshold: resample when ESS < ``ess_threshold * n`` (1: every step, as in
            the paper; 0: never, i.e. sequential importance sampling).
        selection: ``"weighted_vote"`` (weighted majority vote), ``"max_weight"``,
            ``"vote"`` or ``"sample"``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.scaling import StepModel, particle_filter
        >>> coin = StepModel(lambda k, n: jnp.zeros(n, jnp.int32),
        ...                  lambda k, t, x: x + jax.random.bernoulli(k, 0.5, x.shape),
        ...                  lambda t, x: jnp.where(x == t + 1, 0.9, 0.1),
        ...                  lambda x: jnp.zeros(x.shape, bool), lambda x: x, 5)
        >>> r = particle_filter(jax.random.key(0), coin, 16)
        >>> int(r.answer), int(r.num_proposals)  # all heads, 16 x 5 proposals
        (5, 80)
    """
    check_key(key)
    _check(model, num_particles, selection)
    key_run, key_select = jax.random.split(key)
    fk = step_feynman_kac(model, potential, temperature)
    result = smc.loop(
        key_run,
        fk,
        num_particles=num_particles,
        resampling_fn=resampling_fn,
        ess_threshold=float(ess_threshold),
    )
    return _finish(key_select, model, result, selection)


def _independent(key, model, num_particles):
    # n independent solutions: the same Feynman-Kac model with resampling off.
    fk = step_feynman_kac(model, "softmax")
    return smc.loop(
        key, fk, num_particles=num_particles, resampling_fn=smc.systematic, ess_threshold=0.0
    )


def best_of_n(
    key: jax.Array,
    model: StepModel,
    num_particles: int,
    *,
    selection: str = "max_weight",
) -> ScalingResult:
    """``n`` independent solutions; the one whose final reward (the verifier) is highest.

    The final reward is ``model.score`` at the last step; ``selection="weighted_vote"``
    gives the reward-weighted majority vote instead (weights ``exp(reward)``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.scaling import StepModel, best_of_n
        >>> coin = StepModel(lambda k, n: jnp.zeros(n, jnp.int32),
        ...                  lambda k, t, x: x + jax.random.bernoulli(k, 0.5, x.shape),
        ...                  lambda t, x: x.astype(float), lambda x: jnp.zeros(x.shape, bool),
        ...                  lambda x: x, 3)
        >>> int(best_of_n(jax.random.key(0), coin, 32).answer)  # the most heads seen
        3
    """
    check_key(key)
    _check(model, num_particles, selection)
    key_run, key_select = jax.random.split(key)
    result = _independent(key_run, model, num_particles)
    log_weights = jax.nn.log_softmax(result.particles.reward)
    return _finish(key_select, model, result, selection, log_weights)


def self_consistency(
    key: jax.Array, model: StepModel, num_particles: int, *, weighted: bool = False
) -> ScalingResult:
    """``n`` independent solutions and a majority vote over their answers (Wang et al. 2023).

    ``weighted=True`` weights each vote by ``exp(final reward)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.scaling import StepModel, self_consistency
        >>> coin = StepModel(lambda k, n: jnp.zeros(n, jnp.int32),
        ...                  lambda k, t, x: x + jax.random.bernoulli(k, 0.9, x.shape),
        ...                  lambda t, x: jnp.zeros(x.shape), lambda x: jnp.zeros(x.shape, bool),
        ...                  lambda x: x, 2)
        >>> int(self_consistency(jax.random.key(0), coin, 64).answer)
        2
    """
    check_key(key)
    key_run, key_select = jax.random.split(key)
    selection = "weighted_vote" if weighted else "vote"
    _check(model, num_particles, selection)
    result = _independent(key_run, model, num_particles)
    log_weights = jax.nn.log_softmax(result.particles.reward)
    return _finish(key_select, model, result, selection, log_weights)


def top_k_resampling(num_beams: int) -> smc.ResamplingFn:
    """Beam search's selection as a resampling scheme: the ``num_beams`` heaviest, each copied.

    ``n`` must be a multiple of ``num_beams``; ties go to the lower index.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.scaling import top_k_resampling
        >>> top_k_resampling(2)(jax.random.key(0), jnp.array([0.0, 3.0, 1.0, -1.0]), 4).tolist()
        [1, 1, 2, 2]
    """
    if not isinstance(num_beams, int | np.integer) or num_beams < 1:
        raise ValueError(f"num_beams must be a positive int, got {num_beams!r}.")

    def resample(key, log_weights, n):
        del key  # deterministic
        log_weights = jnp.where(jnp.isnan(log_weights), -jnp.inf, log_weights)
        _, best = jax.lax.top_k(log_weights, num_beams)
        return jnp.repeat(best.astype(jnp.int32), n // num_beams, total_repeat_length=n)

    return resample


def beam_search(
    key: jax.Array,
    model: StepModel,
    num_particles: int,
    *,
    expansions: int = 4,
    potential: str | PotentialFn = "log",
    temperature: float = 1.0,
    selection: str = "max_weight",
) -> ScalingResult:
    """Beam search on the reward: ``n / expansions`` beams, each extended ``expansions`` times.

    At every step the ``n / expansions`` partial solutions with the largest potential
    are kept and each is extended by ``expansions`` sampled steps (``n`` proposals a
    step, like the particle filter). ``expansions`` is reduced to ``n`` when ``n`` is
    smaller, and ``n`` must be a multiple of it.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.scaling import StepModel, beam_search
        >>> coin = StepModel(lambda k, n: jnp.zeros(n, jnp.int32),
        ...                  lambda k, t, x: x + jax.random.bernoulli(k, 0.5, x.shape),
        ...                  lambda t, x: jnp.where(x == t + 1, 0.9, 0.1),
        ...                  lambda x: jnp.zeros(x.shape, bool), lambda x: x, 4)
        >>> int(beam_search(jax.random.key(0), coin, 8).answer)
        4
    """
    check_key(key)
    _check(model, num_particles, selection)
    expansions = min(int(expansions), num_particles)
    if expansions < 1 or num_particles % expansions:
        raise ValueError(
            f"num_particles ({num_particles}) must be a multiple of expansions ({expansions})."
        )
    key_run, key_select = jax.random.split(key)
    fk = step_feynman_kac(model, potential, temperature)
    result = smc.loop(
        key_run,
        fk,
        num_particles=num_particles,
        resampling_fn=top_k_resampling(num_particles // expansions),
        ess_threshold=1.0,
    )
    return _finish(key_select, model, result, selection)
