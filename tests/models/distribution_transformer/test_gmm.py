"""GMM density and sampling against scipy; validation errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from probkit.models.distribution_transformer import GMM, gaussian, kl_divergence_mc
from scipy import stats


def _random_gmm(rng, k, d):
    weights = rng.dirichlet(np.ones(k))
    means = rng.normal(size=(k, d)) * 2
    a = rng.normal(size=(k, d, d))
    covs = a @ np.swapaxes(a, -1, -2) + 0.3 * np.eye(d)
    return weights, means, covs


@pytest.mark.parametrize("k,d", [(1, 1), (3, 1), (2, 2), (4, 2)])
def test_log_prob_matches_scipy(k, d):
    rng = np.random.default_rng(k * 10 + d)
    weights, means, covs = _random_gmm(rng, k, d)
    gmm = GMM(weights, means, covs)
    x = rng.normal(size=(7, d)) * 3
    expected = np.log(
        sum(
            w * stats.multivariate_normal(m, c).pdf(x)
            for w, m, c in zip(weights, means, covs, strict=True)
        )
    )
    # float32 evaluation: relative error ~1e-6 per term.
    np.testing.assert_allclose(
        np.asarray(gmm.log_prob(jnp.asarray(x))), expected, rtol=1e-4, atol=1e-4
    )


def test_sample_moments_match_mixture_moments():
    rng = np.random.default_rng(0)
    weights, means, covs = _random_gmm(rng, 3, 2)
    gmm = GMM(weights, means, covs)
    n = 40_000
    x = np.asarray(gmm.sample(jax.random.key(0), n), np.float64)
    mean, cov = np.asarray(gmm.mean()), np.asarray(gmm.covariance())
    # Standard error of the sample mean is sqrt(diag(cov) / n); allow 4 standard errors.
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - mean) < 4 * se)
    # Sample variance: standard error <= sqrt(E[(x-m)^4] / n); estimate it from the draws.
    centred = x - mean
    se_var = np.sqrt(np.var(centred**2, axis=0) / n)
    assert np.all(np.abs(np.var(x, axis=0) - np.diag(cov)) < 4 * se_var)
    # Component frequencies vs weights (binomial standard errors).
    key_comp, _ = jax.random.split(jax.random.key(0))
    comp = np.asarray(jax.random.categorical(key_comp, jnp.log(gmm.weights), shape=(n,)))
    freq = np.bincount(comp, minlength=3) / n
    assert np.all(np.abs(freq - weights) < 4 * np.sqrt(weights * (1 - weights) / n))


def test_kl_mc_against_closed_form_gaussians():
    p = gaussian(jnp.array([0.0, 1.0]), jnp.array([[1.0, 0.3], [0.3, 0.5]]))
    q = gaussian(jnp.array([0.5, 0.0]), jnp.array([[2.0, 0.0], [0.0, 1.0]]))
    sp, sq = np.asarray(p.covariances[0]), np.asarray(q.covariances[0])
    dm = np.asarray(q.means[0] - p.means[0])
    exact = 0.5 * (
        np.trace(np.linalg.solve(sq, sp))
        + dm @ np.linalg.solve(sq, dm)
        - 2
        + np.log(np.linalg.det(sq) / np.linalg.det(sp))
    )
    kl, se = kl_divergence_mc(p, q, jax.random.key(1), 20_000)
    assert abs(float(kl) - exact) < 4 * float(se)


def test_validation_errors():
    with pytest.raises(ValueError, match="sum to 1"):
        GMM(jnp.array([0.5, 0.6]), jnp.zeros((2, 1)), jnp.ones((2, 1, 1)))
    with pytest.raises(ValueError, match="positive definite"):
        GMM(jnp.array([1.0]), jnp.zeros((1, 2)), jnp.array([[[1.0, 2.0], [2.0, 1.0]]]))
    with pytest.raises(ValueError, match="symmetric"):
        GMM(jnp.array([1.0]), jnp.zeros((1, 2)), jnp.array([[[1.0, 0.5], [0.0, 1.0]]]))
    with pytest.raises(ValueError, match=r"means must have shape \(K, d\)"):
        GMM(jnp.array([1.0]), jnp.zeros((2, 1)), jnp.ones((1, 1, 1)))
    with pytest.raises(ValueError, match="covariances must have shape"):
        GMM(jnp.array([1.0]), jnp.zeros((1, 2)), jnp.ones((1, 1, 1)))
    with pytest.raises(ValueError, match="NaN"):
        GMM(jnp.array([1.0]), jnp.array([[jnp.nan]]), jnp.ones((1, 1, 1)))
    with pytest.raises(ValueError, match="last axis"):
        gaussian(jnp.zeros(2), jnp.eye(2)).log_prob(jnp.zeros(3))


def test_gmm_is_a_pytree_under_jit():
    gmm = gaussian(jnp.zeros(2), jnp.eye(2))
    out = jax.jit(lambda g, x: g.log_prob(x))(gmm, jnp.zeros(2))
    np.testing.assert_allclose(float(out), -np.log(2 * np.pi), rtol=1e-6)
