"""The MCMC driver: validation, warm-up, multi-chain runs, sharding and results.

Layers: :mod:`probkit.mcmc._kernels` says what each kernel name means (warm-up,
blackjax algorithm, statistics); :func:`probkit.mcmc.loop` runs a kernel (pure,
jittable); :func:`sample` validates before compiling, runs chains (vectorised,
sequential or sharded), and returns an :class:`~probkit.results.MCMCResult`.

Compilation is ``equinox.filter_jit``'s: the Target is an argument (its arrays are
traced, its functions and the settings key the compilation), so a second call with
new data of the same shapes compiles nothing, and nothing that changes what is
computed can be a stale cache entry.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from probkit._checks import key_hint
from probkit._chunked import (
    batched,
    post_program,
    pre_program,
    run_chunk,
    split_at_loop,
    strong_types,
    write_row,
)
from probkit._threefry import cpu_fast_key
from probkit.distributed import chain_mesh, check_divisible, gather, leading_axis_sharding
from probkit.mcmc._kernels import (
    KERNELS,
    MEADS_MIN_CHAINS_PER_FOLD,
    Settings,
    check_kernel,
    generic_statistics,
    meads_num_folds,
    pathfinder_starts,
)
from probkit.mcmc._loop import AdaptedState, draw_function, loop, transition_key
from probkit.mcmc._mass_matrix import resolve_mass_matrix
from probkit.progress import Interrupted, run_in_chunks
from probkit.results import MCMCResult, SamplingWarning
from probkit.target import REVERSE_MODE_MESSAGE, Target, from_numpyro, infer_discrete

__all__ = ["sample"]

_CHAIN_METHODS = ("vectorized", "sequential", "sharded")
_MASS_MATRICES = ("diag", "dense", "low_rank")


def _diagnose_callable(target, model_args, model_kwargs, err: Exception) -> None:
    """Raise the error that names the fix when ``target`` is not a NumPyro model run
    with these arguments; return (for ``err`` to be raised) when it is one."""
    from probkit.target import _trace_model

    try:
        trace = _trace_model(target, model_args, model_kwargs or {})
    except Exception as trace_err:  # noqa: BLE001 - re-raised with the fix named
        if not model_args and not model_kwargs:
            raise TypeError(
                f"Could not run {getattr(target, '__name__', target)!r} as a NumPyro "
                f"model without arguments ({type(trace_err).__name__}: {trace_err}). Pass "
                "its data with model_args=/model_kwargs=, or, for a plain log-density "
                "function, wrap it: probkit.Target.from_logdensity(fn, initial_position)."
            ) from trace_err
        raise trace_err from None
    if not any(site["type"] == "sample" for site in trace.values()):
        raise TypeError(
            f"{getattr(target, '__name__', 'target')!r} has no numpyro.sample site. For a "
            "plain log-density function use probkit.Target.from_logdensity(fn, "
            "initial_position)."
        ) from err


def _as_target(target, model_args, model_kwargs) -> Target:
    if isinstance(target, Target):
        if model_args or model_kwargs:
            raise TypeError(
                "model_args/model_kwargs are only for NumPyro models; a Target is already "
                "bound to its data. Drop them, or pass the model function instead."
            )
        return target
    if callable(target):
        try:
            return from_numpyro(target, *model_args, **dict(model_kwargs or {}))
        except Exception as err:  # noqa: BLE001 - diagnosed below, else re-raised
            # Only now run the callable eagerly to name the mistake: an eager trace on
            # every call would cost a tenth of a small model's warm call.
            _diagnose_callable(target, model_args, model_kwargs, err)
            raise
    raise TypeError(
        f"target must be a probkit.Target or a NumPyro model function, got {type(target).__name__}."
    )


#: Kernels that sample a target with Gibbs sites (discrete sites with an infinite
#: support): their continuous move alternates with integer Metropolis sweeps.
_GIBBS_KERNELS = ("nuts", "hmc")


def _warn_inexact_counts(target: Target, draws) -> None:
    """Counts in a float32 position are exact only below 2^24: above, the jumps of the
    Gibbs sweep round to even numbers and the draws are wrong. Say so."""
    draws = np.asarray(draws)
    if draws.dtype.itemsize >= 8 or draws.size == 0:
        return
    largest = float(np.max(np.abs(draws[..., target.gibbs_indices])))
    if largest >= 2.0**24:
        warnings.warn(
            f"discrete site(s) {list(target.gibbs_sites)} reached {largest:.3g}, beyond the "
            "2^24 up to which float32 holds every integer: the draws of these counts are "
            "not exact. Enable float64 before building the target "
            "(jax.config.update('jax_enable_x64', True)).",
            SamplingWarning,
            stacklevel=3,
        )


def _check_gibbs(target: Target, kernel: str | None, mass_matrix) -> None:
    if not target.gibbs_sites:
        return
    if kernel not in _GIBBS_KERNELS:
        what = "a kernel of your own" if kernel is None else f"kernel={kernel!r}"
        raise ValueError(
            f"{target.name} has discrete latent site(s) {list(target.gibbs_sites)} with an "
            f"infinite support (they cannot be summed out), which {what} would move as if "
            "they were continuous. Use kernel='nuts' (default) or 'hmc': they update those "
            "sites by Metropolis-within-Gibbs. (Or marginalise them in the model, or bound "
            "their support so that probkit sums them out.)"
        )
    if isinstance(mass_matrix, str) and mass_matrix == "low_rank":
        raise ValueError(
            f"mass_matrix='low_rank' is not available with discrete latent site(s) "
            f"{list(target.gibbs_sites)} (Metropolis-within-Gibbs): use 'diag' or 'dense'."
        )


def _check_positive_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {key_hint(value, name)}.")
    return int(value)


class _UserKernel:
    """A user-supplied kernel: a blackjax ``SamplingAlgorithm`` or an ``(init, step)``
    pair on the target's positions. Compared by its functions' identity."""

    __slots__ = ("init", "step", "name")

    def __init__(self, init: Callable, step: Callable, name: str):
        self.init, self.step, self.name = init, step, name

    def __hash__(self) -> int:
        return hash((self.init, self.step))

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, _UserKernel) and self.init is other.init and self.step is other.step
        )


def _user_kernel(kernel: Any) -> _UserKernel | None:
    if isinstance(kernel, str):
        return None
    if hasattr(kernel, "init") and hasattr(kernel, "step"):
        init, step = kernel.init, kernel.step
    elif isinstance(kernel, tuple) and len(kernel) == 2:
        init, step = kernel
    else:
        raise TypeError(
            f"kernel must be a name ({sorted(KERNELS)}), a blackjax SamplingAlgorithm or an "
            f"(init, step) pair, got {type(kernel).__name__}."
        )
    if not (callable(init) and callable(step)):
        raise TypeError(
            "kernel's init and step must be functions: init(position) -> state, "
            "step(key, state) -> (state, info)."
        )
    return _UserKernel(init, step, _kernel_name(step))


def _kernel_name(step: Callable) -> str:
    """A readable name: ``blackjax.mcmc.mala`` for blackjax's algorithms (whose ``step``
    is one generic closure), the function's qualified name otherwise."""
    if getattr(step, "__module__", "") == "blackjax.base":
        for cell in step.__closure__ or ():
            module = getattr(cell.cell_contents, "__module__", "") or ""
            if module.startswith("blackjax.") and module != "blackjax.base":
                return module
    return getattr(step, "__qualname__", None) or type(step).__name__


