"""Guidance on a two-class 2-D mixture: the tilted target p_u^(1-w) p_c^w on a grid.

Tolerances as in test_product.py: 16 independent SMC runs, |mean - truth| < 4 standard
errors; plain classifier-free guidance (no weights) must miss by > 10 standard errors.
"""

import jax.numpy as jnp
import numpy as np
from fkc_oracles import mixture_log_pdf, nearest, run_replicates, z_score

import probkit.fkc as fkc
from probkit.sde import VPSDE, exact_score, gaussian_mixture


def test_guidance_two_class_mixture_against_grid():
    sde, w = VPSDE(), 3.0
    # Class 0: one blob; class 1: two blobs, one of them close to class 0's.
    means = np.array([[-1.0, 0.0], [0.5, 0.5], [2.0, -1.0]])
    covs = np.stack([0.4 * np.eye(2), 0.3 * np.eye(2), np.diag([0.5, 0.3])])
    class_of = np.array([0, 1, 1])
    within = np.array([1.0, 0.6, 0.4])  # component weights within each class
    uncond_w = 0.5 * within  # classes equally likely
    cond = gaussian_mixture(jnp.asarray(within[1:]), jnp.asarray(means[1:]), jnp.asarray(covs[1:]))
    uncond = gaussian_mixture(jnp.asarray(uncond_w), jnp.asarray(means), jnp.asarray(covs))

    m, s = (float(v) for v in sde.marginal(sde.t_min))
    noisy_covs = m**2 * covs + s**2 * np.eye(2)
    axis = np.arange(-5.0, 6.0, 0.02)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    log_u = mixture_log_pdf(uncond_w, m * means, noisy_covs, grid)
    log_c = mixture_log_pdf(within[1:], m * means[1:], noisy_covs[1:], grid)
    log_q = (1 - w) * log_u + w * log_c
    q = np.exp(log_q - log_q.max())
    q /= q.sum()
    truth = np.array(
        [
            q @ grid[:, 0],
            q @ grid[:, 1],
            q @ grid[:, 0] ** 2,
            q @ grid[:, 1] ** 2,
            q @ (grid[:, 0] * grid[:, 1]),
        ]
    )
    mode_mass = np.bincount(nearest(grid, m * means), weights=q, minlength=3)
    assert class_of[np.argmax(mode_mass)] == 1

    def moments(x, average):
        return np.stack(
            [
                average(x[..., 0]),
                average(x[..., 1]),
                average(x[..., 0] ** 2),
                average(x[..., 1] ** 2),
                average(x[..., 0] * x[..., 1]),
            ],
            1,
        )

    scores = (exact_score(cond, sde), exact_score(uncond, sde))
    fk = fkc.guidance(*scores, sde, w, event_shape=(2,), num_steps=400)
    run = run_replicates(fk, num_particles=2000, ess_threshold=0.5)
    assert np.all(np.abs(z_score(moments(run.x, run.weighted_mean), truth)) < 4)
    # Masses of the two class-1 modes. Class 0's cell keeps only 0.26% of the mass: with
    # 1000 particles its estimates are too skewed for a normal-theory check.
    labels = nearest(run.x, m * means)
    masses = np.stack([run.weighted_mean(labels == k) for k in (1, 2)], 1)
    assert np.all(np.abs(z_score(masses, mode_mass[1:])) < 4)

    base = run_replicates(
        fkc.guidance(*scores, sde, w, event_shape=(2,), num_steps=400, weighted=False),
        num_particles=2000,
        ess_threshold=0.5,
    )
    base_labels = nearest(base.x, m * means)
    base_masses = np.stack([base.uniform_mean(base_labels == k) for k in (1, 2)], 1)
    assert np.max(np.abs(z_score(moments(base.x, base.uniform_mean), truth))) > 10
    assert np.max(np.abs(z_score(base_masses, mode_mass[1:]))) > 10
