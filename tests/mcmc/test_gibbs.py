"""Discrete sites with an infinite support: Metropolis-within-Gibbs beside NUTS / HMC.

Every check is against an exact answer: a Poisson-binomial thinning model whose
posterior is Gamma / Poisson in closed form, and models small enough to enumerate.
Tolerances are four Monte Carlo standard errors from the run's own bulk ESS.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from scipy import stats

import probkit as pk
from probkit.results import ess_bulk

A, B, P = 2.0, 0.1, 0.4  # lam ~ Gamma(A, B); n_i ~ Poisson(lam); y_i ~ Binomial(n_i, P)


def thinning(y):
    lam = numpyro.sample("lam", dist.Gamma(A, B))
    with numpyro.plate("i", y.shape[0]):
        n = numpyro.sample("n", dist.Poisson(lam))
        numpyro.sample("y", dist.Binomial(n, P), obs=y)


def _within(draws, exact, what, sigmas=4.0):
    """``mean(draws)`` within ``sigmas`` Monte Carlo standard errors of ``exact``;
    ``draws`` is (chains, draws)."""
    draws = np.asarray(draws, dtype=float)
    mcse = draws.std() / np.sqrt(float(ess_bulk(draws)))
    assert abs(draws.mean() - exact) < sigmas * mcse, (what, draws.mean(), exact, mcse)


def test_thinned_poisson_at_defaults_matches_closed_form():
    # y_i ~ Poisson(lam P) marginally, so lam | y ~ Gamma(A + sum y, B + N P), and
    # n_i - y_i | lam, y ~ Poisson(lam (1 - P)).
    y = jnp.array([3, 7, 4, 6, 5])
    result = pk.mcmc.sample(thinning, model_args=(y,), diagnose=False)
    shape, rate = A + float(y.sum()), B + y.shape[0] * P
    lam, n = np.asarray(result.samples["lam"]), np.asarray(result.samples["n"])
    assert result.samples["n"].dtype == jnp.int32 and n.shape == (4, 1000, 5)
    assert np.all(n >= np.asarray(y))  # never below an observed count
    _within(lam, shape / rate, "E[lam]")
    _within((lam - shape / rate) ** 2, shape / rate**2, "Var[lam]")
    for i in range(y.shape[0]):
        _within(n[..., i], float(y[i]) + shape / rate * (1 - P), f"E[n_{i}]")
    assert 0.2 < float(np.mean(result.stats["discrete_acceptance_rate"])) < 0.95
    assert float(np.mean(result.stats["acceptance_rate"])) > 0.6


def test_geometric_site_alone_never_leaves_its_support():
    # Geometric's log_prob is finite at -1, -2, ...: only the support check keeps the
    # chain on 0, 1, 2, ... The posterior is enumerated on 0..400 (the tail beyond is
    # below 1e-17).
    y = jnp.array([1.0, 4.0, 2.5])

    def model(y):
        n = numpyro.sample("n", dist.Geometric(probs=0.1))
        with numpyro.plate("obs", y.shape[0]):
            numpyro.sample("y", dist.Normal(n, 3.0), obs=y)

    support = np.arange(401)
    log_post = stats.geom.logpmf(support + 1, 0.1) + stats.norm.logpdf(
        np.asarray(y)[:, None], support, 3.0
    ).sum(0)
    post = np.exp(log_post - log_post.max())
    post /= post.sum()
    result = pk.mcmc.sample(model, model_args=(y,), diagnose=False)
    n = np.asarray(result.samples["n"])
    assert n.min() >= 0
    assert "n_steps" not in result.stats  # no continuous coordinate: no HMC move
    _within(n, float(support @ post), "E[n]")
    _within((n == 0).astype(float), float(post[0]), "P(n = 0)")
    _within(n**2, float(support**2 @ post), "E[n^2]")


@pytest.mark.slow
def test_enumerated_and_gibbs_sites_together():
    # z (finite) is summed out, n (a count) is a Gibbs site; the exact posterior
    # enumerates z in {0, 1} and n in 0..200.
    y = jnp.array([9.0, 12.0, 7.0])

    def model(y):
        scale = numpyro.sample("scale", dist.LogNormal(0.0, 0.5))
        z = numpyro.sample("z", dist.Bernoulli(0.3))
        n = numpyro.sample("n", dist.Poisson(jnp.where(z == 1, 10.0, 3.0)))
        with numpyro.plate("obs", y.shape[0]):
            numpyro.sample("y", dist.Normal(n, scale * 2.0), obs=y)

    target = pk.from_numpyro(model, y)
    assert target.enumerated_sites == ("z",) and target.gibbs_sites == ("n",)
    result = pk.mcmc.sample(target, diagnose=False)
    # exact: integrate scale on a fine log grid, enumerate z and n
    s = np.exp(np.linspace(-3.0, 3.0, 2001))
    ns = np.arange(201)
    log_ps = stats.lognorm.logpdf(s, 0.5) + np.log(s)  # d(scale) = scale d(log scale)
    log_lik = stats.norm.logpdf(np.asarray(y)[:, None, None], ns[None, :, None], 2.0 * s).sum(0)
    joint = []
    for prob, rate in [(0.7, 3.0), (0.3, 10.0)]:
        log_prior_n = np.log(prob) + stats.poisson.logpmf(ns, rate)
        joint.append(log_prior_n[:, None] + log_ps[None, :] + log_lik)
    joint = np.stack(joint)  # (z, n, scale)
    weights = np.exp(joint - joint.max())
    weights /= weights.sum()
    _within(result.samples["n"], float((weights.sum((0, 2)) * ns).sum()), "E[n]")
    _within(result.samples["z"], float(weights[1].sum()), "P(z = 1)")
    _within(result.samples["scale"], float((weights.sum((0, 1)) * s).sum()), "E[scale]")


def test_starts_are_moved_to_where_the_data_are_possible():
    # Counts drawn from the prior at a uniform start (lam in [0.14, 7.4]) fall below
    # these observations almost surely; the start search lifts them.
    y = jnp.array([30, 45, 38])
    target = pk.from_numpyro(thinning, y)
    starts = target.init(jax.random.key(3), 8)
    log_densities = jax.vmap(target.logdensity)(starts)
    assert np.all(np.isfinite(np.asarray(log_densities)))
    assert np.all(np.asarray(starts["n"]) >= np.asarray(y))


def test_init_dict_sets_the_counts_and_constrain_returns_integers():
    y = jnp.array([3, 7, 4])
    target = pk.from_numpyro(thinning, y, init={"n": jnp.array([5, 9, 8]), "lam": 6.0})
    starts = target.init(jax.random.key(0), 2)
    np.testing.assert_array_equal(np.asarray(starts["n"]), [[5, 9, 8], [5, 9, 8]])
    np.testing.assert_allclose(np.asarray(starts["lam"]), np.log(6.0), rtol=1e-6)
    values = target.constrain(jax.tree.map(lambda x: x[0], starts))
    assert values["n"].dtype == jnp.int32
    assert target.gibbs_indices.tolist() == [1, 2, 3]  # after lam, in sorted order


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"kernel": "mala"}, "Metropolis-within-Gibbs"),
        ({"kernel": "chees", "num_chains": 4}, "Metropolis-within-Gibbs"),
        ({"mass_matrix": "low_rank"}, "low_rank"),
    ],
)
def test_kernels_that_cannot_move_integers_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        pk.mcmc.sample(thinning, model_args=(jnp.array([3, 7]),), **options)


def test_tempered_smc_refuses_gibbs_sites():
    target = pk.from_numpyro(thinning, jnp.array([3, 7]))
    with pytest.raises(ValueError, match="kernel='nuts'"):
        pk.smc.tempered(target)


def test_counts_reach_the_model_as_integers():
    # A count used as an index (or passed on as a count) must be an integer, as in NumPyro.
    table = jnp.linspace(0.0, 9.0, 10)

    def model(y):
        n = numpyro.sample("n", dist.Poisson(3.0))
        numpyro.sample("y", dist.Normal(table[jnp.minimum(n, 9)], 1.0), obs=y)

    result = pk.mcmc.sample(
        model, model_args=(jnp.array(2.0),), num_warmup=200, num_samples=500, diagnose=False
    )
    support = np.arange(60)
    log_post = stats.poisson.logpmf(support, 3.0) + stats.norm.logpdf(
        2.0, np.minimum(support, 9), 1.0
    )
    post = np.exp(log_post - log_post.max())
    post /= post.sum()
    _within(result.samples["n"], float(support @ post), "E[n]")


def test_a_count_vector_with_a_joint_support_is_refused():
    # A Multinomial's counts must keep their sum: one-integer moves could never move.
    def model(y):
        x = numpyro.sample("x", dist.Multinomial(6, jnp.array([0.2, 0.3, 0.5])))
        numpyro.sample("y", dist.Normal(x[0], 1.0), obs=y)

    with pytest.raises(ValueError, match=r"\['x'\] \(Multinomial\w*\) have a joint support"):
        pk.from_numpyro(model, jnp.array(2.0))


def test_impossible_init_counts_are_reported_not_moved():
    with pytest.raises(ValueError, match=r"-inf at init values of \['n'\]"):
        pk.from_numpyro(thinning, jnp.array([3, 7, 4]), init={"n": jnp.array([0, 0, 0])})


def test_counts_beyond_float32_integers_warn():
    if jax.config.jax_enable_x64:
        pytest.skip("float64 holds the counts exactly")

    def model():
        numpyro.sample("n", dist.Poisson(3e7))

    with pytest.warns(pk.SamplingWarning, match=r"beyond the 2\^24"):
        pk.mcmc.sample(model, num_chains=1, num_warmup=20, num_samples=20, diagnose=False)


def test_a_support_that_depends_on_a_count_gets_advice():
    def model(y):
        total = numpyro.sample("total", dist.Poisson(10.0))
        k = numpyro.sample("k", dist.Binomial(total, 0.5))
        numpyro.sample("y", dist.Normal(k, 1.0), obs=y)

    with pytest.raises(ValueError, match="support depends on another latent site"):
        pk.from_numpyro(model, jnp.array(3.0))
