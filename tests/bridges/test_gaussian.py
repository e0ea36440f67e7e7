"""Gaussian Schrödinger bridges: the closed form against its defining property, and the
static and IPF solvers against the closed form.

A Gaussian coupling of (X0, X1) is the Schrödinger bridge with reference sigma W on
[0, T] iff its density is a(x) b(y) exp(-|x - y|^2 / (2 eps)), eps = sigma^2 T, i.e. iff
the off-diagonal block of the joint PRECISION matrix is exactly -I / eps (the only x-y
interaction). That property, not the Janati et al. formula, is the reference for the
closed form; the formula is then the reference for the sample-based solvers.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probkit.bridges as br

M0 = np.array([0.0, 1.0])
A = np.array([[1.0, 0.3], [0.3, 0.5]])
M1 = np.array([2.0, -1.0])
B = np.array([[0.4, -0.2], [-0.2, 1.5]])


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.0])
def test_closed_form_has_the_schrodinger_precision_structure(sigma):
    coupling = br.gaussian_bridge_coupling(M0, A, M1, B, sigma=sigma, duration=1.5)
    eps = sigma**2 * 1.5
    cov = np.asarray(coupling.cov, np.float64)
    precision = np.linalg.inv(cov)
    np.testing.assert_allclose(precision[:2, 2:], -np.eye(2) / eps, atol=2e-4 / eps)
    np.testing.assert_allclose(cov[:2, :2], A, atol=1e-6)
    np.testing.assert_allclose(cov[2:, 2:], B, atol=1e-6)
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_closed_form_tends_to_the_monge_map_and_to_independence():
    # eps -> 0: cross-covariance of the optimal (Monge) coupling,
    # A^{1/2} (A^{1/2} B A^{1/2})^{1/2} A^{-1/2}
    w, v = np.linalg.eigh(A)
    a_half = v @ np.diag(np.sqrt(w)) @ v.T
    w2, v2 = np.linalg.eigh(a_half @ B @ a_half)
    monge = a_half @ (v2 @ np.diag(np.sqrt(w2)) @ v2.T) @ np.linalg.inv(a_half)
    small = br.gaussian_bridge_coupling(M0, A, M1, B, sigma=1e-3)
    np.testing.assert_allclose(small.cross_cov, monge, atol=1e-4)
    large = br.gaussian_bridge_coupling(M0, A, M1, B, sigma=100.0)
    # eps -> infinity: C ~ A B / eps
    np.testing.assert_allclose(large.cross_cov * 1e4, A @ B, atol=1e-2)


def _gaussian_samples(key, mean, cov, n):
    z = jax.random.normal(key, (n, 2))
    return jnp.asarray(mean) + z @ jnp.linalg.cholesky(jnp.asarray(cov)).T


def test_static_bridge_coupling_matches_the_closed_form():
    n, sigma = 800, 1.0
    x0 = _gaussian_samples(jax.random.key(0), M0, A, n)
    x1 = _gaussian_samples(jax.random.key(1), M1, B, n)
    bridge = br.schrodinger_bridge(x0, x1, sigma=sigma, sinkhorn_threshold=1e-4)
    assert bool(bridge.converged)
    exact = br.gaussian_bridge_coupling(M0, A, M1, B, sigma=sigma)
    plan = np.asarray(bridge.plan, np.float64)
    c0 = np.asarray(x0, np.float64) - np.asarray(x0).mean(0)
    c1 = np.asarray(x1, np.float64) - np.asarray(x1).mean(0)
    plan_cross = c0.T @ plan @ c1
    # Empirical-measure error: entropic OT plans converge at the parametric rate
    # (Mena & Niles-Weed 2019), so the cross-covariance error is ~ the standard error of
    # a covariance estimate from n pairs, sqrt((A_ii B_jj + C_ij^2) / n); 5 of them.
    cross = np.asarray(exact.cross_cov)
    se = np.sqrt((np.outer(np.diag(A), np.diag(B)) + cross**2) / n)
    assert np.all(np.abs(plan_cross - cross) < 5 * se), (plan_cross, cross, se)

    # draws from the plan reproduce the plan's own cross-covariance within MC error
    draws = 20000
    start, end = bridge.coupling(jax.random.key(2), draws)
    s0 = np.asarray(start, np.float64)
    s1 = np.asarray(end, np.float64)
    sampled = (s0 - s0.mean(0)).T @ (s1 - s1.mean(0)) / draws
    se_draws = np.sqrt((np.outer(np.diag(A), np.diag(B)) + cross**2) / draws)
    assert np.all(np.abs(sampled - plan_cross) < 5 * se_draws)


def test_static_bridge_paths_have_the_closed_form_marginal():
    n, sigma = 600, 0.7
    x0 = _gaussian_samples(jax.random.key(3), M0, A, n)
    x1 = _gaussian_samples(jax.random.key(4), M1, B, n)
    bridge = br.schrodinger_bridge(x0, x1, sigma=sigma, num_steps=10)
    paths = bridge.sample_paths(jax.random.key(5), 6000)
    mean, cov = br.gaussian_bridge_marginal(
        br.gaussian_bridge_coupling(M0, A, M1, B, sigma=sigma), 0.5
    )
    mid = np.asarray(paths[:, 5], np.float64)
    # errors: n particles (empirical measures) and the 6000 paths; se of a mean
    # sqrt(var (1/n + 1/draws)), of a covariance sqrt((S_ii S_jj + S_ij^2)(1/n + 1/draws)).
    inv = 1 / n + 1 / 6000
    var = np.diag(np.asarray(cov))
    assert np.all(np.abs(mid.mean(0) - mean) < 5 * np.sqrt(var * inv))
    se_cov = np.sqrt((np.outer(var, var) + np.asarray(cov) ** 2) * inv)
    assert np.all(np.abs(np.cov(mid.T) - cov) < 5 * se_cov)
    # paths start and end on the samples
    assert np.all(np.isin(np.asarray(paths[:, -1, 0]), np.asarray(x1[:, 0])))


def test_ipf_bridge_transports_and_couples_like_the_closed_form():
    # 1-D: N(0, 1) -> N(2, 0.5^2), sigma = 1. IPF with random features is an
    # approximation: we claim mean/std of the transported law within 0.1 and the
    # cross-covariance within 0.08 of the closed form (MC standard errors from the
    # 4000 paths are ~0.02, ~0.01 and ~0.01).
    n = 1000
    x0 = jax.random.normal(jax.random.key(6), (n, 1))
    x1 = 2.0 + 0.5 * jax.random.normal(jax.random.key(7), (n, 1))
    bridge = br.schrodinger_bridge(
        x0, x1, sigma=1.0, method="ipf", num_steps=40, num_iterations=8, num_features=64
    )
    start, end = bridge.coupling(jax.random.key(8), 4000)
    start = np.asarray(start[:, 0], np.float64)
    end = np.asarray(end[:, 0], np.float64)
    exact = br.gaussian_bridge_coupling(
        jnp.zeros(1), jnp.eye(1), 2.0 * jnp.ones(1), 0.25 * jnp.eye(1), sigma=1.0
    )
    assert abs(end.mean() - 2.0) < 0.1
    assert abs(end.std() - 0.5) < 0.1
    assert abs(np.cov(start, end)[0, 1] - float(exact.cross_cov[0, 0])) < 0.08
