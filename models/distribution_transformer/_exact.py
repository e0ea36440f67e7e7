"""Exact posteriors of linear-Gaussian observations under a GMM prior (the oracle).

For ``y_i = H z + noise_std * eps_i`` (``eps_i ~ N(0, I)``, ``i = 1..n``) and a prior
``sum_k w_k N(mu_k, Sigma_k)`` the posterior is the GMM ``sum_k w'_k N(m_k, S_k)`` with

    S_k^{-1} = Sigma_k^{-1} + n H^T H / noise_std^2,
    m_k = S_k (Sigma_k^{-1} mu_k + H^T sum_i y_i / noise_std^2),
    w'_k ∝ w_k p(y_{1:n} | k),

and the component evidence follows from Bayes' rule at ``z = m_k``:
``log p(y | k) = log p(y | m_k) + log N(m_k; mu_k, Sigma_k) - log N(m_k; m_k, S_k)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from probkit._gaussian_mixture import GaussianMixture

__all__ = ["linear_gaussian_posterior", "linear_gaussian_log_evidence", "check_linear_gaussian"]

_LOG_2PI = float(np.log(2.0 * np.pi))


def check_linear_gaussian(
    prior: GaussianMixture,
    observations: jax.Array,
    obs_matrix: jax.Array,
    noise_std: float | jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Validate and convert the arguments of a linear-Gaussian query.

    Args:
        prior: the GMM prior over ``z`` (dimension ``d``).
        observations: ``(n, m)`` observations (a ``(n,)`` array is read as ``m = 1``).
        obs_matrix: ``(m, d)`` observation matrix ``H``.
        noise_std: positive scalar noise standard deviation.

    Returns:
        ``(observations (n, m), obs_matrix (m, d), noise_std ())`` as arrays.

    Raises:
        ValueError: on a shape mismatch or a non-positive ``noise_std``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.distribution_transformer import gaussian
        >>> from probkit.models.distribution_transformer._exact import check_linear_gaussian
        >>> y, h, s = check_linear_gaussian(gaussian(jnp.zeros(1), jnp.eye(1)),
        ...                                 jnp.ones(3), jnp.eye(1), 0.5)
        >>> y.shape
        (3, 1)
    """
    observations = jnp.asarray(observations)
    obs_matrix = jnp.asarray(obs_matrix, prior.means.dtype)
    if observations.ndim == 1:
        observations = observations[:, None]
    if observations.ndim != 2:
        raise ValueError(f"observations must have shape (n, m), got {observations.shape}.")
    if obs_matrix.ndim != 2 or obs_matrix.shape != (observations.shape[1], prior.dim):
        raise ValueError(
            f"obs_matrix must have shape (m, d) = ({observations.shape[1]}, {prior.dim}) for "
            f"observations of shape {observations.shape} and a prior of dimension {prior.dim}; "
            f"got {obs_matrix.shape}."
        )
    noise_std = jnp.asarray(noise_std, prior.means.dtype)
    if noise_std.ndim != 0:
        raise ValueError(f"noise_std must be a scalar, got shape {noise_std.shape}.")
    if not isinstance(noise_std, jax.core.Tracer) and not float(noise_std) > 0:
        raise ValueError(f"noise_std must be positive, got {float(noise_std)}.")
    return observations.astype(prior.means.dtype), obs_matrix, noise_std


