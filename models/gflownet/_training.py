"""Training a GFlowNet: the pure step, the replay buffer and the ``train`` driver.

``train`` jits one ``lax.scan`` over optimiser steps (with probkit's progress bar). Each
step samples a batch of trajectories with the exploratory policy, optionally mixes in
trajectories replayed from a ring buffer (the losses are off-policy: any full-support
training distribution is valid), and takes one Adam step, with its own learning rate for
``log Z`` (torchgfn's hypergrid defaults: 1e-3 for the networks, 0.1 for ``log Z``).
When the environment enumerates its states, the exact L1 distance of the sampler to the
target and the number of modes found are recorded every ``eval_every`` steps.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import Array
from probkit.models.gflownet._environment import Environment, check_environment
from probkit.models.gflownet._evaluation import (
    exact_target,
    l1_distance,
    modes,
    terminal_distribution,
)
from probkit.models.gflownet._losses import (
    detailed_balance_loss,
    flow_matching_loss,
    forward_looking_loss,
    subtrajectory_balance_loss,
    trajectory_balance_loss,
)
from probkit.models.gflownet._policy import Policy
from probkit.models.gflownet._trajectories import Trajectories, sample_trajectories

from probkit._checks import check_int
from probkit.progress import progress_scan

__all__ = ["GFlowNet", "TrainingHistory", "train", "loss_fn", "log_partition_estimate"]

LossName = Literal["tb", "db", "subtb", "fm", "fldb"]
_LOSSES = ("tb", "db", "subtb", "fm", "fldb")


def loss_fn(name: LossName, subtb_lambda: float = 0.9):
    """The loss ``(policy, env, trajectories) -> scalar`` of a name.

    Args:
        name: ``"tb"``, ``"db"``, ``"subtb"``, ``"fm"`` or ``"fldb"``.
        subtb_lambda: the geometric weight of sub-trajectory balance.

    Returns:
        The loss function.

    Raises:
        ValueError: for an unknown name.

    Example:
        >>> from probkit.models.gflownet import loss_fn
        >>> loss_fn("tb").__name__
        'trajectory_balance_loss'
    """
    losses = {
        "tb": trajectory_balance_loss,
        "db": detailed_balance_loss,
        "fm": flow_matching_loss,
        "fldb": forward_looking_loss,
    }
    if name == "subtb":
        return lambda policy, env, traj: subtrajectory_balance_loss(policy, env, traj, subtb_lambda)
    if name not in losses:
        raise ValueError(f"loss must be one of {_LOSSES}, got {name!r}.")
    return losses[name]


def log_partition_estimate(policy: Policy, env: Environment, loss: LossName) -> Array:
    """The sampler's estimate of ``log Z``: the learned ``log Z`` (TB), ``log F(s_0)`` (DB,
    SubTB, FL-DB), or the log total out-flow of ``s_0`` (FM).

    Args:
        policy: the networks.
        env: the environment.
        loss: the loss the policy was trained with.

    Returns:
        The scalar estimate.

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import HyperGrid, Policy, log_partition_estimate
        >>> env = HyperGrid(ndim=2, height=4)
        >>> float(log_partition_estimate(Policy(env, key=jax.random.key(0)), env, "tb"))
        0.0
    """
    s0 = env.initial_state()
    if loss == "tb":
        return policy.log_z
    if loss == "fm":
        logits = policy.forward_net(env.features(s0))
        return jax.nn.logsumexp(jnp.where(env.forward_mask(s0), logits, -jnp.inf))
    log_flow = policy.flow_net(env.features(s0))
    return log_flow - env.energy(s0) if loss == "fldb" else log_flow


class TrainingHistory(NamedTuple):
    """What happened during training.

    Attributes:
        loss: ``(num_steps,)`` the minibatch loss.
        log_z: ``(num_steps,)`` the ``log Z`` estimate after each step.
        trajectories: ``(num_evals,)`` trajectories sampled when each evaluation was made.
        l1: ``(num_evals,)`` exact summed L1 of the sampler to the target (empty if the
            environment does not enumerate its states).
        modes_found: ``(num_evals,)`` distinct modes among the sampled terminal states so
            far (empty likewise).
    """

    loss: Array
    log_z: Array
    trajectories: Array
    l1: Array
    modes_found: Array


@eqx.filter_jit
def _sample(key, policy, env, num_samples):
    traj, log_pf = sample_trajectories(key, policy, env, num_samples)
    return traj.terminal_states, log_pf


class GFlowNet(eqx.Module):
    """A trained GFlowNet: environment, networks, the loss it was trained with, history.

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import HyperGrid, train
        >>> gfn = train(HyperGrid(ndim=2, height=4), num_trajectories=64, batch_size=32,
        ...             width=16)
        >>> states, log_probs = gfn.sample(jax.random.key(0), 10)
        >>> states.shape, log_probs.shape
        ((10, 2), (10,))
    """

    env: Environment
    policy: Policy
    loss: str = eqx.field(static=True)
    history: TrainingHistory | None = None

    def sample(self, key: Array, num_samples: int) -> tuple[Array, Array]:
        """Draws terminal states with the learned forward policy.

        Args:
            key: a ``jax.random`` key.
            num_samples: number of samples.

        Returns:
            ``(states, log_probs)``: ``(num_samples, *state_shape)`` terminal states and
            the ``(num_samples,)`` log-probabilities of the trajectories that built them
            (compiled once per ``num_samples``: this is a top-level driver).
        """
        return _sample(key, self.policy, self.env, num_samples)

    @property
    def log_partition(self) -> Array:
        """The learned estimate of ``log Z`` (see :func:`log_partition_estimate`)."""
        return log_partition_estimate(self.policy, self.env, self.loss)


class _Carry(NamedTuple):
    params: Policy
    opt_state: optax.OptState
    buffer: Trajectories | None
    buffer_count: Array
    visited: Array
    l1: Array
    modes_found: Array


def _concat(a: Trajectories, b: Trajectories) -> Trajectories:
    return jax.tree.map(lambda x, y: jnp.concatenate([x, y]), a, b)


@eqx.filter_jit
def _train_loop(policy, env, key, target, mode_mask, optimizer, config, progress_bar):
    (loss_name, num_steps, batch_size, epsilon, temperature, length, subtb_lambda,
     replay_capacity, replay_size, eval_every) = config  # fmt: skip
    params, static = eqx.partition(policy, eqx.is_inexact_array)
    loss = loss_fn(loss_name, subtb_lambda)
    enumerable = target is not None
    num_evals = num_steps // eval_every if enumerable else 0

    def objective(params, traj):
        return loss(eqx.combine(params, static), env, traj)

    buffer = None
    if replay_capacity:
        template, _ = sample_trajectories(
            jax.random.key(0), policy, env, replay_capacity, length=length
        )
        buffer = template
    carry = _Carry(
        params=params,
        opt_state=optimizer.init(params),
        buffer=buffer,
        buffer_count=jnp.zeros((), jnp.int32),
        visited=jnp.zeros(target.shape if enumerable else (0,), bool),
        l1=jnp.zeros(num_evals),
        modes_found=jnp.zeros(num_evals, jnp.int32),
    )

    def body(carry: _Carry, inputs):
        key, step = inputs
        key_sample, key_replay = jax.random.split(key)
        current = eqx.combine(carry.params, static)
        traj, _ = sample_trajectories(
            key_sample,
            current,
            env,
            batch_size,
            epsilon=epsilon,
            temperature=temperature,
            length=length,
        )
        buffer, count = carry.buffer, carry.buffer_count
        batch = traj
        if replay_capacity:
            slots = (count + jnp.arange(batch_size)) % replay_capacity
            buffer = jax.tree.map(lambda b, t: b.at[slots].set(t), buffer, traj)
            count = count + batch_size
            filled = jnp.minimum(count, replay_capacity)
            picks = jax.random.randint(key_replay, (replay_size,), 0, filled)
            batch = _concat(traj, jax.tree.map(lambda b: b[picks], buffer))
        value, grads = jax.value_and_grad(objective)(carry.params, batch)
        updates, opt_state = optimizer.update(grads, carry.opt_state, carry.params)
        params = optax.apply_updates(carry.params, updates)
        visited, l1, modes_found = carry.visited, carry.l1, carry.modes_found
        if enumerable:
            index = jax.vmap(env.state_index)(traj.terminal_states)
            visited = visited.at[jnp.where(traj.is_complete, index, 0)].max(traj.is_complete)

            def evaluate(l1, modes_found):
                slot = step // eval_every
                learned = terminal_distribution(eqx.combine(params, static), env)
                found = jnp.sum(visited & mode_mask)
                return l1.at[slot].set(l1_distance(learned, target)), modes_found.at[slot].set(
                    found
                )

            if num_evals:
                l1, modes_found = jax.lax.cond(
                    (step + 1) % eval_every == 0, evaluate, lambda a, b: (a, b), l1, modes_found
                )
        log_z = log_partition_estimate(eqx.combine(params, static), env, loss_name)
        new = _Carry(params, opt_state, buffer, count, visited, l1, modes_found)
        return new, (value, log_z)

    keys = jax.random.split(key, num_steps)
    carry, (losses, log_zs) = progress_scan(
        body,
        carry,
        (keys, jnp.arange(num_steps)),
        progress_bar=progress_bar,
        desc=f"GFlowNet ({loss_name})",
    )
    return eqx.combine(carry.params, static), losses, log_zs, carry.l1, carry.modes_found


def train(
    env: Environment,
    *,
    loss: LossName = "tb",
    num_trajectories: int,
    batch_size: int = 128,
    seed: int = 0,
    learning_rate: float = 1e-3,
    log_z_learning_rate: float = 0.1,
    width: int = 256,
    depth: int = 2,
    backward_policy: Literal["uniform", "learned"] = "uniform",
    subtb_lambda: float = 0.9,
    epsilon: float = 0.0,
    temperature: float = 1.0,
    replay_capacity: int = 0,
    replay_fraction: float = 0.5,
    trajectory_length: int | None = None,
    eval_every: int | None = None,
    progress_bar: bool = False,
) -> GFlowNet:
    """Trains a GFlowNet on an environment (one jitted ``lax.scan`` over Adam steps).

    Args:
        env: the environment (checked eagerly by :func:`check_environment`).
        loss: ``"tb"`` (trajectory balance), ``"db"`` (detailed balance), ``"subtb"``
            (sub-trajectory balance), ``"fm"`` (flow matching) or ``"fldb"``
            (forward-looking detailed balance; needs ``env.energy``).
        num_trajectories: fresh trajectories to sample in total (``num_trajectories //
            batch_size`` steps).
        batch_size: fresh trajectories per step.
        seed: seed of the ``jax.random`` key (initial weights and sampling).
        learning_rate: Adam learning rate of the networks.
        log_z_learning_rate: Adam learning rate of ``log Z`` (TB).
        width: hidden units per MLP layer.
        depth: hidden layers per MLP.
        backward_policy: ``"uniform"`` over the valid parents, or ``"learned"``.
        subtb_lambda: the geometric weight of sub-trajectory balance.
        epsilon: probability of a uniformly random valid action while training.
        temperature: the forward logits are divided by it while training.
        replay_capacity: size of a ring buffer of past trajectories (0: none).
        replay_fraction: replayed trajectories per step, as a fraction of ``batch_size``.
        trajectory_length: train on the first this many transitions of each trajectory
            (incomplete trajectories; ``"db"`` and ``"fldb"`` only). Default: complete.
        eval_every: steps between exact evaluations (L1, modes found) when the
            environment enumerates its states (default: 1/20 of the run). Environments too
            large to enumerate (``all_states()`` is ``None``, e.g. a ``HyperGrid`` above
            ``MAX_ENUMERATED_STATES``) train without them: the history's ``l1`` and
            ``modes_found`` are then empty.
        progress_bar: draw a progress bar.

    Returns:
        The trained :class:`GFlowNet`, with its :class:`TrainingHistory`.

    Raises:
        ValueError: for an unknown loss or backward policy, bad sizes or rates, an
            invalid environment, FL-DB without energies, incomplete trajectories with a
            loss that needs complete ones, or a loss that became non-finite.

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import HyperGrid, train
        >>> gfn = train(HyperGrid(ndim=2, height=4), loss="db", num_trajectories=64,
        ...             batch_size=32, width=16)
        >>> gfn.history.loss.shape
        (2,)
    """
    if not isinstance(env, Environment):
        raise TypeError(f"env must be a gflownet Environment, got {type(env).__name__}.")
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {_LOSSES}, got {loss!r}.")
    if backward_policy not in ("uniform", "learned"):
        raise ValueError(
            f"backward_policy must be 'uniform' or 'learned', got {backward_policy!r}."
        )
    num_trajectories = check_int(num_trajectories, "num_trajectories")
    batch_size = check_int(batch_size, "batch_size")
    width = check_int(width, "width")
    depth = check_int(depth, "depth")
    seed = check_int(seed, "seed", minimum=0)
    num_steps = num_trajectories // batch_size
    if num_steps < 1:
        raise ValueError(
            f"num_trajectories ({num_trajectories}) must be at least batch_size ({batch_size})."
        )
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}.")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    if learning_rate <= 0 or log_z_learning_rate <= 0:
        raise ValueError("learning_rate and log_z_learning_rate must be > 0.")
    replay_capacity = check_int(replay_capacity, "replay_capacity", minimum=0)
    if replay_capacity and replay_capacity < batch_size:
        raise ValueError(f"replay_capacity must be 0 or >= batch_size ({batch_size}).")
    if not 0.0 < replay_fraction <= 1.0:
        raise ValueError(f"replay_fraction must lie in (0, 1], got {replay_fraction}.")
    length = None
    if trajectory_length is not None:
        if loss not in ("db", "fldb"):
            raise ValueError(
                f"trajectory_length (incomplete trajectories) needs loss 'db' or 'fldb', not "
                f"{loss!r}: the other losses need complete trajectories."
            )
        trajectory_length = check_int(trajectory_length, "trajectory_length")
        length = min(trajectory_length, env.max_length)
    check_environment(env)
    if loss == "fldb":
        try:
            env.energy(env.initial_state())
        except NotImplementedError as error:
            raise ValueError(str(error)) from None
    key_init, key_train = jax.random.split(jax.random.key(seed))
    policy = Policy(
        env,
        key=key_init,
        width=width,
        depth=depth,
        learned_backward=backward_policy == "learned",
        state_flow=loss in ("db", "subtb", "fldb"),
    )
    params = eqx.filter(policy, eqx.is_inexact_array)
    labels = jax.tree.map(lambda _: "net", params)
    labels = eqx.tree_at(lambda p: p.log_z, labels, "log_z")
    optimizer = optax.multi_transform(
        {"net": optax.adam(learning_rate), "log_z": optax.adam(log_z_learning_rate)}, labels
    )
    enumerable = env.all_states() is not None
    target = exact_target(env) if enumerable else None
    mode_mask = modes(env) if enumerable else None
    if eval_every is None:
        eval_every = max(1, num_steps // 20)
    eval_every = check_int(eval_every, "eval_every")
    replay_size = max(1, round(replay_fraction * batch_size)) if replay_capacity else 0
    config = (
        loss,
        num_steps,
        batch_size,
        float(epsilon),
        float(temperature),
        length,
        float(subtb_lambda),
        replay_capacity,
        replay_size,
        eval_every,
    )
    policy, losses, log_zs, l1, modes_found = _train_loop(
        policy, env, key_train, target, mode_mask, optimizer, config, bool(progress_bar)
    )
    if not bool(jnp.all(jnp.isfinite(losses))):
        raise ValueError(
            f"the {loss} loss became non-finite during training; lower learning_rate or check "
            "that the environment's log-rewards are finite."
        )
    num_evals = len(l1)
    history = TrainingHistory(
        loss=losses,
        log_z=log_zs,
        trajectories=(jnp.arange(1, num_evals + 1) * eval_every * batch_size),
        l1=l1,
        modes_found=modes_found,
    )
    return GFlowNet(env=env, policy=policy, loss=loss, history=history)
