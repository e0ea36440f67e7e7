"""Exact log-likelihood of noisy snapshots: the forward algorithm over ``expm(Q dt)``.

Between observations the hidden state evolves by ``P(dt) = expm(Q dt)``; each snapshot
shows the true state with probability ``1 - epsilon`` and any other state with
probability ``epsilon / (K - 1)`` (the emission matrix). The forward recursion carries
normalised filtering distributions and sums the logarithms of the normalisers, so the
log-likelihood stays finite for long series.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "TransitionCounts",
    "transition_counts",
    "counts_log_likelihood",
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


def unique_intervals(times, tolerance: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The distinct observation intervals of a grid and, for every interval, its index.

    A regular grid has one distinct interval, so the likelihood needs one matrix
    exponential instead of ``T - 1`` (or ``N (T - 1)``). Intervals are merged when they
    fall in the same bin of width ``tolerance``, so that the rounding noise of a grid
    such as a float32 ``linspace`` (whose intervals differ in the last bits) does not
    make every interval distinct; each distinct interval is the mean of its members.

    Args:
        times: ``(T,)`` or ``(N, T)`` observation times (concrete).
        tolerance: bin width; default ``64 eps max(1, max |times|)`` with ``eps`` the
            machine epsilon of ``times``' dtype (float64 for integer times), a few
            dozen rounding errors of the times themselves.

    Returns:
        ``(unique_dts, index)`` with ``unique_dts[index]`` equal to the intervals (within
        ``tolerance``), shapes ``(U,)`` and ``(T - 1,)`` or ``(N, T - 1)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.mjp import unique_intervals
        >>> dts, index = unique_intervals(jnp.linspace(0.0, 10.0, 50))  # float32
        >>> dts.shape, index.shape
        ((1,), (49,))
    """
    t = np.asarray(times)
    if not np.issubdtype(t.dtype, np.floating):
        t = t.astype(np.float64)
    if tolerance is None:
        scale = max(1.0, float(np.max(np.abs(t)))) if t.size else 1.0
        tolerance = 64.0 * float(np.finfo(t.dtype).eps) * scale
    dts = np.diff(t.astype(np.float64), axis=-1)
    bins = np.round(dts / tolerance)
    _, group = np.unique(bins, return_inverse=True)
    group = group.reshape(dts.shape)
    unique = np.bincount(group.ravel(), weights=dts.ravel()) / np.bincount(group.ravel())
    return unique, group.astype(np.int32)


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


class TransitionCounts(NamedTuple):
    """Sufficient statistics of exactly observed snapshots.

    With exact labels the likelihood of a Markov chain observed at fixed times depends
    on the data only through how many paths start in each state and how many go from
    ``i`` to ``j`` over each distinct interval.

    Attributes:
        initial: ``(K,)`` number of paths whose first label is ``i``.
        transitions: ``(U, K, K)`` number of consecutive label pairs ``(i, j)`` over
            the ``u``-th distinct interval.
    """

    initial: np.ndarray
    transitions: np.ndarray


def transition_counts(
    interval_index, observations, num_states: int, num_intervals: int
) -> TransitionCounts:
    """Count first labels and label transitions per distinct interval (eagerly, in numpy).

    Args:
        interval_index: ``(T - 1,)`` or ``(N, T - 1)`` index of each interval among the
            distinct ones (from :func:`unique_intervals`).
        observations: ``(N, T)`` integer labels in ``[0, num_states)``.
        num_states: ``K``.
        num_intervals: ``U``, the number of distinct intervals.

    Returns:
        :class:`TransitionCounts` as float arrays (exact integers).

    Example:
        >>> import numpy as np
        >>> from probkit.models.mjp import transition_counts
        >>> counts = transition_counts(np.zeros(2, int), np.array([[0, 1, 1]]), 2, 1)
        >>> counts.transitions[0].tolist()
        [[0.0, 1.0], [0.0, 1.0]]
    """
    y = np.asarray(observations)
    index = np.broadcast_to(np.asarray(interval_index), (y.shape[0], y.shape[1] - 1))
    k = num_states
    flat = (index * k + y[:, :-1]) * k + y[:, 1:]
    transitions = np.bincount(flat.ravel(), minlength=num_intervals * k * k)
    initial = np.bincount(y[:, 0], minlength=k)
    return TransitionCounts(
        initial=initial.astype(float),
        transitions=transitions.reshape(num_intervals, k, k).astype(float),
    )


def counts_log_likelihood(
    transitions: jax.Array, initial: jax.Array, counts: TransitionCounts
) -> jax.Array:
    """Exact log-likelihood of exactly observed snapshots from their transition counts.

    ``sum_i n_i log p_i + sum_u sum_ij n_uij log P_u[i, j]``: equal to
    :func:`forward_log_likelihood` with an identity emission matrix, at a cost that does
    not grow with the number of paths or observations.

    Args:
        transitions: ``(U, K, K)`` transition matrices of the distinct intervals.
        initial: ``(K,)`` distribution of the first state.
        counts: :class:`TransitionCounts` of the data.

    Returns:
        The scalar log-likelihood.

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> from probkit.models.mjp import counts_log_likelihood, transition_counts
        >>> p = jnp.array([[[0.9, 0.1], [0.2, 0.8]]])
        >>> counts = transition_counts(np.zeros(1, int), np.array([[0, 1]]), 2, 1)
        >>> round(float(counts_log_likelihood(p, jnp.array([1.0, 0.0]), counts)), 4)  # log 0.1
        -2.3026
    """
    tiny = jnp.finfo(transitions.dtype).tiny
    n_initial = jnp.asarray(counts.initial, transitions.dtype)
    n_transitions = jnp.asarray(counts.transitions, transitions.dtype)
    # zero counts contribute nothing, also where a probability is 0 (no 0 * log 0 = NaN)
    log_p = jnp.log(jnp.maximum(transitions, tiny))
    log_initial = jnp.log(jnp.maximum(initial, tiny))
    return jnp.sum(jnp.where(n_transitions > 0, n_transitions * log_p, 0.0)) + jnp.sum(
        jnp.where(n_initial > 0, n_initial * log_initial, 0.0)
    )
