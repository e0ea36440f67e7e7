"""Helpers for the Feynman-Kac corrector tests: replicates, MC-error checks, closed forms.

(A plain module with a unique name, not a conftest.py: test modules import it
directly, and a second module named ``conftest`` elsewhere in tests/ cannot shadow it.)

Monte Carlo error is measured, not guessed: every statistic is estimated in R
independent SMC runs (``jax.vmap`` over keys of :func:`probkit.smc.loop`) and its
standard error is the spread of the R estimates over sqrt(R). That spread includes the
weight degeneracy and the correlations that resampling creates, which an ESS formula
would miss.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import numpy as np
from scipy.stats import multivariate_normal

import probkit.smc as smc


class Replicates(NamedTuple):
    x: np.ndarray  # (R, N, d)
    weights: np.ndarray  # (R, N), normalised
    log_evidence: np.ndarray  # (R,)
    resampled: np.ndarray  # (R, T)
    ess: np.ndarray  # (R, T)

    def weighted_mean(self, values):
        return np.sum(self.weights * values, axis=1)

    def uniform_mean(self, values):
        return np.mean(values, axis=1)


@eqx.filter_jit
def _replicated_loop(fk, keys, num_particles, ess_threshold):
    # fk is an argument (its arrays traced, its functions static), so a corrector and
    # its unweighted baseline, or two noise scales, share one compilation.
    def one(key):
        return smc.loop(
            key,
            fk,
            num_particles=num_particles,
            resampling_fn=smc.systematic,
            ess_threshold=ess_threshold,
        )

    return jax.vmap(one)(keys)


def run_replicates(fk, *, num_particles, num_replicates=16, ess_threshold=0.0, seed=0):
    keys = jax.random.split(jax.random.key(seed), num_replicates)
    res = _replicated_loop(fk, keys, num_particles, ess_threshold)
    log_w = np.asarray(res.log_weights, np.float64)
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return Replicates(
        x=np.asarray(res.particles.x, np.float64),
        weights=w,
        log_evidence=np.asarray(res.log_evidence, np.float64),
        resampled=np.asarray(res.resampled),
        ess=np.asarray(res.ess),
    )


def z_score(estimates, truth):
    """(mean of R replicate estimates - truth) / its standard error."""
    estimates = np.asarray(estimates, np.float64)
    se = estimates.std(axis=0, ddof=1) / np.sqrt(estimates.shape[0])
    return (estimates.mean(axis=0) - truth) / se


# Closed forms in NumPy (float64), written independently of probkit.sde.


def noised_mixture(weights, means, covs, mean_coeff, std):
    """Law of m x_0 + s eps for x_0 ~ sum_k w_k N(mu_k, Sigma_k)."""
    d = means.shape[1]
    return weights, mean_coeff * means, mean_coeff**2 * covs + std**2 * np.eye(d)


def product_of_mixtures(first, second):
    """Normalised product of two mixtures: N(a,A) N(b,B) = N(a; b, A+B) N(c, C)."""
    (wa, ma, ca), (wb, mb, cb) = first, second
    weights, means, covs = [], [], []
    for i in range(len(wa)):
        for j in range(len(wb)):
            cov = np.linalg.inv(np.linalg.inv(ca[i]) + np.linalg.inv(cb[j]))
            means.append(cov @ (np.linalg.solve(ca[i], ma[i]) + np.linalg.solve(cb[j], mb[j])))
            covs.append(cov)
            weights.append(wa[i] * wb[j] * multivariate_normal.pdf(ma[i], mb[j], ca[i] + cb[j]))
    weights = np.array(weights)
    return weights / weights.sum(), np.array(means), np.array(covs)


def mixture_moments(weights, means, covs):
    """(mean, E[x x^T]) of a mixture."""
    second = np.einsum("k,kij->ij", weights, covs + np.einsum("ki,kj->kij", means, means))
    return weights @ means, second


def mixture_draws(weights, means, covs, n, seed=0):
    rng = np.random.default_rng(seed)
    comp = rng.choice(len(weights), size=n, p=weights)
    z = rng.standard_normal((n, means.shape[1]))
    return means[comp] + np.einsum("nij,nj->ni", np.linalg.cholesky(covs)[comp], z)


def mixture_log_pdf(weights, means, covs, x):
    """log density on points x of shape (..., d)."""
    comps = [
        np.log(w) + multivariate_normal.logpdf(x, m, c)
        for w, m, c in zip(weights, means, covs, strict=True)
    ]
    return np.logaddexp.reduce(np.stack(comps), axis=0)


def nearest(x, centres):
    return np.argmin(np.sum((x[..., None, :] - centres) ** 2, axis=-1), axis=-1)


def sample_moments(x, average):
    """(mean x, mean y, E[x^2], E[y^2], E[xy]) of 2-D particles ``x`` (R, N, 2) per
    replicate, with ``average`` a Replicates' ``weighted_mean`` or ``uniform_mean``."""
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
