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

import time
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import PartitionSpec as P

from probkit.distributed import AXIS, chain_mesh, check_divisible, gather, leading_axis_sharding
from probkit.mcmc._kernels import KERNELS, Settings, check_kernel, generic_statistics
from probkit.mcmc._loop import AdaptedState, loop
from probkit.results import MCMCResult
from probkit.target import Target, from_numpyro

__all__ = ["sample"]

_CHAIN_METHODS = ("vectorized", "sequential", "sharded")
_MASS_MATRICES = ("diag", "dense", "low_rank")


def _as_target(target, model_args, model_kwargs) -> Target:
    if isinstance(target, Target):
        if model_args or model_kwargs:
            raise TypeError(
                "model_args/model_kwargs are only for NumPyro models; a Target is already "
                "bound to its data. Drop them, or pass the model function instead."
            )
        return target
    if callable(target):
        from probkit.target import _trace_model

        try:
            trace = _trace_model(target, model_args, model_kwargs or {})
        except Exception as err:  # noqa: BLE001 - re-raised with the fix named
            if not model_args and not model_kwargs:
                raise TypeError(
                    f"Could not run {getattr(target, '__name__', target)!r} as a NumPyro "
                    f"model without arguments ({type(err).__name__}: {err}). Pass its data "
                    "with model_args=/model_kwargs=, or, for a plain log-density function, "
                    "wrap it: probkit.Target.from_logdensity(fn, initial_position)."
                ) from err
            raise
        if not any(site["type"] == "sample" for site in trace.values()):
            raise TypeError(
                f"{getattr(target, '__name__', 'target')!r} has no numpyro.sample site. For a "
                "plain log-density function use probkit.Target.from_logdensity(fn, "
                "initial_position)."
            )
        return from_numpyro(target, *model_args, **dict(model_kwargs or {}))
    raise TypeError(
        f"target must be a probkit.Target or a NumPyro model function, got {type(target).__name__}."
    )


def _check_positive_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
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
    return _UserKernel(init, step, getattr(step, "__qualname__", "custom"))


# -- one chain, per-chain kernels ---------------------------------------------------------
def _logdensity_of(target: Target) -> tuple[Callable, Callable]:
    _, unravel = ravel_pytree(target.example_position)

    def logdensity(x):
        return target.logdensity(unravel(x))

    return logdensity, unravel


def _run_chain(target, kernel, settings: Settings, key, x0, adapted, desc="sampling"):
    """One chain from a flat start (or a previous run's end): draws, stats, end state."""
    logdensity, unravel = _logdensity_of(target)
    warm_key, sample_key = jax.random.split(key)
    if isinstance(kernel, _UserKernel):
        if adapted is None:
            state = kernel.init(unravel(x0))
            if settings.num_warmup:  # burn-in: a user kernel has nothing to tune
                state, _ = loop(warm_key, kernel.step, state, settings.num_warmup)
            adapted = AdaptedState(state, {}, jnp.zeros((), jnp.int32))
        state, params, start = adapted
        last, (positions, stats) = loop(
            sample_key,
            kernel.step,
            state,
            settings.num_samples,
            thinning=settings.thinning,
            statistics=generic_statistics,
            start=start,
            progress_bar=settings.progress_bar,
            desc=desc,
        )
        draws = jax.vmap(lambda p: ravel_pytree(p)[0])(positions)
    else:
        spec = KERNELS[kernel]
        if adapted is None:
            state, params = spec.warmup(warm_key, logdensity, x0, settings)
            start = jnp.zeros((), jnp.int32)
        else:
            state, params, start = adapted
        algorithm = spec.algorithm(logdensity, params, settings.option)
        last, (positions, stats) = loop(
            sample_key,
            algorithm,
            state,
            settings.num_samples,
            thinning=settings.thinning,
            statistics=lambda s, i: spec.statistics(s, i, params),
            start=start,
            progress_bar=settings.progress_bar,
            desc=desc,
        )
        draws = jax.vmap(lambda p: spec.position(params, p))(positions)
    done = start + settings.num_samples * settings.thinning
    return draws, stats, AdaptedState(last, params, done)