def _check_user_kernel(kernel: _UserKernel, target: Target, init_state) -> None:
    """Shapes only, before compiling: ``init`` and ``step`` keep to the pair's contract."""
    if init_state is None:
        try:
            state = jax.eval_shape(kernel.init, target.example_position)
        except TypeError as error:
            raise TypeError(
                "kernel's init must be init(position) -> state, with position a pytree like "
                f"the target's unconstrained position; calling it failed: {error}"
            ) from error
    else:
        state = jax.tree_util.tree_map(lambda x: x[0], init_state.state)
    if not hasattr(state, "position"):
        raise TypeError(
            "kernel's state must have a .position field (the chain's position), as "
            "blackjax's states do (e.g. a NamedTuple with position and logdensity); "
            f"init returned {type(state).__name__}."
        )
    try:
        out = jax.eval_shape(kernel.step, jax.random.PRNGKey(0), state)
    except TypeError as error:
        raise TypeError(
            f"kernel's step must be step(key, state) -> (state, info); calling it failed: {error}"
        ) from error
    if not (isinstance(out, tuple) and len(out) == 2) or (
        jax.tree_util.tree_structure(out[0]) != jax.tree_util.tree_structure(state)
    ):
        raise TypeError(
            "kernel's step must return a pair (new_state, info), new_state of the same "
            f"structure as its input state; it returned {jax.tree_util.tree_structure(out)}."
        )


# -- one chain, per-chain kernels ---------------------------------------------------------
def _logdensity_of(target: Target) -> tuple[Callable, Callable]:
    _, unravel = ravel_pytree(target.example_position)

    def logdensity(x):
        return target.logdensity(unravel(x))

    return logdensity, unravel


class _ByValue:
    """A driver piece compared by value (kernel, settings, the target's static part),
    so that compiled programs and loop splits are reused across calls."""

    def __init__(self, kernel, settings: Settings, target_static):
        self.kernel, self.settings, self.static = kernel, settings, target_static
        self._key = (kernel, settings, _static_signature(target_static))

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and self._key == other._key


class _Warmup(_ByValue):
    """One chain's warm-up (or, cross-chain, every chain's): ``(shared, chain) ->
    (state, params)`` with ``shared`` the target's arrays and ``chain`` ``(key, x0)``."""

    def __call__(self, shared, chain):
        key, x0 = chain
        target = eqx.combine(shared, self.static)
        logdensity, unravel = _logdensity_of(target)
        if isinstance(self.kernel, _UserKernel):
            state = self.kernel.init(unravel(x0))
            if self.settings.num_warmup:  # burn-in: a user kernel has nothing to tune
                state, _ = loop(key, self.kernel.step, state, self.settings.num_warmup)
            return state, {}
        return KERNELS[self.kernel].warmup(key, logdensity, x0, self.settings)


class _SampleStep(_ByValue):
    """Draw ``i`` of one chain: ``(state, (position, stats))``; the chunked loop's step.

    ``shared`` is ``(target arrays, params)`` and ``chain`` ``(key, params, start)``;
    the parameters are per chain (``shared``'s are ``None``) or, for cross-chain
    kernels, shared (``chain``'s are ``None``)."""

    def parts(self, shared, chain):
        (target_arrays, shared_params), (key, chain_params, start) = shared, chain
        params = chain_params if shared_params is None else shared_params
        target = eqx.combine(target_arrays, self.static)
        logdensity, unravel = _logdensity_of(target)
        if isinstance(self.kernel, _UserKernel):
            step, statistics = self.kernel.step, generic_statistics

            def position(p):
                return ravel_pytree(p)[0]
        else:
            spec = KERNELS[self.kernel]
            step = spec.algorithm(logdensity, params, self.settings.option).step

            def statistics(s, i):
                return spec.statistics(s, i, params)

            def position(p):
                return spec.position(params, p)

        one_draw = draw_function(step, key, statistics, start, self.settings.thinning)
        return one_draw, position

    def _step(self, i, shared, chain, carry):
        one_draw, _ = self.parts(shared, chain)
        state, y = one_draw(carry[1], i)
        return ((), state), y

    def __call__(self, i, shared, chain, carry):
        # Through one jit (keyed by this step's value): the output buffers' shapes and
        # the chunk program then share a single trace of the sampler.
        return _traced_step(self, i, shared, chain, carry)


@functools.partial(jax.jit, static_argnums=0)
def _traced_step(step: _SampleStep, i, shared, chain, carry):
    return step._step(i, shared, chain, carry)


def _static_signature(static) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(static)
    return tuple(leaves), treedef


@eqx.filter_jit
def _call(fn, batch, shared, chain):
    return batched(fn, batch, shared, chain)


@eqx.filter_jit
def _sampling_buffers(step, batch, shared, chain, state):
    num = step.settings.num_samples

    def one(shared, chain_and_state):
        chain, state = chain_and_state
        _, y = jax.eval_shape(step, jnp.zeros((), jnp.int32), shared, chain, ((), state))
        return jax.tree_util.tree_map(lambda a: jnp.zeros((num, *a.shape), a.dtype), y)

    return batched(one, batch, shared, (chain, state))


@eqx.filter_jit
def _positions_to_draws(step, batch, shared, chain, positions):
    def one(shared, chain_and_positions):
        chain, positions = chain_and_positions
        _, position = step.parts(shared, chain)
        return jax.vmap(position)(positions)

    return batched(one, batch, shared, (chain, positions))


def _interrupted_warmup(num_warmup: int):
    def interrupted(done, state, message):
        del state, message
        return Interrupted(
            f"Interrupted during warm-up after {done} of {num_warmup} warm-up steps per chain: "
            "no draws were made yet (warm-up draws are discarded), so nothing is kept.",
            steps_done=done,
            carry=None,
            ys=None,
        )

    return interrupted


def _abstract(tree, drop: int = 0):
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape[drop:], a.dtype), tree)


