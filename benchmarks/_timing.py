"""Timing shared by the benchmarks: compile seconds apart from run seconds.

JAX reports every compilation phase to ``jax.monitoring``; the listener below adds
them up, so a timed call's wall time splits into the compile seconds JAX reported
and the rest (the run). Import it from a benchmark script run as
``python benchmarks/<name>.py`` (the script's folder is on ``sys.path``).

Importing it also turns off JAX's asynchronous dispatch on CPU, so that no compile
can overlap a computation still running and "wall time minus compile time" is the
run time by construction. (With it on, a library that compiles its next function
while a dispatched call runs would have the overlap subtracted as compile time. For
NumPyro's ``MCMC.run`` we measured no difference: 0.54 s of run time on eight schools
either way.) Import this module before anything runs on the CPU backend, which reads
the flag once.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.monitoring

jax.config.update("jax_cpu_enable_async_dispatch", False)

# The compile phases JAX reports (jax._src.dispatch / pxla / compiler).
_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_compile_seconds: collections.Counter = collections.Counter()


def _record(event: str, duration_secs: float, **_: Any) -> None:
    if event in _COMPILE_EVENTS:
        _compile_seconds[event] += duration_secs


jax.monitoring.register_event_duration_secs_listener(_record)


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``(result, compile seconds, run seconds)`` of one call of ``fn``.

    The result is blocked on, so asynchronous dispatch is inside the run time.
    """
    _compile_seconds.clear()
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    wall = time.perf_counter() - start
    compile_s = sum(_compile_seconds.values())
    return out, compile_s, wall - compile_s


def timed_repeats(fn: Callable[[], Any], repeats: int, stable_seconds: float = 60.0):
    """Call ``fn`` up to ``repeats`` times: ``(last result, first compile s, best run s)``.

    A run longer than ``stable_seconds`` times itself reliably and ends the repeats.
    """
    compile_seconds, run_seconds = [], []
    out = None
    for _ in range(repeats):
        out, compile_s, run_s = timed(fn)
        compile_seconds.append(compile_s)
        run_seconds.append(run_s)
        if run_s > stable_seconds:
            break
    return out, compile_seconds[0], min(run_seconds)
