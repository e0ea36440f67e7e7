"""Discrete latent sites summed out by enumeration, against exact answers.

Each model's continuous posterior and its discrete sites' posterior are computed here
without NumPyro: by quadrature over a 1-D parameter, by the forward algorithm, and by
conjugate Poisson-Gamma algebra.
"""

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.contrib.funsor import markov
from scipy import special, stats

import probkit as pk


def two_component_mixture(y):
    w = numpyro.sample("w", dist.Beta(1.0, 1.0))
    with numpyro.plate("data", y.shape[0]):
        z = numpyro.sample("z", dist.Bernoulli(w))
        numpyro.sample("y", dist.Normal(4.0 * z - 2.0, 1.0), obs=y)


MIXTURE_Y = np.array([-2.3, -1.1, -2.8, 0.3, 1.7, 2.4, -1.9, 2.2, -0.2, -2.6])


def _mixture_exact():
    """Posterior of w on a fine grid, and P(z_i = 1 | y) = E[w N_1 / (w N_1 + (1-w) N_0)]."""
    w = np.linspace(1e-6, 1 - 1e-6, 20001)
    n1 = stats.norm.pdf(MIXTURE_Y, 2.0, 1.0)
    n0 = stats.norm.pdf(MIXTURE_Y, -2.0, 1.0)
    per_point = w[:, None] * n1 + (1 - w[:, None]) * n0
    log_post = np.log(per_point).sum(1)
    post = np.exp(log_post - log_post.max())
    post /= post.sum()
    mean = (post * w).sum()
    sd = np.sqrt((post * (w - mean) ** 2).sum())
    p_z = (post[:, None] * w[:, None] * n1 / per_point).sum(0)
    return mean, sd, p_z


def test_from_numpyro_sums_out_the_discrete_site():
    target = pk.from_numpyro(two_component_mixture, jnp.asarray(MIXTURE_Y))
    assert target.enumerated_sites == ("z",)
    assert set(target.constrain(target.example_position)) == {"w"}
    # log density = log p(w) + log |dw/du| + sum_i log(w N1 + (1 - w) N0) at w = sigmoid(u)
    u = jnp.array(0.4)
    w = float(jax.nn.sigmoid(u))
    per_point = w * stats.norm.pdf(MIXTURE_Y, 2, 1) + (1 - w) * stats.norm.pdf(MIXTURE_Y, -2, 1)
    expected = np.log(per_point).sum() + np.log(w) + np.log(1 - w)
    np.testing.assert_allclose(float(target.logdensity({"w": u})), expected, rtol=1e-5)


@pytest.mark.slow
def test_mixture_weight_and_assignments_match_quadrature():
    mean, sd, p_z = _mixture_exact()
    target = pk.from_numpyro(two_component_mixture, jnp.asarray(MIXTURE_Y))
    result = pk.mcmc.sample(target, num_chains=4, num_samples=1000, seed=0)  # the defaults
    w = np.asarray(result.samples["w"]).ravel()
    ess = float(az.ess(np.asarray(result.samples["w"])))
    assert abs(w.mean() - mean) < 5 * sd / np.sqrt(ess)  # 5 Monte Carlo standard errors
    assert abs(w.std() - sd) < 0.1 * sd
    z = np.asarray(result.samples["z"])
    assert z.shape == (4, 1000, MIXTURE_Y.size)
    # each z_i's frequency: binomial error of 4000 draws (correlation through w is weak)
    tolerance = 5 * np.sqrt(p_z * (1 - p_z) / 1000.0) + 1e-3
    np.testing.assert_array_less(np.abs(z.mean((0, 1)) - p_z), tolerance)


# -- a hidden Markov model, against the forward algorithm -----------------------------
HMM_Y = np.array([0.1, -0.3, 2.2, 1.8, 2.5, 0.2, -0.4, 0.3, 1.9, 2.1, 2.4, -0.1])
HMM_MEANS = np.array([0.0, 2.0])


def hmm(y):
    stay = numpyro.sample("stay", dist.Beta(2.0, 2.0))
    transition = jnp.array([[stay, 1 - stay], [1 - stay, stay]])
    state = 0
    for t in markov(range(y.shape[0])):
        state = numpyro.sample(f"x_{t}", dist.Categorical(transition[state]))
        numpyro.sample(f"y_{t}", dist.Normal(jnp.asarray(HMM_MEANS)[state], 0.7), obs=y[t])


def _forward_log_likelihood(stay: float) -> float:
    """log p(y | stay): x_0 ~ transition[0] (the chain starts in state 0), x_t ~
    transition[x_{t-1}], by the forward recursion on log alpha_t(x_t) = log p(y_0..t, x_t)."""
    log_transition = np.log(np.array([[stay, 1 - stay], [1 - stay, stay]]))
    log_alpha = log_transition[0] + stats.norm.logpdf(HMM_Y[0], HMM_MEANS, 0.7)
    for y in HMM_Y[1:]:
        log_alpha = special.logsumexp(log_alpha[:, None] + log_transition, 0)
        log_alpha = log_alpha + stats.norm.logpdf(y, HMM_MEANS, 0.7)
    return float(special.logsumexp(log_alpha))


