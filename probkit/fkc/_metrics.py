"""Distances between (weighted) samples: energy distance, MMD and the 2-Wasserstein distance.

They measure how far Feynman-Kac corrector particles (weighted) are from draws of the
target. Pairwise sums are computed in row blocks, so ``10^4`` points need no more than
a few MB at a time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["energy_distance", "mmd", "wasserstein2"]


def _weights(x: jax.Array, log_weights: jax.Array | None) -> jax.Array:
    if log_weights is None:
        return jnp.full(x.shape[0], 1.0 / x.shape[0])
    if log_weights.shape != x.shape[:1]:
        raise ValueError(
            f"log_weights must have shape ({x.shape[0]},) (one per point), got {log_weights.shape}."
        )
    return jax.nn.softmax(log_weights)


def _pairwise_mean(kernel, x, wx, y, wy, block):
    # sum_ij wx_i wy_j kernel(x_i, y_j), over row blocks of x.
    n = x.shape[0]
    pad = (-n) % block
    xp = jnp.concatenate([x, jnp.zeros((pad, x.shape[1]), x.dtype)])
    wp = jnp.concatenate([wx, jnp.zeros(pad, wx.dtype)])

    def one(args):
        xb, wb = args
        k = kernel(xb[:, None, :], y[None, :, :])
        return wb @ (k @ wy)

    parts = jax.lax.map(one, (xp.reshape(-1, block, x.shape[1]), wp.reshape(-1, block)))
    return jnp.sum(parts)


def _flat(x):
    x = jnp.asarray(x)
    return x.reshape(x.shape[0], -1)


def _points(x, y, block) -> tuple[jax.Array, jax.Array]:
    if jnp.ndim(x) < 1 or jnp.ndim(y) < 1 or jnp.shape(x)[0] < 1 or jnp.shape(y)[0] < 1:
        raise ValueError(
            f"x and y must be arrays of points (n, ...), got shapes {jnp.shape(x)} and "
            f"{jnp.shape(y)}."
        )
    x, y = _flat(x), _flat(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must have points of the same dimension, got {x.shape[1]} and {y.shape[1]}"
            " (after flattening all but the leading axis)."
        )
    if isinstance(block, bool) or not isinstance(block, int | np.integer) or block < 1:
        raise ValueError(f"block must be a positive int, got {block!r}.")
    return x, y


def energy_distance(
    x: jax.Array,
    y: jax.Array,
    *,
    x_log_weights: jax.Array | None = None,
    y_log_weights: jax.Array | None = None,
    block: int = 256,
) -> jax.Array:
    """Squared energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (V-statistic).

    Zero iff the two laws agree (Székely & Rizzo 2013); weights, if given, are
    normalised log-weights of the points.

    Example:
        >>> import jax
        >>> from probkit.fkc import energy_distance
        >>> x = jax.random.normal(jax.random.key(0), (500, 2))
        >>> y = jax.random.normal(jax.random.key(1), (500, 2)) + 1.0
        >>> bool(energy_distance(x, y) > 10 * energy_distance(x, x[::-1] * 1.0 + 0.0 + 0.01))
        True
    """
    x, y = _points(x, y, block)
    wx, wy = _weights(x, x_log_weights), _weights(y, y_log_weights)

    def dist(a, b):
        return jnp.sqrt(jnp.maximum(jnp.sum((a - b) ** 2, -1), 1e-30))

    xy = _pairwise_mean(dist, x, wx, y, wy, block)
    xx = _pairwise_mean(dist, x, wx, x, wx, block)
    yy = _pairwise_mean(dist, y, wy, y, wy, block)
    return 2 * xy - xx - yy


def mmd(
    x: jax.Array,
    y: jax.Array,
    *,
    bandwidth: float = 1.0,
    x_log_weights: jax.Array | None = None,
    y_log_weights: jax.Array | None = None,
    block: int = 256,
) -> jax.Array:
    """Squared maximum mean discrepancy with the Gaussian kernel ``exp(-|a-b|^2 / (2 h^2))``.

    Example:
        >>> import jax
        >>> from probkit.fkc import mmd
        >>> x = jax.random.normal(jax.random.key(0), (400, 2))
        >>> float(mmd(x, x)) == 0.0
        True
    """
    x, y = _points(x, y, block)
    if not isinstance(bandwidth, jax.core.Tracer) and not np.all(np.asarray(bandwidth) > 0):
        raise ValueError(f"bandwidth must be positive, got {bandwidth!r}.")
    wx, wy = _weights(x, x_log_weights), _weights(y, y_log_weights)

    def kernel(a, b):
        return jnp.exp(-jnp.sum((a - b) ** 2, -1) / (2.0 * bandwidth**2))

    xy = _pairwise_mean(kernel, x, wx, y, wy, block)
    xx = _pairwise_mean(kernel, x, wx, x, wx, block)
    yy = _pairwise_mean(kernel, y, wy, y, wy, block)
    return xx + yy - 2 * xy


def wasserstein2(x: np.ndarray, y: np.ndarray) -> float:
    """Exact 2-Wasserstein distance between two equally weighted samples of equal size.

    An optimal assignment (``scipy.optimize.linear_sum_assignment``); resample weighted
    particles first. Cost ``O(n^3)``: meant for ``n`` up to a few thousand.

    Example:
        >>> import numpy as np
        >>> from probkit.fkc import wasserstein2
        >>> x = np.zeros((3, 2)); y = np.ones((3, 2))
        >>> round(wasserstein2(x, y), 4)  # every point moves by sqrt(2)
        1.4142
    """
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}.")
    cost = np.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, cols].mean()))