@eqx.filter_jit
def _run_vectorized(target, kernel, settings, chain_keys, flat, adapted):
    def one(key, x0, a):
        return _run_chain(target, kernel, settings, key, x0, a)

    return jax.vmap(one)(chain_keys, flat, adapted)


@eqx.filter_jit
def _run_one(target, kernel, settings, key, x0, adapted):
    return _run_chain(target, kernel, settings, key, x0, adapted, "sampling (one chain at a time)")


@eqx.filter_jit
def _run_sharded(target, kernel, settings, mesh, chain_keys, flat, adapted):
    """Each device runs its own block of chains with ``shard_map`` (no cross-device
    traffic: a NUTS tree on one device never waits for another device's chains).
    Chain ``c`` uses the same key as under ``"vectorized"``; on CPU, XLA's SIMD and
    scalar code paths for transcendental functions can round differently for
    different block sizes, so draws after adaptation agree in distribution (and bit
    for bit whenever the arithmetic does not depend on the block size)."""
    dynamic, static = eqx.partition(target, eqx.is_array)

    def block(keys, xs, a, dynamic):
        t = eqx.combine(dynamic, static)
        return jax.vmap(lambda k, x, s: _run_chain(t, kernel, settings, k, x, s))(keys, xs, a)

    return jax.shard_map(
        block,
        mesh=mesh,
        in_specs=(P(AXIS), P(AXIS), P(AXIS), P()),
        out_specs=P(AXIS),
        check_vma=False,
    )(chain_keys, flat, adapted, dynamic)


# -- cross-chain kernels (ChEES, MEADS) -------------------------------------------------------
@eqx.filter_jit
def _warm_cross_chain(target, kernel, settings, key, flat):
    logdensity, _ = _logdensity_of(target)
    return KERNELS[kernel].warmup(key, logdensity, flat, settings)


def _sample_cross_chain_fn(target, kernel, settings, chain_keys, states, params, start):
    spec = KERNELS[kernel]
    logdensity, _ = _logdensity_of(target)

    def one(key, state, start):
        algorithm = spec.algorithm(logdensity, params, settings.option)
        last, (draws, stats) = loop(
            key,
            algorithm,
            state,
            settings.num_samples,
            thinning=settings.thinning,
            statistics=lambda s, i: spec.statistics(s, i, params),
            start=start,
            progress_bar=settings.progress_bar,
        )
        return draws, stats, last

    draws, stats, last = jax.vmap(one)(chain_keys, states, start)
    return (
        draws,
        stats,
        AdaptedState(last, params, start + settings.num_samples * settings.thinning),
    )


_sample_cross_chain = eqx.filter_jit(_sample_cross_chain_fn)


@eqx.filter_jit
def _sample_cross_chain_sharded(target, kernel, settings, mesh, chain_keys, states, params, start):
    dynamic, static = eqx.partition(target, eqx.is_array)

    def block(keys, states, start, dynamic, params):
        t = eqx.combine(dynamic, static)
        draws, stats, adapted = _sample_cross_chain_fn(
            t, kernel, settings, keys, states, params, start
        )
        return draws, stats, adapted.state, adapted.num_transitions

    draws, stats, last, done = jax.shard_map(
        block,
        mesh=mesh,
        in_specs=(P(AXIS), P(AXIS), P(AXIS), P(), P()),
        out_specs=P(AXIS),
        check_vma=False,
    )(chain_keys, states, start, dynamic, params)
    return draws, stats, AdaptedState(last, params, done)


