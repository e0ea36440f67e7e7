"""One progress-bar mechanism for jitted ``lax.scan`` loops.

:func:`progress_scan` is a drop-in for :func:`jax.lax.scan`. With
``progress_bar=True`` it sends the step index to the host every ``print_rate``
steps through :func:`jax.debug.callback` and draws a ``tqdm`` bar there.

It is safe under ``vmap`` and ``shard_map``: the step index is an unbatched scan
input, so every chain reports the same index and the host keeps the largest one
seen; a vmapped run of 64 chains draws one bar, not 64. Off by default in the
library (tests and CI stay quiet), on by default in the command-line interface.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["progress_scan", "progress_ticker"]

_lock = threading.Lock()
_bars: dict[int, Any] = {}
_positions: dict[int, int] = {}
_ids = itertools.count()
_ticks: dict[int, int] = {}


def _update(bar_id: int, total: int, desc: str, step) -> None:
    # Runs on the host. It must never raise: an exception here would abort the
    # whole XLA computation, not just the display.
    try:
        from tqdm.auto import tqdm

        step = int(step)
        with _lock:
            bar = _bars.get(bar_id)
            if bar is None or (step == 0 and _positions.get(bar_id, 0) >= total):
                if bar is not None:
                    bar.close()
                bar = tqdm(total=total, desc=desc, leave=True, dynamic_ncols=True)
                _bars[bar_id] = bar
                _positions[bar_id] = 0
            done = min(step + 1, total)
            if done > _positions[bar_id]:
                bar.update(done - _positions[bar_id])
                _positions[bar_id] = done
            if done >= total:
                bar.close()
    except Exception:  # noqa: BLE001 - see the comment above
        pass


def progress_scan(
    f: Callable,
    init: Any,
    xs: Any = None,
    length: int | None = None,
    *,
    progress_bar: bool = False,
    desc: str = "",
    print_rate: int | None = None,
):
    """``jax.lax.scan`` with an optional progress bar.

    Args:
        f: the scan body ``(carry, x) -> (carry, y)``.
        init: the initial carry.
        xs: the scanned inputs (or ``None`` with ``length``).
        length: number of steps when ``xs`` is ``None``.
        progress_bar: draw a bar on the host.
        desc: the bar's label.
        print_rate: update every this many steps (default: 1/50 of the run).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.progress import progress_scan
        >>> carry, ys = progress_scan(lambda c, x: (c + x, c), 0.0, jnp.ones(5))
        >>> float(carry)
        5.0
    """
    if not progress_bar:
        return jax.lax.scan(f, init, xs, length=length)
    if length is None:
        leaves = jax.tree_util.tree_leaves(xs)
        if not leaves:
            raise ValueError("progress_scan needs `length` when `xs` is None.")
        length = int(jnp.shape(leaves[0])[0])
    total = int(length)
    rate = max(1, total // 50) if print_rate is None else max(1, int(print_rate))
    bar_id = next(_ids)

    def body(carry, inputs):
        step, x = inputs

        def report():
            jax.debug.callback(lambda s: _update(bar_id, total, desc, s), step)

        jax.lax.cond((step % rate == 0) | (step == total - 1), report, lambda: None)
        return f(carry, x)

    return jax.lax.scan(body, init, (jnp.arange(total), xs), length=total)


def _tick(bar_id: int, total: int, desc: str) -> None:
    # Runs on the host, like _update; the count wraps so that a compiled loop run
    # again draws a fresh bar.
    with _lock:
        step = _ticks.get(bar_id, 0)
        _ticks[bar_id] = (step + 1) % total
    _update(bar_id, total, desc, step)


def progress_ticker(total: int, *, desc: str = "") -> Callable[[], None]:
    """A function to call once per step of a traced loop whose step index is not at hand.

    For loops written by someone else, such as blackjax's window adaptations, which
    take a per-step hook (``adaptation_info_fn``) but no progress bar: call the
    returned ``tick()`` from the hook and the host counts the steps. The callback has
    no arguments, so under ``vmap`` it fires once per step, not once per chain; under
    ``shard_map`` it fires once per device, so pass ``total = steps x devices``.

    Args:
        total: number of ticks that fill the bar.
        desc: the bar's label.

    Returns:
        ``tick()``, to be called inside jitted code once per step.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.progress import progress_ticker
        >>> tick = progress_ticker(5, desc="loop")
        >>> def body(c, x):
        ...     tick()
        ...     return c + x, None
        >>> float(jax.jit(lambda xs: jax.lax.scan(body, 0.0, xs)[0])(jnp.ones(5)))
        5.0
    """
    total = max(1, int(total))
    bar_id = next(_ids)

    def tick() -> None:
        jax.debug.callback(lambda: _tick(bar_id, total, desc))

    return tick
