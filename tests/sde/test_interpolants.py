"""Stochastic interpolants between Gaussians, where velocity, score and denoiser are exact.

For x_0 ~ N(0, 1), x_1 ~ N(mu, S), z ~ N(0, 1) independent, x_t is Gaussian with mean
beta mu and variance V = alpha^2 + beta^2 S + gamma^2, and by Gaussian conditioning

    b(x, t) = beta' mu + (alpha alpha' + beta beta' S + gamma gamma') (x - beta mu) / V,
    eta(x, t) = gamma (x - beta mu) / V,      s(x, t) = -(x - beta mu) / V.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probkit.sde as sde_mod

MU, S = 2.0, 0.25


def _exact(interpolant):
    def parts(t):
        c = interpolant.coefficients(t)
        var = c["alpha"] ** 2 + c["beta"] ** 2 * S + c["gamma"] ** 2
        cov_dot = c["alpha"] * c["alpha_dot"] + c["beta"] * c["beta_dot"] * S + c["gamma_gamma_dot"]
        return c, var, cov_dot

    def velocity(x, t):
        c, var, cov_dot = parts(t)
        return c["beta_dot"] * MU + cov_dot * (x - c["beta"] * MU) / var

    def score(x, t):
        c, var, _ = parts(t)
        return -(x - c["beta"] * MU) / var

    def denoiser(x, t):
        c, var, _ = parts(t)
        return c["gamma"] * (x - c["beta"] * MU) / var

    return velocity, score, denoiser


@pytest.mark.parametrize(
    "interpolant, epsilon",
    [
        (sde_mod.linear_interpolant("sqrt"), 0.0),
        (sde_mod.linear_interpolant("sqrt"), 1.0),
        (sde_mod.trig_interpolant("quadratic", 2.0), 0.5),
    ],
    ids=["linear-ode", "linear-sde", "trig-sde"],
)
def test_generative_sde_transports_the_base_to_the_target(interpolant, epsilon):
    velocity, score, _ = _exact(interpolant)
    n = 4000
    x0 = jax.random.normal(jax.random.key(0), (n, 1))
    x1 = np.asarray(
        sde_mod.interpolant_sample(
            jax.random.key(1), velocity, score, x0, epsilon=epsilon, num_steps=400
        )[:, 0],
        np.float64,
    )
    # i.i.d. draws: standard errors sqrt(S / n) for the mean, S sqrt(2 / n) for the
    # variance; 4 of them (the Euler bias at 400 steps is far below).
    assert abs(x1.mean() - MU) < 4 * np.sqrt(S / n)
    assert abs(x1.var() - S) < 4 * S * np.sqrt(2 / n)


@eqx.filter_jit
def _loss_gradients(loss, field, interpolant, keys, c):
    # d/dc of the loss of the field x -> field(x) + c x, in independent batches of 2000.
    def one(key):
        x0 = jax.random.normal(jax.random.fold_in(key, 0), (2000, 1))
        x1 = MU + np.sqrt(S) * jax.random.normal(jax.random.fold_in(key, 1), (2000, 1))

        def at(c):
            return loss(
                lambda x, t: field(x, t) + c * x, interpolant, jax.random.fold_in(key, 2), x0, x1
            )

        return jax.grad(at)(c)

    return jax.vmap(one)(keys)


@pytest.mark.parametrize("which", ["velocity", "denoiser"])
def test_losses_are_stationary_at_the_exact_fields(which):
    # At the minimiser the gradient along any direction (here x -> x) vanishes in
    # expectation: the mean over 20 batches is within 4 standard errors of 0. At the
    # wrong field (exact + 0.3 x) it is 0.3 E[x_t^2] > 0, many standard errors away.
    interpolant = sde_mod.linear_interpolant("sqrt")
    velocity, _, denoiser = _exact(interpolant)
    loss, field = {
        "velocity": (sde_mod.velocity_loss, velocity),
        "denoiser": (sde_mod.denoiser_loss, denoiser),
    }[which]
    keys = jax.random.split(jax.random.key(3), 20)
    grads = np.asarray(_loss_gradients(loss, field, interpolant, keys, 0.0))
    assert abs(grads.mean()) < 4 * grads.std(ddof=1) / np.sqrt(len(grads))
    grads = np.asarray(_loss_gradients(loss, field, interpolant, keys, 0.3))
    assert grads.mean() > 10 * grads.std(ddof=1) / np.sqrt(len(grads))


def test_score_from_denoiser_and_errors():
    interpolant = sde_mod.trig_interpolant("sin", 1.0)
    _, score, denoiser = _exact(interpolant)
    x = jnp.array([0.7])
    from_denoiser = sde_mod.score_from_denoiser(denoiser, interpolant)
    np.testing.assert_allclose(from_denoiser(x, 0.3), score(x, 0.3), rtol=1e-5)
    with pytest.raises(ValueError, match="gamma"):
        sde_mod.linear_interpolant("cubic")
    with pytest.raises(ValueError, match="score"):
        sde_mod.interpolant_sample(
            jax.random.key(0), lambda x, t: x, None, jnp.zeros((2, 1)), epsilon=1.0
        )
