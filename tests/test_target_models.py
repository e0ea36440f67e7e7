"""NumPyro models as users write them: loops, deterministic-only and subsampled models."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import probkit as pk

Y = jnp.array([0.5, 1.5, 0.9])


def fixed_point_model(y):
    """The mean is the fixed point of x -> (x + mu) / 2, found by a while loop: x = mu."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))

    def unconverged(carry):
        return jnp.abs(carry[0] - carry[1]) > 1e-7

    def halve(carry):
        return carry[1], (carry[1] + mu) / 2

    x = jax.lax.while_loop(unconverged, halve, (jnp.array(1e3), jnp.array(0.0)))[1]
    numpyro.sample("y", dist.Normal(x, 1.0), obs=y)


def test_while_loop_model_gradient_kernels_name_the_option():
    target = pk.from_numpyro(fixed_point_model, Y)  # no gradient taken at set-up
    assert not target.reverse_mode_gradients
    with pytest.raises(ValueError, match="forward_mode_differentiation=True"):
        pk.mcmc.sample(target, kernel="nuts", num_warmup=10, num_samples=10)


@pytest.mark.slow
def test_while_loop_model_samples_with_rwm_without_gradients():
    target = pk.from_numpyro(fixed_point_model, Y)
    result = pk.mcmc.sample(target, kernel="rwm", num_chains=2, num_samples=2000, seed=0)
    precision = 1 / 100 + Y.size
    mean, sd = float(jnp.sum(Y)) / precision, precision**-0.5
    draws = np.asarray(result.samples["mu"])
    # random-walk draws are correlated: ESS well below 4000; 5 standard errors of ~200
    assert abs(draws.mean() - mean) < 5 * sd / np.sqrt(200)


def test_forward_mode_gradient_equals_the_closed_form():
    target = pk.from_numpyro(fixed_point_model, Y, forward_mode_differentiation=True)
    mu = 0.3
    value, grad = jax.value_and_grad(target.logdensity)({"mu": jnp.array(mu)})
    # log N(mu; 0, 10) + sum log N(y; mu, 1), and its derivative
    expected = -0.5 * (mu / 10) ** 2 - 0.5 * float(jnp.sum((Y - mu) ** 2))
    expected += -np.log(10 * np.sqrt(2 * np.pi)) - 3 * np.log(np.sqrt(2 * np.pi))
    np.testing.assert_allclose(float(value), expected, rtol=1e-5)
    np.testing.assert_allclose(float(grad["mu"]), -mu / 100 + float(jnp.sum(Y - mu)), rtol=1e-4)


@pytest.mark.slow
def test_forward_mode_nuts_matches_the_conjugate_posterior():
    target = pk.from_numpyro(fixed_point_model, Y, forward_mode_differentiation=True)
    result = pk.mcmc.sample(target, num_chains=2, num_warmup=300, num_samples=500, seed=0)
    precision = 1 / 100 + Y.size
    mean, sd = float(jnp.sum(Y)) / precision, precision**-0.5
    draws = np.asarray(result.samples["mu"])
    # 1000 draws of NUTS on a 1-D Gaussian: ESS ~ 1000; 5 standard errors
    assert abs(draws.mean() - mean) < 5 * sd / np.sqrt(500)
    assert abs(draws.std() - sd) < 0.15 * sd


def test_deterministic_only_model_says_so():
    def model(y=None):
        numpyro.deterministic("offset", jnp.ones(2))
        numpyro.sample("y", dist.Normal(0.0, 1.0), obs=y)

    with pytest.raises(ValueError, match=r"only deterministic site\(s\) \['offset'\]"):
        pk.from_numpyro(model, y=jnp.array(0.1))


def test_subsampling_plate_is_refused_with_the_alternative():
    def model(y):
        mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        with numpyro.plate("data", y.shape[0], subsample_size=10) as idx:
            numpyro.sample("y", dist.Normal(mu, 1.0), obs=y[idx])

    with pytest.raises(ValueError, match=r"plate\(s\) \['data'\] with subsample_size"):
        pk.from_numpyro(model, jnp.ones(100))
