"""Gaussian mixtures: data whose noised marginals and scores are exact.

If ``x_0 ~ sum_k w_k N(mu_k, Sigma_k)`` and ``x_t = m(t) x_0 + s(t) eps``, then
``x_t ~ sum_k w_k N(m mu_k, m^2 Sigma_k + s^2 I)``: :func:`noised` gives that mixture
and :func:`exact_score` the score ``grad log p_t`` as a function ``(x, t)``, the oracle
for testing samplers and Feynman-Kac correctors. Products of two mixtures are mixtures
again (:func:`mixture_product`), so products of experts have closed-form targets too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp
from jax.tree_util import Partial

from probkit._gaussian_mixture import GaussianMixture, gaussian_mixture, log_prob_from_cholesky
from probkit.sde._linear import LinearSDE, ScoreFn

__all__ = [
    "GaussianMixture",
    "gaussian_mixture",
    "log_prob_from_cholesky",
    "noised",
    "exact_score",
    "mixture_product",
]


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