def _warm_up(fn: _Warmup, batch, shared, chain, *, desc: str, bar: bool, interrupt=None):
    """``fn(shared, chain)`` with its loop run in interruptible chunks."""
    num = fn.settings.num_warmup
    split = None
    if num > 0:
        try:
            one = 0 if batch is None else 1  # trace one chain
            split = split_at_loop(fn, fn, _abstract(shared), _abstract(chain, drop=one), num)
        except LookupError:
            split = None  # no single warm-up loop found: run it in one piece
    if split is None:
        return _call(fn, batch, shared, chain)
    values = {}

    def make_state():
        shared_values, chain_values, carry, ys = pre_program(split, batch, shared, chain)
        values["shared"], values["chain"] = shared_values, chain_values
        return carry, ys

    def run(state, start, stop):
        carry, ys = state
        return run_chunk(
            split.step, batch, values["shared"], values["chain"], carry, ys, start, stop
        )

    carry, ys = run_in_chunks(
        run,
        make_state,
        num,
        progress_bar=bar,
        desc=desc,
        interrupted=interrupt or _interrupted_warmup(num),
        pace_key=(fn, batch, "warm-up"),
    )
    return post_program(split, batch, values["shared"], values["chain"], carry, ys)


def _draw(step: _SampleStep, batch, shared, chain, state, *, desc: str, bar: bool, interrupted):
    """Every chain's draws from ``state``: ``(positions, stats, last_state)``."""

    def make_state():
        return ((), state), _sampling_buffers(step, batch, shared, chain, state)

    def run(carry_and_ys, start, stop):
        carry, ys = carry_and_ys
        return run_chunk(step, batch, shared, chain, carry, ys, start, stop)

    (_, last), (positions, stats) = run_in_chunks(
        run,
        make_state,
        step.settings.num_samples,
        progress_bar=bar,
        desc=desc,
        interrupted=interrupted,
        pace_key=(step, batch, "sampling"),
    )
    return positions, stats, last


# -- warm-up and sampling in one loop (kernels with a ``tuning``) --------------------------
class _TunedCarry(NamedTuple):
    """One chain's loop state: the kernel's state, the adaptation's, the parameters in
    force for the next transition, and the draws' buffers."""

    state: Any
    tuning: Any
    params: dict
    positions: jax.Array
    stats: dict


class _TunedStep(_ByValue):
    """Transition ``t`` of one chain's whole run: ``t < num_warmup`` is a warm-up
    transition (the adaptation updates after it), later ones are sampling transitions
    with the tuned parameters, kept every ``thinning``-th.

    One compiled loop for both phases: the kernel is traced and compiled once, where a
    separate warm-up would compile a second copy. ``shared`` is the target's arrays,
    ``chain`` is ``(warm-up key, sampling key, x0)``; warm-up transition ``t`` uses
    ``transition_key(warm-up key, t)``, sampling transition ``n`` (counted from the
    end of the warm-up) ``transition_key(sampling key, n)``, as a continued run does."""

    def parts(self, shared, chain):
        target = eqx.combine(shared, self.static)
        logdensity, _ = _logdensity_of(target)
        spec = KERNELS[self.kernel]
        dtype = chain[2].dtype  # the chains' start, as the driver's check used
        return logdensity, spec, spec.tuning(self.settings, self.settings.num_dims, dtype)

    def transition(self, t, shared, chain, state, tuning, params):
        """``(state, tuning, params, (position, stats))`` after transition ``t``."""
        logdensity, spec, window = self.parts(shared, chain)
        warm_key, sample_key, _ = chain
        num_warmup = self.settings.num_warmup
        warming = t < num_warmup
        key = jax.lax.cond(
            warming,
            lambda: transition_key(warm_key, t),
            lambda: transition_key(sample_key, t - num_warmup),
        )
        algorithm = spec.algorithm(logdensity, params, self.settings.option)
        state, info = algorithm.step(key, state)
        stats = spec.statistics(state, info, params)

        def adapt(tuning_params):
            tuning, _ = tuning_params
            tuning = window.update(
                tuning,
                t,
                state.position,
                getattr(state, "logdensity_grad", None),
                info.acceptance_rate,
            )
            last = t == num_warmup - 1
            step_size, inverse_mass_matrix = jax.lax.cond(
                last,
                window.final,
                lambda w: (w.step_size, w.inverse_mass_matrix),
                tuning,
            )
            return tuning, {"step_size": step_size, "inverse_mass_matrix": inverse_mass_matrix}

        # The predicate is the loop's index, the same for every chain: under vmap this
        # stays a conditional, and sampling transitions skip the adaptation's update.
        tuning, params = jax.lax.cond(warming, adapt, lambda tp: tp, (tuning, params))
        return state, tuning, params, (state.position, stats)

    def start(self, shared, chain):
        """One chain's initial :class:`_TunedCarry` (draw buffers zeroed)."""
        _, spec, window = self.parts(shared, chain)
        _, _, x0 = chain
        tuning = window.init(x0.shape[0])
        params = {"step_size": tuning.step_size, "inverse_mass_matrix": tuning.inverse_mass_matrix}
        target = eqx.combine(shared, self.static)
        logdensity, _ = _logdensity_of(target)
        state = spec.algorithm(logdensity, params, self.settings.option).init(x0)
        # Typed as the loop's carry will be, so that the loop reuses this trace.
        state, tuning, params = strong_types((state, tuning, params))
        t = jnp.zeros((), jnp.int32)
        _, _, _, y = jax.eval_shape(
            _traced_transition, self, t, shared, chain, state, tuning, params
        )
        num = self.settings.num_samples
        positions, stats = jax.tree_util.tree_map(lambda a: jnp.zeros((num, *a.shape), a.dtype), y)
        return _TunedCarry(state, tuning, params, positions, stats)

    def __call__(self, t, shared, chain, carry):
        _, c = carry
        state, tuning, params, (position, stats) = _traced_transition(
            self, t, shared, chain, c.state, c.tuning, c.params
        )
        # During the warm-up this writes draw 0, which the first kept draw overwrites;
        # a draw's last transition is the one kept.
        draw = jnp.maximum(t - self.settings.num_warmup, 0) // self.settings.thinning

        # Positions through write_row, statistics through JAX's batched update: each
        # choice was the faster one, measured per buffer (benchmarks/results/mcmc.md).
        positions = jax.tree_util.tree_map(
            lambda b, v: write_row(b, v, draw), c.positions, position
        )
        stats = jax.tree_util.tree_map(
            lambda b, v: jax.lax.dynamic_update_index_in_dim(b, v, draw, 0), c.stats, stats
        )
        return ((), _TunedCarry(state, tuning, params, positions, stats)), ()


@functools.partial(jax.jit, static_argnums=0)
def _traced_transition(step: _TunedStep, t, shared, chain, state, tuning, params):
    # One jit keyed by the step's value: the buffers' shapes (eval_shape at the start)
    # and the loop program share a single trace of the kernel.
    return step.transition(t, shared, chain, state, tuning, params)


@eqx.filter_jit
def _tuned_start(step: _TunedStep, batch, shared, chain):
    # Strong types: the chunks' outputs are, and the first chunk must not compile apart.
    return strong_types(batched(step.start, batch, shared, chain))