def test_hmm_log_density_is_the_forward_algorithm():
    target = pk.from_numpyro(hmm, jnp.asarray(HMM_Y))
    assert len(target.enumerated_sites) == HMM_Y.size
    for u in (-1.0, 0.3, 1.5):
        stay = float(jax.nn.sigmoid(u))
        expected = (
            _forward_log_likelihood(stay)
            + stats.beta.logpdf(stay, 2.0, 2.0)
            + np.log(stay)
            + np.log(1 - stay)
        )
        got = float(target.logdensity({"stay": jnp.array(u)}))
        np.testing.assert_allclose(got, expected, rtol=1e-5)


# -- a change point in Poisson counts: conjugate, so exact ----------------------------
COUNTS = np.array([4, 5, 3, 6, 4, 5, 4, 1, 0, 2, 1, 1, 0, 2, 1, 0])
A, B = 2.0, 0.5  # Gamma(shape, rate) priors of both rates


def change_point(counts):
    n = counts.shape[0]
    early = numpyro.sample("early_rate", dist.Gamma(A, B))
    late = numpyro.sample("late_rate", dist.Gamma(A, B))
    tau = numpyro.sample("tau", dist.Categorical(logits=jnp.zeros(n - 1)))  # switch after tau
    rate = jnp.where(jnp.arange(n) <= tau, early, late)
    numpyro.deterministic("rate_at_end", rate[..., -1])
    with numpyro.plate("time", n):
        numpyro.sample("counts", dist.Poisson(rate), obs=counts)


def _change_point_exact():
    def log_marginal(segment):  # Poisson counts under a Gamma(A, B) rate, rate integrated out
        s, m = segment.sum(), segment.size
        return (
            A * np.log(B)
            - special.gammaln(A)
            + special.gammaln(A + s)
            - (A + s) * np.log(B + m)
            - special.gammaln(segment + 1).sum()
        )

    n = COUNTS.size
    log_post = np.array(
        [log_marginal(COUNTS[: tau + 1]) + log_marginal(COUNTS[tau + 1 :]) for tau in range(n - 1)]
    )
    post = np.exp(log_post - special.logsumexp(log_post))
    early_mean = sum(p * (A + COUNTS[: t + 1].sum()) / (B + t + 1) for t, p in enumerate(post))
    return post, early_mean


@pytest.mark.slow
def test_change_point_matches_conjugate_enumeration():
    post, early_mean = _change_point_exact()
    target = pk.from_numpyro(change_point, jnp.asarray(COUNTS))
    assert target.enumerated_sites == ("tau",)
    result = pk.mcmc.sample(target, num_chains=4, num_samples=1000, seed=1)
    tau = np.asarray(result.samples["tau"]).ravel()
    freq = np.bincount(tau, minlength=post.size) / tau.size
    # total-variation distance: multinomial noise of 4000 (correlated) draws is ~0.03
    assert 0.5 * np.abs(freq - post).sum() < 0.08
    early = np.asarray(result.samples["early_rate"])
    assert abs(early.mean() - early_mean) < 0.1 * early.std() + 5 * early.std() / np.sqrt(1000)
    # the deterministic site is recomputed with the drawn change points
    late = np.asarray(result.samples["late_rate"])
    np.testing.assert_allclose(result.samples["rate_at_end"], late, rtol=1e-6)


def test_unbounded_discrete_site_is_left_to_gibbs_not_enumerated():
    # a Poisson count cannot be summed out: it stays in the position and the MCMC
    # kernels update it by Metropolis-within-Gibbs (tests/mcmc/test_gibbs.py)
    def model(y):
        n = numpyro.sample("n", dist.Poisson(3.0))
        numpyro.sample("y", dist.Normal(n, 1.0), obs=y)

    target = pk.from_numpyro(model, jnp.array(1.0))
    assert target.gibbs_sites == ("n",)
    assert target.enumerated_sites == ()


def test_all_discrete_model_is_refused_with_advice():
    def model(y):
        z = numpyro.sample("z", dist.Bernoulli(0.3))
        numpyro.sample("y", dist.Normal(z, 1.0), obs=y)

    with pytest.raises(ValueError, match="every latent site .* is discrete"):
        pk.from_numpyro(model, jnp.array(1.0))


def test_infer_discrete_checks_its_arguments():
    target = pk.from_numpyro(two_component_mixture, jnp.asarray(MIXTURE_Y))
    with pytest.raises(TypeError, match="key must be a jax.random key"):
        pk.infer_discrete(target, {"w": jnp.full((1, 2), 0.5)}, key=0)
    with pytest.raises(ValueError, match=r"lacks the continuous site\(s\) \['w'\]"):
        pk.infer_discrete(target, {}, key=jax.random.key(0))
