"""The Schrödinger bridge between two Gaussians with a Brownian reference, in closed form.

With the reference ``dX = sigma dW`` on ``[0, T]``, the static Schrödinger bridge between
``N(m0, A)`` and ``N(m1, B)`` is the entropic OT coupling for the cost
``|x - y|^2 / 2`` with ``epsilon = sigma^2 T``: the coupling is Gaussian with means
``(m0, m1)``, marginal covariances ``A``, ``B`` and the cross-covariance (Janati, Muzellec,
Peyré & Cuturi, "Entropic optimal transport between unbalanced Gaussian measures has a
closed form", NeurIPS 2020, Thm. 1, with their ``sigma^2 = epsilon``; Mallasto, Gerolin &
Minh, "Entropy-regularized 2-Wasserstein distance between Gaussian measures", 2021)

    C = 1/2 A^{1/2} D A^{-1/2} - epsilon / 2 I,   D = (4 A^{1/2} B A^{1/2} + epsilon^2 I)^{1/2}.

The dynamic bridge mixes Brownian bridges over that coupling, so its marginal at time
``t`` (``s = t / T``) is Gaussian with mean ``(1 - s) m0 + s m1`` and covariance
``(1 - s)^2 A + s^2 B + s (1 - s) (C + C^T) + sigma^2 t (1 - s) I``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["GaussianCoupling", "gaussian_bridge_coupling", "gaussian_bridge_marginal"]


class GaussianCoupling(NamedTuple):
    """The Gaussian law of ``(X_0, X_T)`` under the Schrödinger bridge.

    Attributes:
        mean: ``(m0, m1)`` stacked, shape ``(2 d,)``.
        cov: the joint covariance ``[[A, C], [C^T, B]]``, shape ``(2 d, 2 d)``.
        cross_cov: ``C = Cov(X_0, X_T)``, shape ``(d, d)``.
        sigma: the Brownian reference's scale.
        duration: the time horizon ``T``.
    """

    mean: jax.Array
    cov: jax.Array
    cross_cov: jax.Array
    sigma: float
    duration: float


def _sym_sqrt(matrix: jax.Array, power: float = 0.5) -> jax.Array:
    eigenvalues, eigenvectors = jnp.linalg.eigh(0.5 * (matrix + matrix.T))
    return (eigenvectors * jnp.maximum(eigenvalues, 0.0) ** power) @ eigenvectors.T


def _check_gaussian(name_mean: str, mean, name_cov: str, cov) -> tuple[jax.Array, jax.Array]:
    mean = jnp.atleast_1d(jnp.asarray(mean, dtype=float))
    cov = jnp.atleast_2d(jnp.asarray(cov, dtype=float))
    d = mean.shape[0]
    if mean.ndim != 1 or cov.shape != (d, d):
        raise ValueError(
            f"{name_mean} must have shape (d,) and {name_cov} shape (d, d), got "
            f"{mean.shape} and {cov.shape}."
        )
    if not isinstance(cov, jax.core.Tracer):
        c = np.asarray(cov, dtype=np.float64)
        if not np.allclose(c, c.T, atol=1e-6 * max(1.0, np.abs(c).max())) or np.any(
            np.linalg.eigvalsh(0.5 * (c + c.T)) <= 0
        ):
            raise ValueError(f"{name_cov} must be symmetric positive definite.")
    return mean, cov


def gaussian_bridge_coupling(
    mean0: jax.Array,
    cov0: jax.Array,
    mean1: jax.Array,
    cov1: jax.Array,
    *,
    sigma: float,
    duration: float = 1.0,
) -> GaussianCoupling:
    """The closed-form Schrödinger-bridge coupling of ``N(mean0, cov0)`` and ``N(mean1, cov1)``.

    The reference process is ``sigma`` times a Brownian motion on ``[0, duration]``;
    equivalently, the entropic OT coupling for the cost ``|x - y|^2 / 2`` with
    ``epsilon = sigma^2 * duration``.

    Args:
        mean0: mean of the initial law, shape ``(d,)``.
        cov0: covariance of the initial law, shape ``(d, d)``, positive definite.
        mean1: mean of the final law, shape ``(d,)``.
        cov1: covariance of the final law, shape ``(d, d)``, positive definite.
        sigma: scale of the Brownian reference (> 0).
        duration: time horizon ``T`` (> 0).

    Returns:
        a :class:`GaussianCoupling`.

    Raises:
        ValueError: for inconsistent shapes, a covariance that is not positive definite
            or a non-positive ``sigma`` / ``duration``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.bridges import gaussian_bridge_coupling
        >>> c = gaussian_bridge_coupling(jnp.zeros(1), jnp.eye(1), jnp.zeros(1), jnp.eye(1),
        ...                              sigma=1.0)
        >>> round(float(c.cross_cov[0, 0]), 4)  # (sqrt(4 + 1) - 1) / 2
        0.618
    """
    mean0, cov0 = _check_gaussian("mean0", mean0, "cov0", cov0)
    mean1, cov1 = _check_gaussian("mean1", mean1, "cov1", cov1)
    if mean0.shape != mean1.shape:
        raise ValueError(f"mean0 and mean1 differ in shape: {mean0.shape} vs {mean1.shape}.")
    if not (sigma > 0 and duration > 0):
        raise ValueError(f"sigma and duration must be positive, got {sigma} and {duration}.")
    epsilon = sigma**2 * duration
    sqrt0 = _sym_sqrt(cov0)
    inv_sqrt0 = _sym_sqrt(cov0, -0.5)
    # D - eps I = 4 M (D + eps I)^{-1} with M = A^{1/2} B A^{1/2}: no cancellation when
    # eps is large compared with the covariances.
    mu, vectors = jnp.linalg.eigh(sqrt0 @ cov1 @ sqrt0)
    mu = jnp.maximum(mu, 0.0)
    shrunk = 4.0 * mu / (jnp.sqrt(4.0 * mu + epsilon**2) + epsilon)
    cross = 0.5 * sqrt0 @ ((vectors * shrunk) @ vectors.T) @ inv_sqrt0
    cov = jnp.block([[cov0, cross], [cross.T, cov1]])
    return GaussianCoupling(
        mean=jnp.concatenate([mean0, mean1]),
        cov=cov,
        cross_cov=cross,
        sigma=sigma,
        duration=duration,
    )


def gaussian_bridge_marginal(
    coupling: GaussianCoupling, t: float | jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Mean and covariance of the Gaussian Schrödinger bridge at time ``t``.

    Args:
        coupling: the output of :func:`gaussian_bridge_coupling`.
        t: a time in ``[0, coupling.duration]``.

    Returns:
        ``(mean, cov)`` of ``X_t``, shapes ``(d,)`` and ``(d, d)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.bridges import gaussian_bridge_coupling, gaussian_bridge_marginal
        >>> c = gaussian_bridge_coupling(jnp.zeros(1), jnp.eye(1), jnp.ones(1), jnp.eye(1),
        ...                              sigma=0.5)
        >>> mean, cov = gaussian_bridge_marginal(c, 0.5)
        >>> float(mean[0])
        0.5
    """
    d = coupling.cross_cov.shape[0]
    s = t / coupling.duration
    cov0, cov1 = coupling.cov[:d, :d], coupling.cov[d:, d:]
    cross = coupling.cross_cov
    mean = (1 - s) * coupling.mean[:d] + s * coupling.mean[d:]
    cov = (
        (1 - s) ** 2 * cov0
        + s**2 * cov1
        + s * (1 - s) * (cross + cross.T)
        + coupling.sigma**2 * t * (1 - s) * jnp.eye(d, dtype=cov0.dtype)
    )
    return mean, cov