def _tuned_run(
    step: _TunedStep,
    batch,
    shared,
    chain,
    *,
    bar: bool,
    suffix: str,
    warmup_interrupted,
    interrupted,
):
    """Warm-up then sampling, one compiled chunk program for both: ``(positions, stats,
    last state, params)`` of every chain (one chain when ``batch`` is ``None``).

    The warm-up is chunked by transitions, the sampling by draws (``thinning``
    transitions each), so that Ctrl-C stops between draws: the state kept then
    continues the run exactly."""
    num_warmup, thinning = step.settings.num_warmup, step.settings.thinning

    def runner(offset, per_step):
        def run(carry, start, stop):
            # On the host (numpy): eager jnp arithmetic would compile two tiny programs
            # in every process.
            first = np.int32(offset + int(start) * per_step)
            last = np.int32(offset + int(stop) * per_step)
            carry, _ = run_chunk(step, batch, shared, chain, carry, (), first, last)
            return carry

        return run

    carry = run_in_chunks(
        runner(0, 1),
        lambda: ((), _tuned_start(step, batch, shared, chain)),
        num_warmup,
        progress_bar=bar,
        desc=f"warm-up{suffix}",
        interrupted=warmup_interrupted,
        pace_key=(step, batch, "warm-up"),
    )
    _, c = run_in_chunks(
        runner(num_warmup, thinning),
        lambda: carry,
        step.settings.num_samples,
        progress_bar=bar,
        desc=f"sampling{suffix}",
        interrupted=interrupted,
        pace_key=(step, batch, "sampling"),
    )
    return c.positions, c.stats, c.state, c.params


def _has_tuning(spec, settings, num_dims: int, dtype) -> bool:
    """Whether ``spec`` has a warm-up in pieces for these settings (the one loop).

    Asked under ``eval_shape``: building the pieces eagerly would compile their small
    set-up computations in every process, only to drop them."""
    found = []

    def probe():
        found.append(spec.tuning(settings, num_dims, dtype) is not None)
        return jnp.zeros(())

    jax.eval_shape(probe)
    return found[0]


# -- starting points ---------------------------------------------------------------------
# Kernels whose keys hash unrolled on CPU (probkit._threefry): NUTS and HMC split their
# key and draw at every leapfrog step, and each rolled hash is a loop of its own. They
# make the same draws with either key. MALA's and RWM's draws would change in the last
# bit (the arithmetic around the same numbers compiles differently); ChEES and MEADS
# gain nothing. A user's kernel and the model's start keep JAX's keys:
# jax.random.poisson refuses other implementations. (Measurements: the MCMC guide.)
_UNROLLED_KEY_KERNELS = frozenset({"nuts", "hmc"})


@eqx.filter_jit
def _start(target, key, num_chains: int, draw: bool, search: bool = False):
    """Every key a run needs and (with ``draw``) the chains' starting points and their
    log densities: one program instead of a handful of small ones.

    For a target whose ``init`` is NumPyro's uniform search (``uniform_init_radius``),
    the starts are that search's first try, drawn here; the log density is NaN where
    it or its gradient is not finite, and the caller runs the search (``search=True``)
    for those chains only. NumPyro's initialisation, a loop of up to 100 tries through
    its own tracing of the model, is then compiled only for models that need it: it
    was a fifth of a warm run's time to first result on small posteriors."""
    chain_keys = jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(num_chains))
    split = jax.vmap(jax.random.split)(chain_keys)
    keys = {
        "chain": chain_keys,
        "warm_per_chain": split[:, 0],
        "sample_per_chain": split[:, 1],
        "warm": jax.random.fold_in(key, 2**31 - 2),
    }
    if not draw:
        return keys, None, None
    start_key = jax.random.fold_in(key, 2**31 - 1)
    logdensity, _ = _logdensity_of(target)
    radius = target.uniform_init_radius
    if radius is None or search:
        positions = target.init(start_key, num_chains)
        flat = jax.vmap(lambda z: ravel_pytree(z)[0])(positions)
        return keys, flat, jax.vmap(logdensity)(flat)
    example = ravel_pytree(target.example_position)[0]

    def uniform(c):  # chain c's start does not depend on the number of chains
        key = jax.random.fold_in(start_key, c)
        return jax.random.uniform(key, example.shape, example.dtype, -radius, radius)

    flat = jax.vmap(uniform)(jnp.arange(num_chains))
    if not target.reverse_mode_gradients:
        return keys, flat, jax.vmap(logdensity)(flat)
    # NumPyro's criterion for a start: a finite log density and a finite gradient.
    lp, grad = jax.vmap(jax.value_and_grad(logdensity))(flat)
    return keys, flat, jnp.where(jnp.all(jnp.isfinite(grad), axis=1), lp, jnp.nan)


def _starts(target, key, num_chains: int):
    """The chains' keys, starting points and log densities (see :func:`_start`)."""
    keys, flat, start_lp = _start(target, key, num_chains, True)
    if target.uniform_init_radius is not None:
        bad = ~np.isfinite(np.asarray(start_lp))
        if bad.any():  # NumPyro's search for these chains
            _, searched, searched_lp = _start(target, key, num_chains, True, search=True)
            flat = jnp.where(bad[:, None], searched, flat)
            start_lp = jnp.where(bad, searched_lp, start_lp)
    return keys, flat, start_lp


@eqx.filter_jit
def _pathfinder_starts(target, key, flat):
    """The cross-chain kernels' starts (:func:`pathfinder_starts`) from ``flat``."""
    logdensity, _ = _logdensity_of(target)
    return pathfinder_starts(key, logdensity, flat)


@eqx.filter_jit
def _logdensity_at(target, flat):
    logdensity, _ = _logdensity_of(target)
    return jax.vmap(logdensity)(flat)


@eqx.filter_jit
def _constrain(target, draws):
    _, unravel = ravel_pytree(target.example_position)
    return jax.vmap(jax.vmap(lambda x: target.constrain(unravel(x))))(draws)


def _user_positions(target: Target, init, num_chains: int):
    """Flat unconstrained initial positions (num_chains, dim) from ``init=``."""
    example = target.example_position
    init = jax.tree_util.tree_map(jnp.asarray, init)
    if jax.tree_util.tree_structure(init) != jax.tree_util.tree_structure(example):
        raise ValueError(
            "init must have the structure of one unconstrained position "
            f"({jax.tree_util.tree_structure(example)}), with or without a leading "
            f"num_chains axis; got {jax.tree_util.tree_structure(init)}. For a NumPyro "
            "model, pass constrained starting values through "
            "probkit.from_numpyro(model, ..., init={site: value})."
        )

    def broadcast(x, ref):
        if x.shape == ref.shape:
            return jnp.broadcast_to(x, (num_chains, *ref.shape))
        if x.shape == (num_chains, *ref.shape):
            return x
        raise ValueError(
            f"init leaf of shape {x.shape} fits neither one position {ref.shape} nor "
            f"num_chains positions {(num_chains, *ref.shape)}."
        )

    positions = jax.tree_util.tree_map(broadcast, init, example)
    return jax.vmap(lambda z: ravel_pytree(z)[0])(positions)


