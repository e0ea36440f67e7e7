"""Flow search: velocity/score identities, interpolant conversion, tilted SMC and RBF.

The oracle is a Gaussian mixture: its velocity on any Gaussian path, its score and the
law of ``x_t`` are closed forms (``probkit.scaling.gaussian_mixture_velocity`` follows
the formulas; ``probkit.sde.exact_score`` and ``GaussianMixture.score`` were written
independently of this package). A linear reward ``a . x`` tilts a Gaussian mixture into
another one: weights ``w_k exp(a . mu_k + a' Sigma_k a / 2)``, means ``mu_k + Sigma_k a``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probkit.scaling as sc
from probkit.sde import VPSDE, exact_score, gaussian_mixture, linear_interpolant, trig_interpolant


def _mixture():
    return gaussian_mixture(
        jnp.array([0.3, 0.7]),
        jnp.array([[-2.0, 0.0], [1.5, 1.0]]),
        jnp.array([[0.3, 0.5], [0.6, 0.2]]),
    )


POINTS = 2.0 * jax.random.normal(jax.random.key(0), (6, 2))
TIMES = (0.05, 0.3, 0.7, 0.95)


@pytest.mark.parametrize(
    "source, target",
    [
        (linear_interpolant("none"), trig_interpolant("none")),
        (trig_interpolant("none"), linear_interpolant("none")),
        (linear_interpolant("none"), sc.vp_interpolant(VPSDE())),
        (sc.vp_interpolant(VPSDE()), linear_interpolant("none")),
    ],
    ids=["linear->trig", "trig->linear", "linear->VP", "VP->linear"],
)
def test_converted_velocity_is_the_exact_velocity_of_the_new_path(source, target):
    gmm = _mixture()
    converted = sc.convert_velocity(sc.gaussian_mixture_velocity(gmm, source), source, target)
    exact = sc.gaussian_mixture_velocity(gmm, target)
    for t in TIMES:
        got = jax.vmap(converted, (0, None))(POINTS, t)
        want = jax.vmap(exact, (0, None))(POINTS, t)
        # float32 round-off of the bisection and the mixture algebra (|b| up to ~5).
        np.testing.assert_allclose(got, want, atol=5e-4, rtol=1e-4)


def test_score_from_velocity_and_velocity_from_score_match_exact_scores():
    gmm = _mixture()
    path = linear_interpolant("none")
    score = sc.score_from_velocity(sc.gaussian_mixture_velocity(gmm, path), path)
    for t in TIMES:
        marginal = sc.gaussian_mixture_marginal(gmm, path, t)
        np.testing.assert_allclose(
            jax.vmap(score, (0, None))(POINTS, t),
            jax.vmap(marginal.score)(POINTS),
            atol=1e-3,
            rtol=1e-3,
        )
    # A diffusion model's exact score (probkit.sde) as a flow velocity on the VP path.
    vp = VPSDE()
    velocity, vp_path = sc.velocity_from_score(exact_score(gmm, vp), vp)
    exact = sc.gaussian_mixture_velocity(gmm, vp_path)
    for t in TIMES:
        np.testing.assert_allclose(
            jax.vmap(velocity, (0, None))(POINTS, t),
            jax.vmap(exact, (0, None))(POINTS, t),
            atol=1e-3,
            rtol=1e-3,
        )


def test_bad_arguments_are_named():
    path = linear_interpolant("none")
    with pytest.raises(ValueError, match="epsilon"):
        sc.sde_step(jax.random.key(0), lambda x, t: x, path, jnp.ones((2, 1)), 0.0, 0.1, -1.0)
    with pytest.raises(ValueError, match="budget"):
        sc.rollover_budget_forcing(
            jax.random.key(0), lambda x, t: x, path, lambda x: x[0], 1, 3, num_steps=5
        )
    with pytest.raises(ValueError, match="num_particles"):
        sc.flow_smc(jax.random.key(0), lambda x, t: x, path, lambda x: x[0], 1, 0)


@pytest.mark.slow
def test_sde_keeps_the_ode_marginals():
    gmm = _mixture()
    path = linear_interpolant("none")
    velocity = sc.gaussian_mixture_velocity(gmm, path)
    run = jax.jit(
        lambda key: (
            sc.flow_best_of_n(
                key, velocity, path, lambda x: x[0], 2, 4000, num_steps=100, epsilon=1.0
            ).samples
        )
    )
    x = np.asarray(run(jax.random.key(1)))
    mean, cov = np.asarray(gmm.mean()), np.asarray(gmm.covariance())
    se = np.sqrt(np.diag(cov) / len(x))
    # 4 standard errors of the mean; Euler-Maruyama with h = 0.01 adds O(h) bias,
    # measured at < 0.02 on this mixture, well inside.
    assert np.all(np.abs(x.mean(0) - mean) < 4 * se + 0.02), (x.mean(0), mean)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.15)


@pytest.mark.slow
def test_smc_recovers_the_reward_tilted_mixture():
    gmm = _mixture()
    path = linear_interpolant("none")
    velocity = sc.gaussian_mixture_velocity(gmm, path)
    a = jnp.array([0.5, -0.3])
    log_w = gmm.log_weights + gmm.means @ a + 0.5 * jnp.einsum("i,kij,j->k", a, gmm.covariances, a)
    w = jax.nn.softmax(log_w)
    tilted_mean = np.asarray(w @ (gmm.means + jnp.einsum("kij,j->ki", gmm.covariances, a)))

    def estimate(key):
        r = sc.flow_smc(key, velocity, path, lambda x: x @ a, 2, 512, num_steps=100)
        return jnp.exp(r.log_weights) @ r.samples

    estimates = np.asarray(jax.jit(jax.vmap(estimate))(jax.random.split(jax.random.key(2), 20)))
    se = estimates.std(0, ddof=1) / np.sqrt(len(estimates))
    # Mean of 20 independent SMC runs within 4 standard errors of the closed form.
    assert np.all(np.abs(estimates.mean(0) - tilted_mean) < 4 * se), (estimates.mean(0), se)
    # The tilt is not negligible: the untilted mean is far outside those errors.
    assert np.any(np.abs(np.asarray(gmm.mean()) - tilted_mean) > 20 * se)


@pytest.mark.slow
def test_rbf_spends_its_budget_and_beats_ode_best_of_n():
    gmm = _mixture()
    path = linear_interpolant("none")
    velocity = sc.gaussian_mixture_velocity(gmm, path)
    centre = jnp.array([-2.0, 0.0])

    def reward(x):
        return -jnp.sum((x - centre) ** 2)

    keys = jax.random.split(jax.random.key(3), 20)
    budget, steps = 8 * 16, 16
    rbf = jax.jit(
        jax.vmap(
            lambda k: sc.rollover_budget_forcing(
                k, velocity, path, reward, 2, budget, num_steps=steps
            )
        )
    )(keys)
    bon = jax.jit(
        jax.vmap(lambda k: sc.flow_best_of_n(k, velocity, path, reward, 2, 8, num_steps=steps))
    )(keys)
    assert np.all(np.asarray(rbf.num_proposals) <= budget)
    assert np.all(np.asarray(bon.num_proposals) == budget)
    # Paired over 20 seeds (the differences are heavy-tailed: a sign test). If the two
    # were equally good, P(RBF better in >= 16 of 20) = 0.006.
    diff = np.asarray(rbf.reward) - np.asarray(bon.reward)
    assert np.sum(diff > 0) >= 16, diff
