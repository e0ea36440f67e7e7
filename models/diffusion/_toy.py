"""2-D toy data sets: a checkerboard and concentric rings (with class labels)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from probkit._checks import check_key

__all__ = ["checkerboard", "in_checkerboard", "rings"]


def checkerboard(key: jax.Array, num_samples: int, num_squares: int = 4) -> jax.Array:
    """Uniform draws on the dark squares of a ``num_squares`` x ``num_squares`` board on [-2, 2]^2.

    Example:
        >>> import jax
        >>> from probkit.models.diffusion import checkerboard, in_checkerboard
        >>> x = checkerboard(jax.random.key(0), 1000)
        >>> bool(in_checkerboard(x).all())
        True
    """
    check_key(key)
    key_cell, key_pos = jax.random.split(key)
    dark = jnp.array(
        [(i, j) for i in range(num_squares) for j in range(num_squares) if (i + j) % 2 == 0]
    )
    cells = dark[jax.random.randint(key_cell, (num_samples,), 0, dark.shape[0])]
    width = 4.0 / num_squares
    offsets = jax.random.uniform(key_pos, (num_samples, 2))
    return -2.0 + width * (cells + offsets)


def in_checkerboard(x: jax.Array, num_squares: int = 4) -> jax.Array:
    """Whether each point lies on a dark square of the board of :func:`checkerboard`."""
    width = 4.0 / num_squares
    cells = jnp.floor((x + 2.0) / width)
    inside = jnp.all((cells >= 0) & (cells < num_squares), axis=-1)
    return inside & (jnp.sum(cells, axis=-1) % 2 == 0)


def rings(
    key: jax.Array,
    num_samples: int,
    radii: tuple[float, ...] = (1.0, 2.0, 3.0),
    noise: float = 0.08,
) -> tuple[jax.Array, jax.Array]:
    """Noisy concentric circles; returns ``(points, ring index)`` for class-conditional models.

    Example:
        >>> import jax
        >>> from probkit.models.diffusion import rings
        >>> x, label = rings(jax.random.key(0), 5)
        >>> x.shape, label.shape
        ((5, 2), (5,))
    """
    check_key(key)
    key_ring, key_angle, key_noise = jax.random.split(key, 3)
    label = jax.random.randint(key_ring, (num_samples,), 0, len(radii))
    angle = jax.random.uniform(key_angle, (num_samples,), maxval=2 * jnp.pi)
    radius = jnp.asarray(radii)[label]
    x = radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)
    return x + noise * jax.random.normal(key_noise, x.shape), label
