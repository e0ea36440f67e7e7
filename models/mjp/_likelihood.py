"""Exact log-likelihood of noisy snapshots: the forward algorithm over ``expm(Q dt)``.

Between observations the hidden state evolves by ``P(dt) = expm(Q dt)``; each snapshot
shows the true state with probability ``1 - epsilon`` and any other state with
probability ``epsilon / (K - 1)`` (the emission matrix). The forward recursion carries
normalised filtering distributions and sums the logarithms of the normalisers, so the
log-likelihood stays finite for long series.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "emission_matrix",
    "log_likelihood",
    "transition_matrices",
    "unique_intervals",
    "forward_log_likelihood",
]


def emission_matrix(num_states: int, label_noise) -> jax.Array:
    """``E[i, o] = P(observe o | state i)`` for uniform mislabelling.

    Args:
        num_states: ``K``.
        label_noise: probability ``epsilon`` of a wrong label.

    Returns:
        ``(K, K)`` row-stochastic matrix, ``1 - epsilon`` on the diagonal.

    Example:
        >>> from probkit.models.mjp import emission_matrix
        >>> [round(float(p), 3) for p in emission_matrix(3, 0.2)[0]]
        [0.8, 0.1, 0.1]
    """
    eye = jnp.eye(num_states)
    return (1.0 - label_noise) * eye + label_noise / (num_states - 1) * (1.0 - eye)


def transition_matrices(rate_matrix: jax.Array, times: jax.Array) -> jax.Array:
    """``expm(Q dt)`` for every interval of an observation grid.

    Args:
        rate_matrix: ``(K, K)`` generator.
        times: ``(T,)`` or ``(N, T)`` observation times.

    Returns:
        ``(T - 1, K, K)`` or ``(N, T - 1, K, K)`` transition matrices.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.mjp import transition_matrices
        >>> q = jnp.array([[-1.0, 1.0], [1.0, -1.0]])
        >>> transition_matrices(q, jnp.array([0.0, 1.0, 3.0])).shape
        (2, 2, 2)
    """
    dts = jnp.diff(jnp.asarray(times, rate_matrix.dtype), axis=-1)
    expm = lambda dt: jax.scipy.linalg.expm(rate_matrix * dt)
    flat = jax.vmap(expm)(dts.reshape(-1))
    return flat.reshape(*dts.shape, *rate_matrix.shape)


def log_likelihood(
    rate_matrix: jax.Array,
    initial: jax.Array,
    times: jax.Array,
    observations: jax.Array,
    label_noise=0.0,
) -> jax.Array:
    """Exact log-likelihood of noisy snapshots of independent paths (forward algorithm).

    Args:
        rate_matrix: ``(K, K)`` generator.
        initial: ``(K,)`` distribution of the state at the first observation time.
        times: ``(T,)`` grid shared by all paths (one matrix exponential per interval), or
            ``(N, T)`` per-path grids.
        observations: ``(N, T)`` observed integer labels.
        label_noise: probability ``epsilon`` of a wrong label; ``0`` means exact
            observations.

    Returns:
        The scalar ``log p(observations | Q, initial)`` summed over paths.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.mjp import log_likelihood
        >>> q = jnp.array([[-1.0, 1.0], [1.0, -1.0]])
        >>> ll = log_likelihood(q, jnp.array([0.5, 0.5]), jnp.array([0.0, 1.0]),
        ...                     jnp.array([[0, 0]]))
        >>> round(float(ll), 4)  # log(0.5 * (1 + exp(-2)) / 2)
        -1.2594
    """
    num_states = rate_matrix.shape[-1]
    emission = emission_matrix(num_states, label_noise).astype(rate_matrix.dtype)
    transitions = transition_matrices(rate_matrix, times)
    return forward_log_likelihood(transitions, emission, initial, observations)


def unique_intervals(times, decimals: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """The distinct observation intervals of a grid and, for every interval, its index.

    A regular grid has one distinct interval, so the likelihood needs one matrix
    exponential instead of ``T - 1`` (or ``N (T - 1)``); intervals equal to ``decimals``
    decimal places (floating-point noise of ``linspace``) are merged.

    Args:
        times: ``(T,)`` or ``(N, T)`` observation times (concrete).
        decimals: rounding of the intervals before merging.

    Returns:
        ``(unique_dts, index)`` with ``unique_dts[index]`` equal to the intervals, shape
        ``(T - 1,)`` or ``(N, T - 1)``.

    Example:
        >>> import numpy as np
        >>> from probkit.models.mjp import unique_intervals
        >>> dts, index = unique_intervals(np.linspace(0.0, 1.0, 11))
        >>> dts.shape, index.shape
        ((1,), (10,))
    """
    dts = np.round(np.diff(np.asarray(times, dtype=float), axis=-1), decimals)
    unique, index = np.unique(dts, return_inverse=True)
    return unique, index.reshape(dts.shape).astype(np.int32)


def forward_log_likelihood(
    transitions: jax.Array, emission: jax.Array, initial: jax.Array, observations: jax.Array
) -> jax.Array:
    """The forward recursion over given transition and emission matrices.

    Args:
        transitions: ``(T - 1, K, K)`` shared by all paths or ``(N, T - 1, K, K)`` per path.
        emission: ``(K, K)`` matrix ``P(observe o | state i)``.
        initial: ``(K,)`` distribution of the first hidden state.
        observations: ``(N, T)`` integer labels.

    Returns:
        The scalar log-likelihood summed over paths.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.mjp import forward_log_likelihood
        >>> p = jnp.array([[[0.9, 0.1], [0.2, 0.8]]])
        >>> ll = forward_log_likelihood(p, jnp.eye(2), jnp.array([1.0, 0.0]), jnp.array([[0, 1]]))
        >>> round(float(ll), 4)  # log 0.1
        -2.3026
    """
    observations = jnp.asarray(observations)
    dtype = transitions.dtype
    if transitions.ndim == 4:  # per-path grids: scan over the interval axis
        transitions = jnp.swapaxes(transitions, 0, 1)
    likelihoods = emission.T[observations]  # (N, T, K): P(y_t | state)
    tiny = jnp.finfo(dtype).tiny

    alpha = initial[None, :] * likelihoods[:, 0]
    norm = alpha.sum(-1)
    log_norm = jnp.log(jnp.maximum(norm, tiny))
    alpha = alpha / jnp.maximum(norm, tiny)[:, None]

    def forward(carry, inputs):
        alpha, total = carry
        p, lik = inputs  # (K, K) shared or (N, K, K) per path, and (N, K)
        alpha = jnp.matmul(alpha[:, None, :], p)[:, 0] * lik
        norm = alpha.sum(-1)
        alpha = alpha / jnp.maximum(norm, tiny)[:, None]
        return (alpha, total + jnp.log(jnp.maximum(norm, tiny))), None

    (_, total), _ = jax.lax.scan(
        forward,
        (alpha, log_norm),
        (transitions, jnp.swapaxes(likelihoods[:, 1:], 0, 1)),
    )
    return jnp.sum(total)
