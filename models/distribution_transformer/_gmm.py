"""Gaussian mixture models: the distribution family a Distribution Transformer maps.

:class:`GMM` holds ``weights (K,)``, ``means (K, d)`` and ``covariances (K, d, d)``; it is
an equinox module (a pytree), so it passes through ``jit`` and ``vmap``. Shapes are
checked on construction; values (weights on the simplex, symmetric positive-definite
covariances) are checked too whenever they are concrete, i.e. outside ``jit``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_int, check_key

__all__ = ["GMM", "gaussian", "gmm_log_prob_cholesky", "kl_divergence_mc"]

_LOG_2PI = float(np.log(2.0 * np.pi))


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


class GMM(eqx.Module):
    """A Gaussian mixture ``sum_k weights[k] N(means[k], covariances[k])``.

    Attributes:
        weights: mixture weights, shape ``(K,)``, non-negative and summing to one.
        means: component means, shape ``(K, d)``.
        covariances: symmetric positive-definite covariances, shape ``(K, d, d)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.distribution_transformer import GMM
        >>> prior = GMM(jnp.array([0.3, 0.7]), jnp.array([[-1.0], [2.0]]),
        ...             jnp.array([[[1.0]], [[0.5]]]))
        >>> prior.num_components, prior.dim
        (2, 1)
    """

    weights: jax.Array = eqx.field(converter=jnp.asarray)
    means: jax.Array = eqx.field(converter=jnp.asarray)
    covariances: jax.Array = eqx.field(converter=jnp.asarray)

    def __check_init__(self):
        w, m, c = self.weights, self.means, self.covariances
        if w.ndim != 1 or w.shape[0] < 1:
            raise ValueError(f"weights must have shape (K,) with K >= 1, got {w.shape}.")
        k = w.shape[0]
        if m.ndim != 2 or m.shape[0] != k:
            raise ValueError(f"means must have shape (K, d) = ({k}, d), got {m.shape}.")
        d = m.shape[1]
        if c.shape != (k, d, d):
            raise ValueError(
                f"covariances must have shape (K, d, d) = ({k}, {d}, {d}), got {c.shape}."
            )
        if not all(_is_concrete(x) for x in (w, m, c)):
            return
        w_np, m_np, c_np = (np.asarray(x, np.float64) for x in (w, m, c))
        if not (
            np.all(np.isfinite(w_np)) and np.all(np.isfinite(m_np)) and np.all(np.isfinite(c_np))
        ):
            raise ValueError("GMM parameters contain NaN or infinite values.")
        if np.any(w_np < 0) or abs(w_np.sum() - 1.0) > 1e-4:
            raise ValueError(
                f"weights must be non-negative and sum to 1 (got sum {w_np.sum():.6g}); "
                "normalise them, e.g. weights / weights.sum()."
            )
        scale = np.maximum(np.abs(c_np).max(axis=(-2, -1), keepdims=True), 1e-30)
        if np.any(np.abs(c_np - np.swapaxes(c_np, -1, -2)) > 1e-5 * scale):
            raise ValueError("covariances must be symmetric.")
        if np.any(np.linalg.eigvalsh(c_np).min(axis=-1) <= 0):
            raise ValueError("covariances must be positive definite (all eigenvalues > 0).")

    @property
    def num_components(self) -> int:
        """Number of mixture components ``K``."""
        return self.weights.shape[0]

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the variable."""
        return self.means.shape[1]

    def cholesky(self) -> jax.Array:
        """Lower Cholesky factors of the covariances, shape ``(K, d, d)``."""
        return jnp.linalg.cholesky(self.covariances)

    def log_prob(self, x: jax.Array) -> jax.Array:
        """Log density at ``x`` of shape ``(..., d)``; returns shape ``(...)``.

        Args:
            x: points, last axis of size ``d``.

        Returns:
            The mixture log density at each point.

        Raises:
            ValueError: if the last axis of ``x`` is not ``d``.

        Example:
            >>> import jax.numpy as jnp
            >>> from probkit.models.distribution_transformer import gaussian
            >>> round(float(gaussian(jnp.zeros(1), jnp.eye(1)).log_prob(jnp.zeros(1))), 4)
            -0.9189
        """
        x = jnp.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have last axis of size d={self.dim}, got shape {x.shape}.")
        return gmm_log_prob_cholesky(jnp.log(self.weights), self.means, self.cholesky(), x)

    def sample(self, key: jax.Array, num_samples: int) -> jax.Array:
        """Draw ``num_samples`` points, shape ``(num_samples, d)``.

        Args:
            key: a ``jax.random`` key.
            num_samples: how many points.

        Returns:
            The samples.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> from probkit.models.distribution_transformer import gaussian
            >>> gaussian(jnp.zeros(2), jnp.eye(2)).sample(jax.random.key(0), 5).shape
            (5, 2)
        """
        check_key(key)
        num_samples = check_int(num_samples, "num_samples")
        key_comp, key_eps = jax.random.split(key)
        comp = jax.random.categorical(key_comp, jnp.log(self.weights), shape=(num_samples,))
        eps = jax.random.normal(key_eps, (num_samples, self.dim), self.means.dtype)
        chol = self.cholesky()[comp]
        return self.means[comp] + jnp.einsum("nij,nj->ni", chol, eps)

    def mean(self) -> jax.Array:
        """Mixture mean, shape ``(d,)``."""
        return self.weights @ self.means

    def covariance(self) -> jax.Array:
        """Mixture covariance (law of total covariance), shape ``(d, d)``."""
        centred = self.means - self.mean()
        outer = jnp.einsum("ki,kj->kij", centred, centred)
        return jnp.einsum("k,kij->ij", self.weights, self.covariances + outer)


