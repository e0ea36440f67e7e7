"""Shared helpers for the Distribution Transformer tests: random linear-Gaussian queries."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from probkit.models.distribution_transformer import TASKS, gaussian_mixture, sample_prior


def random_linear_gaussian_query(key, dim: int, num_obs: int | None = None):
    """A prior, true latent and data drawn from the task's own meta-prior (unpadded)."""
    task = TASKS[f"linear_gaussian_{dim}d"]
    r = task.ranges
    keys = jax.random.split(key, 7)
    log_w, means, chol, mask, _ = sample_prior(keys[0], dim, r._replace(parametric_probability=0.0))
    k = int(mask.sum())
    cov = chol[:k] @ jnp.swapaxes(chol[:k], -1, -2)
    prior = gaussian_mixture(jnp.exp(log_w[:k]), means[:k], 0.5 * (cov + jnp.swapaxes(cov, -1, -2)))
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


def batched_linear_gaussian_queries(key, dim: int, batch: int, square: bool = True):
    """``batch`` padded queries from the task's own meta-prior, stackable under ``vmap``.

    ``K ~ U{1..4}`` (weights of padded components are 0) and ``n ~ U{1..20}`` (a mask).
    ``square``: ``H`` is ``(dim, dim)``; otherwise it has ``m ~ U{1..dim}`` rows, the rows
    past the ``m``-th set to zero (which changes no posterior: the exact posterior of the
    padded query is the unpadded one's). Returns ``(weights, means, covariances, z, y,
    data_mask, obs_matrix, noise_std, num_rows)``, each with a leading batch axis.
    """
    r = TASKS[f"linear_gaussian_{dim}d"].ranges._replace(parametric_probability=0.0)

    def one(key):
        keys = jax.random.split(key, 6)
        log_w, means, chol, _, _ = sample_prior(keys[0], dim, r)
        comp = jax.random.categorical(keys[1], log_w)
        z = means[comp] + chol[comp] @ jax.random.normal(jax.random.fold_in(keys[1], 1), (dim,))
        b = r.obs_matrix_bound
        obs_matrix = jax.random.uniform(keys[2], (dim, dim), minval=-b, maxval=b)
        noise_std = jnp.exp(
            jax.random.uniform(
                keys[3], (), minval=np.log(r.noise_std_min), maxval=np.log(r.noise_std_max)
            )
        )
        n = jax.random.randint(keys[4], (), 1, r.max_observations + 1)
        data_mask = jnp.arange(r.max_observations) < n
        num_rows = (
            jnp.asarray(dim)
            if square
            else jax.random.randint(jax.random.fold_in(key, 7), (), 1, dim + 1)
        )
        obs_matrix = jnp.where((jnp.arange(dim) < num_rows)[:, None], obs_matrix, 0.0)
        y = z @ obs_matrix.T + noise_std * jax.random.normal(keys[5], (r.max_observations, dim))
        y = jnp.where(data_mask[:, None], y, 0.0)
        cov = chol @ jnp.swapaxes(chol, -1, -2)
        return jnp.exp(log_w), means, cov, z, y, data_mask, obs_matrix, noise_std, num_rows

    return jax.vmap(one)(jax.random.split(key, batch))
