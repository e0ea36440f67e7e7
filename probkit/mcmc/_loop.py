"""The pure MCMC loop: a kernel, a state and a key in; draws and statistics out.

It is jittable and vmappable and jits nothing itself, so users can call it inside
their own ``jax.jit`` / ``jax.vmap`` (different data per chain, a sampler inside an
outer loop). :func:`probkit.mcmc.sample` is built on it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from probkit._checks import check_key
from probkit.progress import progress_scan

__all__ = ["AdaptedState", "loop", "transition_key"]


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["state", "params", "num_transitions"],
    meta_fields=["kernel", "layout", "mass_matrix"],
)
@dataclasses.dataclass(frozen=True, eq=False)
class AdaptedState:
    """Where a run ended: what :func:`probkit.mcmc.sample` needs to continue it.

    A pytree of its three arrays fields; it unpacks as ``state, params,
    num_transitions``. The other fields are static: what :func:`probkit.mcmc.sample`
    checks before continuing a run from it.

    Attributes:
        state: the kernel's state (for the names: blackjax's state; MALA and RWM run
            in whitened coordinates ``x = scale @ u``), leading chain axis.
        params: the tuned parameters (``step_size``, ``inverse_mass_matrix``, ...),
            a leading chain axis for per-chain kernels.
        num_transitions: transitions done after warm-up, per chain; the next
            transition's key is ``transition_key(key, num_transitions)``.
        kernel: the kernel's name (``"nuts"``, ...; a kernel of your own: its
            function's name).
        layout: the target's sites, ``((name, shape), ...)`` on the unconstrained
            space.
        mass_matrix: the metric's structure (``"diag"``, ``"dense"``, ``"low_rank"``,
            ``"blocks"``).
    """

    state: Any
    params: dict
    num_transitions: jax.Array
    kernel: str | None = None
    layout: tuple | None = None
    mass_matrix: str | None = None

    def __iter__(self):
        return iter((self.state, self.params, self.num_transitions))

    def _replace(self, **changes) -> AdaptedState:
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        chains = jnp.shape(self.num_transitions)
        return (
            f"AdaptedState(kernel={self.kernel!r}, chains={chains[0] if chains else 1}, "
            f"num_transitions={jnp.max(self.num_transitions)!s}, "
            f"params={sorted(self.params) if isinstance(self.params, dict) else '...'})"
        )


def transition_key(key: jax.Array, index) -> jax.Array:
    """The key of transition ``index``: ``fold_in(key, index)``.

    Keys are indexed by the transition's number, not split from the run length, so
    a run continued from its :class:`AdaptedState` draws what one longer run draws.

    Example:
        >>> import jax
        >>> from probkit.mcmc import transition_key
        >>> transition_key(jax.random.key(0), 3).shape
        ()
    """
    return jax.random.fold_in(key, index)


def loop(
    key: jax.Array,
    kernel: Any,
    state: Any,
    num_samples: int,
    *,
    thinning: int = 1,
    statistics: Callable | None = None,
    start: Any = 0,
    progress_bar: bool = False,
    desc: str = "sampling",
):
    """Run ``num_samples x thinning`` transitions of ``kernel`` from ``state``.

    Args:
        key: a ``jax.random`` key; transition ``t`` uses
            :func:`transition_key(key, start + t) <transition_key>`.
        kernel: a :class:`blackjax.SamplingAlgorithm` (its ``step`` is used) or a
            ``step(key, state) -> (state, info)`` function.
        state: the kernel's state to start from.
        num_samples: draws kept.
        thinning: transitions per kept draw (the last one's state is kept).
        statistics: ``(state, info) -> pytree`` recorded per draw; default: the
            ``info`` of the draw's last transition.
        start: the index of the first transition (a continued run passes the number
            of transitions already done).
        progress_bar: draw a host-side bar (safe under ``vmap``: one bar).
        desc: the bar's label.

    Returns:
        ``(last_state, (positions, stats))``: ``positions`` is the kept states'
        ``position``, stacked on a leading ``num_samples`` axis, as is ``stats``.

    Example:
        >>> import blackjax, jax, jax.numpy as jnp
        >>> import probkit as pk
        >>> logdensity = lambda x: -0.5 * jnp.sum(x**2)
        >>> nuts = blackjax.nuts(logdensity, step_size=0.8, inverse_mass_matrix=jnp.ones(2))
        >>> run = jax.jit(lambda key, x0: pk.mcmc.loop(key, nuts, nuts.init(x0), 100))
        >>> last, (draws, info) = run(jax.random.key(0), jnp.zeros(2))
        >>> draws.shape
        (100, 2)
    """
    check_key(key)
    step = kernel.step if hasattr(kernel, "step") else kernel
    if not callable(step):
        raise TypeError(
            "kernel must be a blackjax SamplingAlgorithm or a step(key, state) -> "
            f"(state, info) function, got {type(kernel).__name__}."
        )
    one_draw = draw_function(step, key, statistics, start, thinning)
    return progress_scan(
        one_draw, state, jnp.arange(num_samples), progress_bar=progress_bar, desc=desc
    )


def draw_function(step: Callable, key, statistics: Callable | None, start, thinning: int):
    """``one_draw(state, draw) -> (state, (position, stats))``: ``thinning`` transitions.

    The body of :func:`loop`, which the driver also runs in chunks.
    """
    if statistics is None:
        statistics = _info_only

    def transition(carry, index):
        state, _ = carry
        state, info = step(transition_key(key, index), state)
        return (state, info), None

    def one_draw(state, draw):
        indices = start + draw * thinning + jnp.arange(thinning)
        info0 = jax.eval_shape(step, transition_key(key, 0), state)[1]
        info0 = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), info0)
        (state, info), _ = jax.lax.scan(transition, (state, info0), indices)
        return state, (state.position, statistics(state, info))

    return one_draw


def _info_only(state, info):
    del state
    return info
