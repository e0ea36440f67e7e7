"""Closed-form NIW updates against NumPyro NUTS, scipy's Student-t and the chain rule."""

import jax
import jax.numpy as jnp
import numpy as np
import probkit.models.fewshot as fs
import pytest
import scipy.stats

PRIOR = fs.NIW(
    jnp.array([0.5, -1.0]),
    jnp.array(0.7),
    jnp.array([[1.5, 0.4], [0.4, 0.8]]),
    jnp.array(5.0),
)


def test_predictive_is_scipys_multivariate_t():
    x = jax.random.normal(jax.random.key(0), (6, 2)) + 1.0
    post = fs.niw_posterior(PRIOR, x)
    d, df = 2, float(post.dof) - 2 + 1
    shape = (
        np.asarray(post.scale) * (float(post.concentration) + 1) / (float(post.concentration) * df)
    )
    queries = np.array([[0.0, 0.0], [2.0, -1.0], [-3.0, 4.0]])
    expected = scipy.stats.multivariate_t(np.asarray(post.loc), shape, df=df).logpdf(queries)
    np.testing.assert_allclose(fs.niw_predictive_log_prob(post, queries), expected, rtol=1e-5)
    assert d == post.dim


def test_evidence_is_the_product_of_sequential_predictives():
    # chain rule: log p(x_1..x_n) = sum_i log p(x_i | x_<i); the evidence formula
    # (multivariate gamma functions, determinants) and the predictive formula differ
    x = jax.random.normal(jax.random.key(1), (7, 2)) * 2.0
    chain = sum(
        float(fs.niw_predictive_log_prob(fs.niw_posterior(PRIOR, x[:i]), x[i])) for i in range(7)
    )
    assert float(fs.niw_log_marginal_likelihood(PRIOR, x)) == pytest.approx(chain, rel=1e-5)


def test_weighted_statistics_select_a_class():
    x = jax.random.normal(jax.random.key(2), (9, 2))
    weights = jnp.array([1, 0, 1, 1, 0, 0, 1, 0, 1], float)
    a = fs.niw_posterior(PRIOR, x, weights)
    b = fs.niw_posterior(PRIOR, x[weights == 1])
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    empty = fs.niw_posterior(PRIOR, x, jnp.zeros(9))
    for u, v in zip(empty, PRIOR, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-6)


@pytest.mark.slow
def test_episode_posteriors_match_numpyro_nuts():
    """Posterior means of mu, Cov(mu) and E[Sigma] within 4.5 Monte Carlo standard errors
    (MCSE = sd / sqrt(ESS) from NumPyro's own ESS, per scalar)."""
    from numpyro.diagnostics import effective_sample_size
    from numpyro.infer import MCMC, NUTS

    support = jax.random.normal(jax.random.key(3), (2, 4, 2)) * jnp.array([1.0, 0.5]) + jnp.array(
        [[[1.0, 0.0]], [[-1.0, 2.0]]]
    )
    mcmc = MCMC(NUTS(fs.episode_model), num_warmup=400, num_samples=1500, progress_bar=False)
    mcmc.run(jax.random.key(4), support, PRIOR)
    draws = mcmc.get_samples(group_by_chain=True)
    post = fs.episode_posteriors(PRIOR, support)
    d = 2
    exact = {
        "mu": np.asarray(post.loc),
        "sigma": np.asarray(post.scale / (post.dof - d - 1)[:, None, None]),
    }
    for site in ("mu", "sigma"):
        x = np.asarray(draws[site])
        mean = x.mean(axis=(0, 1))
        mcse = x.std(axis=(0, 1)) / np.sqrt(effective_sample_size(x))
        z = (mean - exact[site]) / mcse
        assert np.all(np.abs(z) < 4.5), (site, z)
    # covariance of mu: Psi_n / (kappa_n (nu_n - d - 1)); compare variances with the
    # standard error of a sample variance, sd(x^2-ish) ~ var * sqrt(2 / ESS)
    mu = np.asarray(draws["mu"]).reshape(-1, 2, 2)
    exact_cov = np.asarray(post.scale / (post.concentration * (post.dof - d - 1))[:, None, None])
    ess = effective_sample_size(np.asarray(draws["mu"])).min()
    for c in range(2):
        var = np.diag(np.cov(mu[:, c].T))
        assert np.all(np.abs(var / np.diag(exact_cov[c]) - 1) < 4.5 * np.sqrt(2 / ess)), var


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="dof"):
        fs.check_niw(fs.NIW(jnp.zeros(3), 1.0, jnp.eye(3), 1.5))
    with pytest.raises(ValueError, match="concentration"):
        fs.check_niw(fs.NIW(jnp.zeros(2), -1.0, jnp.eye(2), 4.0))
    with pytest.raises(ValueError, match="support must have shape"):
        fs.fit_global(jax.random.key(0), jnp.zeros((3, 4, 2)))
    with pytest.raises(ValueError, match="query_y must lie"):
        fs.check_episodes(
            fs.Episodes(jnp.zeros((1, 2, 3, 2)), jnp.zeros((1, 2, 2)), jnp.array([[0, 5]]))
        )
    with pytest.raises(ValueError, match="support and query_x"):
        fs.predict_proba(PRIOR, jnp.zeros((2, 3, 2)), jnp.zeros((1, 4, 2)))