def _check_init_state(init_state, num_chains: int, init) -> AdaptedState:
    if init is not None:
        raise ValueError(
            "Pass init= (where chains start a new run) or init_state= (a previous run's "
            "result.last_state, to continue it), not both."
        )
    if not isinstance(init_state, AdaptedState):
        raise TypeError(
            "init_state must be a previous result's last_state (a probkit.mcmc.AdaptedState), "
            f"got {type(init_state).__name__}."
        )
    chains = np.shape(init_state.num_transitions)
    if chains != (num_chains,):
        raise ValueError(
            f"init_state holds {chains[0] if chains else 1} chains but num_chains={num_chains}: "
            "continue a run with the number of chains it had."
        )
    return init_state


# Options only the warm-up reads: a continued run (init_state) has none to apply.
_WARMUP_OPTIONS = ("step_size", "learning_rate", "pathfinder_init", "num_folds")


def _layout(target: Target) -> tuple:
    """The target's sites and their shapes on the unconstrained space."""
    leaves = jax.tree_util.tree_flatten_with_path(target.example_position)[0]

    def name(path) -> str:
        keys = (getattr(k, "key", getattr(k, "idx", getattr(k, "name", k))) for k in path)
        return "/".join(str(k) for k in keys) or "x"  # a bare array is named x

    return tuple((name(path), tuple(np.shape(leaf))) for path, leaf in leaves)


def _check_continuation(
    init_state: AdaptedState, kernel: str, layout: tuple, mass_matrix: str, step_size
) -> None:
    """A continued run must be the run ``init_state`` came from: refuse what would not be."""
    if init_state.kernel is not None and init_state.kernel != kernel:
        raise ValueError(
            f"init_state comes from a run of kernel={init_state.kernel!r}, and holds that "
            f"kernel's state and tuned parameters; this call asks for kernel={kernel!r}. "
            f"Continue with kernel={init_state.kernel!r}, or leave init_state out to warm "
            f"up kernel={kernel!r} anew."
        )
    if init_state.layout is not None and init_state.layout != layout:
        describe = lambda sites: ", ".join(f"{n} {s}" for n, s in sites)  # noqa: E731
        raise ValueError(
            f"init_state comes from a target with sites [{describe(init_state.layout)}] "
            f"(unconstrained shapes), not this target's [{describe(layout)}]. Continue a run "
            "with the model (and data shapes) it was made with, or leave init_state out."
        )
    if (
        init_state.mass_matrix is not None
        and mass_matrix != "diag"
        and mass_matrix != init_state.mass_matrix
    ):
        raise ValueError(
            f"init_state was tuned with mass_matrix={init_state.mass_matrix!r}; a continued "
            f"run keeps that metric, so mass_matrix={mass_matrix!r} would not apply. Leave "
            "mass_matrix out, or leave init_state out to warm up anew."
        )
    tuned = init_state.params.get("step_size") if isinstance(init_state.params, dict) else None
    # (Over several processes the step sizes live partly elsewhere: not compared.)
    if step_size is not None and tuned is not None and getattr(tuned, "is_fully_addressable", True):
        tuned = np.unique(np.asarray(tuned, dtype=np.float64))
        if not np.allclose(tuned, step_size, rtol=1e-6):
            raise ValueError(
                f"step_size={step_size} differs from the step size init_state runs with "
                f"({', '.join(f'{v:.4g}' for v in tuned[:4])}"
                f"{', ...' if tuned.size > 4 else ''}): a continued run keeps its tuned "
                "parameters. Leave step_size out, or leave init_state out to warm up (or "
                "run with num_warmup=0 at a step size of your choice) anew."
            )


