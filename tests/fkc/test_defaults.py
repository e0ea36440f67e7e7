"""Feynman-Kac correctors at their defaults, on 2-D Gaussian mixtures with exact answers.

What a user gets from ``fkc.product(scores, VPSDE(), event_shape=(2,))`` (or anneal,
guidance) run by ``smc.run``'s defaults (systematic resampling when ESS < N/2): every
builder option and the loop's are left at their defaults (500 steps). The 20,000
particles are split into 8 independent runs of 2,500, so the standard error of the
8-run mean is about the Monte Carlo error of one 20,000-particle run; each moment must
lie within 4 of those standard errors of the exact value (fkc_oracles.z_score), as
the bar set for the correctors: within Monte Carlo error at 20,000 particles.

What the check can see (standard errors measured at seed 0, moments x, y, x^2, y^2,
xy): product 0.015, 0.057, 0.017, 0.033, 0.054; annealing 0.10, 0.10, 0.31, 0.13,
0.13 (the mode masses fluctuate); guidance 0.048, 0.033, 0.12, 0.025, 0.049. So a
bias of 0.1 in the product's mean x (7 standard errors) fails it, while smaller
biases, or biases in the annealed mixture's mode masses, hide in Monte Carlo error at
this many particles, which is that bar. benchmarks/results/fkc.md gives the
bias against steps with more runs.
"""

import jax.numpy as jnp
import numpy as np
import pytest
from fkc_oracles import (
    mixture_log_pdf,
    mixture_moments,
    noised_mixture,
    product_of_mixtures,
    run_replicates,
    sample_moments,
    z_score,
)

import probkit.fkc as fkc
from probkit.sde import VPSDE, exact_score, gaussian_mixture

pytestmark = pytest.mark.slow

RUNS, PARTICLES = 8, 2500  # 20,000 particles in all


def grid_moments(log_q, grid):
    q = np.exp(log_q - log_q.max())
    q /= q.sum()
    x, y = grid[:, 0], grid[:, 1]
    return np.array([q @ x, q @ y, q @ x**2, q @ y**2, q @ (x * y)])


def at_defaults(fk):
    run = run_replicates(fk, num_particles=PARTICLES, num_replicates=RUNS, ess_threshold=0.5)
    return sample_moments(run.x, run.weighted_mean)


def test_product_of_two_2d_mixtures_at_defaults():
    sde = VPSDE()
    w1, m1, c1 = np.array([0.5, 0.5]), np.array([[-2.0, 0.0], [2.0, 0.0]]), np.array([0.3, 0.6])
    w2, m2 = np.array([0.3, 0.7]), np.array([[0.0, -2.0], [0.5, 2.0]])
    c2 = np.array([[0.5, 0.2], [0.3, 0.3]])
    m, s = (float(v) for v in sde.marginal(sde.t_min))
    # The product of the experts' laws at t_min is a 4-component mixture (closed form).
    target = product_of_mixtures(
        noised_mixture(w1, m1, c1[:, None, None] * np.eye(2), m, s),
        noised_mixture(w2, m2, np.stack([np.diag(c) for c in c2]), m, s),
    )
    mean, second = mixture_moments(*target)
    truth = np.array([mean[0], mean[1], second[0, 0], second[1, 1], second[0, 1]])
    scores = [
        exact_score(gaussian_mixture(w1, m1, c1), sde),
        exact_score(gaussian_mixture(w2, m2, c2), sde),
    ]
    estimates = at_defaults(fkc.product(scores, sde, event_shape=(2,)))
    assert np.all(np.abs(z_score(estimates, truth)) < 4), z_score(estimates, truth)


def test_annealing_a_2d_mixture_at_defaults():
    sde, beta = VPSDE(), 2.0
    weights = np.array([0.2, 0.5, 0.3])
    means = np.array([[-3.0, 0.0], [0.0, 2.5], [3.0, -1.0]])
    covs = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.6, 0.3], [0.3, 0.8]], [[1.5, 0.0], [0.0, 0.5]]])
    data = gaussian_mixture(jnp.asarray(weights), jnp.asarray(means), jnp.asarray(covs))
    # p_{t_min}^beta on a 0.025-spaced grid over [-9, 9]^2 (quadrature error < 1e-6).
    m, s = (float(v) for v in sde.marginal(sde.t_min))
    axis = np.arange(-9.0, 9.0, 0.025)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    noisy = m**2 * covs + s**2 * np.eye(2)
    truth = grid_moments(beta * mixture_log_pdf(weights, m * means, noisy, grid), grid)
    estimates = at_defaults(fkc.anneal(exact_score(data, sde), sde, beta, event_shape=(2,)))
    assert np.all(np.abs(z_score(estimates, truth)) < 4), z_score(estimates, truth)


def test_guidance_on_a_2d_mixture_at_defaults():
    sde, w = VPSDE(), 3.0
    means = np.array([[-1.0, 0.0], [0.5, 0.5], [2.0, -1.0]])
    covs = np.stack([0.4 * np.eye(2), 0.3 * np.eye(2), np.diag([0.5, 0.3])])
    within = np.array([1.0, 0.6, 0.4])
    uncond_w = 0.5 * within
    cond = gaussian_mixture(jnp.asarray(within[1:]), jnp.asarray(means[1:]), jnp.asarray(covs[1:]))
    uncond = gaussian_mixture(jnp.asarray(uncond_w), jnp.asarray(means), jnp.asarray(covs))
    m, s = (float(v) for v in sde.marginal(sde.t_min))
    noisy = m**2 * covs + s**2 * np.eye(2)
    axis = np.arange(-5.0, 6.0, 0.02)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    log_q = (1 - w) * mixture_log_pdf(uncond_w, m * means, noisy, grid) + w * mixture_log_pdf(
        within[1:], m * means[1:], noisy[1:], grid
    )
    truth = grid_moments(log_q, grid)
    fk = fkc.guidance(exact_score(cond, sde), exact_score(uncond, sde), sde, w, event_shape=(2,))
    estimates = at_defaults(fk)
    assert np.all(np.abs(z_score(estimates, truth)) < 4), z_score(estimates, truth)
