"""XLA:CPU's thread pool: one thread on machines with two cores or fewer.

XLA's CPU client runs a program's independent operations on a thread pool as large
as the cores the process may use. For the programs probkit runs on a laptop-sized
machine (NUTS on a posterior of a few parameters, a particle filter over 10^5
particles, tempered SMC), the hand-offs between two threads cost more than the
second core gives, and make run times erratic: on a 2-core machine, NUTS on
posteriordb's earnings model took 4.7-11.3 s per run with two threads and 3.9-4.4 s
with one (benchmarks/results/time_to_result.md). XLA sizes the pool from the
``NPROC`` environment variable when it is set, once, when JAX's CPU backend starts;
probkit sets it at import, before any backend starts, when the process may use at
most two cores. Machines with more cores keep XLA's default (not measured here).

- ``PROBKIT_CPU_THREADS=<n>`` before importing probkit: ``n`` threads on any
  machine; ``PROBKIT_CPU_THREADS=xla`` keeps XLA's default everywhere.
- ``NPROC`` set by the user is never replaced.
- Child processes inherit ``NPROC`` from the environment, as they would any variable.
"""

from __future__ import annotations

import os
import warnings

__all__ = ["ENVIRONMENT_VARIABLE", "cpu_threads"]

ENVIRONMENT_VARIABLE = "PROBKIT_CPU_THREADS"
#: Cores up to which one thread is the default (measured on a 2-core machine).
_ONE_THREAD_UP_TO = 2


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # a JAX without it: assume not started
        return False


def _wanted(value: str, cores: int) -> int | None:
    """Threads for ``PROBKIT_CPU_THREADS=value`` on ``cores`` cores (None: XLA's)."""
    value = value.strip().lower()
    if value in ("", "auto"):
        return 1 if cores <= _ONE_THREAD_UP_TO else None
    if value in ("xla", "default"):
        return None
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(
            f"{ENVIRONMENT_VARIABLE}={value!r} is not understood: set it to a number of "
            "threads (e.g. 1), to 'auto' (one thread on machines with two cores or fewer), "
            "or to 'xla' (XLA's own default), or unset it."
        )
    return threads


def configure_from_environment() -> None:
    """Set ``NPROC`` for XLA's CPU client (called once, when probkit is imported)."""
    if "NPROC" in os.environ or _backend_started():
        return
    cores = _usable_cores()
    try:
        threads = _wanted(os.environ.get(ENVIRONMENT_VARIABLE, "auto"), cores)
    except ValueError as error:  # import goes on, with the default
        warnings.warn(str(error), stacklevel=3)
        threads = _wanted("auto", cores)
    if threads is not None:
        os.environ["NPROC"] = str(threads)


def cpu_threads() -> int | None:
    """Threads XLA's CPU client is asked to use (``NPROC``), or ``None`` for its default
    (as many as the process may use cores).

    Example:
        >>> import probkit as pk
        >>> threads = pk.cpu_threads()
        >>> threads is None or threads >= 1
        True
    """
    value = os.environ.get("NPROC")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
