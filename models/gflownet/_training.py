"""Training a GFlowNet: the pure step, the replay buffer and the ``train`` driver.

``train`` compiles one optimiser step and runs it from the host in chunks
(:func:`probkit.progress.interruptible_scan`: a progress bar, and Ctrl-C keeps the steps
done); the result equals one ``lax.scan``. Each step samples a batch of trajectories with
the exploratory policy, optionally mixes in trajectories replayed from a ring buffer (the
losses are off-policy: any full-support training distribution is valid), and takes one
Adam step, with its own learning rate for ``log Z``; both rates decay along a cosine by
default.
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

from probkit._checks import check_int, check_key
from probkit._renamed import renamed
from probkit._repr import summary_repr
from probkit.progress import Interrupted, interruptible_scan

__all__ = ["GFlowNet", "FitHistory", "fit", "loss_fn", "log_partition_estimate"]

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


class FitHistory(NamedTuple):
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

    def __repr__(self) -> str:
        return summary_repr(self)


@eqx.filter_jit
def _sample(key, policy, env, num_samples):
    traj, log_pf = sample_trajectories(key, policy, env, num_samples)
    return traj.terminal_states, log_pf


class GFlowNet(eqx.Module):
    """A trained GFlowNet: environment, networks, the loss it was trained with, history.

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import HyperGrid, fit
        >>> gfn = fit(HyperGrid(ndim=2, height=4), num_trajectories=64, batch_size=32,
        ...             width=16)
        >>> states, log_probs = gfn.sample(jax.random.key(0), 10)
        >>> states.shape, log_probs.shape
        ((10, 2), (10,))
    """

    env: Environment
    policy: Policy
    loss: str = eqx.field(static=True)
    history: FitHistory | None = None

    def __repr__(self) -> str:
        return summary_repr(self)

    def sample(self, key: Array, num_samples: int) -> tuple[Array, Array]:
        """Draws terminal states with the learned forward policy.

        Args:
            key: a ``jax.random`` key.
            num_samples: number of samples.

        Returns:
            ``(states, log_probs)``: ``(num_samples, *state_shape)`` terminal states and
            the ``(num_samples,)`` log-probabilities of the trajectories that built them
            (compiled once per ``num_samples``: this is a top-level driver).

        Raises:
            TypeError: if ``key`` is not a ``jax.random`` key (e.g. an int or a float).
            ValueError: if ``num_samples`` is not a positive int.
        """
        check_key(key)
        num_samples = check_int(num_samples, "num_samples")
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


class _Config(NamedTuple):
    # Everything that changes the compiled program (hashable: a static field).
    loss: str
    num_steps: int
    batch_size: int
    epsilon: float
    temperature: float
    length: int | None
    subtb_lambda: float
    replay_capacity: int
    replay_size: int
    eval_every: int
    learning_rate: float
    log_z_learning_rate: float
    schedule: str


def _concat(a: Trajectories, b: Trajectories) -> Trajectories:
    return jax.tree.map(lambda x, y: jnp.concatenate([x, y]), a, b)


def _labels(params: Policy) -> Policy:
    labels = jax.tree.map(lambda _: "net", params)
    return eqx.tree_at(lambda p: p.log_z, labels, "log_z")


class _TrainStep(eqx.Module):
    """One optimiser step, ``(carry, (key, step)) -> (carry, (loss, log Z))``.

    A Module so that its arrays (the environment's, the exact target) are arguments of
    the compiled program and its configuration is static: two runs with the same
    configuration compile once (:func:`probkit.progress.interruptible_scan`).
    """

    static: Policy  # the non-trainable half of the policy (network structure)
    env: Environment
    target: Array | None
    mode_mask: Array | None
    config: _Config = eqx.field(static=True)

    def optimizer(self) -> optax.GradientTransformation:
        c = self.config

        def rate(value: float):
            if c.schedule == "cosine":
                return optax.cosine_decay_schedule(value, c.num_steps)
            return value

        return optax.multi_transform(
            {
                "net": optax.adam(rate(c.learning_rate)),
                "log_z": optax.adam(rate(c.log_z_learning_rate)),
            },
            _labels,
        )

    def init(self, params: Policy) -> _Carry:
        c = self.config
        buffer = None
        if c.replay_capacity:
            policy = eqx.combine(params, self.static)
            buffer, _ = sample_trajectories(
                jax.random.key(0), policy, self.env, c.replay_capacity, length=c.length
            )
        enumerable = self.target is not None
        num_evals = c.num_steps // c.eval_every if enumerable else 0
        return _Carry(
            params=params,
            opt_state=self.optimizer().init(params),
            buffer=buffer,
            buffer_count=jnp.zeros((), jnp.int32),
            visited=jnp.zeros(self.target.shape if enumerable else (0,), bool),
            l1=jnp.zeros(num_evals),
            modes_found=jnp.zeros(num_evals, jnp.int32),
        )

    def __call__(self, carry: _Carry, inputs):
        c, env, static = self.config, self.env, self.static
        key, step = inputs
        loss = loss_fn(c.loss, c.subtb_lambda)

        def objective(params, traj):
            return loss(eqx.combine(params, static), env, traj)

        key_sample, key_replay = jax.random.split(key)
        current = eqx.combine(carry.params, static)
        traj, _ = sample_trajectories(
            key_sample,
            current,
            env,
            c.batch_size,
            epsilon=c.epsilon,
            temperature=c.temperature,
            length=c.length,
        )
        buffer, count = carry.buffer, carry.buffer_count
        batch = traj
        if c.replay_capacity:
            slots = (count + jnp.arange(c.batch_size)) % c.replay_capacity
            buffer = jax.tree.map(lambda b, t: b.at[slots].set(t), buffer, traj)
            count = count + c.batch_size
            filled = jnp.minimum(count, c.replay_capacity)
            picks = jax.random.randint(key_replay, (c.replay_size,), 0, filled)
            batch = _concat(traj, jax.tree.map(lambda b: b[picks], buffer))
        value, grads = jax.value_and_grad(objective)(carry.params, batch)
        updates, opt_state = self.optimizer().update(grads, carry.opt_state, carry.params)
        params = optax.apply_updates(carry.params, updates)
        visited, l1, modes_found = carry.visited, carry.l1, carry.modes_found
        if self.target is not None:
            index = jax.vmap(env.state_index)(traj.terminal_states)
            visited = visited.at[jnp.where(traj.is_complete, index, 0)].max(traj.is_complete)

            def evaluate(l1, modes_found):
                slot = step // c.eval_every
                learned = terminal_distribution(eqx.combine(params, static), env)
                found = jnp.sum(visited & self.mode_mask)
                l1 = l1.at[slot].set(l1_distance(learned, self.target))
                return l1, modes_found.at[slot].set(found)

            if l1.shape[0]:
                l1, modes_found = jax.lax.cond(
                    (step + 1) % c.eval_every == 0, evaluate, lambda a, b: (a, b), l1, modes_found
                )
        log_z = log_partition_estimate(eqx.combine(params, static), env, c.loss)
        new = _Carry(params, opt_state, buffer, count, visited, l1, modes_found)
        return new, (value, log_z)


def _result(step: _TrainStep, carry: _Carry, losses: Array, log_zs: Array) -> GFlowNet:
    """The :class:`GFlowNet` of a carry and the per-step outputs of the steps done."""
    c = step.config
    num_evals = len(losses) // c.eval_every if step.target is not None else 0
    history = FitHistory(
        loss=losses,
        log_z=log_zs,
        trajectories=jnp.arange(1, num_evals + 1) * c.eval_every * c.batch_size,
        l1=carry.l1[:num_evals],
        modes_found=carry.modes_found[:num_evals],
    )
    policy = eqx.combine(carry.params, step.static)
    return GFlowNet(env=step.env, policy=policy, loss=c.loss, history=history)


def fit(
    env: Environment,
    *,
    loss: LossName = "tb",
    num_trajectories: int,
    # At a fixed budget of trajectories the number of optimiser steps limits accuracy
    # (measured in benchmarks/results/gflownet.md): many small steps, a high rate early
    # and a cosine decay that removes the step noise at the end.
    batch_size: int = 16,
    seed: int = 0,
    learning_rate: float = 1e-2,
    log_z_learning_rate: float = 0.1,
    schedule: Literal["cosine", "constant"] = "cosine",
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
    """Trains a GFlowNet on an environment (one compiled loop of Adam steps; Ctrl-C stops it).

    The loop runs in chunks of about half a second (:func:`probkit.progress.interruptible_scan`):
    Ctrl-C stops it between two chunks and raises :class:`probkit.progress.Interrupted`,
    whose ``partial_result`` is the :class:`GFlowNet` of the steps done (networks and
    history so far, usable for sampling). An uninterrupted run equals one ``lax.scan``.

    The defaults (batch 16, Adam at 1e-2 for the networks and 0.1 for ``log Z``, both
    decayed to 0 along a cosine) converge on small hypergrids within torchgfn's tutorial
    budgets: exact summed L1 about 0.002 on ``HyperGrid(3, 5)`` after 20 000 trajectories
    and under 0.001 on ``HyperGrid(2, 8)`` after 16 000 (torchgfn's hypergrid settings,
    batch 128 at a constant 1e-3, reach 0.09 and 0.07).

    Args:
        env: the environment (checked eagerly by :func:`check_environment`).
        loss: ``"tb"`` (trajectory balance), ``"db"`` (detailed balance), ``"subtb"``
            (sub-trajectory balance), ``"fm"`` (flow matching) or ``"fldb"``
            (forward-looking detailed balance; needs ``env.energy``).
        num_trajectories: fresh trajectories to sample in total (``num_trajectories //
            batch_size`` steps).
        batch_size: fresh trajectories per step.
        seed: seed of the ``jax.random`` key (initial weights and sampling); an ``int``.
        learning_rate: Adam learning rate of the networks (the peak, with ``"cosine"``).
        log_z_learning_rate: Adam learning rate of ``log Z`` (TB).
        schedule: ``"cosine"`` decays both learning rates to 0 over the run (the run's
            end is then its most accurate point); ``"constant"`` keeps them.
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
        The trained :class:`GFlowNet`, with its :class:`FitHistory`.

    Raises:
        probkit.progress.Interrupted: on Ctrl-C, with the partial :class:`GFlowNet`.
        ValueError: for an unknown loss, backward policy or schedule, bad sizes or rates, an
            invalid environment, FL-DB without energies, incomplete trajectories with a
            loss that needs complete ones, or a loss that became non-finite.

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import HyperGrid, fit
        >>> gfn = fit(HyperGrid(ndim=2, height=4), loss="db", num_trajectories=64,
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
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}.")
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
    params, static = eqx.partition(policy, eqx.is_inexact_array)
    enumerable = env.all_states() is not None
    if eval_every is None:
        eval_every = max(1, num_steps // 20)
    eval_every = check_int(eval_every, "eval_every")
    replay_size = max(1, round(replay_fraction * batch_size)) if replay_capacity else 0
    config = _Config(
        loss=loss,
        num_steps=num_steps,
        batch_size=batch_size,
        epsilon=float(epsilon),
        temperature=float(temperature),
        length=length,
        subtb_lambda=float(subtb_lambda),
        replay_capacity=replay_capacity,
        replay_size=replay_size,
        eval_every=eval_every,
        learning_rate=float(learning_rate),
        log_z_learning_rate=float(log_z_learning_rate),
        schedule=schedule,
    )
    step = _TrainStep(
        static=static,
        env=env,
        target=exact_target(env) if enumerable else None,
        mode_mask=modes(env) if enumerable else None,
        config=config,
    )
    inputs = (jax.random.split(key_train, num_steps), jnp.arange(num_steps))
    try:
        carry, (losses, log_zs) = interruptible_scan(
            step,
            _init_carry(step, params),
            inputs,
            progress_bar=bool(progress_bar),
            desc=f"GFlowNet ({loss})",
        )
    except Interrupted as err:
        done = err.steps_done
        losses, log_zs = err.ys
        stopped = Interrupted(
            f"GFlowNet training interrupted after {done} of {num_steps} steps "
            f"({done * batch_size} of {num_steps * batch_size} trajectories): the networks "
            "and the loss history so far are in this exception's partial_result (a GFlowNet, "
            "usable for sampling).",
            steps_done=done,
            carry=err.carry,
            ys=err.ys,
        )
        stopped.partial_result = _result(step, err.carry, losses, log_zs)
        raise stopped from None
    if not bool(jnp.all(jnp.isfinite(losses))):
        raise ValueError(
            f"the {loss} loss became non-finite during training; lower learning_rate or check "
            "that the environment's log-rewards are finite."
        )
    return _result(step, carry, losses, log_zs)


@eqx.filter_jit
def _init_carry(step: _TrainStep, params: Policy) -> _Carry:
    return step.init(params)


# Before the models agreed on one verb (``fit``; its history type ``FitHistory``).
train = renamed(fit, "models.gflownet.train")
TrainingHistory = FitHistory
