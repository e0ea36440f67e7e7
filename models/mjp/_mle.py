"""Maximum likelihood from complete paths: jump counts and holding times.

The log-likelihood of a completely observed path on ``[0, T]`` is
``sum_ij N_ij log q_ij - sum_i q_i T_i`` (``N_ij`` jumps ``i -> j``, ``T_i`` time spent in
``i``, ``q_i`` the exit rate), maximised by ``q_ij = N_ij / T_i``; its asymptotic
variance is ``q_ij / E[T_i]``, so the error shrinks like ``1 / sqrt(number of paths)``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from probkit.models.mjp._process import rate_matrix_from_rates
from probkit.models.mjp._simulate import JumpPaths

__all__ = ["JumpStatistics", "jump_statistics", "maximum_likelihood"]


class JumpStatistics(NamedTuple):
    """Sufficient statistics of complete paths.

    Attributes:
        counts: ``(K, K)`` number of jumps ``i -> j``.
        holding_times: ``(K,)`` total time spent in each state.
    """

    counts: jax.Array
    holding_times: jax.Array


def jump_statistics(paths: JumpPaths, num_states: int) -> JumpStatistics:
    """Jump counts and holding times of complete paths up to each path's horizon.

    Args:
        paths: complete paths (no path may be truncated; checked when concrete).
        num_states: ``K``.

    Returns:
        :class:`JumpStatistics` summed over paths.

    Raises:
        ValueError: a truncated path (raise ``max_jumps`` in the simulation).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.mjp import MJP, jump_statistics, simulate_paths
        >>> process = MJP(jnp.array([[-1.0, 1.0], [1.0, -1.0]]))
        >>> stats = jump_statistics(simulate_paths(jax.random.key(0), process, 10, 2.0,
        ...                                        max_jumps=50), 2)
        >>> round(float(stats.holding_times.sum()), 4)  # 10 paths of length 2
        20.0
    """
    if not isinstance(paths.truncated, jax.core.Tracer) and bool(jnp.any(paths.truncated)):
        raise ValueError(
            "some paths are truncated (max_jumps jumps before the horizon): their statistics "
            "would be wrong. Simulate with a larger max_jumps."
        )
    horizon = paths.horizon[:, None]
    zero = jnp.zeros_like(paths.jump_times[:, :1])
    starts = jnp.minimum(jnp.concatenate([zero, paths.jump_times], axis=1), horizon)
    ends = jnp.minimum(jnp.concatenate([paths.jump_times, horizon], axis=1), horizon)
    durations = ends - starts  # (N, M + 1), time spent in states[:, k]
    one_hot = jax.nn.one_hot(paths.states, num_states, dtype=durations.dtype)
    holding = jnp.einsum("nk,nki->i", durations, one_hot)
    happened = (paths.jump_times <= horizon).astype(durations.dtype)  # (N, M)
    counts = jnp.einsum("nk,nki,nkj->ij", happened, one_hot[:, :-1], one_hot[:, 1:])
    counts = counts * (1.0 - jnp.eye(num_states, dtype=counts.dtype))
    return JumpStatistics(counts, holding)


def maximum_likelihood(paths: JumpPaths, num_states: int) -> jax.Array:
    """Maximum-likelihood rate matrix from complete paths, ``q_ij = N_ij / T_i``.

    States never visited get zero exit rates (no information about them).

    Args:
        paths: complete paths.
        num_states: ``K``.

    Returns:
        ``(K, K)`` estimated generator.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.mjp import MJP, maximum_likelihood, simulate_paths
        >>> process = MJP(jnp.array([[-1.0, 1.0], [2.0, -2.0]]))
        >>> paths = simulate_paths(jax.random.key(0), process, 10_000, 5.0, max_jumps=100)
        >>> maximum_likelihood(paths, 2).round(1).tolist()
        [[-1.0, 1.0], [2.0, -2.0]]
    """
    stats = jump_statistics(paths, num_states)
    holding = stats.holding_times[:, None]
    rates = jnp.where(holding > 0, stats.counts / jnp.where(holding > 0, holding, 1.0), 0.0)
    return rate_matrix_from_rates(rates)
