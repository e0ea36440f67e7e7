"""Progress bars and interruptible loops for jitted ``lax.scan`` loops.

:func:`interruptible_scan` is what the top-level drivers run: the scan body is
compiled once and the host runs it in chunks of about half a second, so that a
progress bar needs no host callback (programs with callbacks are never written to
the persistent compilation cache) and Ctrl-C stops the loop within about a second,
keeping every step already done (:class:`Interrupted`).

:func:`progress_scan` is a drop-in for :func:`jax.lax.scan`. With
``progress_bar=True`` it sends the step index to the host every ``print_rate``
steps through :func:`jax.debug.callback` and draws a ``tqdm`` bar there.

It is safe under ``vmap`` and ``shard_map``: the step index is an unbatched scan
input, so every chain reports the same index and the host keeps the largest one
seen; a vmapped run of 64 chains draws one bar, not 64. Off by default in the
library (tests and CI stay quiet), on by default in the command-line interface.
"""

from __future__ import annotations

import collections
import itertools
import signal
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from probkit._donation import donating_jit

__all__ = [
    "Interrupted",
    "interruptible_scan",
    "progress_fraction",
    "progress_scan",
    "progress_ticker",
    "run_in_chunks",
]

_lock = threading.Lock()
# Seconds per step of the slowest chunk of the last finished run of each ``pace_key``
# (see run_in_chunks), most recent last; bounded.
_PACES: collections.OrderedDict[Hashable, float] = collections.OrderedDict()
_MAX_PACES = 256
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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a loop; what was done is attached.

    It is a :class:`KeyboardInterrupt`, so code that does not look inside stops as
    usual. Attributes:

    - ``steps_done``: how many steps of the loop finished;
    - ``carry``: the loop's state after those steps;
    - ``ys``: the stacked per-step outputs of those steps (leading axis ``steps_done``);
    - ``partial_result``: what a driver made of them (e.g. an ``MCMCResult`` of the
      draws done), or ``None``.
    """

    def __init__(self, message: str, *, steps_done: int, carry: Any, ys: Any):
        super().__init__(message)
        self.steps_done = steps_done
        self.carry = carry
        self.ys = ys
        self.partial_result: Any = None


class _StopFlag:
    """SIGINT sets a flag (checked between chunks); a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum, frame) -> None:
        if self.requested:  # second Ctrl-C: the default behaviour, now
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)


def _run_chunk(static_and_xs, carry, ys, start, stop):
    f, xs = static_and_xs

    def body(i, carry_and_ys):
        carry, ys = carry_and_ys
        x = jax.tree_util.tree_map(
            lambda a: jax.lax.dynamic_index_in_dim(a, i, 0, keepdims=False), xs
        )  # None stays None: a loop without inputs compiles one program for any length
        carry, y = f(carry, x)
        ys = jax.tree_util.tree_map(
            lambda buffer, value: jax.lax.dynamic_update_index_in_dim(buffer, value, i, 0), ys, y
        )
        return carry, ys

    return jax.lax.fori_loop(start, stop, body, (carry, ys))


# One compiled program per static structure of (f, xs, carry): f's array leaves
# (a jax.tree_util.Partial's data, an equinox Module's parameters) are arguments,
# so new data of the same shapes compiles nothing. The large buffers of the carry and
# the output are donated: each chunk updates them in place.
_run_chunk_jit = donating_jit(_run_chunk)


def _allocate(f, init, xs, length: int):
    x0 = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), xs)
    _, y_shape = jax.eval_shape(f, init, x0)
    return jax.tree_util.tree_map(lambda s: jnp.zeros((length, *s.shape), s.dtype), y_shape)


