"""Compiled loop chunks that donate only their large buffers.

The host-driven loops (:mod:`probkit.progress`, :mod:`probkit._chunked`) call one
compiled program per chunk and hand it the loop's state. Donating the state lets XLA
update it in place instead of allocating and copying it on every chunk, which matters
for large buffers (draws, particles) and not at all for small ones.

Donating the small leaves costs time (NUTS's leapfrog steps ran about 10% slower with
the whole carry donated; the compiled loops are op for op the same). The likely cause
is where the carry lives: donated, each small leaf runs the loop in its own separately
allocated entry buffer instead of in the program's contiguous scratch memory.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import equinox as eqx

__all__ = ["DONATE_MIN_BYTES", "donating_jit"]

# Leaves smaller than this are copied rather than donated: a copy of 1 MiB costs well
# under a millisecond per chunk, and chunks last about half a second.
DONATE_MIN_BYTES = 1 << 20


def _large(x: Any) -> bool:
    return eqx.is_array(x) and x.nbytes >= DONATE_MIN_BYTES


def donating_jit(fn: Callable) -> Callable:
    """``equinox.filter_jit(fn)`` for ``fn(first, *state)``, donating large buffers only.

    ``first`` (what every call reads: the step, shared data) is never donated. Of the
    other arguments, array leaves of at least :data:`DONATE_MIN_BYTES` are donated (the
    caller must not reuse them), smaller ones are copied. Which leaves are donated is a
    function of their shapes, so a call with the same shapes compiles nothing.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit._donation import donating_jit
        >>> add = donating_jit(lambda step, x: x + step)
        >>> add(1.0, jnp.zeros(3)).tolist()
        [1.0, 1.0, 1.0]
    """

    def split(first_and_small, large):
        first, small = first_and_small
        return fn(first, *eqx.combine(large, small))

    jitted = eqx.filter_jit(split, donate="all-except-first")

    @functools.wraps(fn)
    def call(first, *state):
        large, small = eqx.partition(state, _large)
        return jitted((first, small), large)

    return call
