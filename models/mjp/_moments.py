"""Classical moment estimators of the generator from snapshots: matrix logarithms of the
empirical transition matrices, optionally corrected for uniform label noise.

For a regular grid with lag ``dt`` and exact labels, the row-normalised counts of
``(y_t, y_{t+m})`` pairs estimate ``P(m dt) = expm(Q m dt)``, so ``logm(P_hat) / (m dt)``
estimates ``Q`` (the maximum-likelihood estimate when every jump is allowed and the
logarithm is a valid generator). With label noise ``epsilon`` the observed pair counts are
``E^T C E`` (``E`` the emission matrix), so ``E^-1 C_obs E^-1`` undoes the noise. These
are the closed-form input features of the amortised network (:mod:`._network`): a bank of
estimates over a few lags and a few candidate noise levels, whose agreement across lags
tells which noise level is consistent with the data. No optimisation is involved.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["pair_counts", "moment_generators"]


def pair_counts(
    times: jax.Array,
    observations: jax.Array,
    path_mask: jax.Array,
    num_states: int,
    lag: int,
) -> tuple[jax.Array, jax.Array]:
    """Counts of ``(y_t, y_{t+lag})`` pairs over the real paths, and their mean time lag.

    Args:
        times: ``(N, T)`` observation times.
        observations: ``(N, T)`` integer labels in ``[0, num_states)``.
        path_mask: ``(N,)`` which paths are real (the rest is padding).
        num_states: size of the count matrix (static; may exceed the labels used).
        lag: number of grid steps between the two observations of a pair (static).

    Returns:
        ``(counts (num_states, num_states), mean_lag)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.mjp import pair_counts
        >>> t = jnp.array([[0.0, 1.0, 2.0]])
        >>> counts, mean_lag = pair_counts(t, jnp.array([[0, 1, 1]]), jnp.array([True]), 2, 1)
        >>> counts.tolist(), float(mean_lag)
        ([[0.0, 1.0], [0.0, 1.0]], 1.0)
    """
    lags = times[:, lag:] - times[:, :-lag]
    mask = path_mask[:, None] & (lags > 0)
    weight = mask.astype(times.dtype).reshape(-1)
    index = observations[:, :-lag].reshape(-1) * num_states + observations[:, lag:].reshape(-1)
    counts = jax.ops.segment_sum(weight, index, num_segments=num_states * num_states)
    mean_lag = jnp.sum(lags.reshape(-1) * weight) / jnp.maximum(jnp.sum(weight), 1.0)
    return counts.reshape(num_states, num_states), mean_lag


def _real_logm(matrix: jax.Array) -> jax.Array:
    """Real part of the principal matrix logarithm by eigendecomposition (CPU LAPACK)."""
    values, vectors = jnp.linalg.eig(matrix)
    return ((vectors * jnp.log(values)[None, :]) @ jnp.linalg.inv(vectors)).real


def moment_generators(
    counts: jax.Array,
    mean_lag: jax.Array,
    num_states,
    label_noise: jax.Array,
    *,
    pseudo_count: float = 0.5,
    clip: float = 30.0,
) -> jax.Array:
    """``logm(P_hat) / mean_lag`` from pair counts, after undoing uniform label noise.

    The counts are padded to ``M >= num_states`` states; padded states get the identity
    row (a zero generator row). ``pseudo_count`` self-transitions are added to every row
    (so that unvisited states are defined; this shrinks rates slightly towards 0), the
    noise-corrected counts are clipped at 0, and the result is clipped to ``[-clip,
    clip] / mean_lag`` because the logarithm need not exist (negative or defective
    eigenvalues): treat it as a feature or a rough estimate, not as a generator.

    Args:
        counts: ``(M, M)`` pair counts from :func:`pair_counts`.
        mean_lag: their mean time lag.
        num_states: ``K``, the number of real states (may be traced).
        label_noise: candidate mislabelling probability (scalar or ``(L,)`` for several).
        pseudo_count: self-transition counts added to every row.
        clip: bound on ``|logm(P_hat)|`` entries.

    Returns:
        ``(M, M)`` (or ``(L, M, M)``) estimated generators, with rows that need not sum to 0.

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np
        >>> from probkit.models.mjp import moment_generators
        >>> q = jnp.array([[-1.0, 1.0], [2.0, -2.0]])
        >>> p = jax.scipy.linalg.expm(0.3 * q)
        >>> counts = 1e6 * jnp.array([2.0, 1.0])[:, None] / 3 * p  # stationary pair counts
        >>> np.round(np.asarray(moment_generators(counts, 0.3, 2, 0.0)), 2).tolist()
        [[-1.0, 1.0], [2.0, -2.0]]
    """
    size = counts.shape[-1]
    real = jnp.arange(size) < num_states
    block = (real[:, None] & real[None, :]).astype(counts.dtype)
    eye = jnp.eye(size, dtype=counts.dtype)
    k = jnp.asarray(num_states, counts.dtype)

    def one(noise):
        # emission restricted to the real states; identity on padding
        emission = ((1.0 - noise) * eye + noise / jnp.maximum(k - 1.0, 1.0) * (1.0 - eye)) * block
        emission = emission + eye * (1.0 - block)
        inverse = jnp.linalg.inv(emission)
        corrected = jnp.clip(inverse.T @ counts @ inverse, 0.0, None) * block
        corrected = corrected + pseudo_count * eye + eye * (1.0 - block)
        transition = corrected / jnp.sum(corrected, axis=1, keepdims=True)
        log = jnp.clip(_real_logm(transition), -clip, clip)
        return jnp.where(jnp.isfinite(log), log, 0.0) / mean_lag

    noise = jax.lax.stop_gradient(jnp.asarray(label_noise, counts.dtype))
    counts = jax.lax.stop_gradient(counts)
    return one(noise) if noise.ndim == 0 else jax.vmap(one)(noise)
