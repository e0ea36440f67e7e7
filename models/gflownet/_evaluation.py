"""Exact evaluation by enumeration, distances, and importance-weighted expectations.

For an environment that enumerates its states, :func:`exact_target` is the target
``R(x) / Z`` over the terminal states and :func:`terminal_distribution` the EXACT
distribution of the sampler's terminal states, obtained by propagating the forward
policy through the state DAG (no sampling noise): with ``reach(s_0) = 1``,

    reach(s') = sum_{a valid backward at s'} reach(parent_a(s')) P_F(a | parent_a(s')),
    p_T(x) = reach(x) P_F(stop | x),

iterated ``max_length`` times (the depth of the DAG), in float64-free gather form.

Importance weights ``log w = log R(x) + log P_B(tau | x) - log P_F(tau)`` of sampled
trajectories have expectation ``Z`` and turn the sampler into a consistent
self-normalised estimator of expectations under the target (via
:mod:`probkit.importance`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array
from probkit.models.gflownet._environment import Environment
from probkit.models.gflownet._policy import Policy, forward_log_probs
from probkit.models.gflownet._trajectories import sample_trajectories, trajectory_log_probs

from probkit._checks import check_int, check_key
from probkit._repr import summary_repr
from probkit.importance import (
    Estimate,
    ImportanceSamples,
    effective_sample_size,
    self_normalised_expectation,
)

__all__ = [
    "exact_target",
    "terminal_distribution",
    "propagate_forward_policy",
    "l1_distance",
    "jensen_shannon",
    "Metrics",
    "evaluate_policy",
    "importance_samples",
    "reweighted_expectation",
    "modes",
]


def _states(env: Environment) -> Array:
    states = env.all_states()
    if states is None:
        size = getattr(env, "num_states", None)
        why = (
            f"it has {size:.3g} states, above the limit of exact evaluation"
            if isinstance(size, int)
            else "all_states() is None"
        )
        raise ValueError(
            f"{type(env).__name__} does not enumerate its states ({why}): exact evaluation "
            "(the target, the sampler's terminal distribution, L1, modes) needs a small state "
            "space. Estimate expectations from samples instead: importance_samples and "
            "reweighted_expectation work at any size."
        )
    return states


def exact_target(env: Environment) -> Array:
    """The target ``R(x) / Z`` over ``env.all_states()`` (0 at non-terminal states).

    Args:
        env: an environment that enumerates its states.

    Returns:
        ``(num_states,)`` probabilities.

    Raises:
        ValueError: if the environment does not enumerate its states.

    Example:
        >>> from probkit.models.gflownet import HyperGrid, exact_target
        >>> round(float(exact_target(HyperGrid(ndim=2, height=8)).sum()), 5)
        1.0
    """
    states = _states(env)
    terminal = jax.vmap(env.is_terminal)(states)
    log_r = jnp.where(terminal, jax.vmap(env.log_reward)(states), -jnp.inf)
    return jax.nn.softmax(log_r)


def modes(env: Environment, tolerance: float = 1e-6) -> Array:
    """Boolean ``(num_states,)``: terminal states whose reward is the maximum (within tolerance).

    Args:
        env: an environment that enumerates its states.
        tolerance: slack on ``log R`` below its maximum.

    Returns:
        The mask of the modes.

    Example:
        >>> from probkit.models.gflownet import HyperGrid, modes
        >>> int(modes(HyperGrid(ndim=2, height=8)).sum())
        4
    """
    states = _states(env)
    terminal = jax.vmap(env.is_terminal)(states)
    log_r = jnp.where(terminal, jax.vmap(env.log_reward)(states), -jnp.inf)
    return terminal & (log_r >= log_r.max() - tolerance)


def terminal_distribution(policy: Policy, env: Environment) -> Array:
    """The exact distribution of the terminal states sampled by the forward policy.

    Args:
        policy: the networks.
        env: an environment that enumerates its states.

    Returns:
        ``(num_states,)`` probabilities over ``env.all_states()``.

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import HyperGrid, Policy, terminal_distribution
        >>> env = HyperGrid(ndim=2, height=4)
        >>> policy = Policy(env, key=jax.random.key(0), width=16)
        >>> round(float(terminal_distribution(policy, env).sum()), 5)
        1.0
    """
    states = _states(env)
    log_pf = jax.vmap(lambda s: forward_log_probs(policy, env, s))(states)
    return propagate_forward_policy(env, log_pf)


def propagate_forward_policy(env: Environment, log_pf: Array) -> Array:
    """The exact terminal distribution of ANY forward policy given on all states.

    Use it for policies that are not a :class:`Policy` (another library's network, a
    hand-made policy).

    Args:
        env: an environment that enumerates its states.
        log_pf: ``(num_states, num_actions)`` forward log-probabilities at
            ``env.all_states()`` (invalid actions are ignored).

    Returns:
        ``(num_states,)`` probabilities over ``env.all_states()``.

    Raises:
        ValueError: if ``log_pf`` has the wrong shape.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.gflownet import (HyperGrid, masked_log_softmax,
        ...                                      propagate_forward_policy)
        >>> env = HyperGrid(ndim=1, height=3)
        >>> masks = jax.vmap(env.forward_mask)(env.all_states())
        >>> uniform = masked_log_softmax(jnp.zeros(masks.shape), masks)
        >>> [round(float(p), 3) for p in propagate_forward_policy(env, uniform)]
        [0.5, 0.25, 0.25]
    """
    states = _states(env)
    if log_pf.shape != (states.shape[0], env.num_actions):
        raise ValueError(
            f"log_pf must have shape ({states.shape[0]}, {env.num_actions}), got {log_pf.shape}."
        )
    stop = env.num_actions - 1
    actions = jnp.arange(stop)
    forward_mask = jax.vmap(env.forward_mask)(states)
    prob = jnp.where(forward_mask, jnp.exp(log_pf), 0.0)

    def parents_of(state):
        parents = jax.vmap(env.backward_step, in_axes=(None, 0))(state, actions)
        return jax.vmap(env.state_index)(parents)

    parent = jax.vmap(parents_of)(states)  # (S, A - 1)
    back_mask = jax.vmap(env.backward_mask)(states)
    parent = jnp.where(back_mask, parent, 0)
    edge = jnp.where(back_mask, prob[parent, actions[None, :]], 0.0)
    root = jax.nn.one_hot(env.state_index(env.initial_state()), states.shape[0])

    def propagate(reach, _):
        return root + jnp.sum(reach[parent] * edge, axis=1), None

    reach, _ = jax.lax.scan(propagate, root, None, length=env.max_length)
    return reach * prob[:, stop]


def l1_distance(p: Array, q: Array) -> Array:
    """Summed L1 distance ``sum_x |p(x) - q(x)|`` (torchgfn's convention; divide by the
    number of states for the mean of the original papers).

    Args:
        p: a probability vector.
        q: a probability vector of the same shape.

    Returns:
        The distance, in ``[0, 2]``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.gflownet import l1_distance
        >>> float(l1_distance(jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0])))
        1.0
    """
    return jnp.sum(jnp.abs(p - q))


def jensen_shannon(p: Array, q: Array) -> Array:
    """Jensen-Shannon divergence (natural log) between two probability vectors.

    Args:
        p: a probability vector.
        q: a probability vector of the same shape.

    Returns:
        The divergence, in ``[0, log 2]``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.gflownet import jensen_shannon
        >>> round(float(jensen_shannon(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]))), 4)
        0.6931
    """
    m = 0.5 * (p + q)

    def kl(a):
        return jnp.sum(jnp.where(a > 0, a * (jnp.log(jnp.where(a > 0, a, 1.0)) - jnp.log(m)), 0))

    return 0.5 * kl(p) + 0.5 * kl(q)


class Metrics(NamedTuple):
    """Exact quality of a trained sampler.

    Attributes:
        l1_sum: ``sum_x |p_T(x) - p(x)|``.
        l1_mean: ``l1_sum`` divided by the number of terminal states.
        jsd: Jensen-Shannon divergence between ``p_T`` and ``p``.
        log_z_error: ``|log Z_hat - log Z|`` with the exact ``log Z`` by enumeration.
    """

    l1_sum: Array
    l1_mean: Array
    jsd: Array
    log_z_error: Array

    def __repr__(self) -> str:
        return summary_repr(self)


def evaluate_policy(policy: Policy, env: Environment, log_z_estimate: Array) -> Metrics:
    """Exact L1, JSD and ``log Z`` error of a sampler, by enumeration.

    Args:
        policy: the networks.
        env: an environment that enumerates its states.
        log_z_estimate: the sampler's estimate of ``log Z``.

    Returns:
        The :class:`Metrics`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.gflownet import HyperGrid, Policy, evaluate_policy
        >>> from probkit.models.gflownet import exact_target, terminal_distribution
        >>> env = HyperGrid(ndim=2, height=4)
        >>> policy = Policy(env, key=jax.random.key(0), width=16)  # untrained
        >>> metrics = evaluate_policy(policy, env, policy.log_z)
        >>> gap = jnp.abs(terminal_distribution(policy, env) - exact_target(env)).sum()
        >>> bool(jnp.isclose(metrics.l1_sum, gap)), bool(metrics.l1_sum > 0.5)
        (True, True)
    """
    states = _states(env)
    target = exact_target(env)
    learned = terminal_distribution(policy, env)
    terminal = jax.vmap(env.is_terminal)(states)
    log_r = jnp.where(terminal, jax.vmap(env.log_reward)(states), -jnp.inf)
    l1 = l1_distance(learned, target)
    return Metrics(
        l1_sum=l1,
        l1_mean=l1 / terminal.sum(),
        jsd=jensen_shannon(learned, target),
        log_z_error=jnp.abs(log_z_estimate - jax.nn.logsumexp(log_r)),
    )


def importance_samples(
    key: Array, policy: Policy, env: Environment, num_samples: int
) -> ImportanceSamples:
    """Terminal states of the sampler with log weights ``log R(x) + log P_B(tau|x) - log P_F(tau)``.

    ``mean_i w_i`` is unbiased for ``Z``; use the samples with :mod:`probkit.importance`
    (``log_evidence``, ``self_normalised_expectation``, ``effective_sample_size``).

    Args:
        key: a ``jax.random`` key.
        policy: the networks.
        env: the environment.
        num_samples: number of trajectories.

    Returns:
        :class:`probkit.importance.ImportanceSamples` with the terminal states as positions.

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import HyperGrid, Policy, importance_samples
        >>> env = HyperGrid(ndim=2, height=4)
        >>> policy = Policy(env, key=jax.random.key(0), width=16)
        >>> importance_samples(jax.random.key(1), policy, env, 10).log_weights.shape
        (10,)
    """
    check_key(key)
    num_samples = check_int(num_samples, "num_samples")
    traj, _ = sample_trajectories(key, policy, env, num_samples)
    log_pf, log_pb = trajectory_log_probs(policy, env, traj)
    log_w = traj.log_rewards + log_pb.sum(1) - log_pf.sum(1)
    return ImportanceSamples(positions=traj.terminal_states, log_weights=log_w)


def reweighted_expectation(
    key: Array,
    policy: Policy,
    env: Environment,
    fn: Callable[[Array], Any],
    num_samples: int,
) -> tuple[Estimate, Array]:
    """Self-normalised importance estimate of ``E_{R/Z}[fn(x)]`` from the sampler, and the ESS.

    Args:
        key: a ``jax.random`` key.
        policy: the networks.
        env: the environment.
        fn: maps one terminal state to an array or a pytree of arrays.
        num_samples: number of trajectories.

    Returns:
        ``(estimate, ess)``: a :class:`probkit.importance.Estimate` (value and delta-method
        standard error) and Kish's effective sample size of the weights.

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import HyperGrid, Policy, reweighted_expectation
        >>> env = HyperGrid(ndim=2, height=4)
        >>> policy = Policy(env, key=jax.random.key(0), width=16)
        >>> est, ess = reweighted_expectation(jax.random.key(1), policy, env,
        ...                                   lambda x: x.sum(), 100)
        >>> est.value.shape
        ()
    """
    check_key(key)
    if not callable(fn):
        raise TypeError(f"fn must be a callable of one terminal state, got {type(fn).__name__}.")
    samples = importance_samples(key, policy, env, num_samples)
    return self_normalised_expectation(samples, fn), effective_sample_size(samples.log_weights)