def sample(
    target: Target | Callable,
    *,
    kernel: Any = "nuts",
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    seed: int = 0,
    chain_method: str = "vectorized",
    thinning: int = 1,
    progress_bar: bool = False,
    init: Any = None,
    init_state: AdaptedState | None = None,
    mass_matrix: str | Sequence = "diag",
    inverse_mass_matrix: Any = None,
    adapt_mass_matrix: bool = True,
    target_accept: float | None = None,
    model_args: tuple = (),
    model_kwargs: Mapping[str, Any] | None = None,
    diagnose: bool = True,
    **kernel_options: Any,
) -> MCMCResult:
    """Run ``num_chains`` MCMC chains on a target with a blackjax kernel.

    Args:
        target: a :class:`probkit.Target`, or a NumPyro model together with
            ``model_args`` / ``model_kwargs``.
        kernel: ``"nuts"``, ``"hmc"``, ``"mala"``, ``"rwm"`` (one warm-up per chain),
            ``"chees"`` / ``"meads"`` (warm-up pooled across chains; meant for many
            chains on accelerators), or a kernel of your own: a blackjax
            ``SamplingAlgorithm`` or an ``(init, step)`` pair on the target's
            unconstrained positions (``num_warmup`` transitions are then a burn-in
            with nothing tuned). A target with discrete sites of infinite support
            (``target.gibbs_sites``) needs ``"nuts"`` or ``"hmc"``: each transition is
            then a Metropolis sweep over those integers followed by the kernel's move
            of the continuous sites given them.
        num_chains: number of chains (a leading axis everywhere).
        num_warmup: warm-up (adaptation) iterations per chain, discarded.
        num_samples: draws kept per chain (after thinning).
        seed: the only source of randomness; chain ``c`` uses
            ``k_c = fold_in(PRNGKey(seed), c)`` whatever ``chain_method`` and the number
            of devices: ``split(k_c)[0]`` for its warm-up and, after warm-up,
            ``fold_in(split(k_c)[1], t)`` for its transition ``t``. (ChEES and MEADS
            warm up all chains together from ``fold_in(PRNGKey(seed), 2**31 - 2)`` and
            use ``fold_in(k_c, t)`` for transition ``t``.)
            Without adaptation the draws are then identical; after warm-up they can
            differ by floating-point rounding (XLA on CPU rounds some functions
            differently for different batch sizes, and chaotic kernels such as NUTS
            amplify an ulp), while following the same distribution.
        chain_method: ``"vectorized"`` (``vmap`` on one device), ``"sequential"`` (one
            chain after another, compiled once), ``"sharded"`` (chains split over every
            device; ``num_chains`` must be a multiple of the device count).
        thinning: keep every ``thinning``-th draw.
        progress_bar: show progress bars for the warm-up and the sampling phase
            (drawn by the host between chunks of about half a second).
        init: unconstrained starting positions (one, or one per chain). Default: the
            target's initialisation (uniform in [-2, 2] for NumPyro models).
        init_state: a previous result's ``last_state``: continue that run (same
            kernel, tuned parameters and chains) with no warm-up (``num_warmup`` is
            not used). With the same ``seed`` the draws are those one longer run
            would have made (NumPyro's ``post_warmup_state``).
        mass_matrix: the structure the Stan-style window adaptation estimates:
            ``"diag"``, ``"dense"``, ``"low_rank"`` (blackjax's low-rank adaptation;
            NUTS/HMC only), or dense blocks over named sites as in NumPyro's
            ``dense_mass``: ``[("alpha", "beta"), "gamma"]`` adapts one dense block
            over ``alpha`` and ``beta`` jointly, one within ``gamma``, and a diagonal
            for every other site (NUTS, HMC, MALA, RWM; stored as a ``(d, d)``
            matrix, so a step costs ``O(d^2)`` as with ``"dense"``).
        inverse_mass_matrix: a metric of your own on the unconstrained position
            (NUTS, HMC, MALA, RWM), as NumPyro's ``inverse_mass_matrix=``: an array of
            shape ``(d,)`` (diagonal) or ``(d, d)`` over the flattened position
            (sites in sorted order, as ``result.unconstrained``), or a dict from a site
            name or a tuple of names to that group's block, covering every latent
            site. The adaptation starts from it; with ``adapt_mass_matrix=False`` it
            is kept and only the step size is tuned. A previous run's
            ``result.adaptation["inverse_mass_matrix"][c]`` fits here.
        adapt_mass_matrix: adapt the metric during warm-up (default); ``False``
            keeps ``inverse_mass_matrix`` fixed.
        target_accept: acceptance rate the step size is tuned to (default 0.8 for
            NUTS/HMC, 0.574 for MALA, 0.234 for RWM, 0.651 for ChEES).
        model_args: positional data for a NumPyro model passed as ``target``.
        model_kwargs: keyword data for a NumPyro model passed as ``target``.
        diagnose: warn (:class:`~probkit.results.SamplingWarning`), in words, about
            divergences, R-hat above 1.01, low bulk ESS and non-finite log densities
            (see :meth:`MCMCResult.diagnose`).
        **kernel_options: options of the chosen kernel (``probkit.mcmc.KERNELS[name]
            .options``): ``max_num_doublings`` for NUTS; ``num_folds`` (default: the
            most folds, up to 4, with at least 8 chains each) for MEADS;
            ``pathfinder_init`` for ChEES and MEADS (start the chains from multi-path
            Pathfinder draws, default True: their pooled step size collapses when a
            chain starts far in the tails); ``num_integration_steps``
            (the mean number of leapfrog steps, default 16), ``trajectory_length``
            (instead: steps = trajectory_length / step_size) and ``jitter`` (draw the
            number of steps uniformly from 1 .. 2L-1, default True) for HMC;
            ``step_size`` is where the step-size adaptation starts, or the fixed step
            size with ``num_warmup=0`` (then with an identity mass matrix; default 0.1
            for NUTS/HMC).

    Returns:
        An :class:`~probkit.results.MCMCResult`; its ``last_state`` continues the run.

    Raises:
        probkit.progress.Interrupted: on Ctrl-C, within about a second (the loops run
            from the host in chunks of about half a second; a run that is not
            interrupted draws the same numbers, bit for bit). During sampling its
            ``partial_result`` is an ``MCMCResult`` of the draws done; during warm-up
            it is ``None`` (no draws yet) or, for ``"sequential"``, the chains finished.

    Example:
        >>> import jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> import probkit as pk
        >>> def model(y):
        ...     mu = numpyro.sample("mu", dist.Normal(0, 10))
        ...     numpyro.sample("y", dist.Normal(mu, 1), obs=y)
        >>> result = pk.mcmc.sample(model, model_args=(jnp.array([0.5, 1.5]),),
        ...                         num_warmup=200, num_samples=200, num_chains=2)
        >>> result.samples["mu"].shape
        (2, 200)
        >>> more = pk.mcmc.sample(model, model_args=(jnp.array([0.5, 1.5]),), num_samples=100,
        ...                       num_chains=2, init_state=result.last_state)
        >>> more.samples["mu"].shape
        (2, 100)
    """
    user_kernel = _user_kernel(kernel)
    if user_kernel is None:
        spec = check_kernel(kernel, kernel_options)
    else:
        spec = None
        if kernel_options:
            raise TypeError(
                f"Options {sorted(kernel_options)} are for named kernels; a kernel of your own "
                "carries its own parameters."
            )
    num_chains = _check_positive_int("num_chains", num_chains, 1)
    num_warmup = _check_positive_int("num_warmup", num_warmup, 0)
    num_samples = _check_positive_int("num_samples", num_samples, 1)
    thinning = _check_positive_int("thinning", thinning, 1)
    seed = _check_positive_int("seed", seed, 0)
    if chain_method not in _CHAIN_METHODS:
        raise ValueError(f"chain_method must be one of {_CHAIN_METHODS}, got {chain_method!r}.")
    if isinstance(mass_matrix, str) and mass_matrix not in _MASS_MATRICES:
        raise ValueError(
            f"mass_matrix must be one of {_MASS_MATRICES} or a list of site groups for dense "
            f'blocks (e.g. [("a", "b")]), got {mass_matrix!r}.'
        )
    explicit_accept = target_accept is not None
    default_accept = 0.8 if spec is None else spec.default_target_accept
    target_accept = default_accept if target_accept is None else target_accept
    if not 0.0 < float(target_accept) < 1.0:
        raise ValueError(f"target_accept must lie strictly between 0 and 1, got {target_accept}.")
    options = {} if spec is None else {**spec.options, **kernel_options}
    cross_chain = spec is not None and spec.cross_chain
    if init_state is not None:
        init_state = _check_init_state(init_state, num_chains, init)
        num_warmup = 0
    if cross_chain and num_chains < 2:
        raise ValueError(f"kernel={kernel!r} adapts across chains: use num_chains >= 2.")
    if kernel == "meads":
        folds = meads_num_folds(num_chains, options["num_folds"])
        if folds * MEADS_MIN_CHAINS_PER_FOLD > num_chains:
            warnings.warn(
                f"kernel='meads' with {num_chains // folds} chains per fold "
                f"(num_chains={num_chains}, num_folds={folds}): each fold's step size and "
                f"damping then come from a few chains, which failed on posteriordb "
                f"posteriors (every draw divergent on garch11 with 4 per fold). Use at "
                f"least {MEADS_MIN_CHAINS_PER_FOLD} chains per fold (leave num_folds out "
                f"to have it chosen from num_chains).",
                SamplingWarning,
                stacklevel=2,
            )
        options["num_folds"] = folds
    if cross_chain and num_warmup == 0 and init_state is None:
        raise ValueError(f"kernel={kernel!r} needs num_warmup > 0 to tune its parameters.")

    target = _as_target(target, model_args, model_kwargs)
    if not target.reverse_mode_gradients and user_kernel is None and kernel != "rwm":
        raise ValueError(REVERSE_MODE_MESSAGE.format(name=target.name, kernel=kernel))
    _check_gibbs(target, kernel if user_kernel is None else None, mass_matrix)
    metric = resolve_mass_matrix(
        mass_matrix,
        inverse_mass_matrix,
        adapt_mass_matrix,
        kernel if user_kernel is None else "a kernel of your own",
        target,
        num_warmup,
    )
    kernel_name = kernel if user_kernel is None else user_kernel.name
    layout = _layout(target)
    if init_state is not None:
        warmup_settings = [name for name in _WARMUP_OPTIONS if kernel_options.get(name) is not None]
        warmup_settings += ["target_accept"] if explicit_accept else []
        warmup_settings += ["inverse_mass_matrix"] if inverse_mass_matrix is not None else []
        warmup_settings += ["adapt_mass_matrix"] if adapt_mass_matrix is False else []
        _check_continuation(
            init_state, kernel_name, layout, metric.mode, kernel_options.get("step_size")
        )
        if warmup_settings:
            # The same settings as the run continued are common (one dict of options
            # for both calls): a warning, not an error.
            warnings.warn(
                f"{', '.join(warmup_settings)} set(s) up the warm-up, which a run continued "
                "from init_state does not do: the tuned step size and metric of init_state "
                "are used. Leave init_state out to warm up anew with them.",
                SamplingWarning,
                stacklevel=2,
            )
    if user_kernel is not None:
        _check_user_kernel(user_kernel, target, init_state)
    mesh = None
    if chain_method == "sharded":
        mesh = chain_mesh()
        check_divisible(num_chains, mesh)

    key = jax.random.PRNGKey(seed)
    draw_start = init_state is None and init is None
    if draw_start:
        keys, flat, start_lp = _starts(target, key, num_chains)
    else:
        keys, flat, start_lp = _start(target, key, num_chains, False)
    if user_kernel is None and kernel in _UNROLLED_KEY_KERNELS and jax.process_count() == 1:
        # On CPU these kernels' keys hash unrolled: the same keys and random numbers as
        # JAX's. (Over several processes the keys stay JAX's: device_put refuses the
        # wrapped keys for a sharding across processes.)
        keys = {name: cpu_fast_key(k, every_size=True) for name, k in keys.items()}
    chain_keys = keys["chain"]
    dim = target.num_dims
    if init_state is not None:
        flat = jnp.zeros((num_chains, dim), jnp.result_type(float))  # not used
    elif init is not None:
        flat = _user_positions(target, init, num_chains)
        start_lp = _logdensity_at(target, flat)
    if init_state is None:
        # Fail before compiling the sampler when a chain starts where the density is
        # not finite.
        start_lp = np.asarray(start_lp)
        bad = np.flatnonzero(~np.isfinite(start_lp))
        if bad.size:
            raise ValueError(
                f"The log density is not finite at the initial position of chain(s) "
                f"{bad.tolist()} (value {start_lp[bad[0]]}). Pass init= with "
                "positions where it is finite."
            )

    settings = Settings(
        num_warmup=num_warmup,
        mass_matrix=metric.mode,
        target_accept=float(target_accept),
        options=tuple(sorted(options.items())),
        num_chains=num_chains,
        num_samples=num_samples,
        thinning=thinning,
        # The bars are drawn by the host between chunks: the compiled programs are
        # the same with and without them.
        progress_bar=False,
        dense_blocks=metric.dense_blocks,
        inverse_mass_matrix=metric.inverse_mass_matrix,
        adapt_mass_matrix=metric.adapt,
        gibbs_indices=tuple(int(i) for i in target.gibbs_indices),
        num_dims=dim,
    )
    kernel_ref = user_kernel if user_kernel is not None else kernel
    target_arrays, target_static = eqx.partition(target, eqx.is_array)
    warmup = _Warmup(kernel_ref, settings, target_static)
    # Kernels whose warm-up comes as pieces run warm-up and sampling as one loop.
    tuned = None
    if (
        spec is not None
        and spec.tuning is not None
        and init_state is None
        and _has_tuning(spec, settings, dim, np.asarray(flat).dtype)
    ):
        tuned = _TunedStep(kernel_ref, settings, target_static)
    step = _SampleStep(kernel_ref, settings, target_static)
    bar = bool(progress_bar)
    dtype = np.asarray(flat).dtype
    started = time.perf_counter()

    def result(draws, stats, last_state, params, *, partial=False):
        """An MCMCResult of draws (chains, n, dim) done so far."""
        samples = _constrain(target, draws)
        if target.enumerated_sites:
            # Discrete sites were summed out of the log density: draw them back from
            # their exact conditionals given each draw (and redo deterministic sites).
            discrete_key = jax.random.fold_in(key, 2**31 - 1)  # apart from every chain's
            samples = {**samples, **infer_discrete(target, samples, key=discrete_key)}
        # In a multi-process run the chains live on other processes' devices too:
        # gather all-gathers what this process cannot fetch directly.
        samples, stats, draws = gather((samples, stats, draws))
        if target.gibbs_sites:
            _warn_inexact_counts(target, draws)
        out = MCMCResult(
            samples=samples,
            stats=stats,
            target=target,
            kernel=kernel_name,
            adaptation=_adaptation_summary(params, cross_chain),
            unconstrained=np.asarray(draws, dtype=dtype),
            seconds=time.perf_counter() - started,
            last_state=last_state._replace(
                kernel=kernel_name, layout=layout, mass_matrix=metric.mode
            ),
        )
        if diagnose and not partial:
            out.diagnose()
        return out

    def interrupted_sampling(batch, shared, chain, params, start, before=None, of="", tuned=False):
        """Ctrl-C while drawing: the draws done become ``partial_result``."""

        def interrupted(done, state, message):
            del message
            if tuned:  # one loop: the draws are in the carry, with the parameters
                _, c = state
                last, positions, stats, run_params = c.state, c.positions, c.stats, c.params
            else:
                (_, last), (positions, stats) = state
                run_params = params
            transitions = done * thinning
            cut = (lambda a: a[:done]) if batch is None else (lambda a: a[:, :done])
            positions, stats = jax.tree_util.tree_map(cut, (positions, stats))
            if tuned:  # kernels with a tuning sample in the target's coordinates
                draws = positions
            else:
                draws = _positions_to_draws(step, batch, shared, chain, positions)
            last_state = AdaptedState(last, run_params, jnp.asarray(start + transitions))
            if batch is None:  # one chain of a sequential run: add its chain axis
                draws, stats, last_state = jax.tree_util.tree_map(
                    lambda a: a[None], (draws, stats, last_state)
                )
            kept = ""
            if before is not None:  # sequential: the chains finished before this one
                draws, stats, last_state = before
                kept = f"; the {draws.shape[0]} finished chain(s) are kept"
            partial = result(
                draws, stats, last_state, run_params if before is None else {}, partial=True
            )
            err = Interrupted(
                f"Interrupted during sampling{of} after {done} of {num_samples} draws per "
                f"chain{kept}: the draws done are in this exception's partial_result (an "
                "MCMCResult; its to_arviz() works).",
                steps_done=done,
                carry=last,
                ys=(positions, stats),
            )
            err.partial_result = partial
            return err

        return interrupted

    def draw(batch, shared, chain, states, params, start, desc="sampling", before=None, of=""):
        """The sampling phase: draws, their statistics, and the state to continue from."""
        positions, stats, last = _draw(
            step,
            batch,
            shared,
            chain,
            states,
            desc=desc,
            bar=bar,
            interrupted=interrupted_sampling(
                batch, shared, chain, params, start, before=before, of=of
            ),
        )
        draws = _positions_to_draws(step, batch, shared, chain, positions)
        return draws, stats, AdaptedState(last, params, start + num_samples * thinning)

    if cross_chain:
        batch = mesh if mesh is not None else "vmap"
        if init_state is None:
            warm_key = keys["warm"]
            if options["pathfinder_init"]:
                # A program of its own on one device: inside the sharded warm-up,
                # XLA:CPU's simulated devices hung on Pathfinder's loops.
                start_key, warm_key = jax.random.split(warm_key)
                flat = _pathfinder_starts(target, start_key, flat)
            if mesh is not None:
                flat = jax.device_put(flat, leading_axis_sharding(mesh))
            # The warm-up pools every chain: one program over all of them (sharded
            # over the mesh by XLA when the chains are).
            states, params = _warm_up(
                warmup, None, target_arrays, (warm_key, flat), desc="warm-up", bar=bar
            )
            start = jnp.zeros(num_chains, jnp.int32)
        else:
            states, params, start = init_state
            # The sampling loop donates its carry: copies, so that the caller's state
            # (e.g. previous.last_state) can start another run.
            states = jax.tree_util.tree_map(jnp.copy, states)
        if mesh is not None:
            sharding = leading_axis_sharding(mesh)
            chain_keys, states, start = jax.device_put((chain_keys, states, start), sharding)
        shared, chain = (target_arrays, params), (chain_keys, None, start)
        draws, stats, last_state = draw(batch, shared, chain, states, params, start)
    elif chain_method == "sequential":
        outputs = []

        def finished():
            if not outputs:
                return None
            return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *outputs)

        for c in range(num_chains):
            of = f" of chain {c + 1}/{num_chains}"
            warm_key, sample_key = jax.random.split(chain_keys[c])
            if init_state is None:
                done_before = finished()
                interrupt = None
                if done_before is not None:
                    interrupt = _interrupted_sequential_warmup(
                        c,
                        num_chains,
                        num_warmup,
                        lambda d=done_before: result(d[0], d[1], d[2], {}, partial=True),
                    )
                if tuned is not None:
                    start = np.zeros((), np.int32)
                    chain = (warm_key, sample_key, flat[c])
                    positions, stats, last, params = _tuned_run(
                        tuned,
                        None,
                        target_arrays,
                        chain,
                        bar=bar,
                        suffix=f" (chain {c + 1}/{num_chains})",
                        warmup_interrupted=interrupt or _interrupted_warmup(num_warmup),
                        interrupted=interrupted_sampling(
                            None, target_arrays, chain, None, start, finished(), of, tuned=True
                        ),
                    )
                    transitions = jnp.asarray(start + num_samples * thinning)
                    outputs.append((positions, stats, AdaptedState(last, params, transitions)))
                    continue
                state, params = _warm_up(
                    warmup,
                    None,
                    target_arrays,
                    (warm_key, flat[c]),
                    desc=f"warm-up (chain {c + 1}/{num_chains})",
                    bar=bar,
                    interrupt=interrupt,
                )
                start = jnp.zeros((), jnp.int32)
            else:
                state, params, start = jax.tree_util.tree_map(lambda x, c=c: x[c], init_state)
            shared, chain = (target_arrays, None), (sample_key, params, start)
            outputs.append(
                draw(
                    None,
                    shared,
                    chain,
                    state,
                    params,
                    start,
                    desc=f"sampling (chain {c + 1}/{num_chains})",
                    before=finished(),
                    of=of,
                )
            )
        draws, stats, last_state = finished()
    else:
        batch = mesh if mesh is not None else "vmap"
        warm_keys, sample_keys = keys["warm_per_chain"], keys["sample_per_chain"]
        if mesh is not None:
            sharding = leading_axis_sharding(mesh)
            warm_keys, sample_keys, flat, init_state = jax.device_put(
                (warm_keys, sample_keys, flat, init_state), sharding
            )
        if tuned is not None:
            start = np.zeros(num_chains, np.int32)
            chain = (warm_keys, sample_keys, flat)
            draws, stats, states, params = _tuned_run(
                tuned,
                batch,
                target_arrays,
                chain,
                bar=bar,
                suffix="",
                warmup_interrupted=_interrupted_warmup(num_warmup),
                interrupted=interrupted_sampling(
                    batch, target_arrays, chain, None, start, tuned=True
                ),
            )
            draws = jax.block_until_ready(draws)
            transitions = jnp.asarray(start + num_samples * thinning)
            return result(draws, stats, AdaptedState(states, params, transitions), params)
        if init_state is None:
            states, params = _warm_up(
                warmup, batch, target_arrays, (warm_keys, flat), desc="warm-up", bar=bar
            )
            start = jnp.zeros(num_chains, jnp.int32)
        else:
            states, params, start = init_state
            # The sampling loop donates its carry: copies, so that the caller's state
            # (e.g. previous.last_state) can start another run.
            states = jax.tree_util.tree_map(jnp.copy, states)
        shared, chain = (target_arrays, None), (sample_keys, params, start)
        draws, stats, last_state = draw(batch, shared, chain, states, params, start)
    draws = jax.block_until_ready(draws)
    return result(draws, stats, last_state, last_state.params)


def _interrupted_sequential_warmup(c: int, num_chains: int, num_warmup: int, kept: Callable):
    def interrupted(done, state, message):
        del state, message
        partial = kept()
        err = Interrupted(
            f"Interrupted during warm-up of chain {c + 1}/{num_chains} after {done} of "
            f"{num_warmup} steps: the {c} finished chain(s) are in this exception's "
            "partial_result (an MCMCResult).",
            steps_done=done,
            carry=None,
            ys=None,
        )
        err.partial_result = partial
        return err

    return interrupted


def _adaptation_summary(params: dict, cross_chain: bool) -> dict:
    """The tuned parameters as numpy arrays (per chain for per-chain kernels)."""
    out = {}
    for name, value in params.items():
        if not isinstance(value, jax.Array | np.ndarray):
            continue  # e.g. blackjax's low-rank metric (a NamedTuple)
        value = np.asarray(gather(value))
        if value.ndim <= 2 + (not cross_chain) and np.all(np.isfinite(value)):
            out[name] = value
    return out
