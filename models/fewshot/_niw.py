"""The normal-inverse-Wishart (NIW) family: conjugate updates, evidence, Student-t predictive.

``(mu, Sigma) ~ NIW(loc, concentration, scale, dof)`` means
``Sigma ~ InverseWishart(dof, scale)`` and ``mu | Sigma ~ Normal(loc, Sigma / concentration)``.
It is the conjugate prior of a Gaussian with unknown mean and covariance, so the
posterior after ``n`` points, the marginal likelihood of the points and the predictive
density of a new point are all closed forms (Murphy, "Conjugate Bayesian analysis of the
Gaussian distribution", 2007, section 9).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import multigammaln

__all__ = [
    "NIW",
    "check_niw",
    "niw_log_marginal_likelihood",
    "niw_posterior",
    "niw_predictive",
    "niw_predictive_log_prob",
    "sufficient_statistics",
]


class NIW(NamedTuple):
    """Parameters of a normal-inverse-Wishart distribution (a pytree; may carry batch axes).

    Attributes:
        loc: ``(..., d)`` prior mean of ``mu``.
        concentration: ``(...)`` kappa > 0, how many pseudo-points ``loc`` is worth.
        scale: ``(..., d, d)`` positive-definite scale matrix Psi of the inverse-Wishart.
        dof: ``(...)`` degrees of freedom nu > d - 1.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import NIW
        >>> prior = NIW(jnp.zeros(2), jnp.array(1.0), jnp.eye(2), jnp.array(4.0))
        >>> prior.loc.shape
        (2,)
    """

    loc: jax.Array
    concentration: jax.Array
    scale: jax.Array
    dof: jax.Array

    @property
    def dim(self) -> int:
        """The dimension d of ``mu``."""
        return int(jnp.shape(self.loc)[-1])

    def mean_covariance(self) -> jax.Array:
        """``E[Sigma] = scale / (dof - d - 1)`` (finite only for ``dof > d + 1``)."""
        return self.scale / (self.dof - self.dim - 1)[..., None, None]


def check_niw(prior: NIW, name: str = "prior") -> NIW:
    """Validate shapes and ranges of concrete NIW parameters; returns them as float arrays.

    Raises:
        ValueError: naming the offending field and the fix.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import NIW, check_niw
        >>> _ = check_niw(NIW(jnp.zeros(2), 1.0, jnp.eye(2), 4.0))
    """
    if not isinstance(prior, NIW):
        raise TypeError(f"{name} must be a NIW(loc, concentration, scale, dof), got {type(prior)}.")
    loc, kappa, scale, dof = (jnp.asarray(v, dtype=jnp.result_type(float)) for v in prior)
    if loc.ndim < 1:
        raise ValueError(f"{name}.loc must have shape (..., d), got {loc.shape}.")
    d = loc.shape[-1]
    if scale.shape[-2:] != (d, d):
        raise ValueError(f"{name}.scale must have shape (..., {d}, {d}), got {scale.shape}.")
    if not bool(jnp.all(kappa > 0)):
        raise ValueError(f"{name}.concentration must be > 0, got {kappa}.")
    if not bool(jnp.all(dof > d - 1)):
        raise ValueError(f"{name}.dof must be > d - 1 = {d - 1}, got {dof}: raise it.")
    if not bool(jnp.all(jnp.isfinite(jnp.linalg.cholesky(scale)))):
        raise ValueError(f"{name}.scale must be symmetric positive definite.")
    return NIW(loc, kappa, scale, dof)


def sufficient_statistics(
    x: jax.Array, weights: jax.Array | None = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(count, mean, scatter)`` of the rows of ``x`` (``(n, d)``), optionally weighted.

    ``scatter = sum_i w_i (x_i - mean)(x_i - mean)^T``. With zero total weight the mean is
    zero and so is the scatter (the posterior is then the prior).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import sufficient_statistics
        >>> n, mean, scatter = sufficient_statistics(jnp.array([[0.0, 0.0], [2.0, 0.0]]))
        >>> float(n), mean.tolist(), scatter.tolist()
        (2.0, [1.0, 0.0], [[2.0, 0.0], [0.0, 0.0]])
    """
    if weights is None:
        weights = jnp.ones(x.shape[:-1], x.dtype)
    n = jnp.sum(weights)
    mean = jnp.sum(weights[:, None] * x, axis=0) / jnp.where(n > 0, n, 1.0)
    centred = x - mean
    scatter = jnp.einsum("i,ij,ik->jk", weights, centred, centred)
    return n, mean, scatter


