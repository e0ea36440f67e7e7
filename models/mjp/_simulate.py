"""Simulation: Gillespie jump paths, snapshots on observation grids, label noise.

Every function is pure and ``jit``/``vmap``-compatible: the number of jumps per path is
bounded by ``max_jumps`` (a static size), and a path that would need more jumps before its
last observation time is never silently cut: :func:`observe` raises (through
``equinox.error_if``, which also works inside ``jit``) and :class:`JumpPaths` carries a
``truncated`` flag.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from probkit.models.mjp._process import MJP

from probkit._checks import check_int, check_key

__all__ = [
    "JumpPaths",
    "simulate_paths",
    "observe",
    "add_label_noise",
    "simulate",
    "sample_snapshots",
    "check_times",
]


class JumpPaths(NamedTuple):
    """Complete jump paths of an MJP on ``[0, horizon]``.

    Path ``n`` is in ``states[n, k]`` on ``[jump_times[n, k-1], jump_times[n, k])``
    (with ``jump_times[n, -1] := 0``); jumps after ``horizon`` are simulated but
    irrelevant.

    Attributes:
        states: ``(N, max_jumps + 1)`` states visited (initial state first).
        jump_times: ``(N, max_jumps)`` increasing jump times (``inf`` after absorption).
        horizon: ``(N,)`` end of the simulated window of each path.
        truncated: ``(N,)`` ``True`` where ``max_jumps`` jumps happened before
            ``horizon``, so the path is unknown after its last jump.
    """

    states: jax.Array
    jump_times: jax.Array
    horizon: jax.Array
    truncated: jax.Array

    def state_at(self, times: jax.Array) -> jax.Array:
        """States at ``times`` (``(T,)`` shared or ``(N, T)`` per path): ``(N, T)``."""
        times = jnp.broadcast_to(times, (self.states.shape[0], jnp.shape(times)[-1]))
        index = jax.vmap(lambda jt, t: jnp.searchsorted(jt, t, side="right"))(
            self.jump_times, times
        )
        return jnp.take_along_axis(self.states, index, axis=1)


def check_times(times, num_paths: int | None = None) -> None:
    """Check an observation grid eagerly (skipped for traced arrays).

    Args:
        times: ``(T,)`` grid shared by all paths, or ``(N, T)`` one grid per path.
        num_paths: ``N``, when known.

    Raises:
        ValueError: wrong shape, negative, non-finite or decreasing times.

    Example:
        >>> import numpy as np
        >>> from probkit.models.mjp import check_times
        >>> check_times(np.linspace(0.0, 1.0, 5))
    """
    if isinstance(times, jax.core.Tracer):
        return
    t = np.asarray(times, dtype=float)
    if t.ndim not in (1, 2) or t.shape[-1] < 1:
        raise ValueError(
            f"times must have shape (T,) (one grid for all paths) or (num_paths, T), got {t.shape}."
        )
    if t.ndim == 2 and num_paths is not None and t.shape[0] != num_paths:
        raise ValueError(
            f"times has {t.shape[0]} rows but there are {num_paths} paths: pass one grid per "
            "path, or a single (T,) grid."
        )
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("times must be finite and >= 0.")
    if np.any(np.diff(t, axis=-1) < 0):
        raise ValueError("times must be non-decreasing along the last axis (sort each grid).")


def _check_label_noise(label_noise) -> None:
    if isinstance(label_noise, jax.core.Tracer):
        return
    if not 0.0 <= float(label_noise) < 1.0:
        raise ValueError(f"label_noise must lie in [0, 1), got {label_noise!r}.")


def _one_path(key, rate_matrix, initial, max_jumps):
    k0, kscan = jax.random.split(key)
    state0 = jax.random.categorical(k0, jnp.log(initial))
    exit_rates = -jnp.diag(rate_matrix)
    off = rate_matrix * (1.0 - jnp.eye(rate_matrix.shape[0], dtype=rate_matrix.dtype))

    def jump(carry, step_key):
        state, time = carry
        k_hold, k_next = jax.random.split(step_key)
        rate = exit_rates[state]
        absorbing = rate <= 0
        hold = jax.random.exponential(k_hold, dtype=rate_matrix.dtype) / jnp.where(
            absorbing, 1.0, rate
        )
        new_time = jnp.where(absorbing, jnp.inf, time + hold)
        logits = jnp.log(jnp.where(off[state] > 0, off[state], 0.0))
        new_state = jnp.where(absorbing, state, jax.random.categorical(k_next, logits))
        return (new_state, new_time), (new_state, new_time)

    start = (state0, jnp.zeros((), rate_matrix.dtype))
    _, (states, times) = jax.lax.scan(jump, start, jax.random.split(kscan, max_jumps))
    return jnp.concatenate([state0[None], states]), times


def simulate_paths(
    key: jax.Array, mjp: MJP, num_paths: int, horizon, *, max_jumps: int = 1000
) -> JumpPaths:
    """Gillespie simulation of ``num_paths`` complete paths on ``[0, horizon]``.

    Args:
        key: a ``jax.random`` key.
        mjp: the process.
        num_paths: ``N`` (static).
        horizon: end time, a scalar or ``(N,)``.
        max_jumps: the fixed number of jumps simulated per path (static); a path that
            needs more before ``horizon`` is flagged ``truncated``.

    Returns:
        :class:`JumpPaths`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.mjp import MJP, simulate_paths
        >>> process = MJP(jnp.array([[-1.0, 1.0], [1.0, -1.0]]))
        >>> paths = simulate_paths(jax.random.key(0), process, 3, 5.0, max_jumps=50)
        >>> paths.states.shape, bool(paths.truncated.any())
        ((3, 51), False)
    """
    check_key(key)
    num_paths = check_int(num_paths, "num_paths")
    if not isinstance(max_jumps, int | np.integer) or max_jumps < 1:
        raise ValueError(f"max_jumps must be a positive int, got {max_jumps!r}.")
    keys = jax.random.split(key, num_paths)
    states, times = jax.vmap(_one_path, (0, None, None, None))(
        keys, mjp.rate_matrix, mjp.initial, int(max_jumps)
    )
    horizon = jnp.broadcast_to(jnp.asarray(horizon, times.dtype), (num_paths,))
    return JumpPaths(states, times, horizon, times[:, -1] <= horizon)


def add_label_noise(key: jax.Array, observations: jax.Array, num_states: int, label_noise):
    """Mislabel each observation with probability ``label_noise``, uniformly to another state.

    Args:
        key: a ``jax.random`` key.
        observations: integer states of any shape.
        num_states: ``K``.
        label_noise: probability of a wrong label.

    Returns:
        Noisy observations of the same shape.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.mjp import add_label_noise
        >>> add_label_noise(jax.random.key(0), jnp.zeros(4, int), 3, 0.0).tolist()
        [0, 0, 0, 0]
    """
    check_key(key)
    _check_label_noise(label_noise)
    k_flip, k_shift = jax.random.split(key)
    flip = jax.random.bernoulli(k_flip, label_noise, jnp.shape(observations))
    shift = jax.random.randint(k_shift, jnp.shape(observations), 1, num_states)
    return jnp.where(flip, (observations + shift) % num_states, observations)


def observe(
    key: jax.Array, paths: JumpPaths, times: jax.Array, *, num_states: int, label_noise=0.0
) -> jax.Array:
    """Noisy snapshots of complete paths at observation times.

    Args:
        key: a ``jax.random`` key (label noise).
        paths: the complete paths.
        times: ``(T,)`` shared or ``(N, T)`` per-path observation times, within each
            path's horizon.
        num_states: ``K``.
        label_noise: probability of a wrong label (uniform over the other states).

    Returns:
        ``(N, T)`` integer observations.

    Raises:
        ValueError: eagerly, for a bad grid.
        EquinoxRuntimeError: also under ``jit``, when a path was truncated before its
            last observation time (raise ``max_jumps``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.mjp import MJP, observe, simulate_paths
        >>> process = MJP(jnp.array([[-1.0, 1.0], [1.0, -1.0]]))
        >>> paths = simulate_paths(jax.random.key(0), process, 3, 2.0, max_jumps=50)
        >>> observe(jax.random.key(1), paths, jnp.array([0.0, 1.0, 2.0]), num_states=2).shape
        (3, 3)
    """
    check_key(key)
    check_times(times, paths.states.shape[0])
    _check_label_noise(label_noise)
    times = jnp.asarray(times, paths.jump_times.dtype)
    last = jnp.broadcast_to(times[..., -1], paths.horizon.shape)
    lost = paths.jump_times[:, -1] <= last
    states = paths.state_at(times)
    states = eqx.error_if(
        states,
        jnp.any(lost),
        "max_jumps jumps happened before the last observation time on some path: the path "
        "after that is unknown. Raise max_jumps (about 2x the largest exit rate times the "
        "horizon is safe).",
    )
    return add_label_noise(key, states, num_states, label_noise)


def simulate(
    key: jax.Array,
    mjp: MJP,
    num_paths: int,
    times: jax.Array,
    *,
    label_noise=0.0,
    max_jumps: int = 1000,
) -> jax.Array:
    """Simulate ``num_paths`` paths by Gillespie's algorithm and observe them on a grid.

    Args:
        key: a ``jax.random`` key.
        mjp: the process.
        num_paths: ``N`` (static).
        times: ``(T,)`` observation times shared by every path, or ``(N, T)`` per path
            (regular or irregular, non-decreasing).
        label_noise: probability of mislabelling an observation (uniformly to another
            state).
        max_jumps: jumps simulated per path (static); exceeding it before the last
            observation is an error, never a silently wrong path.

    Returns:
        ``(N, T)`` integer observations. For the complete paths, call
        :func:`simulate_paths` and :func:`observe` with the same keys.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.mjp import MJP, simulate
        >>> process = MJP(jnp.array([[-1.0, 1.0], [2.0, -2.0]]))
        >>> simulate(jax.random.key(0), process, 4, jnp.linspace(0, 3, 10), max_jumps=100).shape
        (4, 10)
    """
    check_key(key)
    check_times(times, num_paths)
    k_paths, k_obs = jax.random.split(key)
    horizon = jnp.asarray(times)[..., -1]
    paths = simulate_paths(k_paths, mjp, num_paths, horizon, max_jumps=max_jumps)
    return observe(
        k_obs, paths, times, num_states=mjp.rate_matrix.shape[-1], label_noise=label_noise
    )


def sample_snapshots(
    key: jax.Array, mjp: MJP, num_paths: int, times: jax.Array, *, label_noise=0.0
) -> jax.Array:
    """Exact snapshots without jump paths: ``X_{t_{k+1}} ~ expm(Q (t_{k+1} - t_k))[X_{t_k}]``.

    By the Markov property this has the same law as :func:`simulate` and costs one matrix
    exponential per interval instead of a jump loop, whatever the rates (used for the
    synthetic training data of the amortised network).

    Args:
        key: a ``jax.random`` key.
        mjp: the process.
        num_paths: ``N`` (static).
        times: ``(T,)`` shared or ``(N, T)`` per-path observation times.
        label_noise: probability of mislabelling an observation.

    Returns:
        ``(N, T)`` integer observations.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.mjp import MJP, sample_snapshots
        >>> process = MJP(jnp.array([[-1.0, 1.0], [2.0, -2.0]]))
        >>> sample_snapshots(jax.random.key(0), process, 4, jnp.linspace(0, 3, 10)).shape
        (4, 10)
    """
    check_key(key)
    check_times(times, num_paths)
    times = jnp.asarray(times, mjp.rate_matrix.dtype)
    k0, kseq, knoise = jax.random.split(key, 3)
    state0 = jax.random.categorical(k0, jnp.log(mjp.initial), shape=(num_paths,))
    expm = jax.vmap(lambda dt: jax.scipy.linalg.expm(mjp.rate_matrix * dt))
    dts = jnp.diff(times, axis=-1)
    shared = times.ndim == 1  # one grid: T - 1 matrix exponentials shared by all paths
    transition = expm(dts) if shared else jnp.swapaxes(jax.vmap(expm)(dts), 0, 1)

    def step(state, inputs):
        p, k = inputs  # (K, K) shared or (N, K, K) per path
        rows = p[state] if shared else jnp.take_along_axis(p, state[:, None, None], 1)[:, 0]
        new = jax.random.categorical(k, jnp.log(jnp.clip(rows, 0.0, 1.0)), axis=-1)
        return new, new

    keys = jax.random.split(kseq, dts.shape[-1])
    _, rest = jax.lax.scan(step, state0, (transition, keys))
    states = jnp.concatenate([state0[:, None], rest.T], axis=1)
    return add_label_noise(knoise, states, mjp.rate_matrix.shape[-1], label_noise)
