"""Gaussian mixtures: one type for every part of probkit that needs one.

:class:`GaussianMixture` is a NamedTuple (a pytree: it passes through ``jit``,
``vmap`` and ``lax.scan``) of ``log_weights (*batch, K)``, ``means (*batch, K, d)`` and
``covariances (*batch, K, d, d)``. Most uses hold one mixture (``batch = ()``): the
exact targets of the SDE and Feynman-Kac tests, the priors and posteriors of the
Distribution Transformer. Importance sampling holds ``J`` of them at once
(``batch = (J,)``), one proposal per expectation. Densities follow NumPyro's shape
convention: ``log_prob(x)`` takes ``x`` of shape ``(..., *batch, d)`` and returns
``(..., *batch)``.

:func:`gaussian_mixture` builds one from weights and checks what it can;
:meth:`GaussianMixture.to_numpyro` hands it to a NumPyro model as a
``MixtureSameFamily``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from probkit._checks import check_int, check_key

__all__ = ["GaussianMixture", "gaussian_mixture", "log_prob_from_cholesky"]

_LOG_2PI = float(np.log(2.0 * np.pi))


def _whitening(cholesky: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``L^-1`` and ``log |L|`` for lower Cholesky factors ``L`` of shape ``(..., d, d)``.

    Both are independent of the evaluation point, so under ``vmap`` over points they
    are computed once and each point costs a matrix-vector product (a triangular solve
    batched over points is several times slower on CPU).
    """
    eye = jnp.broadcast_to(jnp.eye(cholesky.shape[-1], dtype=cholesky.dtype), cholesky.shape)
    inv_chol = jax.scipy.linalg.solve_triangular(cholesky, eye, lower=True)
    half_log_det = jnp.sum(jnp.log(jnp.diagonal(cholesky, axis1=-2, axis2=-1)), axis=-1)
    return inv_chol, half_log_det


def _joint_log_probs(log_weights, means, inv_chol, half_log_det, x):
    """``log w_k + log N(x; mu_k, Sigma_k)`` of shape ``(..., K)`` and the whitened residuals."""
    diff = x[..., None, :] - means
    white = (inv_chol @ diff[..., None])[..., 0]
    d = means.shape[-1]
    log_comp = -0.5 * jnp.sum(white**2, axis=-1) - half_log_det - 0.5 * d * _LOG_2PI
    return log_weights + log_comp, white


def log_prob_from_cholesky(
    log_weights: jax.Array, means: jax.Array, cholesky: jax.Array, x: jax.Array
) -> jax.Array:
    """Mixture log density from log weights and Cholesky factors of the covariances.

    For mixtures that come out of a network as Cholesky factors, where forming the
    covariance only to factor it again would waste work and accuracy.

    Args:
        log_weights: normalised log weights ``(*batch, K)``; ``-inf`` switches a
            component off.
        means: ``(*batch, K, d)``.
        cholesky: lower Cholesky factors ``(*batch, K, d, d)``, positive diagonals.
        x: points ``(..., *batch, d)``.

    Returns:
        The log density at each point, ``(..., *batch)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import log_prob_from_cholesky
        >>> round(float(log_prob_from_cholesky(
        ...     jnp.zeros(1), jnp.zeros((1, 1)), jnp.ones((1, 1, 1)), jnp.zeros(1))), 4)
        -0.9189
    """
    inv_chol, half_log_det = _whitening(cholesky)
    return logsumexp(_joint_log_probs(log_weights, means, inv_chol, half_log_det, x)[0], axis=-1)