def _check_group(prior: NIW, x) -> jax.Array:
    x = jnp.asarray(x)
    d = jnp.shape(prior.loc)[-1] if jnp.ndim(prior.loc) else None
    if x.ndim != 2 or (d is not None and x.shape[-1] != d):
        raise ValueError(
            f"x must have shape (n, d) = (n, {d}) (rows of the dimension of prior.loc), got "
            f"{x.shape}; vmap over classes and episodes."
        )
    return x


def _update(prior: NIW, n, mean, scatter) -> NIW:
    kappa_n = prior.concentration + n
    loc_n = (prior.concentration * prior.loc + n * mean) / kappa_n
    diff = mean - prior.loc
    scale_n = prior.scale + scatter + (prior.concentration * n / kappa_n) * jnp.outer(diff, diff)
    return NIW(loc_n, kappa_n, scale_n, prior.dof + n)


def niw_posterior(prior: NIW, x: jax.Array, weights: jax.Array | None = None) -> NIW:
    """The NIW posterior of ``(mu, Sigma)`` after Gaussian observations ``x`` (``(n, d)``).

    One group (one class of one episode); ``jax.vmap`` it over classes and episodes.
    ``weights`` (``(n,)``, e.g. a class's one-hot column) count each row fractionally.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import NIW, niw_posterior
        >>> prior = NIW(jnp.zeros(2), jnp.array(1.0), jnp.eye(2), jnp.array(4.0))
        >>> post = niw_posterior(prior, jnp.ones((3, 2)))
        >>> post.loc.tolist(), float(post.concentration), float(post.dof)
        ([0.75, 0.75], 4.0, 7.0)
    """
    x = _check_group(prior, x)
    return _update(prior, *sufficient_statistics(x, weights))


def niw_log_marginal_likelihood(prior: NIW, x: jax.Array, weights: jax.Array | None = None):
    """``log p(x | prior)`` with ``(mu, Sigma)`` integrated out: the evidence of one group.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import NIW, niw_log_marginal_likelihood
        >>> prior = NIW(jnp.zeros(1), jnp.array(1.0), jnp.eye(1), jnp.array(3.0))
        >>> round(float(niw_log_marginal_likelihood(prior, jnp.zeros((1, 1)))), 4)
        -0.7982
    """
    n, mean, scatter = sufficient_statistics(x, weights)
    return _log_evidence_from_statistics(prior, n, mean, scatter)


def _log_evidence_from_statistics(prior: NIW, n, mean, scatter):
    post = _update(prior, n, mean, scatter)
    d = prior.loc.shape[-1]
    _, logdet_prior = jnp.linalg.slogdet(prior.scale)
    _, logdet_post = jnp.linalg.slogdet(post.scale)
    return (
        -0.5 * n * d * jnp.log(jnp.pi)
        + multigammaln(0.5 * post.dof, d)
        - multigammaln(0.5 * prior.dof, d)
        + 0.5 * prior.dof * logdet_prior
        - 0.5 * post.dof * logdet_post
        + 0.5 * d * (jnp.log(prior.concentration) - jnp.log(post.concentration))
    )


def niw_predictive(posterior: NIW):
    """The predictive density of a new point: a multivariate Student-t (NumPyro distribution).

    ``t_{nu - d + 1}(loc, scale (kappa + 1) / (kappa (nu - d + 1)))``; batch axes of
    ``posterior`` become batch axes of the distribution.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import NIW, niw_predictive
        >>> t = niw_predictive(NIW(jnp.zeros(2), jnp.array(1.0), jnp.eye(2), jnp.array(4.0)))
        >>> float(t.df), t.event_shape
        (3.0, (2,))
    """
    import numpyro.distributions as dist

    d = posterior.loc.shape[-1]
    df = posterior.dof - d + 1
    factor = (posterior.concentration + 1) / (posterior.concentration * df)
    scale_tril = jnp.linalg.cholesky(posterior.scale * factor[..., None, None])
    return dist.MultivariateStudentT(df, posterior.loc, scale_tril)


def niw_predictive_log_prob(posterior: NIW, x: jax.Array) -> jax.Array:
    """``log p(x | data)`` under :func:`niw_predictive` (``x``: ``(..., d)``).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import NIW, niw_predictive_log_prob
        >>> post = NIW(jnp.zeros(1), jnp.array(1.0), jnp.eye(1), jnp.array(3.0))
        >>> round(float(niw_predictive_log_prob(post, jnp.zeros(1))), 4)
        -0.7982
    """
    return niw_predictive(posterior).log_prob(x)
