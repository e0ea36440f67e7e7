"""GFlowNet training objectives on a batch of padded trajectories.

With ``P_F``/``P_B`` the forward/backward policies, ``F`` the state flow and ``R`` the
reward (``log P_B`` of the stop transition is 0):

- trajectory balance (Malkin et al., 2022): ``(log Z + sum_t log P_F - log R(x) - sum_t
  log P_B)^2``, averaged over trajectories;
- detailed balance (Bengio et al., 2023): ``(log F(s) + log P_F(s'|s) - log F(s') -
  log P_B(s|s'))^2`` per transition, with ``log R(x)`` in place of ``log F(s')`` on the
  stop transition; averaged over transitions;
- sub-trajectory balance (Madan et al., 2023): the balance of every sub-trajectory
  ``s_i .. s_j``, weighted by ``lambda^(j - i)`` and normalised within each trajectory;
- flow matching (Bengio et al., 2021): the forward logits are edge log-flows; in-flow
  equals out-flow at every visited non-root state, and the stop edge's flow equals
  ``R(x)``;
- forward-looking detailed balance (Pan et al., 2023): detailed balance with ``log F(s) =
  log F~(s) - E(s)``, the network learning ``log F~``; every transition gets credit
  from the energy difference, so incomplete trajectories train it too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array
from probkit.models.gflownet._environment import Environment
from probkit.models.gflownet._policy import _MASKED_LOGIT, Policy
from probkit.models.gflownet._trajectories import Trajectories, trajectory_log_probs

__all__ = [
    "trajectory_balance_loss",
    "detailed_balance_loss",
    "subtrajectory_balance_loss",
    "flow_matching_loss",
    "forward_looking_loss",
]


def _state_values(fn, states: Array) -> Array:
    flat = states.reshape((-1,) + states.shape[2:])
    return jax.vmap(fn)(flat).reshape(states.shape[:2])


def _log_flows(policy: Policy, env: Environment, states: Array, forward_looking: bool) -> Array:
    if policy.flow_net is None:
        raise ValueError("this loss needs a state-flow network: build Policy(state_flow=True).")
    log_flow = _state_values(lambda s: policy.flow_net(env.features(s)), states)
    if forward_looking:
        log_flow = log_flow - _state_values(env.energy, states)
    return log_flow


def _require_complete(trajectories: Trajectories, name: str) -> None:
    # Only checked on concrete arrays; under jit the caller guarantees full lengths.
    if not isinstance(trajectories.is_complete, jax.core.Tracer) and not bool(
        trajectories.is_complete.all()
    ):
        raise ValueError(f"{name} needs complete trajectories (length = env.max_length).")


def trajectory_balance_loss(policy: Policy, env: Environment, trajectories: Trajectories) -> Array:
    """Trajectory balance with the learned ``policy.log_z``.

    Args:
        policy: the networks.
        env: the environment.
        trajectories: complete trajectories.

    Returns:
        The mean squared trajectory-balance residual.

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import (HyperGrid, Policy, sample_trajectories,
        ...                                      trajectory_balance_loss)
        >>> env = HyperGrid(ndim=2, height=4)
        >>> policy = Policy(env, key=jax.random.key(0), width=16)
        >>> traj, _ = sample_trajectories(jax.random.key(1), policy, env, 8)
        >>> trajectory_balance_loss(policy, env, traj).shape
        ()
    """
    _require_complete(trajectories, "trajectory balance")
    log_pf, log_pb = trajectory_log_probs(policy, env, trajectories)
    residual = policy.log_z + log_pf.sum(1) - log_pb.sum(1) - trajectories.log_rewards
    return jnp.mean(residual**2)


def _balance_residuals(
    policy: Policy, env: Environment, trajectories: Trajectories, forward_looking: bool
) -> Array:
    log_pf, log_pb = trajectory_log_probs(policy, env, trajectories)
    log_flow = _log_flows(policy, env, trajectories.states, forward_looking)
    target = jnp.where(trajectories.is_stop, trajectories.log_rewards[:, None], log_flow[:, 1:])
    return log_flow[:, :-1] + log_pf - log_pb - target


def detailed_balance_loss(policy: Policy, env: Environment, trajectories: Trajectories) -> Array:
    """Detailed balance with a learned state flow (``Policy(state_flow=True)``).

    Args:
        policy: the networks.
        env: the environment.
        trajectories: trajectories (incomplete ones contribute their transitions).

    Returns:
        The mean squared residual over the valid transitions.

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import (HyperGrid, Policy, sample_trajectories,
        ...                                      detailed_balance_loss)
        >>> env = HyperGrid(ndim=2, height=4)
        >>> policy = Policy(env, key=jax.random.key(0), width=16, state_flow=True)
        >>> traj, _ = sample_trajectories(jax.random.key(1), policy, env, 8)
        >>> detailed_balance_loss(policy, env, traj).shape
        ()
    """
    residual = _balance_residuals(policy, env, trajectories, forward_looking=False)
    valid = trajectories.is_valid
    return jnp.sum(jnp.where(valid, residual**2, 0.0)) / jnp.maximum(valid.sum(), 1)


def forward_looking_loss(policy: Policy, env: Environment, trajectories: Trajectories) -> Array:
    """Forward-looking detailed balance: ``log F(s) = log F~(s) - E(s)``, ``F~`` learned.

    Needs ``env.energy`` with ``E(x) = -log R(x)`` at terminal states; trains on
    incomplete trajectories (each transition gets the energy difference as credit).

    Args:
        policy: the networks (``state_flow=True``; the flow network learns ``log F~``).
        env: the environment.
        trajectories: complete or incomplete trajectories.

    Returns:
        The mean squared residual over the valid transitions.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.gflownet import (SetBuilding, Policy, sample_trajectories,
        ...                                      forward_looking_loss)
        >>> env = SetBuilding(jnp.linspace(0.0, 1.0, 6), size=3)
        >>> policy = Policy(env, key=jax.random.key(0), width=16, state_flow=True)
        >>> traj, _ = sample_trajectories(jax.random.key(1), policy, env, 8, length=2)
        >>> forward_looking_loss(policy, env, traj).shape
        ()
    """
    residual = _balance_residuals(policy, env, trajectories, forward_looking=True)
    valid = trajectories.is_valid
    return jnp.sum(jnp.where(valid, residual**2, 0.0)) / jnp.maximum(valid.sum(), 1)


def subtrajectory_balance_loss(
    policy: Policy,
    env: Environment,
    trajectories: Trajectories,
    lam: float | Array = 0.9,
) -> Array:
    """Sub-trajectory balance, sub-trajectories weighted by ``lam^(length)``.

    Every pair of positions ``i < j`` of a trajectory (the position after the stop
    standing for the sink, with flow ``R(x)``) contributes ``lam^(j - i) (log F(s_i) +
    sum_{i <= t < j} (log P_F - log P_B) - log F(s_j))^2``; the weights are normalised
    within each trajectory (torchgfn's ``geometric_within``), then trajectories averaged.

    Args:
        policy: the networks (``state_flow=True``).
        env: the environment.
        trajectories: complete trajectories.
        lam: the geometric weight ``lambda > 0``.

    Returns:
        The weighted mean squared residual.

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import (HyperGrid, Policy, sample_trajectories,
        ...                                      subtrajectory_balance_loss)
        >>> env = HyperGrid(ndim=2, height=4)
        >>> policy = Policy(env, key=jax.random.key(0), width=16, state_flow=True)
        >>> traj, _ = sample_trajectories(jax.random.key(1), policy, env, 8)
        >>> subtrajectory_balance_loss(policy, env, traj).shape
        ()
    """
    _require_complete(trajectories, "sub-trajectory balance")
    log_pf, log_pb = trajectory_log_probs(policy, env, trajectories)
    log_flow = _log_flows(policy, env, trajectories.states, forward_looking=False)
    n, steps = log_pf.shape
    num_valid = trajectories.is_valid.sum(1)  # = index of the sink position
    positions = jnp.arange(steps + 1)
    flows = jnp.where(
        positions[None] == num_valid[:, None], trajectories.log_rewards[:, None], log_flow
    )
    cumulative = jnp.concatenate([jnp.zeros((n, 1)), jnp.cumsum(log_pf - log_pb, 1)], 1)
    i, j = positions[:, None], positions[None, :]
    residual = (
        flows[:, :, None] + cumulative[:, None, :] - cumulative[:, :, None] - flows[:, None, :]
    )
    pair = (i < j)[None] & (j[None] <= num_valid[:, None, None])
    weights = jnp.where(pair, lam ** (j - i).astype(log_pf.dtype)[None], 0.0)
    per_trajectory = jnp.sum(weights * residual**2, (1, 2)) / jnp.sum(weights, (1, 2))
    return jnp.mean(per_trajectory)


def flow_matching_loss(policy: Policy, env: Environment, trajectories: Trajectories) -> Array:
    """Flow matching on edge log-flows (the forward logits), plus reward matching.

    Args:
        policy: the networks.
        env: the environment.
        trajectories: complete trajectories.

    Returns:
        Mean squared in-flow minus out-flow over visited non-root states, plus the mean
        squared ``log F(x -> stop) - log R(x)`` over terminal states.

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import (HyperGrid, Policy, sample_trajectories,
        ...                                      flow_matching_loss)
        >>> env = HyperGrid(ndim=2, height=4)
        >>> policy = Policy(env, key=jax.random.key(0), width=16)
        >>> traj, _ = sample_trajectories(jax.random.key(1), policy, env, 8)
        >>> flow_matching_loss(policy, env, traj).shape
        ()
    """
    _require_complete(trajectories, "flow matching")
    stop = env.num_actions - 1
    states = trajectories.states[:, 1:]
    flat = states.reshape((-1,) + states.shape[2:])
    actions = jnp.arange(stop)

    def in_out(state):
        parents = jax.vmap(env.backward_step, in_axes=(None, 0))(state, actions)
        parent_logits = jax.vmap(lambda p: policy.forward_net(env.features(p)))(parents)
        edge = parent_logits[actions, actions]
        inflow = jax.nn.logsumexp(jnp.where(env.backward_mask(state), edge, _MASKED_LOGIT))
        logits = policy.forward_net(env.features(state))
        outflow = jax.nn.logsumexp(jnp.where(env.forward_mask(state), logits, _MASKED_LOGIT))
        return inflow, outflow, logits[stop]

    inflow, outflow, stop_flow = jax.vmap(in_out)(flat)
    inflow, outflow, stop_flow = (a.reshape(states.shape[:2]) for a in (inflow, outflow, stop_flow))
    interior = trajectories.is_valid & ~trajectories.is_stop
    matching = jnp.sum(jnp.where(interior, (inflow - outflow) ** 2, 0.0)) / jnp.maximum(
        interior.sum(), 1
    )
    # The stop transition leaves the state unchanged: its flow sits at states[:, t + 1].
    stop_flow = jnp.sum(jnp.where(trajectories.is_stop, stop_flow, 0.0), 1)
    reward = jnp.mean((stop_flow - trajectories.log_rewards) ** 2)
    return matching + reward