class GaussianMixture(NamedTuple):
    """``sum_k exp(log_weights[k]) N(means[k], covariances[k])`` in ``d`` dimensions.

    Build one with :func:`gaussian_mixture` (which normalises the weights and checks
    shapes and values); constructing the tuple directly checks nothing, for code that
    produces mixtures valid by construction.

    Attributes:
        log_weights: ``(*batch, K)``, normalised over ``K`` (``logsumexp = 0``).
        means: ``(*batch, K, d)``.
        covariances: ``(*batch, K, d, d)``, symmetric positive definite.

    Example:
        >>> import jax.numpy as jnp
        >>> import probkit as pk
        >>> gmm = pk.gaussian_mixture(jnp.array([0.3, 0.7]), jnp.array([[-1.0], [2.0]]),
        ...                           jnp.array([[[1.0]], [[0.5]]]))
        >>> gmm.num_components, gmm.dim, round(float(gmm.mean()[0]), 2)
        (2, 1, 1.1)
    """

    log_weights: jax.Array
    means: jax.Array
    covariances: jax.Array

    @property
    def weights(self) -> jax.Array:
        """The component weights ``exp(log_weights)``, ``(*batch, K)``."""
        return jnp.exp(self.log_weights)

    @property
    def num_components(self) -> int:
        """The number of components ``K``."""
        return self.means.shape[-2]

    @property
    def dim(self) -> int:
        """The dimension ``d`` of the variable."""
        return self.means.shape[-1]

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The leading axes of a collection of mixtures (``()`` for one mixture)."""
        return tuple(self.means.shape[:-2])

    def cholesky(self) -> jax.Array:
        """Lower Cholesky factors of the covariances, ``(*batch, K, d, d)``."""
        return jnp.linalg.cholesky(self.covariances)

    def _check_points(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(
                f"x must have a last axis of size d = {self.dim} (the mixture's dimension), "
                f"got shape {x.shape}."
            )
        return x

    def log_prob(self, x: jax.Array) -> jax.Array:
        """Log density at points ``x`` of shape ``(..., *batch, d)``; returns ``(..., *batch)``.

        Example:
            >>> import jax.numpy as jnp
            >>> import probkit as pk
            >>> gmm = pk.gaussian_mixture(jnp.ones(1), jnp.zeros((1, 1)), jnp.ones((1, 1)))
            >>> round(float(gmm.log_prob(jnp.zeros(1))), 4), gmm.log_prob(jnp.zeros((5, 1))).shape
            (-0.9189, (5,))
        """
        x = self._check_points(x)
        return log_prob_from_cholesky(self.log_weights, self.means, self.cholesky(), x)

    def responsibilities(self, x: jax.Array) -> jax.Array:
        """``p(component k | x)`` at points ``(..., *batch, d)``; returns ``(..., *batch, K)``.

        Example:
            >>> import jax.numpy as jnp
            >>> import probkit as pk
            >>> gmm = pk.gaussian_mixture(jnp.ones(2), jnp.array([[-5.0], [5.0]]), 1.0)
            >>> gmm.responsibilities(jnp.array([4.0])).round(3).tolist()
            [0.0, 1.0]
        """
        x = self._check_points(x)
        inv_chol, half_log_det = _whitening(self.cholesky())
        joint, _ = _joint_log_probs(self.log_weights, self.means, inv_chol, half_log_det, x)
        return jax.nn.softmax(joint, axis=-1)

    def score(self, x: jax.Array) -> jax.Array:
        """``grad log p(x)`` at points ``(..., *batch, d)``.

        The responsibilities times ``-Sigma_k^-1 (x - mu_k)``, summed over components.

        Example:
            >>> import jax.numpy as jnp
            >>> import probkit as pk
            >>> gmm = pk.gaussian_mixture(jnp.ones(1), jnp.zeros((1, 1)), 2.0)
            >>> [round(v, 6) for v in gmm.score(jnp.array([1.0])).tolist()]  # -x / 2
            [-0.5]
        """
        x = self._check_points(x)
        inv_chol, half_log_det = _whitening(self.cholesky())
        joint, white = _joint_log_probs(self.log_weights, self.means, inv_chol, half_log_det, x)
        precision_diff = (jnp.swapaxes(inv_chol, -1, -2) @ white[..., None])[..., 0]
        resp = jax.nn.softmax(joint, axis=-1)
        return -jnp.sum(resp[..., None] * precision_diff, axis=-2)

    def sample(self, key: jax.Array, num_samples: int) -> jax.Array:
        """``num_samples`` draws of one mixture, shape ``(num_samples, d)``.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> import probkit as pk
            >>> gmm = pk.gaussian_mixture(jnp.ones(2), jnp.array([[-1.0], [1.0]]), 0.1)
            >>> gmm.sample(jax.random.key(0), 5).shape
            (5, 1)
        """
        check_key(key)
        num_samples = check_int(num_samples, "num_samples")
        if self.batch_shape:
            raise ValueError(
                f"sample draws from one mixture; this one holds a batch of shape "
                f"{self.batch_shape}: index it first (e.g. jax.tree.map(lambda a: a[j], gmm))."
            )
        key_which, key_noise = jax.random.split(key)
        # Inverse-CDF draw of the components: it compiles far faster than the Gumbel-max
        # trick of jax.random.categorical and draws the same law.
        cdf = jnp.cumsum(jax.nn.softmax(self.log_weights))
        u = jax.random.uniform(key_which, (num_samples,), cdf.dtype) * cdf[-1]
        which = jnp.sum(u[:, None] >= cdf[None, :-1], axis=1)
        noise = jax.random.normal(key_noise, (num_samples, self.dim), self.means.dtype)
        chol = self.cholesky()[which]
        return self.means[which] + (chol @ noise[..., None])[..., 0]

    def mean(self) -> jax.Array:
        """The mixture mean, ``(*batch, d)``."""
        return jnp.sum(self.weights[..., None] * self.means, axis=-2)

    def covariance(self) -> jax.Array:
        """The mixture covariance (law of total covariance), ``(*batch, d, d)``."""
        w = self.weights[..., None, None]
        centred = self.means - self.mean()[..., None, :]
        outer = centred[..., :, None] * centred[..., None, :]
        return jnp.sum(w * (self.covariances + outer), axis=-3)

    def to_numpyro(self):
        """The same law as a NumPyro ``MixtureSameFamily``, for use inside a NumPyro model.

        Example:
            >>> import jax.numpy as jnp
            >>> import probkit as pk
            >>> gmm = pk.gaussian_mixture(jnp.ones(2), jnp.array([[-1.0], [1.0]]), 0.5)
            >>> x = jnp.zeros(1)
            >>> bool(jnp.allclose(gmm.to_numpyro().log_prob(x), gmm.log_prob(x)))
            True
        """
        import numpyro.distributions as dist

        return dist.MixtureSameFamily(
            dist.Categorical(logits=self.log_weights),
            dist.MultivariateNormal(self.means, covariance_matrix=self.covariances),
        )


def gaussian_mixture(
    weights: jax.Array, means: jax.Array, covariances: jax.Array | float
) -> GaussianMixture:
    """A :class:`GaussianMixture` from weights, means and covariances, checked.

    Args:
        weights: ``(K,)`` non-negative weights, not all zero (normalised here).
        means: ``(K, d)``.
        covariances: ``(K, d, d)`` symmetric positive definite, ``(K, d)`` (diagonals),
            ``(K,)`` or a scalar (isotropic).

    Raises:
        ValueError: on a wrong shape, and (for concrete values, i.e. outside ``jit``) on
            negative or non-finite weights, non-finite means, or covariances that are
            not symmetric positive definite.

    Example:
        >>> import jax.numpy as jnp
        >>> import probkit as pk
        >>> gmm = pk.gaussian_mixture(jnp.array([1.0, 3.0]), jnp.zeros((2, 2)), 0.5)
        >>> gmm.weights.tolist(), gmm.covariances.shape
        ([0.25, 0.75], (2, 2, 2))
    """
    weights = jnp.asarray(weights)
    means = jnp.asarray(means)
    dtype = jnp.result_type(float, weights.dtype, means.dtype)
    weights, means = weights.astype(dtype), means.astype(dtype)
    if means.ndim != 2 or weights.shape != means.shape[:1]:
        raise ValueError(
            f"means must have shape (K, d) and weights (K,); got means {means.shape}, "
            f"weights {weights.shape}."
        )
    k, d = means.shape
    cov = jnp.asarray(covariances, dtype=dtype)
    if cov.ndim == 0:
        cov = jnp.broadcast_to(cov * jnp.eye(d, dtype=dtype), (k, d, d))
    elif cov.shape == (k,):
        cov = cov[:, None, None] * jnp.eye(d, dtype=dtype)
    elif cov.shape == (k, d):
        cov = jax.vmap(jnp.diag)(cov)
    elif cov.shape != (k, d, d):
        raise ValueError(
            f"covariances must be a scalar, (K,), (K, d) or (K, d, d) = {(k, d, d)}; "
            f"got {cov.shape}."
        )
    if not any(isinstance(a, jax.core.Tracer) for a in (weights, means, cov)):
        _check_values(np.asarray(weights, np.float64), np.asarray(means), np.asarray(cov))
    log_w = jnp.log(weights)
    return GaussianMixture(log_w - logsumexp(log_w), means, cov)


def _check_values(weights: np.ndarray, means: np.ndarray, cov: np.ndarray) -> None:
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not weights.sum() > 0:
        raise ValueError(
            f"weights must be finite, non-negative and not all zero, got {weights.tolist()}."
        )
    if not (np.all(np.isfinite(means)) and np.all(np.isfinite(cov))):
        raise ValueError("means and covariances must be finite (they contain NaN or inf).")
    scale = np.maximum(np.abs(cov).max(axis=(-2, -1), keepdims=True), 1e-30)
    if np.any(np.abs(cov - np.swapaxes(cov, -1, -2)) > 1e-5 * scale):
        raise ValueError(
            "covariances must be symmetric; symmetrise them, e.g. 0.5 * (c + c.swapaxes(-1, -2))."
        )
    if np.any(np.linalg.eigvalsh(cov.astype(np.float64)).min(axis=-1) <= 0):
        raise ValueError("covariances must be positive definite (all eigenvalues > 0).")
