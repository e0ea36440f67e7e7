"""Euler-Maruyama: the one step every SDE simulation in probkit takes, and a path simulator.

:func:`euler_maruyama_step` is ``x + drift dt + noise_std noise``; the reverse-time
samplers (:mod:`probkit.sde`), the stochastic interpolants, the Feynman-Kac correctors
(:mod:`probkit.fkc`) and the bridge solvers (:mod:`probkit.bridges`) all call it. The
caller draws ``noise`` (how keys are split differs between callers: per particle,
per batch, all steps at once) and scales it, so that each keeps its own random stream.

Not diffrax: its Euler solver, even with ``UnsafeBrownianPath``, ran several times
slower than this scan on CPU, and its increments are not the ``jax.random.normal``
draws that the samplers' results are pinned to.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from probkit._checks import check_key

__all__ = ["euler_maruyama_step", "euler_maruyama"]

DriftFn = Callable[[jax.Array, jax.Array], jax.Array]


def euler_maruyama_step(
    x: jax.Array,
    drift: jax.Array,
    dt: jax.Array | float,
    noise_std: jax.Array | float | None = None,
    noise: jax.Array | None = None,
) -> jax.Array:
    """One Euler-Maruyama step ``x + drift * dt + noise_std * noise``.

    Args:
        x: the current state (any shape).
        drift: the drift evaluated at ``(x, t)``, broadcastable to ``x``.
        dt: the signed time step ``t_next - t`` (negative for reverse-time samplers,
            whose drift is written in the forward time variable).
        noise_std: standard deviation of the increment over the step, e.g.
            ``g(t) sqrt(|dt|)``; ``None`` (with ``noise=None``) takes an Euler step of
            the ODE.
        noise: standard normal draws shaped like ``x``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import euler_maruyama_step
        >>> x, drift, noise = jnp.ones(2), -jnp.ones(2), jnp.array([1.0, -1.0])
        >>> euler_maruyama_step(x, drift, 0.1, 0.5, noise).tolist()
        [1.399999976158142, 0.3999999761581421]
    """
    x_next = x + drift * dt
    if noise_std is None:
        if noise is not None:
            raise ValueError("noise needs noise_std (the increment's standard deviation).")
        return x_next
    if noise is None:
        raise ValueError("noise_std needs noise (standard normal draws shaped like x).")
    return x_next + noise_std * noise


def euler_maruyama(
    key: jax.Array,
    drift: DriftFn,
    x_start: jax.Array,
    times: jax.Array,
    *,
    sigma: float | jax.Array,
) -> jax.Array:
    """Simulate ``dX = drift(X, t) ds + sigma dW`` for ONE particle along the grid ``times``.

    ``s`` is the time travelled, ``|t - t_0|``: for an increasing grid this is the
    usual forward SDE; for a decreasing grid ``drift`` is the velocity in the direction
    of travel (a backward drift). ``jax.vmap`` it over particles.

    Args:
        key: a ``jax.random`` key.
        drift: ``(x, t) -> dx/ds`` for one particle.
        x_start: the initial point, shape ``(d,)``.
        times: monotone time grid, shape ``(m + 1,)``.
        sigma: diffusion scale (scalar or shape ``(d,)``).

    Returns:
        the path, shape ``(m + 1, d)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import euler_maruyama
        >>> path = euler_maruyama(jax.random.key(0), lambda x, t: -x, jnp.ones(2),
        ...                       jnp.linspace(0.0, 1.0, 11), sigma=0.1)
        >>> path.shape
        (11, 2)
    """
    check_key(key)
    steps = jnp.abs(jnp.diff(times))
    noise = jax.random.normal(key, (steps.shape[0],) + x_start.shape, x_start.dtype)

    def body(x, inputs):
        t, h, z = inputs
        x_next = euler_maruyama_step(x, drift(x, t), h, sigma * jnp.sqrt(h), z)
        return x_next, x_next

    _, path = jax.lax.scan(body, x_start, (times[:-1], steps, noise))
    return jnp.concatenate([x_start[None], path], axis=0)
