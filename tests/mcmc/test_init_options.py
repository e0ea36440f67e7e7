"""The initialisation option is part of what is computed, never a hidden cache key.

Regression tests: the compiled initialiser was once cached on the model (or the
log-density function) alone, so a second target of the same model with another
``init`` started where the first one did.
"""

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import probkit as pk


def normal_mean(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 100.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


Y = jnp.array([0.3, -0.2, 0.5])


def starts(target, num_chains=8):
    """Where the chains start: one MALA draw with a negligible step (noise sd 1.4e-4)."""
    result = pk.mcmc.sample(
        target,
        kernel="mala",
        num_warmup=0,
        num_samples=1,
        num_chains=num_chains,
        step_size=1e-8,
        diagnose=False,
    )
    return result.unconstrained[:, 0]


def test_numpyro_init_value_then_uniform_then_prior():
    at_50 = starts(pk.from_numpyro(normal_mean, Y, init={"mu": 50.0}))
    np.testing.assert_allclose(at_50, 50.0, atol=1e-3)
    uniform = starts(pk.from_numpyro(normal_mean, Y, init="uniform"))
    # uniform in [-2, 2] on the unconstrained space (mu is unconstrained)
    assert np.all(np.abs(uniform) <= 2.0 + 1e-3) and uniform.std() > 0.3, uniform
    prior = starts(pk.from_numpyro(normal_mean, Y, init="prior"), num_chains=32)
    # draws from N(0, 100^2): a spread far beyond [-2, 2] (P(all 32 in [-2, 2]) ~ 1e-54)
    assert np.abs(prior).max() > 10.0, prior
    again = starts(pk.from_numpyro(normal_mean, Y, init={"mu": -7.0}))
    np.testing.assert_allclose(again, -7.0, atol=1e-3)


def test_logdensity_fixed_start_then_jittered_start():
    def logdensity(x):
        return -0.5 * jnp.sum(x**2)

    fixed = starts(pk.Target.from_logdensity(logdensity, jnp.full(1, 3.0), init="fixed"))
    np.testing.assert_allclose(fixed, 3.0, atol=1e-3)
    jittered = starts(pk.Target.from_logdensity(logdensity, jnp.zeros(1)))
    # the new initial position (0) plus U(-2, 2) noise: not 3, and spread out
    assert np.all(np.abs(jittered) <= 2.0 + 1e-3) and jittered.std() > 0.3, jittered
    moved = starts(pk.Target.from_logdensity(logdensity, jnp.full(1, -5.0), init="fixed"))
    np.testing.assert_allclose(moved, -5.0, atol=1e-3)


@pytest.mark.slow
def test_meads_after_a_fixed_start_samples_the_target():
    # The case reported: a fixed start of 3.0 first, then MEADS from the default
    # jittered start of the same log density, which once started every chain at 3.0.
    def logdensity(x):
        return -0.5 * jnp.sum(x**2)

    starts(pk.Target.from_logdensity(logdensity, jnp.full(1, 3.0), init="fixed"))
    target = pk.Target.from_logdensity(logdensity, jnp.zeros(1))
    result = pk.mcmc.sample(
        target, kernel="meads", num_chains=16, num_warmup=300, num_samples=300, diagnose=False
    )
    x = result.samples["x"].reshape(-1)
    # 4800 draws of N(0, 1) with ESS well above 500: the sd is within 0.1 of 1
    # (about 3 standard errors) and the mean within 0.2 (about 4.5 MCSE).
    assert abs(x.std() - 1.0) < 0.1 and abs(x.mean()) < 0.2, (x.mean(), x.std())
