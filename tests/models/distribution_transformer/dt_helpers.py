"""Shared helpers for the Distribution Transformer tests: random linear-Gaussian queries."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from probkit.models.distribution_transformer import GMM, TASKS, sample_prior


def random_linear_gaussian_query(key, dim: int, num_obs: int | None = None):
    """A prior, true latent and data drawn from the task's own meta-prior (unpadded)."""
    task = TASKS[f"linear_gaussian_{dim}d"]
    r = task.ranges
    keys = jax.random.split(key, 7)
    log_w, means, chol, mask, _ = sample_prior(keys[0], dim, r._replace(parametric_probability=0.0))
    k = int(mask.sum())
    cov = chol[:k] @ jnp.swapaxes(chol[:k], -1, -2)
    prior = GMM(jnp.exp(log_w[:k]), means[:k], 0.5 * (cov + jnp.swapaxes(cov, -1, -2)))
    z = prior.sample(keys[1], 1)[0]
    obs_matrix = jax.random.uniform(
        keys[2], (dim, dim), minval=-r.obs_matrix_bound, maxval=r.obs_matrix_bound
    )
    noise_std = float(
        np.exp(
            jax.random.uniform(
                keys[3], (), minval=np.log(r.noise_std_min), maxval=np.log(r.noise_std_max)
            )
        )
    )
    n = (
        int(jax.random.randint(keys[4], (), 1, r.max_observations + 1))
        if num_obs is None
        else num_obs
    )
    y = z @ obs_matrix.T + noise_std * jax.random.normal(keys[5], (n, dim))
    return prior, z, y, obs_matrix, noise_std


def batched_linear_gaussian_queries(key, dim: int, num_components: int, num_obs: int, batch: int):
    """``batch`` queries with fixed ``K`` and ``n`` (so they stack), from the task's meta-prior.

    Returns ``(prior, z, y, obs_matrix, noise_std)`` with a leading batch axis on every array
    (``prior`` is a GMM of stacked arrays, built without validation under ``vmap``).
    """
    r = TASKS[f"linear_gaussian_{dim}d"].ranges
    ranges = r._replace(max_components=num_components, parametric_probability=0.0)

    def one(key):
        keys = jax.random.split(key, 6)
        log_w, means, chol, _, _ = sample_prior(keys[0], dim, ranges)
        # sample_prior draws K <= max_components; force exactly num_components by
        # re-drawing Dirichlet weights over all slots.
        gam = jax.random.gamma(keys[5], 1.0, (num_components,)) + 1e-3
        log_w = jnp.log(gam / gam.sum())
        comp = jax.random.categorical(keys[1], log_w)
        z = means[comp] + chol[comp] @ jax.random.normal(jax.random.fold_in(keys[1], 1), (dim,))
        obs_matrix = jax.random.uniform(
            keys[2], (dim, dim), minval=-r.obs_matrix_bound, maxval=r.obs_matrix_bound
        )
        noise_std = jnp.exp(
            jax.random.uniform(
                keys[3], (), minval=np.log(r.noise_std_min), maxval=np.log(r.noise_std_max)
            )
        )
        y = z @ obs_matrix.T + noise_std * jax.random.normal(keys[4], (num_obs, dim))
        cov = chol @ jnp.swapaxes(chol, -1, -2)
        return jnp.exp(log_w), means, cov, z, y, obs_matrix, noise_std

    return jax.vmap(one)(jax.random.split(key, batch))
