"""Propagators: each gives a NumPyro prior usable through probkit.from_numpyro."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import probkit.models.continual as cl
import pytest

import probkit as pk


def _model(prior):
    numpyro.sample("theta", prior)


@pytest.mark.parametrize(
    "method",
    [
        "gaussian",
        "diagonal",
        pytest.param("mixture", marks=pytest.mark.slow),  # ott-jax EM compiles for ~20 s
        pytest.param("flow", marks=pytest.mark.slow),  # flowjax training compiles for ~20 s
    ],
)
def test_priors_are_usable_inside_from_numpyro(method):
    draws = jax.random.normal(jax.random.key(0), (400, 2)) * jnp.array([1.0, 0.3]) + 2.0
    options = {"max_epochs": 3} if method == "flow" else {}
    prior = cl.propagate(draws, method, key=jax.random.key(1), **options)
    target = pk.from_numpyro(_model, prior)
    z = jnp.array([1.5, 2.2])
    # no constraint on a real vector: the target's log density is the prior's
    np.testing.assert_allclose(target.logdensity({"theta": z}), prior.log_prob(z), rtol=1e-5)


@pytest.mark.slow
def test_mixture_keeps_two_modes_a_gaussian_merges():
    k1, k2 = jax.random.split(jax.random.key(2))
    x = jnp.concatenate(
        [jax.random.normal(k1, (300, 2)) * 0.3 - 2, jax.random.normal(k2, (300, 2)) * 0.3 + 2]
    )
    mixture = cl.fit_gaussian_mixture(jax.random.key(3), x, 2)
    gaussian = cl.fit_gaussian(x)
    # held-out draws of the same bimodal law: the mixture's density is far higher
    held = jnp.concatenate(
        [jax.random.normal(k1, (100, 2)) * 0.3 - 2, jax.random.normal(k2, (100, 2)) * 0.3 + 2]
    )
    assert float(mixture.log_prob(held).mean()) > float(gaussian.log_prob(held).mean()) + 1.0
