"""The default chain starts: NumPyro's ``init_to_uniform`` first try, drawn directly.

``sample`` draws every unconstrained coordinate uniformly in (-2, 2), as NumPyro's
first try does, and runs NumPyro's search (up to 100 tries) only for chains where the
log density or its gradient is not finite there.
"""

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import numpyro.infer.util
import pytest

import probkit as pk
from probkit.mcmc._sample import _start, _starts


def two_sites(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0))
    numpyro.sample("y", dist.Normal(mu, sigma), obs=y)


def cut_at_1_5(x_is_bad):
    """x ~ N(0, 1) with a term that is bad (-inf, or a NaN gradient) for x > 1.5:
    finite at the centre, bad for a uniform start with probability 1/8."""

    def model():
        x = numpyro.sample("x", dist.Normal(0.0, 1.0))
        numpyro.factor("cut", x_is_bad(x))

    return model


def minus_inf_above(x):
    return jnp.where(x > 1.5, -jnp.inf, 0.0)


def nan_gradient_above(x):
    # value 0 everywhere; for x > 1.5 the gradient is inf * 0 = NaN
    return jnp.sqrt(jnp.where(x > 1.5, 0.0 * x, 1.0))


Y = jnp.array([0.3, -0.2, 0.5, 1.1])


def test_default_target_draws_uniform_starts_in_unconstrained_space():
    target = pk.from_numpyro(two_sites, Y)
    assert target.uniform_init_radius == 2.0
    key = jax.random.PRNGKey(3)
    _, flat, lp = _starts(target, key, 64)
    flat = np.asarray(flat)
    assert flat.shape == (64, 2) and np.all(np.isfinite(np.asarray(lp)))
    assert np.all(np.abs(flat) < 2.0)
    # uniform on (-2, 2): mean 0, sd 4 / sqrt(12) = 1.155 (64 draws: se 0.14 and 0.1)
    assert np.all(np.abs(flat.mean(axis=0)) < 0.6), flat.mean(axis=0)
    assert np.all(np.abs(flat.std(axis=0) - 1.155) < 0.35), flat.std(axis=0)
    # chain c's start does not depend on how many chains run
    _, fewer, _ = _starts(target, key, 5)
    np.testing.assert_array_equal(np.asarray(fewer), flat[:5])
    # the log densities are the target's at those starts
    for c in range(3):
        z = {"mu": flat[c, 0], "sigma": flat[c, 1]}
        np.testing.assert_allclose(float(lp[c]), float(target.logdensity(z)), rtol=1e-5)


@pytest.mark.parametrize(
    "init", ["median", "prior", {"mu": 1.0}], ids=["median", "prior", "init-values"]
)
def test_other_init_options_keep_numpyros_initialisation(init):
    assert pk.from_numpyro(two_sites, Y, init=init).uniform_init_radius is None


def test_targets_without_numpyros_uniform_search_keep_their_init():
    jittered = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum(x**2), jnp.full(2, 5.0))
    assert jittered.uniform_init_radius is None

    def gibbs(y):  # a Poisson latent count stays in the position (Gibbs)
        n = numpyro.sample("n", dist.Poisson(4.0))
        numpyro.sample("y", dist.Normal(n, 1.0), obs=y)

    assert pk.from_numpyro(gibbs, 3.0).uniform_init_radius is None


@pytest.mark.parametrize(
    "x_is_bad", [minus_inf_above, nan_gradient_above], ids=["minus-inf", "nan-gradient"]
)
def test_chains_not_finite_at_their_uniform_start_get_numpyros_search(x_is_bad):
    target = pk.from_numpyro(cut_at_1_5(x_is_bad))
    assert target.uniform_init_radius == 2.0
    key = jax.random.PRNGKey(0)
    _, first, first_lp = _start(target, key, 32, True)
    first, first_lp = np.asarray(first)[:, 0], np.asarray(first_lp)
    bad = first > 1.5
    # P(no chain of 32 above 1.5) = (7/8)^32 = 1.4e-2; seed 0 has some
    assert bad.sum() >= 1, first
    np.testing.assert_array_equal(~np.isfinite(first_lp), bad)
    _, flat, lp = _starts(target, key, 32)
    flat, lp = np.asarray(flat)[:, 0], np.asarray(lp)
    assert np.all(np.isfinite(lp)) and np.all(flat <= 1.5), flat
    # the good chains keep their first try; the others moved
    np.testing.assert_array_equal(flat[~bad], first[~bad])
    assert np.all(flat[bad] != first[bad])


def test_default_run_never_builds_numpyros_initialisation(monkeypatch):
    target = pk.from_numpyro(two_sites, Y)

    def refuse(*args, **kwargs):
        raise AssertionError("initialize_model was called")

    monkeypatch.setattr(numpyro.infer.util, "initialize_model", refuse)
    result = pk.mcmc.sample(target, num_warmup=50, num_samples=20, num_chains=2, seed=11)
    assert np.all(np.isfinite(result.unconstrained))


def test_sample_recovers_a_mean_when_some_uniform_starts_are_impossible():
    """End to end at the defaults: chains that started beyond the cut are moved by the
    search, and the draws follow N(0, 1) truncated to x <= 1.5 (exact mean
    -phi(1.5) / Phi(1.5) = -0.1388)."""
    target = pk.from_numpyro(cut_at_1_5(minus_inf_above))
    result = pk.mcmc.sample(target, num_chains=32, num_warmup=300, num_samples=300, seed=0)
    x = np.asarray(result.samples["x"])
    assert np.all(x <= 1.5)
    exact = -0.12951759566589174 / 0.9331927987311419
    mcse = float(np.squeeze(az.mcse(x, method="mean")))
    assert abs(x.mean() - exact) < 4 * mcse, (x.mean(), mcse)
