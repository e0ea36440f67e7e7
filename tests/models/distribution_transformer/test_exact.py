"""The exact linear-Gaussian GMM posterior against quadrature (1-D) and joint-Gaussian
conditioning of the stacked observations (2-D), both computed independently in NumPy/SciPy."""

import jax.numpy as jnp
import numpy as np
import pytest
from probkit.models.distribution_transformer import (
    gaussian_mixture,
    linear_gaussian_log_evidence,
    linear_gaussian_posterior,
)
from scipy import stats


def test_1d_against_quadrature():
    weights = np.array([0.2, 0.5, 0.3])
    means = np.array([-3.0, 0.0, 2.5])
    stds = np.array([0.7, 1.2, 0.4])
    prior = gaussian_mixture(weights, means[:, None], (stds**2)[:, None, None])
    h, s = -1.3, 0.8
    y = np.array([0.4, -1.0, 0.1, 0.9])
    grid = np.linspace(-12, 12, 200_001)
    dz = grid[1] - grid[0]
    prior_pdf = sum(
        w * stats.norm(m, sd).pdf(grid) for w, m, sd in zip(weights, means, stds, strict=True)
    )
    lik = np.prod(stats.norm(h * grid[:, None], s).pdf(y[None, :]), axis=1)
    joint = prior_pdf * lik
    evidence = joint.sum() * dz
    post_pdf = joint / evidence
    post = linear_gaussian_posterior(prior, jnp.asarray(y)[:, None], jnp.array([[h]]), s)
    # Riemann sums of smooth, well-resolved densities: error far below the float32 tolerance.
    np.testing.assert_allclose(
        np.exp(np.asarray(post.log_prob(jnp.asarray(grid[::1000, None])))),
        post_pdf[::1000],
        rtol=2e-3,
        atol=1e-6,
    )
    m1 = (grid * post_pdf).sum() * dz
    np.testing.assert_allclose(float(post.mean()[0]), m1, rtol=1e-4, atol=1e-4)
    log_ev = float(
        linear_gaussian_log_evidence(prior, jnp.asarray(y)[:, None], jnp.array([[h]]), s)
    )
    np.testing.assert_allclose(log_ev, np.log(evidence), atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_2d_against_joint_gaussian_conditioning(seed):
    rng = np.random.default_rng(seed)
    k, d, m, n = 3, 2, 2, 5
    weights = rng.dirichlet(np.ones(k))
    means = rng.normal(size=(k, d)) * 2
    a = rng.normal(size=(k, d, d))
    covs = a @ np.swapaxes(a, -1, -2) + 0.2 * np.eye(d)
    h = rng.normal(size=(m, d))
    s = 0.6
    y = rng.normal(size=(n, m))
    post = linear_gaussian_posterior(
        gaussian_mixture(weights, means, covs), jnp.asarray(y), jnp.asarray(h), s
    )
    big_h = np.tile(h, (n, 1))  # stacked observation matrix (n m, d)
    yv = y.reshape(-1)
    log_ev, post_means, post_covs = [], [], []
    for w, mu, cov in zip(weights, means, covs, strict=True):
        cov_y = big_h @ cov @ big_h.T + s**2 * np.eye(n * m)
        gain = cov @ big_h.T @ np.linalg.inv(cov_y)
        post_means.append(mu + gain @ (yv - big_h @ mu))
        post_covs.append(cov - gain @ big_h @ cov)
        log_ev.append(np.log(w) + stats.multivariate_normal(big_h @ mu, cov_y).logpdf(yv))
    log_ev = np.array(log_ev)
    expected_w = np.exp(log_ev - np.logaddexp.reduce(log_ev))
    # float32 linear algebra on well-conditioned 2x2 systems.
    np.testing.assert_allclose(np.asarray(post.weights), expected_w, atol=2e-4)
    np.testing.assert_allclose(np.asarray(post.means), np.array(post_means), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        np.asarray(post.covariances), np.array(post_covs), rtol=1e-4, atol=1e-5
    )


def test_shape_errors():
    prior = gaussian_mixture(jnp.ones(1), jnp.zeros((1, 2)), jnp.eye(2)[None])
    with pytest.raises(ValueError, match="obs_matrix must have shape"):
        linear_gaussian_posterior(prior, jnp.zeros((3, 2)), jnp.eye(3), 1.0)
    with pytest.raises(ValueError, match="noise_std must be positive"):
        linear_gaussian_posterior(prior, jnp.zeros((3, 2)), jnp.eye(2), 0.0)


def test_observation_mask_equals_dropping_rows():
    rng = np.random.default_rng(3)
    prior = gaussian_mixture(
        np.array([0.3, 0.7]), rng.normal(size=(2, 2)), np.stack([np.eye(2), 2 * np.eye(2)])
    )
    y = jnp.asarray(rng.normal(size=(6, 2)), jnp.float32)
    mask = jnp.array([True, False, True, True, False, False])
    h = jnp.array([[1.0, 0.5], [0.0, 1.0]])
    a = linear_gaussian_posterior(prior, y, h, 0.7, observation_mask=mask)
    b = linear_gaussian_posterior(prior, y[mask], h, 0.7)
    for x, z in ((a.weights, b.weights), (a.means, b.means), (a.covariances, b.covariances)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(z), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        float(linear_gaussian_log_evidence(prior, y, h, 0.7, observation_mask=mask)),
        float(linear_gaussian_log_evidence(prior, y[mask], h, 0.7)),
        rtol=1e-5,
    )