# -- starting points ---------------------------------------------------------------------
@eqx.filter_jit
def _draw_initial(target, key, num_chains):
    positions = target.init(key, num_chains)
    return jax.vmap(lambda z: ravel_pytree(z)[0])(positions)


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
    mass_matrix: str = "diag",
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
            with nothing tuned).
        num_chains: number of chains (a leading axis everywhere).
        num_warmup: warm-up (adaptation) iterations per chain, discarded.
        num_samples: draws kept per chain (after thinning).
        seed: the only source of randomness; chain ``c`` uses
            ``fold_in(PRNGKey(seed), c)`` whatever ``chain_method`` and the number of
            devices, and its transition ``t`` after warm-up ``fold_in(.., t)``.
            Without adaptation the draws are then identical; after warm-up they can
            differ by floating-point rounding (XLA on CPU rounds some functions
            differently for different batch sizes, and chaotic kernels such as NUTS
            amplify an ulp), while following the same distribution.
        chain_method: ``"vectorized"`` (``vmap`` on one device), ``"sequential"`` (one
            chain after another, compiled once), ``"sharded"`` (chains split over every
            device; ``num_chains`` must be a multiple of the device count).
        thinning: keep every ``thinning``-th draw.
        progress_bar: show progress bars for the warm-up (NUTS, HMC, MALA, RWM) and the
            sampling phase.
        init: unconstrained starting positions (one, or one per chain). Default: the
            target's initialisation (uniform in [-2, 2] for NumPyro models).
        init_state: a previous result's ``last_state``: continue that run (same
            kernel, tuned parameters and chains) with no warm-up (``num_warmup`` is
            not used). With the same ``seed`` the draws are those one longer run
            would have made (NumPyro's ``post_warmup_state``).
        mass_matrix: ``"diag"``, ``"dense"`` or ``"low_rank"`` (blackjax's low-rank
            adaptation; NUTS/HMC only) for the Stan-style window adaptation.
        target_accept: acceptance rate the step size is tuned to (default 0.8 for
            NUTS/HMC, 0.574 for MALA, 0.234 for RWM, 0.651 for ChEES).
        model_args: positional data for a NumPyro model passed as ``target``.
        model_kwargs: keyword data for a NumPyro model passed as ``target``.
        diagnose: warn (:class:`~probkit.results.SamplingWarning`), in words, about
            divergences, R-hat above 1.01, low bulk ESS and non-finite log densities
            (see :meth:`MCMCResult.diagnose`).
        **kernel_options: options of the chosen kernel (``probkit.mcmc.KERNELS[name]
            .options``): ``max_num_doublings`` for NUTS; ``num_integration_steps``
            (the mean number of leapfrog steps, default 16), ``trajectory_length``
            (instead: steps = trajectory_length / step_size) and ``jitter`` (draw the
            number of steps uniformly from 1 .. 2L-1, default True) for HMC;
            ``step_size`` is where the step-size adaptation starts, or the fixed step
            size with ``num_warmup=0`` (then with an identity mass matrix; default 0.1
            for NUTS/HMC).

    Returns:
        An :class:`~probkit.results.MCMCResult`; its ``last_state`` continues the run.

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
    if mass_matrix not in _MASS_MATRICES:
        raise ValueError(f"mass_matrix must be one of {_MASS_MATRICES}, got {mass_matrix!r}.")
    if mass_matrix == "low_rank" and kernel not in ("nuts", "hmc"):
        raise ValueError(
            f"mass_matrix='low_rank' is available for kernel='nuts' or 'hmc', not {kernel!r}; "
            "use mass_matrix='diag' or 'dense'."
        )
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
        folds = options["num_folds"]
        # Each fold's parameters are estimated from the chains of the other folds;
        # with fewer than 4 chains per fold those estimates are too noisy to be usable.
        if num_chains % folds or num_chains < 4 * folds:
            raise ValueError(
                f"kernel='meads' splits chains into num_folds={folds} folds and needs at least "
                f"4 chains per fold: use num_chains a multiple of {folds} and >= {4 * folds} "
                f"(got {num_chains}); it is meant for many chains (e.g. 64-512)."
            )
    if cross_chain and num_warmup == 0 and init_state is None:
        raise ValueError(f"kernel={kernel!r} needs num_warmup > 0 to tune its parameters.")

    target = _as_target(target, model_args, model_kwargs)
    mesh = None
    if chain_method == "sharded":
        mesh = chain_mesh()
        check_divisible(num_chains, mesh)

    key = jax.random.PRNGKey(seed)
    chain_keys = jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(num_chains))
    dim = target.num_dims
    if init_state is not None:
        flat = jnp.zeros((num_chains, dim), jnp.result_type(float))  # not used
    elif init is None:
        flat = _draw_initial(target, jax.random.fold_in(key, 2**31 - 1), num_chains)
    else:
        flat = _user_positions(target, init, num_chains)
    if init_state is None:
        # Fail before compiling the sampler when a chain starts where the density is
        # not finite.
        start_lp = np.asarray(_logdensity_at(target, flat))
        bad = np.flatnonzero(~np.isfinite(start_lp))
        if bad.size:
            raise ValueError(
                f"The log density is not finite at the initial position of chain(s) "
                f"{bad.tolist()} (value {start_lp[bad[0]]}). Pass init= with "
                "positions where it is finite."
            )

    settings = Settings(
        num_warmup=num_warmup,
        mass_matrix=mass_matrix,
        target_accept=float(target_accept),
        options=tuple(sorted(options.items())),
        num_chains=num_chains,
        num_samples=num_samples,
        thinning=thinning,
        progress_bar=bool(progress_bar),
        # A host callback without arguments fires once per step under vmap, once per
        # device under shard_map: the warm-up bar counts accordingly.
        ticks_per_step=mesh.size if mesh is not None else 1,
    )
    kernel_ref = user_kernel if user_kernel is not None else kernel

    start = time.perf_counter()
    if cross_chain:
        draws, stats, last_state = _cross_chain(
            target, kernel, settings, key, chain_keys, flat, init_state, mesh
        )
    elif chain_method == "sequential":
        outputs = []
        for c in range(num_chains):
            adapted = None
            if init_state is not None:
                adapted = jax.tree_util.tree_map(lambda x, c=c: x[c], init_state)
            outputs.append(_run_one(target, kernel_ref, settings, chain_keys[c], flat[c], adapted))
        draws, stats, last_state = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *outputs)
    elif chain_method == "sharded":
        sharding = leading_axis_sharding(mesh)
        chain_keys, flat, init_state = jax.device_put((chain_keys, flat, init_state), sharding)
        draws, stats, last_state = _run_sharded(
            target, kernel_ref, settings, mesh, chain_keys, flat, init_state
        )
    else:
        draws, stats, last_state = _run_vectorized(
            target, kernel_ref, settings, chain_keys, flat, init_state
        )
    draws = jax.block_until_ready(draws)
    sampling_seconds = time.perf_counter() - start

    samples = _constrain(target, draws)
    # In a multi-process run the chains live on other processes' devices too:
    # gather all-gathers what this process cannot fetch directly.
    samples, stats, draws = gather((samples, stats, draws))
    result = MCMCResult(
        samples=samples,
        stats=stats,
        target=target,
        kernel=kernel if user_kernel is None else user_kernel.name,
        adaptation=_adaptation_summary(last_state.params, cross_chain),
        unconstrained=np.asarray(draws, dtype=np.asarray(flat).dtype),
        seconds=sampling_seconds,
        last_state=last_state,
    )
    if diagnose:
        result.diagnose()
    return result


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


def _cross_chain(target, kernel, settings, key, chain_keys, flat, init_state, mesh):
    """ChEES / MEADS: the warm-up pools all chains; sampling runs per chain."""
    if init_state is None:
        if mesh is not None:
            flat = jax.device_put(flat, leading_axis_sharding(mesh))
        warm_key = jax.random.fold_in(key, 2**31 - 2)
        states, params = _warm_cross_chain(target, kernel, settings, warm_key, flat)
        start = jnp.zeros(settings.num_chains, jnp.int32)
    else:
        states, params, start = init_state
    if mesh is None:
        return _sample_cross_chain(target, kernel, settings, chain_keys, states, params, start)
    sharding = leading_axis_sharding(mesh)
    chain_keys, states, start = jax.device_put((chain_keys, states, start), sharding)
    return _sample_cross_chain_sharded(
        target, kernel, settings, mesh, chain_keys, states, params, start
    )
