"""Paths of one particle: reference flows and (residual) bridges.

Euler-Maruyama paths of the reference SDE come from :func:`probkit.sde.euler_maruyama`.

All functions act on ONE particle (shape ``(d,)``) over a time grid ``times`` of shape
``(m + 1,)`` and return the path, shape ``(m + 1, d)``; ``jax.vmap`` them over particles.

The *residual bridge* (Whitaker, Golightly, Boys & Sherlock, "Improved bridge constructs
for stochastic differential equations", Stat. Comput. 2017) conditions the reference SDE
``dX = f(X) dt + sigma dW`` on both end points by following the Euler flow ``eta`` of
``f`` from the start and bridging the residual ``X - eta`` as a Brownian bridge from 0
to ``end - eta_T``. It is exact for a Brownian (or state-independent) drift and a good
approximation when ``sigma`` is small relative to the drift's curvature over one interval.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from probkit._checks import check_key

__all__ = ["reference_flow", "brownian_bridge", "residual_bridge"]

DriftFn = Callable[[jax.Array, jax.Array], jax.Array]


def reference_flow(drift: DriftFn, x_start: jax.Array, times: jax.Array) -> jax.Array:
    """The Euler path of the ODE ``dx/dt = drift(x, t)`` from ``x_start`` on ``times``.

    Args:
        drift: ``(x, t) -> dx/dt`` for one particle.
        x_start: the initial point, shape ``(d,)``.
        times: increasing time grid, shape ``(m + 1,)``.

    Returns:
        the path, shape ``(m + 1, d)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.bridges import reference_flow
        >>> reference_flow(lambda x, t: jnp.ones_like(x), jnp.zeros(1),
        ...                jnp.array([0.0, 0.5, 2.0]))[:, 0].tolist()
        [0.0, 0.5, 2.0]
    """

    def body(x, inputs):
        t, h = inputs
        x_next = x + drift(x, t) * h
        return x_next, x_next

    _, path = jax.lax.scan(body, x_start, (times[:-1], jnp.diff(times)))
    return jnp.concatenate([x_start[None], path], axis=0)


def brownian_bridge(
    key: jax.Array,
    x_start: jax.Array,
    x_end: jax.Array,
    times: jax.Array,
    *,
    sigma: float | jax.Array,
) -> jax.Array:
    """Sample ``sigma`` times a Brownian bridge from ``x_start`` at ``times[0]`` to ``x_end``.

    Exact on the grid: each step draws ``X_{k+1} | X_k, X_T`` from its Gaussian law, and
    the path ends at ``x_end`` exactly.

    Args:
        key: a ``jax.random`` key.
        x_start: the start, shape ``(d,)``.
        x_end: the end, shape ``(d,)``.
        times: increasing time grid, shape ``(m + 1,)``.
        sigma: scale of the Brownian motion (scalar or shape ``(d,)``).

    Returns:
        the path, shape ``(m + 1, d)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.bridges import brownian_bridge
        >>> path = brownian_bridge(jax.random.key(0), jnp.zeros(1), jnp.ones(1),
        ...                        jnp.linspace(0.0, 1.0, 5), sigma=0.3)
        >>> float(path[0, 0]), float(path[-1, 0])
        (0.0, 1.0)
    """
    check_key(key)
    t_end = times[-1]
    steps = jnp.diff(times)
    noise = jax.random.normal(key, (steps.shape[0],) + x_start.shape, x_start.dtype)

    def body(x, inputs):
        t, h, z = inputs
        remaining = t_end - t
        frac = h / remaining
        std = sigma * jnp.sqrt(jnp.maximum(h * (1.0 - frac), 0.0))
        x_next = x + frac * (x_end - x) + std * z
        return x_next, x_next

    _, path = jax.lax.scan(body, x_start, (times[:-1], steps, noise))
    path = path.at[-1].set(x_end)
    return jnp.concatenate([x_start[None], path], axis=0)


def residual_bridge(
    key: jax.Array,
    flow: jax.Array,
    x_end: jax.Array,
    times: jax.Array,
    *,
    sigma: float | jax.Array,
) -> jax.Array:
    """Bridge the reference SDE from ``flow[0]`` to ``x_end`` around its Euler flow.

    Args:
        key: a ``jax.random`` key.
        flow: the reference flow from the start point (:func:`reference_flow`), shape
            ``(m + 1, d)``.
        x_end: the end point, shape ``(d,)``.
        times: the grid of ``flow``, shape ``(m + 1,)``.
        sigma: diffusion scale of the reference.

    Returns:
        ``flow + B`` with ``B`` a Brownian bridge from 0 to ``x_end - flow[-1]``, shape
        ``(m + 1, d)``; it starts at ``flow[0]`` and ends at ``x_end``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.bridges import reference_flow, residual_bridge
        >>> times = jnp.linspace(0.0, 1.0, 5)
        >>> flow = reference_flow(lambda x, t: -x, jnp.ones(1), times)
        >>> path = residual_bridge(jax.random.key(0), flow, jnp.zeros(1), times, sigma=0.1)
        >>> float(path[0, 0]), float(path[-1, 0])
        (1.0, 0.0)
    """
    check_key(key)
    zero = jnp.zeros_like(x_end)
    residual = brownian_bridge(key, zero, x_end - flow[-1], times, sigma=sigma)
    return (flow + residual).at[-1].set(x_end)
