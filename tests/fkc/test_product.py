"""Products of experts: FKC against the closed-form product, and the biased drift-only sampler.

Tolerances: every statistic is estimated in R = 16 independent SMC runs; the check is
|mean - truth| < 4 standard errors of that mean (fkc_oracles.z_score). The unweighted
sampler (same SDE, same steps, no weights) must miss by more than 10 of its own
standard errors, so the checks can fail.
"""

import jax.numpy as jnp
import numpy as np
from fkc_oracles import (
    mixture_draws,
    mixture_moments,
    nearest,
    noised_mixture,
    product_of_mixtures,
    run_replicates,
    z_score,
)
from scipy.stats import norm

import probkit.fkc as fkc
from probkit.sde import VESDE, VPSDE, exact_score, gaussian_mixture


def test_product_of_two_gaussians_and_its_evidence():
    sde = VPSDE()
    mu1, var1, mu2, var2 = 1.0, 0.25, -0.5, 1.0
    p1 = gaussian_mixture(jnp.ones(1), jnp.array([[mu1]]), var1)
    p2 = gaussian_mixture(jnp.ones(1), jnp.array([[mu2]]), var2)
    scores = [exact_score(p1, sde), exact_score(p2, sde)]
    # The target is the product of the two experts' laws at t_min (closed form).
    m, s = (float(v) for v in sde.marginal(sde.t_min))
    v1, v2 = m**2 * var1 + s**2, m**2 * var2 + s**2
    var = 1.0 / (1.0 / v1 + 1.0 / v2)
    mean = var * (m * mu1 / v1 + m * mu2 / v2)
    fk = fkc.product(scores, sde, event_shape=(1,), num_steps=1600)
    run = run_replicates(fk, num_particles=1000, ess_threshold=0.5)
    x = run.x[..., 0]
    assert np.all(np.abs(z_score(run.weighted_mean(x), mean)) < 4)
    assert np.all(np.abs(z_score(run.weighted_mean(x**2), var + mean**2)) < 4)

    # Evidence: E[Z_hat] = int p1 p2 (t_min) / int prior^2, the prior product being the
    # initial law. Checked on the natural scale over the 16 runs (4 standard errors);
    # without the (N - 1) div f term of the weights it would be off by a factor e^5.
    s_max = float(sde.prior_std())
    log_ratio = norm.logpdf(m * mu1, m * mu2, np.sqrt(v1 + v2)) + 0.5 * np.log(4 * np.pi * s_max**2)
    ratio = np.exp(run.log_evidence - log_ratio)
    assert abs(ratio.mean() - 1.0) < 4 * ratio.std(ddof=1) / np.sqrt(len(ratio))

    base_fk = fkc.product(scores, sde, event_shape=(1,), num_steps=1600, weighted=False)
    base = run_replicates(base_fk, num_particles=1000, ess_threshold=0.5)
    assert not base.resampled.any()
    assert abs(z_score(base.uniform_mean(base.x[..., 0] ** 2), var + mean**2)) > 10


def _moments(run, average):
    x, y = run.x[..., 0], run.x[..., 1]
    return np.stack([average(x), average(y), average(x * x), average(y * y), average(x * y)], 1)


def test_product_of_two_2d_mixtures_with_scheduled_resampling():
    sde = VESDE(sigma_min=0.01, sigma_max=20.0)
    w1, m1, c1 = np.array([0.5, 0.5]), np.array([[-2.0, 0.0], [2.0, 0.0]]), np.array([0.3, 0.6])
    w2, m2 = np.array([0.3, 0.7]), np.array([[0.0, -2.0], [0.5, 2.0]])
    c2 = np.array([[0.5, 0.2], [0.3, 0.3]])
    p1, p2 = gaussian_mixture(w1, m1, c1), gaussian_mixture(w2, m2, c2)
    m, s = (float(v) for v in sde.marginal(sde.t_min))
    target = product_of_mixtures(
        noised_mixture(w1, m1, c1[:, None, None] * np.eye(2), m, s),
        noised_mixture(w2, m2, np.stack([np.diag(c) for c in c2]), m, s),
    )
    mean, second = mixture_moments(*target)
    truth = np.array([mean[0], mean[1], second[0, 0], second[1, 1], second[0, 1]])
    # Mass of each mode's nearest-mean cell, from 4e5 exact draws of the product
    # (their standard error, < 7e-4, is negligible next to the runs').
    centres = target[1]
    mode_mass = np.bincount(nearest(mixture_draws(*target, 400_000), centres), minlength=4)
    mode_mass = mode_mass / mode_mass.sum()

    scores = [exact_score(p1, sde), exact_score(p2, sde)]
    steps, every, start = 400, 2, 100
    options = dict(event_shape=(2,), num_steps=steps, resample_every=every, resample_from=start)
    run = run_replicates(fkc.product(scores, sde, **options), num_particles=2000, ess_threshold=0.5)
    # Resampling at step t uses the weights handed over at step t - 1: only on schedule.
    release = fkc.release_schedule(steps, every, start)
    assert run.resampled.any()
    assert not (run.resampled[:, 1:] & ~release[None, :-1]).any()
    assert np.all(np.abs(z_score(_moments(run, run.weighted_mean), truth)) < 4)
    labels = nearest(run.x, centres)
    masses = np.stack([run.weighted_mean(labels == k) for k in range(4)], 1)
    assert np.all(np.abs(z_score(masses, mode_mass)) < 4)

    base_fk = fkc.product(scores, sde, weighted=False, **options)
    base = run_replicates(base_fk, num_particles=2000, ess_threshold=0.5)
    base_labels = nearest(base.x, centres)
    base_masses = np.stack([base.uniform_mean(base_labels == k) for k in range(4)], 1)
    assert np.max(np.abs(z_score(base_masses, mode_mass))) > 10
    # FKC's largest mode-mass error is at least 5x below the drift-only sampler's.
    fkc_error = np.max(np.abs(masses.mean(0) - mode_mass))
    base_error = np.max(np.abs(base_masses.mean(0) - mode_mass))
    assert 5 * fkc_error < base_error
