"""Trajectory sampling, exact terminal distributions and importance weights.

The exact terminal distribution obtained by propagating the policy through the state DAG
is checked against a brute-force sum over every trajectory; the importance weights
``R(x) P_B(tau|x) / P_F(tau)`` against the exact ``Z`` and target expectations (4
standard errors, estimated from the same draws).
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import probkit.models.gflownet as gflownet
import pytest

from probkit.importance import log_evidence

ENV = gflownet.HyperGrid(ndim=2, height=3)
POLICY = gflownet.Policy(ENV, key=jax.random.key(3), width=16, depth=1)


def _brute_force_terminal_distribution(policy, env):
    # Sum over every trajectory of the product of its forward probabilities.
    probs = np.zeros(len(env.all_states()))

    def walk(state, prob):
        log_pf = np.asarray(gflownet.forward_log_probs(policy, env, jnp.asarray(state)))
        mask = np.asarray(env.forward_mask(jnp.asarray(state)))
        probs[int(env.state_index(jnp.asarray(state)))] += prob * math.exp(log_pf[-1])
        for action in np.flatnonzero(mask[:-1]):
            child = np.array(state)
            child[action] += 1
            walk(child, prob * math.exp(log_pf[action]))

    walk(np.zeros(env.ndim, int), 1.0)
    return probs


def test_terminal_distribution_matches_the_sum_over_all_trajectories():
    exact = _brute_force_terminal_distribution(POLICY, ENV)
    propagated = np.asarray(gflownet.terminal_distribution(POLICY, ENV))
    np.testing.assert_allclose(propagated, exact, rtol=1e-5, atol=1e-7)
    assert exact.sum() == pytest.approx(1.0, abs=1e-6)


def test_sampled_trajectories_are_valid_and_log_probs_agree():
    traj, log_pf = eqx.filter_jit(gflownet.sample_trajectories)(jax.random.key(0), POLICY, ENV, 64)
    assert bool(traj.is_complete.all())
    assert np.asarray(traj.is_stop.sum(1)).tolist() == [1] * 64
    steps = np.abs(np.diff(np.asarray(traj.states), axis=1)).sum(-1)
    np.testing.assert_array_equal(steps, np.asarray(traj.is_valid & ~traj.is_stop))
    lpf, lpb = eqx.filter_jit(gflownet.trajectory_log_probs)(POLICY, ENV, traj)
    np.testing.assert_allclose(lpf.sum(1), log_pf, atol=1e-5)
    # Uniform backward policy: each move into s' has probability 1 / (number of nonzero
    # coordinates of s'), the parents of s' in the grid.
    states = np.asarray(traj.states)[:, 1:]
    moved = np.asarray(traj.is_valid & ~traj.is_stop)
    expected = np.where(moved, np.log(np.maximum((states > 0).sum(-1), 1)), 0.0).sum(1)
    np.testing.assert_allclose(-np.asarray(lpb.sum(1)), expected, atol=1e-5)
    # Empirical terminal frequencies vs the exact distribution (binomial 5-sigma bands).
    states, _ = gflownet.GFlowNet(ENV, POLICY, "tb").sample(jax.random.key(1), 20_000)
    counts = np.bincount(np.asarray(jax.vmap(ENV.state_index)(states)), minlength=9)
    p = np.asarray(gflownet.terminal_distribution(POLICY, ENV))
    sigma = np.sqrt(p * (1 - p) / 20_000)
    assert np.all(np.abs(counts / 20_000 - p) < 5 * sigma + 1e-4)


def test_incomplete_trajectories():
    env = gflownet.SetBuilding(jnp.linspace(0.0, 1.0, 5), size=3)
    policy = gflownet.Policy(env, key=jax.random.key(0), width=8, depth=1, state_flow=True)
    sample = eqx.filter_jit(gflownet.sample_trajectories)
    traj, _ = sample(jax.random.key(1), policy, env, 16, length=2)
    assert traj.states.shape == (16, 3, 5) and not bool(traj.is_complete.any())
    assert np.asarray(traj.terminal_states.sum(1)).tolist() == [2] * 16
    loss = eqx.filter_jit(gflownet.forward_looking_loss)(policy, env, traj)
    assert np.isfinite(float(loss))
    with pytest.raises(ValueError, match="complete trajectories"):
        gflownet.trajectory_balance_loss(policy, env, traj)


def test_importance_weights_recover_the_partition_function_and_target_expectations():
    env = gflownet.HyperGrid(ndim=2, height=4)
    policy = gflownet.Policy(env, key=jax.random.key(5), width=16, depth=1)
    n = 20_000
    samples = eqx.filter_jit(gflownet.importance_samples)(jax.random.key(2), policy, env, n)
    w = np.exp(np.asarray(samples.log_weights, np.float64))
    se_log_z = w.std(ddof=1) / (w.mean() * math.sqrt(n))  # delta method for log mean w
    assert abs(float(log_evidence(samples.log_weights)) - float(env.log_partition())) < (
        4 * se_log_z
    )
    target = np.asarray(gflownet.exact_target(env))
    exact_mean = float(target @ np.asarray(env.all_states())[:, 0])
    est, ess = eqx.filter_jit(gflownet.reweighted_expectation)(
        jax.random.key(2), policy, env, lambda x: x[0].astype(jnp.float32), n
    )
    assert abs(float(est.value) - exact_mean) < 4 * float(est.std_error)
    assert 1.0 < float(ess) < n
