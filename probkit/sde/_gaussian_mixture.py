"""Gaussian mixtures: data whose noised marginals and scores are exact.

If ``x_0 ~ sum_k w_k N(mu_k, Sigma_k)`` and ``x_t = m(t) x_0 + s(t) eps``, then
``x_t ~ sum_k w_k N(m mu_k, m^2 Sigma_k + s^2 I)``: :func:`noised` gives that mixture
and :func:`exact_score` the score ``grad log p_t`` as a function ``(x, t)``, the oracle
for testing samplers and Feynman-Kac correctors. Products of two mixtures are mixtures
again (:func:`mixture_product`), so products of experts have closed-form targets too.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from jax.tree_util import Partial

from probkit._checks import check_key
from probkit.sde._linear import LinearSDE, ScoreFn

__all__ = ["GaussianMixture", "gaussian_mixture", "noised", "exact_score", "mixture_product"]


class GaussianMixture(NamedTuple):
    """``sum_k exp(log_weights[k]) N(means[k], covariances[k])`` in ``d`` dimensions.

    Attributes:
        log_weights: ``(K,)``, normalised (``logsumexp = 0``).
        means: ``(K, d)``.
        covariances: ``(K, d, d)``, symmetric positive definite.
    """

    log_weights: jax.Array
    means: jax.Array
    covariances: jax.Array

    def _whitening(self) -> tuple[jax.Array, jax.Array]:
        # L^-1 with Sigma = L L^T, and log |L|; independent of x, so under vmap over
        # points they are computed once (batched solves would be far slower on CPU).
        chol = jnp.linalg.cholesky(self.covariances)
        eye = jnp.broadcast_to(jnp.eye(chol.shape[-1]), chol.shape)
        inv_chol = jax.scipy.linalg.solve_triangular(chol, eye, lower=True)
        half_log_det = jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
        return inv_chol, half_log_det

    def _component_log_probs(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        inv_chol, half_log_det = self._whitening()
        white = jnp.einsum("kij,kj->ki", inv_chol, x[None, :] - self.means)
        d = self.means.shape[-1]
        log_probs = -0.5 * jnp.sum(white**2, -1) - half_log_det - 0.5 * d * jnp.log(2 * jnp.pi)
        return log_probs, jnp.einsum("kji,kj->ki", inv_chol, white)

    def log_prob(self, x: jax.Array) -> jax.Array:
        """Log density at one point ``x`` of shape ``(d,)``.

        Example:
            >>> import jax.numpy as jnp
            >>> from probkit.sde import gaussian_mixture
            >>> gmm = gaussian_mixture(jnp.ones(1), jnp.zeros((1, 1)), jnp.ones((1, 1)))
            >>> round(float(gmm.log_prob(jnp.zeros(1))), 4)
            -0.9189
        """
        return logsumexp(self.log_weights + self._component_log_probs(x)[0])

    def score(self, x: jax.Array) -> jax.Array:
        """``grad log p(x)`` at one point: responsibilities times ``-Sigma_k^-1 (x - mu_k)``."""
        log_probs, precision_diff = self._component_log_probs(x)
        resp = jax.nn.softmax(self.log_weights + log_probs)
        return -(resp @ precision_diff)

    def sample(self, key: jax.Array, num_samples: int) -> jax.Array:
        """``num_samples`` draws, shape ``(num_samples, d)``.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> from probkit.sde import gaussian_mixture
            >>> gmm = gaussian_mixture(jnp.ones(2), jnp.array([[-1.0], [1.0]]), 0.1)
            >>> gmm.sample(jax.random.key(0), 5).shape
            (5, 1)
        """
        check_key(key)
        key_c, key_z = jax.random.split(key)
        comp = jax.random.categorical(key_c, self.log_weights, shape=(num_samples,))
        chol = jnp.linalg.cholesky(self.covariances)[comp]
        z = jax.random.normal(key_z, (num_samples, self.means.shape[-1]))
        return self.means[comp] + jnp.einsum("nij,nj->ni", chol, z)

    def mean(self) -> jax.Array:
        """The mixture mean, ``(d,)``."""
        return jnp.exp(self.log_weights) @ self.means

    def covariance(self) -> jax.Array:
        """The mixture covariance, ``(d, d)``."""
        w = jnp.exp(self.log_weights)
        centred = self.means - self.mean()
        between = jnp.einsum("k,ki,kj->ij", w, centred, centred)
        return jnp.einsum("k,kij->ij", w, self.covariances) + between


def gaussian_mixture(
    weights: jax.Array, means: jax.Array, covariances: jax.Array | float
) -> GaussianMixture:
    """Build a :class:`GaussianMixture` from unnormalised weights.

    Args:
        weights: ``(K,)`` nonnegative weights (normalised here).
        means: ``(K, d)``.
        covariances: ``(K, d, d)``, ``(K, d)`` (diagonal), ``(K,)`` or a scalar (isotropic).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import gaussian_mixture
        >>> gmm = gaussian_mixture(jnp.array([1.0, 3.0]), jnp.zeros((2, 2)), 0.5)
        >>> jnp.exp(gmm.log_weights).tolist(), gmm.covariances.shape
        ([0.25, 0.75], (2, 2, 2))
    """
    weights = jnp.asarray(weights, dtype=float)
    means = jnp.asarray(means, dtype=float)
    if means.ndim != 2 or weights.shape != means.shape[:1]:
        raise ValueError(
            f"means must have shape (K, d) and weights (K,); got means {means.shape}, "
            f"weights {weights.shape}."
        )
    k, d = means.shape
    if not isinstance(weights, jax.core.Tracer):
        w = np.asarray(weights)
        if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
            raise ValueError(
                f"weights must be finite, non-negative and not all zero, got {w.tolist()}."
            )
    cov = jnp.asarray(covariances, dtype=float)
    if cov.ndim == 0:
        cov = jnp.broadcast_to(cov * jnp.eye(d), (k, d, d))
    elif cov.shape == (k,):
        cov = cov[:, None, None] * jnp.eye(d)
    elif cov.shape == (k, d):
        cov = jax.vmap(jnp.diag)(cov)
    elif cov.shape != (k, d, d):
        raise ValueError(
            f"covariances must be a scalar, (K,), (K, d) or (K, d, d) = {(k, d, d)}; "
            f"got {cov.shape}."
        )
    return GaussianMixture(jnp.log(weights) - logsumexp(jnp.log(weights)), means, cov)


def noised(gmm: GaussianMixture, sde: LinearSDE, t: jax.Array) -> GaussianMixture:
    """The law of ``x_t`` when ``x_0 ~ gmm``: ``sum_k w_k N(m mu_k, m^2 Sigma_k + s^2 I)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import VESDE, gaussian_mixture, noised
        >>> gmm = gaussian_mixture(jnp.ones(1), jnp.zeros((1, 1)), 1.0)
        >>> at_one = noised(gmm, VESDE(sigma_min=1.0, sigma_max=2.0), 1.0)
        >>> round(float(at_one.covariances[0, 0, 0]), 4)  # 1 + (2^2 - 1^2)
        4.0
    """
    mean_coeff, std = sde.marginal(t)
    d = gmm.means.shape[-1]
    cov = mean_coeff**2 * gmm.covariances + std**2 * jnp.eye(d)
    return GaussianMixture(gmm.log_weights, mean_coeff * gmm.means, cov)


def exact_score(gmm: GaussianMixture, sde: LinearSDE) -> ScoreFn:
    """The score ``(x, t) -> grad log p_t(x)`` of the noised mixture (one sample ``x``).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import VPSDE, exact_score, gaussian_mixture
        >>> score = exact_score(gaussian_mixture(jnp.ones(1), jnp.zeros((1, 1)), 1.0), VPSDE())
        >>> score(jnp.array([2.0]), 0.3).tolist()  # N(0, 1) is invariant under VP
        [-2.0]
    """

    # A Partial, so that the mixture's arrays are traced arguments of a jitted sampler
    # (not constants folded into it) and samplers built on equal-shaped mixtures
    # share one compilation.
    return Partial(_noised_score, gmm, sde)


def _noised_score(gmm, sde, x, t):
    return noised(gmm, sde, t).score(x)


def mixture_product(first: GaussianMixture, second: GaussianMixture) -> GaussianMixture:
    """The normalised product ``p q / int p q`` of two mixtures (a mixture of ``K1 K2`` terms).

    ``N(x; a, A) N(x; b, B) = N(a; b, A + B) N(x; c, C)`` with ``C = (A^-1 + B^-1)^-1``,
    ``c = C (A^-1 a + B^-1 b)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import gaussian_mixture, mixture_product
        >>> p = gaussian_mixture(jnp.ones(1), jnp.array([[1.0]]), 1.0)
        >>> q = gaussian_mixture(jnp.ones(1), jnp.array([[-1.0]]), 1.0)
        >>> pq = mixture_product(p, q)
        >>> float(pq.means[0, 0]), float(pq.covariances[0, 0, 0])
        (0.0, 0.5)
    """
    prec_a = jnp.linalg.inv(first.covariances)[:, None]
    prec_b = jnp.linalg.inv(second.covariances)[None, :]
    cov = jnp.linalg.inv(prec_a + prec_b)
    weighted = (prec_a @ first.means[:, None, :, None]) + (prec_b @ second.means[None, :, :, None])
    means = (cov @ weighted)[..., 0]
    overlap = jax.vmap(
        jax.vmap(
            lambda a, ca, b, cb: GaussianMixture(jnp.zeros(1), b[None], (ca + cb)[None]).log_prob(
                a
            ),
            in_axes=(None, None, 0, 0),
        ),
        in_axes=(0, 0, None, None),
    )(first.means, first.covariances, second.means, second.covariances)
    log_w = first.log_weights[:, None] + second.log_weights[None, :] + overlap
    d = first.means.shape[-1]
    return GaussianMixture(
        (log_w - logsumexp(log_w)).reshape(-1), means.reshape(-1, d), cov.reshape(-1, d, d)
    )