def _gmm_unchecked(weights: jax.Array, means: jax.Array, covariances: jax.Array) -> GMM:
    """A :class:`GMM` from arrays already known to be valid (skips conversion and checks).

    For outputs that are valid by construction (normalised weights, ``L L^T`` covariances)
    on the fast query path, where the checks would cost more than the query.
    """
    gmm = object.__new__(GMM)
    object.__setattr__(gmm, "weights", weights)
    object.__setattr__(gmm, "means", means)
    object.__setattr__(gmm, "covariances", covariances)
    return gmm


def gaussian(mean: jax.Array, covariance: jax.Array) -> GMM:
    """A single Gaussian as a one-component :class:`GMM`.

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
    return GMM(jnp.ones((1,), mean.dtype), mean[None], covariance[None])


def gmm_log_prob_cholesky(
    log_weights: jax.Array, means: jax.Array, cholesky: jax.Array, x: jax.Array
) -> jax.Array:
    """Mixture log density from log-weights and Cholesky factors (entries ``-inf`` allowed).

    Args:
        log_weights: normalised log weights ``(K,)``; ``-inf`` switches a component off.
        means: ``(K, d)``.
        cholesky: lower Cholesky factors ``(K, d, d)`` with positive diagonals.
        x: points ``(..., d)``.

    Returns:
        Log density, shape ``(...)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.distribution_transformer._gmm import gmm_log_prob_cholesky
        >>> float(gmm_log_prob_cholesky(jnp.zeros(1), jnp.zeros((1, 1)), jnp.ones((1, 1, 1)),
        ...                             jnp.zeros(1)))  # doctest: +ELLIPSIS
        -0.918938...
    """
    d = means.shape[-1]
    diff = x[..., None, :] - means  # (..., K, d)
    chol = jnp.broadcast_to(cholesky, diff.shape + (d,))
    white = jax.scipy.linalg.solve_triangular(chol, diff[..., None], lower=True)[..., 0]
    log_det = jnp.sum(jnp.log(jnp.diagonal(cholesky, axis1=-2, axis2=-1)), axis=-1)
    log_comp = -0.5 * jnp.sum(white**2, axis=-1) - log_det - 0.5 * d * _LOG_2PI
    return jax.nn.logsumexp(log_weights + log_comp, axis=-1)


def kl_divergence_mc(
    p: GMM, q: GMM, key: jax.Array, num_samples: int
) -> tuple[jax.Array, jax.Array]:
    """Monte Carlo estimate of ``KL(p || q)`` and its standard error.

    Args:
        p: the distribution the expectation is taken under.
        q: the approximation.
        key: a ``jax.random`` key.
        num_samples: number of draws from ``p``.

    Returns:
        ``(estimate, standard_error)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.distribution_transformer import gaussian, kl_divergence_mc
        >>> p = gaussian(jnp.zeros(1), jnp.eye(1))
        >>> kl, se = kl_divergence_mc(p, p, jax.random.key(0), 100)
        >>> float(kl)
        0.0
    """
    check_key(key)
    num_samples = check_int(num_samples, "num_samples", minimum=2)
    x = p.sample(key, num_samples)
    diff = p.log_prob(x) - q.log_prob(x)
    return jnp.mean(diff), jnp.std(diff) / jnp.sqrt(num_samples)
