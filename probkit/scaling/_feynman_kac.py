"""The Feynman-Kac model of "generate step by step, score partial results".

A particle is a partial solution. ``M_t`` appends one step (the proposer: a language
model, a sampler step), ``G_t`` is a potential of the reward of the partial solution
(a process reward model, a verifier); see :mod:`probkit.scaling._potentials`. Particles
finish at different times: a finished particle is never proposed again, keeps its
reward and gets ``log G_t = 0``, and the budget counts the proposals made to live
particles only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probkit.scaling._potentials import PotentialFn, get_potential
from probkit.smc import FeynmanKac

__all__ = ["StepModel", "StepParticles", "step_feynman_kac"]

PyTree = Any


class StepModel(NamedTuple):
    """A step-wise generator with a reward for partial results.

    Attributes:
        init: ``(key, n) -> states``: ``n`` empty solutions (a pytree with leading axis
            ``n``, or any object a host-side proposer understands).
        propose: ``(key, t, states) -> states``: one more step for every particle
            (``t = 0`` generates the first step). Finished particles may be changed
            by it; their old state is restored.
        score: ``(t, states) -> rewards`` of shape ``(n,)``, any scale (see the
            potentials).
        is_done: ``states -> (n,) bool``: the solution has ended.
        answer: ``states -> (n,) int``: the final answer of each particle, ``-1`` when
            it has none (used by the vote-based selections).
        max_steps: the most steps a solution may take.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.scaling import StepModel
        >>> walk = StepModel(
        ...     init=lambda key, n: jnp.zeros(n, jnp.int32),
        ...     propose=lambda key, t, x: x + jax.random.bernoulli(key, 0.5, x.shape),
        ...     score=lambda t, x: -jnp.abs(x - 2.0),
        ...     is_done=lambda x: jnp.zeros(x.shape, bool),
        ...     answer=lambda x: x,
        ...     max_steps=4,
        ... )
        >>> walk.max_steps
        4
    """

    init: Callable[[jax.Array, int], PyTree]
    propose: Callable[[jax.Array, jax.Array, PyTree], PyTree]
    score: Callable[[jax.Array, PyTree], jax.Array]
    is_done: Callable[[PyTree], jax.Array]
    answer: Callable[[PyTree], jax.Array]
    max_steps: int


class StepParticles(NamedTuple):
    """The particles of :func:`step_feynman_kac`.

    Attributes:
        state: the model's states (leading axis ``n``).
        reward: ``(n,)`` reward of each partial solution.
        done: ``(n,)`` whether it has finished.
        num_proposals: ``(n,)`` proposals made so far to the whole population (the
            same number in every entry, so that resampling keeps it).
    """

    state: PyTree
    reward: jax.Array
    done: jax.Array
    num_proposals: jax.Array


def _keep_finished(done: jax.Array, old: PyTree, new: PyTree) -> PyTree:
    def pick(a, b):
        mask = jnp.reshape(done, done.shape + (1,) * (jnp.ndim(a) - 1))
        return jnp.where(mask, a, b)

    return jax.tree_util.tree_map(pick, old, new)


def masked_log_potential(
    potential: PotentialFn,
    t: jax.Array,
    previous_reward: jax.Array,
    reward: jax.Array,
    previously_done: jax.Array,
) -> jax.Array:
    """``potential(t, r_{t-1}, r_t)``, and 0 for particles finished before step ``t``.

    Shared by the jitted and the host-side loop (both pass NumPy or JAX arrays).
    """
    log_g = potential(t, previous_reward, reward)
    return jnp.where(previously_done, 0.0, log_g)


def check_step_model(model: StepModel) -> None:
    """Clear errors for a malformed :class:`StepModel` (before any compilation)."""
    if not isinstance(model, StepModel):
        raise TypeError(
            "model must be a probkit.scaling.StepModel(init, propose, score, is_done, "
            f"answer, max_steps), got {type(model).__name__}."
        )
    for name in ("init", "propose", "score", "is_done", "answer"):
        if not callable(getattr(model, name)):
            raise TypeError(f"model.{name} must be a function, got {getattr(model, name)!r}.")
    if not isinstance(model.max_steps, int | np.integer) or model.max_steps < 1:
        raise ValueError(f"model.max_steps must be a positive int, got {model.max_steps!r}.")


def step_feynman_kac(
    model: StepModel, potential: str | PotentialFn = "log", temperature: float = 1.0
) -> FeynmanKac:
    """The :class:`probkit.smc.FeynmanKac` model of step-wise generation scored by rewards.

    ``X_0`` is the first step of ``n`` empty solutions, each later ``M_t`` generates one
    more step for the live particles, and ``log G_t`` is ``potential`` of the rewards
    (``"log"``, ``"softmax"``, ``"difference"`` or a function; see the module
    :mod:`probkit.scaling` for when each is right). There are at most
    ``model.max_steps`` potentials: the model's ``done`` stops the loop once every
    particle has finished. Run it with :func:`probkit.smc.loop` or through
    :func:`particle_filter`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import probkit.smc as smc
        >>> from probkit.scaling import StepModel, step_feynman_kac
        >>> walk = StepModel(lambda k, n: jnp.zeros(n),
        ...                  lambda k, t, x: x + jax.random.normal(k, x.shape),
        ...                  lambda t, x: -x**2, lambda x: jnp.zeros(x.shape, bool),
        ...                  lambda x: jnp.zeros(x.shape, jnp.int32), 3)
        >>> fk = step_feynman_kac(walk, "softmax")
        >>> result = smc.loop(jax.random.key(0), fk, num_particles=8,
        ...                   resampling_fn=smc.systematic)
        >>> result.particles.num_proposals.tolist()[0]  # 8 particles x 3 steps
        24
    """
    check_step_model(model)
    potential_fn = get_potential(potential, temperature)

    def advance(key, t, particles: StepParticles) -> StepParticles:
        proposed = model.propose(key, t, particles.state)
        state = _keep_finished(particles.done, particles.state, proposed)
        reward = jnp.where(particles.done, particles.reward, model.score(t, state))
        done = particles.done | model.is_done(state)
        live = jnp.sum(~particles.done).astype(jnp.int32)
        return StepParticles(state, reward, done, particles.num_proposals + live)

    def init(key, n):
        key_init, key_step = jax.random.split(key)
        state = model.init(key_init, n)
        empty = StepParticles(
            state,
            jnp.zeros(n, jnp.result_type(float)),
            jnp.zeros(n, bool),
            jnp.zeros(n, jnp.int32),
        )
        return advance(key_step, jnp.zeros((), jnp.int32), empty)

    def log_potential(t, previous: StepParticles, particles: StepParticles):
        # At t = 0 the loop passes the particles as their own predecessors: nothing had
        # finished before the first step.
        previously_done = jnp.where(t == 0, False, previous.done)
        return masked_log_potential(
            potential_fn, t, previous.reward, particles.reward, previously_done
        )

    def all_done(state):
        # A loop of unknown length: stop once every solution has ended.
        return jnp.all(state.particles.done)

    return FeynmanKac(
        init=init,
        move=advance,
        log_potential=log_potential,
        num_steps=model.max_steps,
        done=all_done,
    )