def interruptible_scan(
    f: Callable,
    init: Any,
    xs: Any = None,
    length: int | None = None,
    *,
    progress_bar: bool = False,
    desc: str = "",
    chunk_seconds: float = 0.5,
    partial_result: Callable[[Any, Any], Any] | None = None,
):
    """``jax.lax.scan(f, init, xs, length)`` run from the host in chunks, for drivers.

    The body is compiled once (for any chunk length) and run in chunks of about
    ``chunk_seconds``: the first chunks are short and time the step, later ones
    are sized from that. Between chunks the host draws the progress bar and checks
    for Ctrl-C, which stops the loop within about ``chunk_seconds`` and raises
    :class:`Interrupted` carrying the steps done. Results equal ``lax.scan``'s.

    Not for use under ``jax.jit``/``vmap`` (the pure loops use ``lax.scan``); pass
    data to ``f`` as array leaves of a :class:`jax.tree_util.Partial` or an equinox
    Module, so that a second call with new data of the same shapes compiles nothing.
    In a multi-process run every process uses the same fixed chunk schedule (the
    chunks contain collectives), so chunk lengths do not depend on timing there.

    Args:
        f: the scan body ``(carry, x) -> (carry, y)``.
        init: the initial carry (its large buffers are donated: do not reuse them).
        xs: the scanned inputs, leading axis ``length`` (or ``None`` with ``length``).
        length: number of steps when ``xs`` is ``None``.
        progress_bar: draw a bar on the host.
        desc: the bar's label.
        chunk_seconds: the wall time a chunk aims at (Ctrl-C's latency).
        partial_result: ``(carry, ys) -> result``, the driver's own result type made from
            the steps done; on Ctrl-C the :class:`Interrupted` raised carries it as
            ``partial_result`` (a driver usually passes the function it returns with).

    Returns:
        ``(carry, ys)`` as :func:`jax.lax.scan` returns them.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.progress import interruptible_scan
        >>> carry, ys = interruptible_scan(lambda c, x: (c + x, c), jnp.zeros(()), jnp.ones(5))
        >>> float(carry), ys.tolist()
        (5.0, [0.0, 1.0, 2.0, 3.0, 4.0])
    """
    if chunk_seconds <= 0:
        raise ValueError(f"chunk_seconds={chunk_seconds} must be positive.")
    if xs is None:
        if length is None:
            raise ValueError("interruptible_scan needs `length` when `xs` is None.")
        length = int(length)
    else:
        leaves = jax.tree_util.tree_leaves(xs)
        if not leaves:
            raise ValueError("xs has no array leaves; pass `length` and xs=None instead.")
        n = int(jnp.shape(leaves[0])[0])
        if length is not None and int(length) != n:
            raise ValueError(f"length={length} differs from the leading axis of xs ({n}).")
        length = n
    if length < 0:
        raise ValueError(f"length={length} must be >= 0.")

    def run(carry_and_ys, begin, end):
        carry, ys = carry_and_ys
        return _run_chunk_jit((f, xs), carry, ys, begin, end)

    def interrupted(done, carry_and_ys, message):
        carry, ys = carry_and_ys
        ys = jax.tree_util.tree_map(lambda a, k=done: a[:k], ys)
        stopped = Interrupted(message, steps_done=done, carry=carry, ys=ys)
        if partial_result is not None:
            stopped.partial_result = partial_result(carry, ys)
        return stopped

    return run_in_chunks(
        run,
        lambda: (init, _allocate(f, init, xs, length)),
        length,
        progress_bar=progress_bar,
        desc=desc,
        chunk_seconds=chunk_seconds,
        interrupted=interrupted,
    )


def _stop_agreed(requested: bool, multiprocess: bool) -> bool:
    """Whether to stop after this chunk. Across processes every one must decide the
    same (one Ctrl-C may reach them between different chunks): a process that stopped
    alone would leave the others waiting in a collective. One small all-gather per
    chunk settles it."""
    if not multiprocess:
        return requested
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.asarray(requested, dtype=np.int32))
    return bool(np.any(flags))


