"""Potentials from rewards: how a process reward becomes a Feynman-Kac weight.

A potential maps ``(t, previous_reward, reward)`` to ``log G_t`` per particle. Which one
is right depends on what the reward means:

* :func:`log_reward` (``log G_t = log r_t``): ``r_t`` in ``(0, 1]`` is the reward
  model's probability that the newest step is correct given the prefix (a step-level
  likelihood). Weights since the last resampling multiply the step probabilities, so
  with resampling at every step (Puri et al. 2025) a particle is weighted by its last
  step's score.
* :func:`softmax_reward` (``log G_t = r_t / temperature``): rewards on any scale
  (logits, raw scores); resampling with probabilities ``softmax(r / temperature)``.
  Small temperatures approach greedy selection (beam search), large ones ignore the
  reward.
* :func:`reward_difference` (``log G_t = (f(r_t) - f(r_{t-1})) / temperature``, ``f`` the
  identity or ``log``): ``r_t`` estimates the value of the whole partial solution (the
  probability that it ends correct). The potentials telescope, so the final target is
  ``p(x) exp(f(r(x)) / temperature)`` whatever the resampling schedule: the twisted
  SMC choice, and the one to use with adaptive (ESS-triggered) resampling.

At ``t = 0`` the previous reward is that of the empty solution, taken as
``f(r_{-1}) = 0``. Particles that had already finished get ``log G_t = 0`` (see
:mod:`probkit.scaling`), so a finished solution is not scored twice.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = ["PotentialFn", "log_reward", "softmax_reward", "reward_difference", "get_potential"]

PotentialFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def _check_temperature(temperature: float) -> float:
    if not float(temperature) > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}.")
    return float(temperature)


def _safe_log(r: jax.Array) -> jax.Array:
    # A reward of 0 is weight 0 (-inf), never NaN; negative rewards are a user error
    # that must not pass silently, so they give NaN, which the loop turns into -inf.
    r = jnp.asarray(r)
    return jnp.where(r > 0, jnp.log(jnp.where(r > 0, r, 1.0)), jnp.where(r == 0, -jnp.inf, jnp.nan))


def log_reward() -> PotentialFn:
    """``log G_t = log r_t``: rewards are step probabilities in ``(0, 1]``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.scaling import log_reward
        >>> round(float(log_reward()(1, jnp.array([0.5]), jnp.array([0.25]))[0]), 4)
        -1.3863
    """

    def potential(t, previous_reward, reward):
        return _safe_log(reward)

    return potential


def softmax_reward(temperature: float = 1.0) -> PotentialFn:
    """``log G_t = r_t / temperature``: rewards on any scale, resampled by their softmax.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.scaling import softmax_reward
        >>> softmax_reward(0.5)(1, jnp.array([0.0]), jnp.array([2.0])).tolist()
        [4.0]
    """
    temperature = _check_temperature(temperature)

    def potential(t, previous_reward, reward):
        return jnp.asarray(reward) / temperature

    return potential


def reward_difference(temperature: float = 1.0, log: bool = False) -> PotentialFn:
    """``log G_t = (f(r_t) - f(r_{t-1})) / temperature`` with ``f = log`` if ``log`` else identity.

    The product over steps telescopes to ``exp(f(r_T) / temperature)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.scaling import reward_difference
        >>> reward_difference()(2, jnp.array([1.0]), jnp.array([3.0])).tolist()
        [2.0]
        >>> reward_difference()(0, jnp.array([1.0]), jnp.array([3.0])).tolist()  # f(r_-1) = 0
        [3.0]
    """
    temperature = _check_temperature(temperature)
    f = _safe_log if log else jnp.asarray

    def potential(t, previous_reward, reward):
        current = f(reward)
        previous = jnp.where(jnp.asarray(t) == 0, 0.0, f(previous_reward))
        # Equal rewards (a finished particle, or -inf twice) contribute exactly 0.
        same = jnp.asarray(reward) == jnp.asarray(previous_reward)
        return jnp.where(same & (jnp.asarray(t) > 0), 0.0, (current - previous) / temperature)

    return potential


_BY_NAME = {"log": log_reward, "softmax": softmax_reward, "difference": reward_difference}


def get_potential(potential: str | PotentialFn, temperature: float = 1.0) -> PotentialFn:
    """A potential by name (``"log"``, ``"softmax"``, ``"difference"``) or the function itself.

    Example:
        >>> from probkit.scaling import get_potential
        >>> callable(get_potential("softmax", 0.1))
        True
    """
    if callable(potential):
        return potential
    if potential == "log":
        return log_reward()
    if potential in _BY_NAME:
        return _BY_NAME[potential](temperature)
    raise ValueError(
        f"potential must be one of {sorted(_BY_NAME)} or a function (t, previous_reward, "
        f"reward) -> log G; got {potential!r}."
    )
