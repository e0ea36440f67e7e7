"""probkit's one Gaussian-mixture type: densities against scipy, scores against autodiff,
sampling against the mixture's moments, batches against a loop, NumPyro interop,
validation errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import probkit as pk


def _random_gmm(rng, k, d):
    weights = rng.dirichlet(np.ones(k))
    means = rng.normal(size=(k, d)) * 2
    a = rng.normal(size=(k, d, d))
    covs = a @ np.swapaxes(a, -1, -2) + 0.3 * np.eye(d)
    return weights, means, covs


def _scipy_log_prob(weights, means, covs, x):
    return np.log(
        sum(
            w * stats.multivariate_normal(m, c).pdf(x)
            for w, m, c in zip(weights, means, covs, strict=True)
        )
    )


@pytest.mark.parametrize("k,d", [(1, 1), (3, 1), (2, 2), (4, 2)])
def test_log_prob_matches_scipy(k, d):
    rng = np.random.default_rng(k * 10 + d)
    weights, means, covs = _random_gmm(rng, k, d)
    gmm = pk.gaussian_mixture(weights, means, covs)
    x = rng.normal(size=(7, d)) * 3
    expected = _scipy_log_prob(weights, means, covs, x)
    # float32 evaluation: relative error ~1e-6 per term.
    np.testing.assert_allclose(
        np.asarray(gmm.log_prob(jnp.asarray(x))), expected, rtol=1e-4, atol=1e-4
    )
    # One point at a time gives the same numbers (the shape convention's trivial case).
    np.testing.assert_allclose(
        float(gmm.log_prob(jnp.asarray(x[0]))), expected[0], rtol=1e-4, atol=1e-4
    )


def test_unnormalised_weights_are_normalised():
    gmm = pk.gaussian_mixture(jnp.array([1.0, 3.0]), jnp.zeros((2, 1)), 1.0)
    np.testing.assert_allclose(np.asarray(gmm.weights), [0.25, 0.75], rtol=1e-6)


def test_score_is_the_gradient_of_log_prob():
    rng = np.random.default_rng(3)
    gmm = pk.gaussian_mixture(*_random_gmm(rng, 3, 2))
    x = jnp.asarray(rng.normal(size=(5, 2)) * 2, jnp.float32)
    expected = jax.vmap(jax.grad(gmm.log_prob))(x)
    np.testing.assert_allclose(np.asarray(gmm.score(x)), np.asarray(expected), rtol=1e-4, atol=1e-5)


def test_a_batch_of_mixtures_equals_a_loop_over_them():
    rng = np.random.default_rng(5)
    parts = [pk.gaussian_mixture(*_random_gmm(rng, 2, 2)) for _ in range(3)]
    batch = jax.tree.map(lambda *a: jnp.stack(a), *parts)
    assert batch.batch_shape == (3,) and batch.num_components == 2 and batch.dim == 2
    x = jnp.asarray(rng.normal(size=(6, 2)), jnp.float32)
    together = batch.log_prob(x[:, None, :])  # (6, 3): each point under each mixture
    assert together.shape == (6, 3)
    for j, gmm in enumerate(parts):
        np.testing.assert_allclose(
            np.asarray(together[:, j]), np.asarray(gmm.log_prob(x)), rtol=1e-5
        )
        np.testing.assert_allclose(np.asarray(batch.mean()[j]), np.asarray(gmm.mean()), rtol=1e-5)
        np.testing.assert_allclose(
            np.asarray(batch.covariance()[j]), np.asarray(gmm.covariance()), rtol=1e-5
        )
    with pytest.raises(ValueError, match="index it first"):
        batch.sample(jax.random.key(0), 3)


def test_sample_moments_and_component_frequencies():
    rng = np.random.default_rng(0)
    weights, means, covs = _random_gmm(rng, 3, 2)
    gmm = pk.gaussian_mixture(weights, means, covs)
    n = 40_000
    x = np.asarray(gmm.sample(jax.random.key(0), n), np.float64)
    mean, cov = np.asarray(gmm.mean()), np.asarray(gmm.covariance())
    # Closed-form mixture moments against a hand computation.
    np.testing.assert_allclose(mean, weights @ means, rtol=1e-5, atol=1e-6)
    # Standard error of the sample mean is sqrt(diag(cov) / n); allow 4 standard errors.
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - mean) < 4 * se)
    # Sample variance: standard error <= sqrt(E[(x-m)^4] / n); estimate it from the draws.
    centred = x - mean
    se_var = np.sqrt(np.var(centred**2, axis=0) / n)
    assert np.all(np.abs(np.var(x, axis=0) - np.diag(cov)) < 4 * se_var)
    # Component frequencies: components 20 sd apart are identified by the nearest mean.
    w = np.array([0.1, 0.3, 0.6])
    separated = pk.gaussian_mixture(w, np.array([[-20.0], [0.0], [20.0]]), 1.0)
    y = np.asarray(separated.sample(jax.random.key(1), n))[:, 0]
    freq = np.bincount(np.digitize(y, [-10.0, 10.0]), minlength=3) / n
    assert np.all(np.abs(freq - w) < 4 * np.sqrt(w * (1 - w) / n))


def test_to_numpyro_is_the_same_law():
    rng = np.random.default_rng(7)
    gmm = pk.gaussian_mixture(*_random_gmm(rng, 3, 2))
    x = jnp.asarray(rng.normal(size=(4, 2)), jnp.float32)
    np.testing.assert_allclose(
        np.asarray(gmm.to_numpyro().log_prob(x)), np.asarray(gmm.log_prob(x)), rtol=1e-5
    )


def test_validation_errors():
    with pytest.raises(ValueError, match="non-negative"):
        pk.gaussian_mixture(jnp.array([0.5, -0.1]), jnp.zeros((2, 1)), jnp.ones((2, 1, 1)))
    with pytest.raises(ValueError, match="not all zero"):
        pk.gaussian_mixture(jnp.zeros(2), jnp.zeros((2, 1)), 1.0)
    with pytest.raises(ValueError, match="positive definite"):
        pk.gaussian_mixture(
            jnp.array([1.0]), jnp.zeros((1, 2)), jnp.array([[[1.0, 2.0], [2.0, 1.0]]])
        )
    with pytest.raises(ValueError, match="symmetric"):
        pk.gaussian_mixture(
            jnp.array([1.0]), jnp.zeros((1, 2)), jnp.array([[[1.0, 0.5], [0.0, 1.0]]])
        )
    with pytest.raises(ValueError, match=r"means must have shape \(K, d\)"):
        pk.gaussian_mixture(jnp.array([1.0]), jnp.zeros((2, 1)), jnp.ones((1, 1, 1)))
    with pytest.raises(ValueError, match="covariances must be a scalar"):
        pk.gaussian_mixture(jnp.array([1.0]), jnp.zeros((1, 2)), jnp.ones((1, 1, 1)))
    with pytest.raises(ValueError, match="NaN"):
        pk.gaussian_mixture(jnp.array([1.0]), jnp.array([[jnp.nan]]), jnp.ones((1, 1, 1)))
    gmm = pk.gaussian_mixture(jnp.ones(1), jnp.zeros((1, 2)), 1.0)
    with pytest.raises(ValueError, match="last axis"):
        gmm.log_prob(jnp.zeros(3))
    with pytest.raises(ValueError, match="num_samples"):
        gmm.sample(jax.random.key(0), 2.5)


def test_a_mixture_is_a_pytree_under_jit():
    gmm = pk.gaussian_mixture(jnp.ones(1), jnp.zeros((1, 2)), 1.0)
    out = jax.jit(lambda g, x: g.log_prob(x))(gmm, jnp.zeros(2))
    np.testing.assert_allclose(float(out), -np.log(2 * np.pi), rtol=1e-6)
    # Values cannot be checked under jit; shapes still are, and nothing fails.
    traced = jax.jit(lambda w: pk.gaussian_mixture(w, jnp.zeros((2, 1)), 1.0).weights)
    np.testing.assert_allclose(np.asarray(traced(jnp.array([1.0, 1.0]))), [0.5, 0.5])


def test_responsibilities_are_bayes_rule():
    rng = np.random.default_rng(11)
    weights, means, covs = _random_gmm(rng, 3, 2)
    gmm = pk.gaussian_mixture(weights, means, covs)
    x = rng.normal(size=(4, 2))
    parts = zip(weights, means, covs, strict=True)
    joint = np.stack([w * stats.multivariate_normal(m, c).pdf(x) for w, m, c in parts], -1)
    expected = joint / joint.sum(-1, keepdims=True)
    got = np.asarray(gmm.responsibilities(jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(got, expected, atol=1e-5)