def run_in_chunks(
    run: Callable,
    make_state: Callable[[], Any],
    length: int,
    *,
    progress_bar: bool = False,
    desc: str = "",
    chunk_seconds: float = 0.5,
    interrupted: Callable[[int, Any, str], KeyboardInterrupt] | None = None,
    unit: str = "steps",
    finished: Callable[[Any], bool] | None = None,
    pace_key: Hashable | None = None,
):
    """The host side of a chunked loop: ``state = run(state, start, stop)`` until done.

    ``run`` is a compiled program that takes the loop's steps ``start .. stop - 1``
    (dynamic bounds: one program for every chunk). The first chunks are short and
    time the step; later ones last about ``chunk_seconds``. Between chunks the host
    draws the progress bar and checks for Ctrl-C: after one, the loop stops and
    ``interrupted(steps_done, state, message)`` is raised (default: a bare
    :class:`Interrupted`). A second Ctrl-C raises :class:`KeyboardInterrupt` at once.

    Args:
        run: ``(state, start, stop) -> state`` (start and stop are int32 scalars).
        make_state: builds the initial state; called with the Ctrl-C handler in
            place, so that an interrupt while it compiles is not lost.
        length: the number of steps.
        progress_bar: draw a bar on the host.
        desc: the bar's label, and the phase named in the message.
        chunk_seconds: the wall time a chunk aims at (Ctrl-C's latency).
        interrupted: builds the exception raised on Ctrl-C.
        unit: what a step is called in the message (``"draws per chain"``).
        finished: ``state -> bool``, for loops that can end early (a while loop
            that reached its condition): checked after every chunk.
        pace_key: names the compiled loop (hashable; ``None``: not remembered). A run
            with a key seen before sizes its first chunk from the slowest step time
            of that key's last finished run, instead of timing chunks of 1 and 2
            steps first: a warm call of a short run is then one chunk, not five
            (each chunk costs a dispatch and a wait, about a millisecond).

    Returns:
        The state after ``length`` steps.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.progress import run_in_chunks
        >>> add = jax.jit(lambda c, a, b: c + (b - a))
        >>> int(run_in_chunks(add, lambda: jnp.zeros((), jnp.int32), 10))
        10
    """
    if chunk_seconds <= 0:
        raise ValueError(f"chunk_seconds={chunk_seconds} must be positive.")
    length = int(length)
    multiprocess = jax.process_count() > 1
    # Multi-process runs keep their fixed schedule (below): chunk lengths must agree.
    pace = None if (pace_key is None or multiprocess) else _PACES.get(pace_key)
    done, size = 0, 1 if pace is None else max(1, int(chunk_seconds / pace))
    slowest = 0.0  # seconds per step of the slowest timed chunk
    # The handler is in place before anything compiles: a Ctrl-C during compilation
    # stops the loop after its first step instead of inside XLA's compiler.
    stop = _StopFlag()
    bar = None
    try:
        with stop:
            state = make_state()
            if length == 0:
                return state
            if progress_bar:
                from tqdm.auto import tqdm

                bar = tqdm(total=length, desc=desc, leave=True, dynamic_ncols=True)
            while done < length:
                size = min(size, length - done)
                started = time.perf_counter()
                state = run(
                    state, jnp.asarray(done, jnp.int32), jnp.asarray(done + size, jnp.int32)
                )
                jax.block_until_ready(state)
                elapsed = time.perf_counter() - started
                # The first chunk includes compilation, unless the pace is known (then a
                # compilation in it only makes the remembered pace slower: safe).
                first = done == 0 and pace is None
                if not first:
                    slowest = max(slowest, elapsed / size)
                done += size
                if multiprocess:
                    size = max(1, length // 20)
                elif first:
                    size = 2
                else:
                    wanted = int(chunk_seconds * size / max(elapsed, 1e-9))
                    size = max(1, min(wanted, 16 * size))
                if finished is not None and finished(state):
                    break
                if bar is not None:
                    bar.update(done - bar.n)
                if done < length and _stop_agreed(stop.requested, multiprocess):
                    what = f" of {desc}" if desc else ""
                    message = f"interrupted after {done} of {length} {unit}{what}"
                    if interrupted is None:
                        raise Interrupted(message, steps_done=done, carry=state, ys=None)
                    raise interrupted(done, state, message)
    finally:
        if bar is not None:
            bar.close()
    if pace_key is not None and slowest > 0:
        _remember_pace(pace_key, slowest)
    return state


def _remember_pace(key: Hashable, seconds_per_step: float) -> None:
    with _lock:
        _PACES[key] = seconds_per_step
        _PACES.move_to_end(key)
        while len(_PACES) > _MAX_PACES:
            _PACES.popitem(last=False)
