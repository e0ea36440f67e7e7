"""Fixed-length padded trajectories: forward sampling with exploration, and their log-probabilities.

A batch of ``n`` trajectories of at most ``L`` transitions holds the states
``s_0 .. s_L`` (after the stop the state is repeated), the actions, and which
transitions are real (``is_valid``) and which one is the stop (``is_stop``). One
``lax.scan`` over ``L`` steps samples the whole batch; nothing depends on Python-side
trajectory lengths, so everything jits and vmaps.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array
from probkit.models.gflownet._environment import Environment
from probkit.models.gflownet._policy import (
    Policy,
    backward_log_probs,
    forward_log_probs,
    masked_log_softmax,
)

from probkit._checks import check_int, check_key

__all__ = ["Trajectories", "sample_trajectories", "trajectory_log_probs"]


class Trajectories(NamedTuple):
    """A batch of padded trajectories.

    Attributes:
        states: ``(n, L + 1, *state_shape)``: ``s_0 .. s_L`` (repeated after the stop).
        actions: ``(n, L)`` int: the forward action of each transition (0 when padded).
        is_valid: ``(n, L)`` bool: the transition happened.
        is_stop: ``(n, L)`` bool: the transition is the stop action.
        log_rewards: ``(n,)``: ``log R(x)`` of the terminal state (0 if incomplete).
        is_complete: ``(n,)`` bool: the trajectory stopped within ``L`` transitions.
    """

    states: Array
    actions: Array
    is_valid: Array
    is_stop: Array
    log_rewards: Array
    is_complete: Array

    @property
    def terminal_states(self) -> Array:
        """``(n, *state_shape)``: the last state of each trajectory (``x`` if complete)."""
        return self.states[:, -1]


def _broadcast(flag: Array, like: Array) -> Array:
    return jnp.reshape(flag, flag.shape + (1,) * (like.ndim - flag.ndim))


def sample_trajectories(
    key: Array,
    policy: Policy,
    env: Environment,
    num_trajectories: int,
    *,
    epsilon: float | Array = 0.0,
    temperature: float | Array = 1.0,
    length: int | None = None,
) -> tuple[Trajectories, Array]:
    """Samples trajectories forward from ``s_0``, optionally exploring.

    The sampling policy is ``(1 - epsilon) softmax(logits / temperature) + epsilon
    uniform(valid actions)``.

    Args:
        key: a ``jax.random`` key.
        policy: the networks.
        env: the environment.
        num_trajectories: the batch size ``n``.
        epsilon: probability of a uniformly random valid action, in ``[0, 1]``.
        temperature: the forward logits are divided by it (``> 0``).
        length: number of transitions ``L`` (default ``env.max_length``; fewer gives
            incomplete trajectories, for forward-looking training).

    Returns:
        The :class:`Trajectories` and ``(n,)`` log-probabilities of each trajectory
        under the sampling policy (the learned one for ``epsilon=0``, ``temperature=1``).

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import HyperGrid, Policy, sample_trajectories
        >>> env = HyperGrid(ndim=2, height=4)
        >>> policy = Policy(env, key=jax.random.key(0), width=16)
        >>> traj, log_pf = sample_trajectories(jax.random.key(1), policy, env, 5)
        >>> traj.states.shape, bool(traj.is_complete.all())
        ((5, 8, 2), True)
    """
    check_key(key)
    num_trajectories = check_int(num_trajectories, "num_trajectories")
    steps = env.max_length if length is None else check_int(length, "length")
    stop = env.num_actions - 1
    s0 = env.initial_state()
    states0 = jnp.broadcast_to(s0, (num_trajectories,) + s0.shape)

    def body(carry, key_t):
        states, done = carry
        logits = jax.vmap(policy.forward_net)(jax.vmap(env.features)(states))
        mask = jax.vmap(env.forward_mask)(states)
        log_p = masked_log_softmax(logits / temperature, mask)
        uniform = masked_log_softmax(jnp.zeros_like(logits), mask)
        log_p = jnp.logaddexp(jnp.log1p(-epsilon) + log_p, jnp.log(epsilon) + uniform)
        actions = jax.random.categorical(key_t, log_p)
        chosen = jnp.take_along_axis(log_p, actions[:, None], axis=1)[:, 0]
        valid = ~done
        is_stop = actions == stop
        moved = jax.vmap(env.step)(states, jnp.minimum(actions, stop - 1))
        new_states = jnp.where(_broadcast(is_stop | done, states), states, moved)
        outputs = (
            new_states,
            jnp.where(valid, actions, 0),
            valid,
            valid & is_stop,
            jnp.where(valid, chosen, 0.0),
        )
        return (new_states, done | is_stop), outputs

    keys = jax.random.split(key, steps)
    done0 = jnp.zeros(num_trajectories, bool)
    (final, done), (states, actions, valid, is_stop, log_p) = jax.lax.scan(
        body, (states0, done0), keys
    )
    states = jnp.concatenate([states0[None], states], axis=0)
    log_rewards = jnp.where(done, jax.vmap(env.log_reward)(final), 0.0)
    traj = Trajectories(
        states=jnp.moveaxis(states, 0, 1),
        actions=actions.T,
        is_valid=valid.T,
        is_stop=is_stop.T,
        log_rewards=log_rewards,
        is_complete=done,
    )
    return traj, log_p.sum(axis=0)


def trajectory_log_probs(
    policy: Policy, env: Environment, trajectories: Trajectories
) -> tuple[Array, Array]:
    """Per-transition ``log P_F(s_{t+1} | s_t)`` and ``log P_B(s_t | s_{t+1})`` of a batch.

    Both are 0 on padded transitions; ``log P_B`` is 0 on the stop transition.

    Args:
        policy: the networks.
        env: the environment.
        trajectories: a batch of trajectories.

    Returns:
        ``(log_pf, log_pb)``, each ``(n, L)``.

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import (HyperGrid, Policy, sample_trajectories,
        ...                                      trajectory_log_probs)
        >>> env = HyperGrid(ndim=2, height=4)
        >>> policy = Policy(env, key=jax.random.key(0), width=16)
        >>> traj, log_pf = sample_trajectories(jax.random.key(1), policy, env, 5)
        >>> lpf, lpb = trajectory_log_probs(policy, env, traj)
        >>> bool(jax.numpy.allclose(lpf.sum(1), log_pf, atol=1e-5))
        True
    """
    stop = env.num_actions - 1
    states = trajectories.states
    flat = states.reshape((-1,) + states.shape[2:])
    fwd = jax.vmap(lambda s: forward_log_probs(policy, env, s))(flat)
    fwd = fwd.reshape(states.shape[:2] + fwd.shape[1:])[:, :-1]
    bwd = jax.vmap(lambda s: backward_log_probs(policy, env, s))(flat)
    bwd = bwd.reshape(states.shape[:2] + bwd.shape[1:])[:, 1:]
    actions = trajectories.actions
    log_pf = jnp.take_along_axis(fwd, actions[..., None], axis=-1)[..., 0]
    back_actions = jnp.minimum(actions, stop - 1)
    log_pb = jnp.take_along_axis(bwd, back_actions[..., None], axis=-1)[..., 0]
    log_pf = jnp.where(trajectories.is_valid, log_pf, 0.0)
    log_pb = jnp.where(trajectories.is_valid & ~trajectories.is_stop, log_pb, 0.0)
    return log_pf, log_pb
