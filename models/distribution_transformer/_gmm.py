"""Gaussian mixtures: the distribution family a Distribution Transformer maps.

Priors and posteriors are probkit's one :class:`probkit.GaussianMixture` (``log_weights
(K,)``, ``means (K, d)``, ``covariances (K, d, d)``, a pytree), built with
:func:`probkit.gaussian_mixture`, which checks shapes and, outside ``jit``, values.
This module adds the one-component shortcut :func:`gaussian` and a Monte Carlo KL
divergence between two mixtures.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

from probkit._checks import check_int, check_key
from probkit._gaussian_mixture import GaussianMixture, gaussian_mixture

__all__ = ["GaussianMixture", "gaussian_mixture", "gaussian", "kl_divergence_mc"]


def gaussian(mean: jax.Array, covariance: jax.Array) -> GaussianMixture:
    """A single Gaussian as a one-component :class:`probkit.GaussianMixture`.

    Args:
        mean: shape ``(d,)``.
        covariance: shape ``(d, d)``.

    Returns:
        The one-component mixture.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.distribution_transformer import gaussian
        >>> gaussian(jnp.zeros(2), jnp.eye(2)).num_components
        1
    """
    mean = jnp.asarray(mean)
    covariance = jnp.asarray(covariance)
    if mean.ndim != 1:
        raise ValueError(f"mean must have shape (d,), got {mean.shape}.")
    return gaussian_mixture(jnp.ones((1,), mean.dtype), mean[None], covariance[None])


def kl_divergence_mc(
    key: jax.Array, p: GaussianMixture, q: GaussianMixture, num_samples: int
) -> tuple[jax.Array, jax.Array]:
    """Monte Carlo estimate of ``KL(p || q)`` and its standard error.

    Args:
        key: a ``jax.random`` key.
        p: the distribution the expectation is taken under.
        q: the approximation.
        num_samples: number of draws from ``p``.

    The key came third before (``kl_divergence_mc(p, q, key, n)``); that order still
    works, with a ``DeprecationWarning``.

    Returns:
        ``(estimate, standard_error)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.distribution_transformer import gaussian, kl_divergence_mc
        >>> p = gaussian(jnp.zeros(1), jnp.eye(1))
        >>> kl, se = kl_divergence_mc(jax.random.key(0), p, p, 100)
        >>> float(kl)
        0.0
    """
    if isinstance(key, GaussianMixture) and not isinstance(q, GaussianMixture):
        # The old order (p, q, key, num_samples).
        warnings.warn(
            "kl_divergence_mc takes the key first now: kl_divergence_mc(key, p, q, "
            "num_samples); the order (p, q, key, num_samples) will be removed.",
            DeprecationWarning,
            stacklevel=2,
        )
        key, p, q = q, key, p
    check_key(key)
    num_samples = check_int(num_samples, "num_samples", minimum=2)
    x = p.sample(key, num_samples)
    diff = p.log_prob(x) - q.log_prob(x)
    return jnp.mean(diff), jnp.std(diff) / jnp.sqrt(num_samples)