def _components(prior, observations, obs_matrix, noise_std, observation_mask):
    if observation_mask is None:
        n = observations.shape[0]
    else:
        observation_mask = jnp.asarray(observation_mask, bool)
        if observation_mask.shape != observations.shape[:1]:
            raise ValueError(
                f"observation_mask must have shape ({observations.shape[0]},), got "
                f"{observation_mask.shape}."
            )
        observations = jnp.where(observation_mask[:, None], observations, 0.0)
        n = jnp.sum(observation_mask).astype(observations.dtype)
    d = prior.dim
    prec_prior = jnp.linalg.inv(prior.covariances)
    info = obs_matrix.T @ obs_matrix / noise_std**2
    prec_post = prec_prior + n * info
    chol_prec = jnp.linalg.cholesky(prec_post)
    rhs = jnp.einsum("kij,kj->ki", prec_prior, prior.means) + (
        obs_matrix.T @ observations.sum(axis=0) / noise_std**2
    )
    mean_post = jax.vmap(lambda c, b: jax.scipy.linalg.cho_solve((c, True), b))(chol_prec, rhs)
    cov_post = jax.vmap(lambda c: jax.scipy.linalg.cho_solve((c, True), jnp.eye(d, dtype=c.dtype)))(
        chol_prec
    )
    cov_post = 0.5 * (cov_post + jnp.swapaxes(cov_post, -1, -2))

    # log p(y | z = m_k)
    resid = observations[None, :, :] - jnp.einsum("ij,kj->ki", obs_matrix, mean_post)[:, None, :]
    if observation_mask is not None:
        resid = jnp.where(observation_mask[None, :, None], resid, 0.0)
    m = observations.shape[1]
    log_lik = -0.5 * jnp.sum(resid**2, axis=(1, 2)) / noise_std**2 - n * m * (
        jnp.log(noise_std) + 0.5 * _LOG_2PI
    )
    # log N(m_k; mu_k, Sigma_k)
    chol_prior = jnp.linalg.cholesky(prior.covariances)
    diff = mean_post - prior.means
    white = jax.vmap(lambda c, v: jax.scipy.linalg.solve_triangular(c, v, lower=True))(
        chol_prior, diff
    )
    log_prior = (
        -0.5 * jnp.sum(white**2, axis=-1)
        - jnp.sum(jnp.log(jnp.diagonal(chol_prior, axis1=-2, axis2=-1)), axis=-1)
        - 0.5 * d * _LOG_2PI
    )
    # log N(m_k; m_k, S_k) = -d/2 log 2pi + 1/2 log det S_k^{-1}
    log_post = (
        jnp.sum(jnp.log(jnp.diagonal(chol_prec, axis1=-2, axis2=-1)), axis=-1) - 0.5 * d * _LOG_2PI
    )
    log_evidence = log_lik + log_prior - log_post
    return mean_post, cov_post, log_evidence


def linear_gaussian_posterior(
    prior: GaussianMixture,
    observations: jax.Array,
    obs_matrix: jax.Array,
    noise_std: float | jax.Array,
    observation_mask: jax.Array | None = None,
) -> GaussianMixture:
    """Exact posterior GMM of ``z`` given ``y_i = H z + noise_std * eps_i``.

    Args:
        prior: GMM prior over ``z``.
        observations: ``(n, m)`` observations ``y_i`` (``(n,)`` means ``m = 1``).
        obs_matrix: ``(m, d)`` matrix ``H``.
        noise_std: observation noise standard deviation (positive scalar).
        observation_mask: optional ``(n,)`` booleans; False rows are padding and ignored
            (lets queries with different ``n`` share one shape under ``vmap``).

    Returns:
        The posterior, a GMM with the prior's number of components (components of
        prior weight 0 keep weight 0).

    Raises:
        ValueError: on inconsistent shapes or a non-positive ``noise_std``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.distribution_transformer import gaussian, linear_gaussian_posterior
        >>> post = linear_gaussian_posterior(gaussian(jnp.zeros(1), jnp.eye(1)),
        ...                                  jnp.array([2.0]), jnp.eye(1), 1.0)
        >>> round(float(post.means[0, 0]), 5), round(float(post.covariances[0, 0, 0]), 5)
        (1.0, 0.5)
    """
    observations, obs_matrix, noise_std = check_linear_gaussian(
        prior, observations, obs_matrix, noise_std
    )
    mean_post, cov_post, log_evidence = _components(
        prior, observations, obs_matrix, noise_std, observation_mask
    )
    log_w = prior.log_weights + log_evidence
    return GaussianMixture(jax.nn.log_softmax(log_w), mean_post, cov_post)


def linear_gaussian_log_evidence(
    prior: GaussianMixture,
    observations: jax.Array,
    obs_matrix: jax.Array,
    noise_std: float | jax.Array,
    observation_mask: jax.Array | None = None,
) -> jax.Array:
    """Exact log marginal likelihood ``log p(y_{1:n})`` under a GMM prior.

    Args:
        prior: GMM prior over ``z``.
        observations: ``(n, m)`` observations.
        obs_matrix: ``(m, d)`` matrix ``H``.
        noise_std: observation noise standard deviation.
        observation_mask: optional ``(n,)`` booleans; False rows are ignored.

    Returns:
        The scalar log evidence.

    Raises:
        ValueError: on inconsistent shapes or a non-positive ``noise_std``.

    Example:
        >>> import jax.numpy as jnp
        >>> import probkit.models.distribution_transformer as dt
        >>> round(float(dt.linear_gaussian_log_evidence(dt.gaussian(jnp.zeros(1), jnp.eye(1)),
        ...                                          jnp.zeros(1), jnp.eye(1), 1.0)), 4)
        -1.2655
    """
    observations, obs_matrix, noise_std = check_linear_gaussian(
        prior, observations, obs_matrix, noise_std
    )
    _, _, log_evidence = _components(prior, observations, obs_matrix, noise_std, observation_mask)
    return jax.nn.logsumexp(prior.log_weights + log_evidence)
