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

__all__ = ["progress_fraction", "progress_scan", "progress_ticker"]

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


def _draw_fraction(bar_id: int, desc: str, label: str, step, fraction) -> None:
    # Runs on the host; like _update it must never raise. Under vmap it is called
    # once per replicate: the bar shows the largest fraction seen, and a new bar
    # starts when a run reports its first step again.
    try:
        from tqdm.auto import tqdm

        step, fraction = int(step), float(fraction)
        with _lock:
            bar = _bars.get(bar_id)
            finished = bar is not None and (_positions.get(bar_id, 0) > 1 or bar.n >= 1.0)
            if bar is None or (step == 1 and finished):
                if bar is not None:
                    bar.close()
                bar = tqdm(
                    total=1.0,
                    desc=desc,
                    leave=True,
                    dynamic_ncols=True,
                    bar_format="{l_bar}{bar}| " + label + " {n:.3g}/1 [{elapsed}{postfix}]",
                )
                _bars[bar_id] = bar
                _positions[bar_id] = 0
            _positions[bar_id] = max(step, _positions[bar_id])
            if fraction > bar.n and not bar.disable:
                bar.n = min(fraction, 1.0)
                bar.set_postfix_str(f"step {_positions[bar_id]}", refresh=False)
                if fraction >= 1.0:
                    bar.close()  # draws the final state
                else:
                    bar.refresh()
    except Exception:  # noqa: BLE001 - see the comment above
        pass


def progress_fraction(desc: str, *, label: str = "temperature") -> Callable[..., None]:
    """A bar over a fraction in ``[0, 1]``, for traced loops of unknown length.

    Adaptive loops (a tempered SMC sampler choosing its next temperature, an
    annealing schedule) cannot say in advance how many steps they take, so the bar
    follows the fraction done instead of a step count. Call the returned
    ``report(step, fraction)`` inside jitted code once per step (steps count from 1);
    under ``vmap`` one bar shows the largest fraction reported, and a run of the same
    compiled loop that reports step 1 again starts a fresh bar.

    Args:
        desc: the bar's label.
        label: the name shown before the fraction (``"temperature 0.4/1"``).

    Returns:
        ``report(step, fraction)``, to be called inside jitted code.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.progress import progress_fraction
        >>> report = progress_fraction("anneal")
        >>> def body(c, step):
        ...     report(step, step / 4)
        ...     return c + 1.0, None
        >>> float(jax.jit(lambda s: jax.lax.scan(body, 0.0, s)[0])(jnp.arange(1, 5)))
        4.0
    """
    bar_id = next(_ids)

    def report(step, fraction) -> None:
        jax.debug.callback(lambda s, f: _draw_fraction(bar_id, desc, label, s, f), step, fraction)

    return report
