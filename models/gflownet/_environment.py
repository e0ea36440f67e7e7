"""The environment interface of a GFlowNet: states, masks of valid actions, steps, rewards.

An environment is an :class:`equinox.Module` whose methods act on ONE state (an integer
array of a fixed shape) and are pure, so that the samplers and losses can ``vmap`` them
over a batch and ``lax.scan`` them over time. Its actions are ``0 .. num_actions - 1``;
the last one, ``num_actions - 1``, is "stop": it ends the trajectory and returns the
current state as the sampled object ``x``. Action ``a < num_actions - 1`` moves
``s -> step(s, a)`` and is undone by the backward action with the same index,
``backward_step(step(s, a), a) == s`` (the convention of torchgfn's discrete
environments). Every trajectory has at most ``max_length`` transitions, the stop
included, so sampled batches are fixed-length padded arrays.

A user environment subclasses :class:`Environment` and defines the abstract methods;
``energy`` (for forward-looking training) and ``all_states``/``state_index`` (for exact
evaluation by enumeration) are optional. :func:`check_environment` validates one eagerly.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

__all__ = ["Environment", "check_environment"]


class Environment(eqx.Module):
    """Abstract GFlowNet environment; every method acts on one state.

    Subclasses define ``num_actions`` and ``max_length`` (static ints) and the abstract
    methods. The forward mask's last entry (the stop action) is the terminal test: it is
    ``True`` exactly at the states that can be returned as samples.

    Example:
        >>> from probkit.models.gflownet import HyperGrid
        >>> env = HyperGrid(ndim=2, height=4)
        >>> env.forward_mask(env.initial_state()).tolist()
        [True, True, True]
    """

    num_actions: eqx.AbstractVar[int]
    max_length: eqx.AbstractVar[int]

    @abc.abstractmethod
    def initial_state(self) -> Array:
        """The root state ``s_0`` (an integer array)."""

    @abc.abstractmethod
    def forward_mask(self, state: Array) -> Array:
        """Boolean ``(num_actions,)``: the valid forward actions at ``state`` (last: stop)."""

    @abc.abstractmethod
    def backward_mask(self, state: Array) -> Array:
        """Boolean ``(num_actions - 1,)``: the valid backward actions at ``state``."""

    @abc.abstractmethod
    def step(self, state: Array, action: Array) -> Array:
        """The child of ``state`` under the non-stop forward ``action``."""

    @abc.abstractmethod
    def backward_step(self, state: Array, action: Array) -> Array:
        """The parent of ``state`` that the forward ``action`` leads from."""

    @abc.abstractmethod
    def log_reward(self, state: Array) -> Array:
        """``log R(x)`` at a terminal state ``x`` (rewards must be positive)."""

    @abc.abstractmethod
    def features(self, state: Array) -> Array:
        """The network input for ``state`` (a float vector)."""

    def energy(self, state: Array) -> Array:
        """Intermediate energy ``E(s)`` for forward-looking training, with ``E(x) = -log R(x)``
        at terminal states (default: not available)."""
        raise NotImplementedError(
            f"{type(self).__name__} defines no intermediate energy; forward-looking training "
            "(loss='fldb') needs an `energy(state)` method."
        )

    def is_terminal(self, state: Array) -> Array:
        """Whether ``state`` can end a trajectory (the stop action is valid there)."""
        return self.forward_mask(state)[-1]

    def all_states(self) -> Array | None:
        """All states, ``(num_states, *state_shape)``, for exact evaluation (default: none)."""
        return None

    def state_index(self, state: Array) -> Array:
        """The row of ``state`` in :meth:`all_states` (needed with :meth:`all_states`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot index its states.")


def check_environment(env: Environment) -> None:
    """Checks an environment eagerly (before any compilation of a training loop).

    Checks that ``num_actions >= 2`` and ``max_length >= 1`` are ints, that the initial
    state has a valid action, and, when the environment enumerates its states, that
    ``state_index`` numbers them, that every state reachable from the root has a valid
    forward action, and that every reachable terminal state has a finite log-reward (a
    positive reward).

    Args:
        env: the environment.

    Raises:
        TypeError: if ``env`` is not an :class:`Environment`.
        ValueError: with the name of the offending method and what to fix.

    Example:
        >>> from probkit.models.gflownet import HyperGrid, check_environment
        >>> check_environment(HyperGrid(ndim=2, height=4))
    """
    if not isinstance(env, Environment):
        raise TypeError(f"env must be a gflownet Environment, got {type(env).__name__}.")
    if not isinstance(env.num_actions, int | np.integer) or env.num_actions < 2:
        raise ValueError(f"num_actions must be an int >= 2 (with stop), got {env.num_actions!r}.")
    if not isinstance(env.max_length, int | np.integer) or env.max_length < 1:
        raise ValueError(f"max_length must be a positive int, got {env.max_length!r}.")
    s0 = env.initial_state()
    mask0 = np.asarray(env.forward_mask(s0))
    if mask0.shape != (env.num_actions,) or mask0.dtype != bool:
        raise ValueError(
            f"forward_mask must return a boolean array of shape ({env.num_actions},), got "
            f"{mask0.dtype} {mask0.shape}."
        )
    if not mask0.any():
        raise ValueError("forward_mask(initial_state()) allows no action: nothing can be sampled.")
    states = env.all_states()
    if states is None:
        _check_by_rollouts(env)
        return
    forward = np.asarray(jax.vmap(env.forward_mask)(states))
    backward = np.asarray(jax.vmap(env.backward_mask)(states))
    if backward.shape != (len(forward), env.num_actions - 1) or backward.dtype != bool:
        raise ValueError(
            f"backward_mask must return a boolean array of shape ({env.num_actions - 1},)."
        )
    index = np.asarray(jax.vmap(env.state_index)(states))
    if not np.array_equal(index, np.arange(len(forward))):
        raise ValueError("state_index must give the row of each state in all_states().")
    # Reachable states: a state is reached when a valid backward action leads to a reached
    # parent at which the matching forward action is valid.
    actions = jnp.arange(env.num_actions - 1)
    parents = jax.vmap(
        lambda s: jax.vmap(env.state_index)(jax.vmap(env.backward_step, (None, 0))(s, actions))
    )(states)
    parents = np.where(backward, np.asarray(parents), 0)
    edge = backward & forward[parents, np.arange(env.num_actions - 1)[None, :]]
    reachable = np.zeros(len(forward), bool)
    reachable[int(env.state_index(env.initial_state()))] = True
    for _ in range(env.max_length):
        reachable = reachable | (edge & reachable[parents]).any(axis=1)
    stuck = reachable & ~forward.any(axis=1)
    if stuck.any():
        bad = np.asarray(states)[stuck][0]
        raise ValueError(
            f"forward_mask allows no action at the reachable state {bad.tolist()}: every "
            "reachable state needs a valid action (let the stop action be valid at terminal "
            "states)."
        )
    terminal = reachable & forward[:, -1]
    log_rewards = np.asarray(jax.vmap(env.log_reward)(states))
    bad = terminal & ~np.isfinite(log_rewards)
    if bad.any():
        state = np.asarray(states)[bad][0]
        raise ValueError(
            f"log_reward is not finite at the terminal state {state.tolist()}: rewards must "
            "be > 0 (add a small positive floor to the reward)."
        )


def _check_by_rollouts(env: Environment, num_rollouts: int = 64) -> None:
    # Without enumeration: roll out uniformly random valid actions and check that every
    # visited state has a valid action, that every rollout stops within max_length, and
    # that the rewards reached are positive.
    stop = env.num_actions - 1
    s0 = env.initial_state()

    def body(carry, key):
        states, done, stuck = carry
        mask = jax.vmap(env.forward_mask)(states)
        stuck = stuck | (~done & ~mask.any(axis=1))
        actions = jax.random.categorical(key, jnp.where(mask, 0.0, -jnp.inf))
        moved = jax.vmap(env.step)(states, jnp.minimum(actions, stop - 1))
        halt = done | (actions == stop) | stuck
        keep = jnp.reshape(halt, halt.shape + (1,) * (states.ndim - 1))
        return (jnp.where(keep, states, moved), halt, stuck), None

    init = (
        jnp.broadcast_to(s0, (num_rollouts,) + s0.shape),
        jnp.zeros(num_rollouts, bool),
        jnp.zeros(num_rollouts, bool),
    )
    keys = jax.random.split(jax.random.key(0), env.max_length)
    (final, done, stuck), _ = jax.lax.scan(body, init, keys)
    if bool(stuck.any()):
        raise ValueError(
            "forward_mask allows no action at a state reached by random rollouts: every "
            "reachable state needs a valid action (let the stop action be valid at terminal "
            "states)."
        )
    if not bool(done.all()):
        raise ValueError(
            f"random rollouts did not stop within max_length={env.max_length} transitions: "
            "raise max_length (it counts the stop action) or fix the masks."
        )
    log_rewards = np.asarray(jax.vmap(env.log_reward)(final))
    if not np.all(np.isfinite(log_rewards)):
        state = np.asarray(final)[~np.isfinite(log_rewards)][0]
        raise ValueError(
            f"log_reward is not finite at the terminal state {state.tolist()}: rewards must "
            "be > 0 (add a small positive floor to the reward)."
        )
