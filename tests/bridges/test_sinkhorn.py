"""Sinkhorn against exact linear-programming OT and its own optimality conditions.

For the entropic plan P_eps (cost C, weights a, b) and the exact OT value OT(a, b),

    0 <= <C, P_eps> - OT(a, b) <= eps * min(H(a), H(b))

because <C, P_eps> + eps KL(P_eps | a b^T) <= <C, P*> + eps KL(P* | a b^T) and the KL of
any coupling to the product of its marginals (a mutual information) is at most the
entropy of either marginal. The plan only meets the marginals up to the threshold tau
(L1), which moves the cost by at most tau * max(C); float32 adds ~1e-6 relative.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linprog

import probkit.bridges as br
from probkit.results import SamplingWarning


def _exact_ot(cost, a, b):
    n, m = cost.shape
    rows = np.kron(np.eye(n), np.ones((1, m)))
    cols = np.kron(np.ones((1, n)), np.eye(m))
    res = linprog(
        cost.ravel(),
        A_eq=np.vstack([rows, cols]),
        b_eq=np.concatenate([a, b]),
        bounds=(0, None),
        method="highs",
    )
    assert res.status == 0
    return res.fun


def _problem(seed, n=9, m=12):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = rng.normal(size=(m, 2)) + np.array([1.0, 0.0])
    a = rng.uniform(0.5, 1.5, n)
    b = rng.uniform(0.5, 1.5, m)
    return x, y, a / a.sum(), b / b.sum()


@pytest.mark.parametrize("epsilon", [0.5, 0.05, 0.01])
def test_cost_is_within_the_entropic_bound_of_exact_ot(epsilon):
    x, y, a, b = _problem(0)
    cost = np.asarray(br.squared_distances(jnp.asarray(x), jnp.asarray(y)), np.float64)
    exact = _exact_ot(cost, a, b)
    threshold = 1e-5
    out = br.sinkhorn(
        jnp.asarray(cost, jnp.float32),
        jnp.asarray(a, jnp.float32),
        jnp.asarray(b, jnp.float32),
        epsilon=epsilon,
        threshold=threshold,
        max_iterations=20000,
    )
    assert bool(out.converged)
    assert float(out.marginal_errors.max()) <= threshold
    entropy = min(-np.sum(a * np.log(a)), -np.sum(b * np.log(b)))
    slack = threshold * cost.max() + 1e-5 * exact
    gap = float(out.transport_cost) - exact
    assert -slack <= gap <= epsilon * entropy + slack
    # the entropic objective exceeds the transport cost by eps * KL >= 0
    assert float(out.entropic_cost) >= float(out.transport_cost) - 1e-6


def test_plan_has_the_gibbs_form_of_its_potentials():
    x, y, a, b = _problem(1)
    cost = br.squared_distances(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    eps = 0.1
    out = br.sinkhorn(cost, jnp.asarray(a), jnp.asarray(b), epsilon=eps, threshold=1e-5)
    f, g = out.potentials
    gibbs = np.exp((f[:, None] + g[None, :] - cost) / eps)
    np.testing.assert_allclose(out.plan, gibbs, rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(out.plan.sum(1), a, atol=1e-5)
    np.testing.assert_allclose(out.plan.sum(0), b, atol=1e-5)


def test_jit_and_vmap_over_problems_and_epsilon():
    keys = jax.random.split(jax.random.key(0), 4)
    x = jax.vmap(lambda k: jax.random.normal(k, (10, 2)))(keys)
    costs = jax.vmap(br.squared_distances)(x, x + 1.0)
    eps = jnp.array([0.05, 0.1, 0.5, 1.0])
    solve = jax.jit(
        jax.vmap(lambda c, e: br.sinkhorn(c, epsilon=e, threshold=1e-4, max_iterations=20000))
    )
    out = solve(costs, eps)
    assert out.plan.shape == (4, 10, 10)
    assert bool(out.converged.all())
    np.testing.assert_allclose(out.plan.sum(-1), 0.1, atol=1e-4)
    # larger eps converges in fewer iterations
    assert int(out.num_iterations[0]) >= int(out.num_iterations[-1])


def test_non_convergence_is_reported():
    x, y, _, _ = _problem(2)
    cost = br.squared_distances(jnp.asarray(x), jnp.asarray(y)) * 100.0
    with pytest.warns(SamplingWarning, match="did not converge.*larger epsilon"):
        out = br.sinkhorn(cost, epsilon=1e-3, threshold=1e-6, max_iterations=10)
        jax.effects_barrier()
    assert not bool(out.converged)
    # Under jit the warning still fires (through jax.debug.callback); warn=False silences it.
    with pytest.warns(SamplingWarning, match="did not converge"):
        jax.jit(lambda c: br.sinkhorn(c, epsilon=1e-3, max_iterations=10))(cost)
        jax.effects_barrier()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        br.sinkhorn(cost, epsilon=1e-3, max_iterations=10, warn=False)
        jax.effects_barrier()


def test_a_bridge_at_small_sigma_warns_with_the_fix():
    # sigma = 0.01 gives epsilon = 1e-4 against costs of order 10^3: the plan's rows are
    # far off after the iteration cap, and the warning says to raise sigma.
    x0 = jax.random.normal(jax.random.key(0), (40, 1))
    with pytest.warns(SamplingWarning, match="larger sigma"):
        bridge = br.schrodinger_bridge(x0, 5 * x0 + 30.0, sigma=0.01, sinkhorn_max_iterations=50)
    assert not bool(bridge.converged)


def test_bad_input_is_rejected_with_a_clear_message():
    cost = jnp.ones((3, 4))
    with pytest.raises(ValueError, match="a must have shape"):
        br.sinkhorn(cost, jnp.ones(4) / 4, epsilon=0.1)
    with pytest.raises(ValueError, match="sum to 1"):
        br.sinkhorn(cost, jnp.ones(3), epsilon=0.1)
    with pytest.raises(ValueError, match="epsilon must be positive"):
        br.sinkhorn(cost, epsilon=0.0)
    with pytest.raises(ValueError, match="2-D"):
        br.sinkhorn(jnp.ones(3), epsilon=0.1)
