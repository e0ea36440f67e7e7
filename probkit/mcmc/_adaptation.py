"""Stan-style window adaptation for kernels that take no mass matrix (MALA, RWM).

blackjax's ``window_adaptation`` tunes kernels that accept an
``inverse_mass_matrix`` (HMC, NUTS). blackjax's MALA and random-walk kernels take
only a step size, so probkit preconditions them by a linear change of variables
``x = L u`` with ``L L^T`` the estimated posterior covariance (diagonal or dense):
the kernel runs on ``u`` with a scalar step size, which is exactly a MALA / RWM
with preconditioner ``L L^T`` on ``x``. The schedule (fast / expanding slow /
fast windows), the Welford covariance estimator, its regularisation and the dual
averaging of the step size are blackjax's, as Stan uses them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probkit._lazy import blackjax
from probkit.progress import progress_scan

__all__ = [
    "PreconditionedParams",
    "WindowAdaptation",
    "WindowState",
    "apply_scale",
    "preconditioned_window_adaptation",
    "window_adaptation",
]


class PreconditionedParams(NamedTuple):
    """Adapted parameters: scalar ``step_size`` and scale ``L`` (vector or matrix)."""

    step_size: jax.Array
    scale: jax.Array


def apply_scale(scale: jax.Array, u: jax.Array) -> jax.Array:
    """``x = L u`` for a diagonal (vector) or dense (lower-triangular) ``L``."""
    return scale @ u if scale.ndim == 2 else scale * u


def _solve_scale(scale: jax.Array, x: jax.Array) -> jax.Array:
    if scale.ndim == 2:
        return jax.scipy.linalg.solve_triangular(scale, x, lower=True)
    return x / scale


def _regularised_scale(covariance: jax.Array, count: jax.Array, diagonal: bool) -> jax.Array:
    # Stan's shrinkage towards 1e-3 * I for small windows.
    weight = count / (count + 5.0)
    shrink = 1e-3 * (5.0 / (count + 5.0))
    if diagonal:
        return jnp.sqrt(weight * covariance + shrink)
    d = covariance.shape[0]
    return jnp.linalg.cholesky(weight * covariance + shrink * jnp.eye(d, dtype=covariance.dtype))


class WindowState(NamedTuple):
    """The window adaptation's state: the step-size averaging, the metric estimate and
    the parameters in force for the next transition."""

    step_size_state: object
    metric_state: object
    step_size: jax.Array
    inverse_mass_matrix: jax.Array


class WindowAdaptation(NamedTuple):
    """Stan's window adaptation as pure pieces, to run inside a loop of one's own.

    blackjax's ``window_adaptation`` runs its own ``lax.scan`` over the warm-up and
    returns the tuned parameters; the sampling loop is then a second program with a
    second copy of the kernel. These pieces (blackjax's schedule, dual averaging and
    metric core, combined as blackjax's staged adaptation combines them) let one loop
    call the kernel once per transition and update the adaptation only during the
    warm-up: one compiled kernel for both phases.

    Attributes:
        init: ``num_dims -> WindowState``.
        update: ``(state, step, position, grad, acceptance_rate) -> state`` after
            warm-up transition ``step`` (``0 .. num_steps - 1``).
        final: ``state -> (step_size, inverse_mass_matrix)``, the tuned parameters.
    """

    init: Callable
    update: Callable
    final: Callable


@functools.lru_cache(maxsize=64)
def _stan_schedule(num_steps: int) -> np.ndarray:
    """Stan's warm-up schedule, ``(num_steps, 2)`` int32 rows ``(stage, window end)``
    (blackjax's ``build_schedule``), read-only.

    Cached: blackjax builds it in Python one step at a time, 13 ms for 1000 steps,
    and every ``mcmc.sample`` call asks for it.
    """
    with jax.ensure_compile_time_eval():  # a constant, also when asked inside a trace
        schedule = np.asarray(
            blackjax.adaptation.staged_adaptation.build_schedule(num_steps), dtype=np.int32
        )
    schedule.setflags(write=False)
    return schedule


def window_adaptation(
    metric, num_steps: int, initial_step_size: float, target_accept: float, dtype
) -> WindowAdaptation:
    """The :class:`WindowAdaptation` of ``num_steps`` warm-up transitions.

    ``metric`` is a blackjax ``MetricCore`` (``init(num_dims)``, ``update(state,
    position, grad)``, ``final(state)``). Step-size averaging runs throughout; the
    metric accumulates in slow windows and is re-estimated at each slow window's end,
    where the averaging restarts from the window's average step size (Stan's rule,
    as blackjax's ``staged_adaptation``).

    Example:
        >>> import jax.numpy as jnp
        >>> from blackjax.adaptation.metric_recipes import lookup_recipe
        >>> from probkit.mcmc._adaptation import window_adaptation
        >>> core = lookup_recipe("welford_diag").build_core()
        >>> adapt = window_adaptation(core, 200, 1.0, 0.8, jnp.float32)
        >>> state = adapt.init(3)
        >>> state = adapt.update(state, 0, jnp.zeros(3), jnp.zeros(3), 0.9)
        >>> step_size, inverse_mass_matrix = adapt.final(state)
        >>> inverse_mass_matrix.shape
        (3,)
    """
    da_init, da_update, da_final = blackjax.adaptation.step_size.dual_averaging_adaptation(
        target_accept
    )
    schedule = _stan_schedule(num_steps)

    def init(num_dims: int) -> WindowState:
        metric_state = metric.init(num_dims)
        return WindowState(
            da_init(initial_step_size),
            metric_state,
            jnp.asarray(initial_step_size, dtype),
            metric_state.inverse_mass_matrix,
        )

    def end_of_slow_window(ws: WindowState) -> WindowState:
        metric_state = metric.final(ws.metric_state)
        step_size_state = da_init(da_final(ws.step_size_state))
        return WindowState(
            step_size_state,
            metric_state,
            jnp.exp(step_size_state.log_step_size).astype(dtype),
            metric_state.inverse_mass_matrix,
        )

    def update(ws: WindowState, step, position, grad, acceptance_rate) -> WindowState:
        stage, window_end = jnp.asarray(schedule)[step, 0], jnp.asarray(schedule)[step, 1]
        step_size_state = da_update(ws.step_size_state, acceptance_rate)
        metric_state = jax.lax.cond(
            stage == 1,
            lambda m: metric.update(m, position, grad),
            lambda m: m,
            ws.metric_state,
        )
        ws = WindowState(
            step_size_state,
            metric_state,
            jnp.exp(step_size_state.log_step_size).astype(dtype),
            ws.inverse_mass_matrix,
        )
        return jax.lax.cond(window_end.astype(bool), end_of_slow_window, lambda w: w, ws)

    def final(ws: WindowState):
        step_size = jnp.exp(ws.step_size_state.log_step_size_avg).astype(dtype)
        return step_size, ws.metric_state.inverse_mass_matrix

    return WindowAdaptation(init, update, final)


def make_u_kernel(kernel: str, logdensity: Callable, params: PreconditionedParams):
    """The blackjax algorithm on ``u`` for the given scale and step size."""

    def logdensity_u(u):
        return logdensity(apply_scale(params.scale, u))

    if kernel == "mala":
        return blackjax.mala(logdensity_u, params.step_size)
    return blackjax.normal_random_walk(logdensity_u, params.step_size)


def initial_step_size(kernel: str, num_dims: int) -> float:
    """A starting step size in whitened coordinates (dual averaging refines it)."""
    if kernel == "rwm":
        return 2.38 / np.sqrt(num_dims)  # optimal scaling for a Gaussian target
    return float(num_dims ** (-1.0 / 3.0))


def preconditioned_window_adaptation(
    kernel: str,
    logdensity: Callable,
    position: jax.Array,
    key: jax.Array,
    num_steps: int,
    *,
    diagonal: bool,
    target_accept: float,
    step_size: float | None = None,
    progress_bar: bool = False,
    mask: np.ndarray | None = None,
    initial_covariance: jax.Array | None = None,
    adapt: bool = True,
):
    """Warm up a MALA / RWM chain from the flat ``position``.

    ``mask`` (dense only) keeps the covariance estimate's block structure: entries
    where it is zero are dropped at every window's end. ``initial_covariance`` is
    the preconditioner until the first slow window ends (a vector when ``diagonal``,
    a matrix otherwise); with ``adapt=False`` it is kept throughout and only the
    step size is tuned.

    Returns ``(u_state, params)``: the last state in whitened coordinates and the
    adapted :class:`PreconditionedParams`.
    """
    num_dims = position.shape[0]
    dtype = position.dtype
    eps0 = initial_step_size(kernel, num_dims) if step_size is None else step_size
    if initial_covariance is not None:
        covariance = jnp.asarray(initial_covariance, dtype)
        scale0 = jnp.sqrt(covariance) if diagonal else jnp.linalg.cholesky(covariance)
    else:
        scale0 = jnp.ones(num_dims, dtype) if diagonal else jnp.eye(num_dims, dtype=dtype)
    params0 = PreconditionedParams(jnp.asarray(eps0, dtype), scale0)
    if num_steps == 0:
        return make_u_kernel(kernel, logdensity, params0).init(position), params0

    da_init, da_update, da_final = blackjax.adaptation.step_size.dual_averaging_adaptation(
        target_accept
    )
    wf_init, wf_update, wf_final = blackjax.adaptation.mass_matrix.welford_algorithm(diagonal)
    schedule = jnp.asarray(_stan_schedule(num_steps))

    def init_state(params, u):
        return make_u_kernel(kernel, logdensity, params).init(u)

    class Carry(NamedTuple):
        state: object
        scale: jax.Array
        da: object
        welford: object

    carry0 = Carry(init_state(params0, position), scale0, da_init(eps0), wf_init(num_dims))

    def one_step(carry: Carry, xs):
        step_key, (stage, window_end) = xs
        eps = jnp.exp(carry.da.log_step_size)
        params = PreconditionedParams(eps, carry.scale)
        state, info = make_u_kernel(kernel, logdensity, params).step(step_key, carry.state)
        acceptance = jnp.where(jnp.isfinite(info.acceptance_rate), info.acceptance_rate, 0.0)
        da = da_update(carry.da, acceptance)
        x = apply_scale(carry.scale, state.position)
        welford = carry.welford
        if adapt:  # a fixed preconditioner needs no covariance estimate
            welford = jax.lax.cond(stage == 1, lambda w: wf_update(w, x), lambda w: w, welford)

        def end_window(_):
            if adapt:
                covariance, count, _ = wf_final(welford)
                if mask is not None:
                    covariance = covariance * jnp.asarray(mask, covariance.dtype)
                new_scale = _regularised_scale(covariance, count, diagonal)
            else:
                new_scale = carry.scale
            new_u = _solve_scale(new_scale, x)
            new_params = PreconditionedParams(jnp.exp(da.log_step_size_avg), new_scale)
            return Carry(
                init_state(new_params, new_u),
                new_scale,
                da_init(jnp.exp(da.log_step_size_avg)),
                wf_init(num_dims),
            )

        new_carry = jax.lax.cond(
            window_end.astype(bool),
            end_window,
            lambda _: Carry(state, carry.scale, da, welford),
            None,
        )
        return new_carry, None

    keys = jax.random.split(key, num_steps)
    last, _ = progress_scan(
        one_step,
        carry0,
        (keys, (schedule[:, 0], schedule[:, 1])),
        progress_bar=progress_bar,
        desc="warm-up",
    )
    params = PreconditionedParams(da_final(last.da), last.scale)
    # Re-initialise with the final step size (the state itself is independent of it).
    return init_state(params, last.state.position), params
