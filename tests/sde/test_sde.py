"""Forward SDEs, reverse-time samplers and the probability-flow ODE against exact answers.

Oracles: marginals by independent quadrature of the SDE coefficients; Gaussian-mixture
data, whose noised laws are mixtures again (sampled here with NumPy); the exact Gaussian
log density for the ODE log-likelihood.

Energy-distance tolerance: the statistic between N sampler draws and N exact draws is
compared with its null distribution (30 pairs of independent exact samples of the same
sizes): it must stay below the null mean + 5 null standard deviations. Against a
slightly wrong target (mixture weights 0.45/0.35/0.2 instead of 0.3/0.4/0.3) the same
statistic must exceed that bound, so the check has power.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

import probkit.sde as sde_mod
from probkit.fkc import energy_distance
from probkit.sde import OUSDE, VESDE, VPSDE, QuadratureSDE, SubVPSDE, gaussian_mixture

WEIGHTS = np.array([0.3, 0.4, 0.3])
MEANS = np.array([[-2.0, 0.0], [1.0, 1.5], [2.0, -1.5]])
COVS = np.stack([0.5 * np.eye(2), np.array([[0.4, 0.2], [0.2, 0.3]]), np.diag([0.3, 0.6])])
N = 1500


def _draws(weights, sde, n, seed):
    m, s = (float(v) for v in sde.marginal(sde.t_min))
    rng = np.random.default_rng(seed)
    comp = rng.choice(len(weights), size=n, p=weights)
    chol = np.linalg.cholesky(m**2 * COVS + s**2 * np.eye(2))
    return m * MEANS[comp] + np.einsum("nij,nj->ni", chol[comp], rng.standard_normal((n, 2)))


_energy = jax.jit(energy_distance)


def _bound(sde):
    null = [
        float(_energy(_draws(WEIGHTS, sde, N, 2 * i), _draws(WEIGHTS, sde, N, 2 * i + 1)))
        for i in range(30)
    ]
    return np.mean(null) + 5 * np.std(null, ddof=1)


def _check_reproduces_mixture(x, sde):
    x = np.asarray(x, np.float64)
    assert x.shape == (N, 2) and np.all(np.isfinite(x))
    bound = _bound(sde)
    reference = _draws(WEIGHTS, sde, N, 1000)
    assert float(_energy(x, reference)) < bound
    wrong = _draws(np.array([0.45, 0.35, 0.2]), sde, N, 1001)
    assert float(_energy(x, wrong)) > bound


@pytest.mark.parametrize("sde", [VPSDE(), SubVPSDE(), VESDE(sigma_max=5.0), OUSDE(theta=0.7)])
def test_closed_form_marginals_match_quadrature_of_the_coefficients(sde):
    generic = QuadratureSDE(sde.drift_coefficient, sde.diffusion, t_max=sde.t_max)
    ts = jnp.linspace(0.01, 1.0, 7) * sde.t_max
    closed = jax.jit(jax.vmap(sde.marginal))(ts)
    numeric = jax.jit(jax.vmap(generic.marginal))(ts)
    np.testing.assert_allclose(closed[0], numeric[0], rtol=2e-4)
    np.testing.assert_allclose(closed[1], numeric[1], rtol=2e-4)


@pytest.mark.parametrize(
    "sde, options",
    [
        (VPSDE(), dict(predictor="euler_maruyama", num_steps=500)),
        (VESDE(sigma_max=20.0), dict(predictor="reverse_diffusion", num_steps=500)),
        (VPSDE(), dict(predictor="euler_maruyama", corrector="langevin", num_steps=250)),
    ],
    ids=["euler-maruyama-vp", "reverse-diffusion-ve", "predictor-corrector-vp"],
)
def test_reverse_samplers_reproduce_a_mixture(sde, options):
    data = gaussian_mixture(WEIGHTS, MEANS, COVS)
    sampler = eqx.filter_jit(sde_mod.predictor_corrector_sample)
    x = sampler(jax.random.key(0), sde, sde_mod.exact_score(data, sde), N, (2,), **options)
    _check_reproduces_mixture(x, sde)


def test_probability_flow_ode_reproduces_a_mixture():
    sde = VPSDE()
    data = gaussian_mixture(WEIGHTS, MEANS, COVS)
    x = sde_mod.probability_flow_sample(
        jax.random.key(1), sde, sde_mod.exact_score(data, sde), N, (2,), rtol=1e-4, atol=1e-4
    )
    _check_reproduces_mixture(x, sde)


def test_ode_log_likelihood_of_a_gaussian_is_exact():
    sde = VPSDE()
    mu, cov = np.array([1.0, -0.5]), np.array([[1.0, 0.6], [0.6, 0.8]])
    data = gaussian_mixture(jnp.ones(1), jnp.asarray(mu)[None], jnp.asarray(cov)[None])
    score = sde_mod.exact_score(data, sde)

    def law(t):
        m, s = (float(v) for v in sde.marginal(t))
        return multivariate_normal(m * mu, m**2 * cov + s**2 * np.eye(2))

    x = law(sde.t_min).rvs(size=6, random_state=0)
    exact = law(sde.t_min).logpdf(x)
    # With the exact law at t_max as the prior, only the ODE solver's error is left.
    end = law(sde.t_max)
    prior = lambda y: jax.scipy.stats.multivariate_normal.logpdf(
        y, jnp.asarray(end.mean), jnp.asarray(end.cov)
    )
    got = sde_mod.log_likelihood(sde, score, jnp.asarray(x), prior_log_prob=prior)
    np.testing.assert_allclose(got, exact, atol=2e-3)
    # With the default N(0, s(t_max)^2 I) prior the extra error is the prior's misfit
    # |log p_T(y) - log prior(y)| at the ODE's end point y (m(t_max) = 0.0067); bounded
    # here by its largest value on |y_i| <= 5 (the end points are N(0, I)-like draws).
    axis = np.linspace(-5, 5, 101)
    ys = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    s_max = float(sde.prior_std())
    misfit = np.max(np.abs(end.logpdf(ys) - multivariate_normal(np.zeros(2), s_max**2).logpdf(ys)))
    got_default = sde_mod.log_likelihood(sde, score, jnp.asarray(x))
    np.testing.assert_allclose(got_default, exact, atol=misfit + 2e-3)
    assert misfit < 0.1


def test_hutchinson_log_likelihood_is_unbiased():
    sde = VPSDE()
    data = gaussian_mixture(WEIGHTS, MEANS, COVS)
    score = sde_mod.exact_score(data, sde)
    point = jnp.array([[0.5, 0.5]])
    exact = float(sde_mod.log_likelihood(sde, score, point)[0])
    # 400 copies of one point, one Rademacher probe each: their mean is within 4
    # standard errors of the exact-trace value.
    copies = jnp.repeat(point, 400, axis=0)
    est = np.asarray(
        sde_mod.log_likelihood(sde, score, copies, key=jax.random.key(0), method="hutchinson")
    )
    assert est.std() > 0
    assert abs(est.mean() - exact) < 4 * est.std(ddof=1) / np.sqrt(len(est))


def test_divergence_exact_and_hutchinson():
    matrix = jnp.array([[1.0, 2.0], [3.0, -4.0]])
    fn = lambda x: matrix @ x
    assert float(sde_mod.divergence(fn, jnp.ones(2))) == pytest.approx(-3.0)
    probes = jnp.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    est = [float(sde_mod.divergence(fn, jnp.ones(2), p)) for p in probes]
    assert np.mean(est) == pytest.approx(-3.0)  # the four sign patterns average exactly


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="beta_max"):
        VPSDE(beta_min=1.0, beta_max=0.5)
    with pytest.raises(ValueError, match="sigma_max"):
        VESDE(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="t_min"):
        VPSDE(t_min=2.0)
    with pytest.raises(ValueError, match="theta"):
        OUSDE(theta=-1.0)
    sde = VPSDE()
    score = lambda x, t: -x
    with pytest.raises(ValueError, match="predictor"):
        sde_mod.predictor_corrector_sample(jax.random.key(0), sde, score, 4, (1,), predictor="heun")
    with pytest.raises(ValueError, match="num_steps"):
        sde_mod.predictor_corrector_sample(jax.random.key(0), sde, score, 4, (1,), num_steps=0)
    with pytest.raises(ValueError, match="x_init"):
        sde_mod.predictor_corrector_sample(
            jax.random.key(0), sde, score, 4, (1,), x_init=jnp.zeros((3, 1))
        )
    with pytest.raises(ValueError, match="key"):
        sde_mod.log_likelihood(sde, score, jnp.zeros((2, 1)), method="hutchinson")
    with pytest.raises(ValueError, match="noise_scale"):
        sde.reverse(score, noise_scale=-1.0)
    with pytest.raises(ValueError, match="covariances"):
        gaussian_mixture(jnp.ones(2), jnp.zeros((2, 2)), jnp.ones((3,)))
