"""The MCMC driver: warm-up, multi-chain runs, sharding and results."""

from __future__ import annotations

import collections
import inspect
import math
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jax.sharding import PartitionSpec as P

from probkit.distributed import AXIS, chain_mesh, check_divisible, leading_axis_sharding
from probkit.mcmc._adaptation import (
    apply_scale,
    make_u_kernel,
    preconditioned_window_adaptation,
)
from probkit.mcmc._kernels import build_sampling_algorithm, check_kernel, extract_stats
from probkit.progress import progress_scan, progress_ticker
from probkit.results import MCMCResult
from probkit.target import Target, compiled_cache_key, from_numpyro

__all__ = ["sample"]

_CHAIN_METHODS = ("vectorized", "sequential", "sharded")
_MASS_MATRICES = ("diag", "dense", "low_rank")

# Compiled samplers, memoised on the target's compile_key and every setting that is
# baked into the compiled code: sampling the same model again (new data of the same
# shapes, a new seed) reuses the compilation, as re-running one NumPyro MCMC object
# does. Data, keys and initial positions are arguments of the compiled functions.
_COMPILED: collections.OrderedDict = collections.OrderedDict()
_COMPILED_MAX_ENTRIES = 32


def _memoised(key: Hashable | None, build: Callable[[], Callable]) -> Callable:
    """``build()``, cached under ``key`` (``None`` or an unhashable key: not cached)."""
    try:
        hash(key)
    except TypeError:
        key = None
    if key is None:
        return build()
    fn = _COMPILED.get(key)
    if fn is None:
        fn = _COMPILED[key] = build()
        if len(_COMPILED) > _COMPILED_MAX_ENTRIES:
            _COMPILED.popitem(last=False)
    else:
        _COMPILED.move_to_end(key)
    return fn


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


def _initial_positions(target: Target, init, key, num_chains: int):
    """Unconstrained initial positions with a leading chain axis."""
    if init is None:
        target_key = compiled_cache_key(target)
        # The initialiser itself is part of the key: it carries the init option and
        # the initial position, which the target's compile_key does not.
        draw = _memoised(
            target_key and ("init", target_key, target.init_with_data),
            lambda: jax.jit(target.init_with_data, static_argnums=1),
        )
        return draw(key, num_chains, target.data)
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

    return jax.tree_util.tree_map(broadcast, init, example)


def sample(
    target: Target | Callable,
    *,
    kernel: str = "nuts",
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    seed: int = 0,
    chain_method: str = "vectorized",
    thinning: int = 1,
    progress_bar: bool = False,
    init: Any = None,
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
            or ``"chees"`` / ``"meads"`` (warm-up pooled across chains; meant for many
            chains on accelerators).
        num_chains: number of chains (a leading axis everywhere).
        num_warmup: warm-up (adaptation) iterations per chain, discarded.
        num_samples: draws kept per chain (after thinning).
        seed: the only source of randomness; chain ``c`` uses
            ``fold_in(PRNGKey(seed), c)`` whatever ``chain_method`` and the number of
            devices. Without adaptation the draws are then identical; after warm-up
            they can differ by floating-point rounding (XLA on CPU rounds some
            functions differently for different batch sizes, and chaotic kernels such
            as NUTS amplify an ulp), while following the same distribution.
        chain_method: ``"vectorized"`` (``vmap`` on one device), ``"sequential"`` (one
            chain after another, compiled once), ``"sharded"`` (chains split over every
            device; ``num_chains`` must be a multiple of the device count).
        thinning: keep every ``thinning``-th draw.
        progress_bar: show progress bars for the warm-up (NUTS, HMC, MALA, RWM) and the
            sampling phase.
        init: unconstrained starting positions (one, or one per chain). Default: the
            target's initialisation (uniform in [-2, 2] for NumPyro models).
        mass_matrix: ``"diag"``, ``"dense"`` or ``"low_rank"`` (blackjax's low-rank
            adaptation; NUTS/HMC only) for the Stan-style window adaptation.
        target_accept: acceptance rate the step size is tuned to (default 0.8 for
            NUTS/HMC, 0.574 for MALA, 0.234 for RWM, 0.651 for ChEES).
        model_args: positional data for a NumPyro model passed as ``target``.
        model_kwargs: keyword data for a NumPyro model passed as ``target``.
        diagnose: warn (:class:`~probkit.results.SamplingWarning`), in words, about
            divergences, R-hat above 1.01, low bulk ESS and non-finite log densities
            (see :meth:`MCMCResult.diagnose`).
        **kernel_options: options of the chosen kernel (e.g. ``max_num_doublings``
            for NUTS, ``num_integration_steps`` for HMC; ``step_size`` is where the
            step-size adaptation starts, or the fixed step size with ``num_warmup=0``
            (then with an identity mass matrix; default 0.1 for NUTS/HMC)).

    Returns:
        An :class:`~probkit.results.MCMCResult`.

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
    """
    spec = check_kernel(kernel, kernel_options)
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
    target_accept = spec.default_target_accept if target_accept is None else target_accept
    if not 0.0 < float(target_accept) < 1.0:
        raise ValueError(f"target_accept must lie strictly between 0 and 1, got {target_accept}.")
    if spec.cross_chain and num_chains < 2:
        raise ValueError(f"kernel={kernel!r} adapts across chains: use num_chains >= 2.")
    options = {**spec.options, **kernel_options}
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
    if spec.cross_chain and num_warmup == 0:
        raise ValueError(f"kernel={kernel!r} needs num_warmup > 0 to tune its parameters.")

    target = _as_target(target, model_args, model_kwargs)
    mesh = None
    if chain_method == "sharded":
        mesh = chain_mesh()
        check_divisible(num_chains, mesh)

    key = jax.random.PRNGKey(seed)
    chain_keys = jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(num_chains))
    positions = _initial_positions(target, init, jax.random.fold_in(key, 2**31 - 1), num_chains)
    _, unravel = ravel_pytree(target.example_position)
    flat = jax.vmap(lambda z: ravel_pytree(z)[0])(positions)
    dtype = flat.dtype
    data = target.data

    target_key = compiled_cache_key(target)
    # Fail before compiling the sampler when a chain starts where the density is not finite.
    start_lp = _memoised(
        target_key and ("start", target_key),
        lambda: jax.jit(
            jax.vmap(lambda d, x: target.logdensity_with_data(d, unravel(x)), in_axes=(None, 0))
        ),
    )(data, flat)
    bad = np.flatnonzero(~np.isfinite(np.asarray(start_lp)))
    if bad.size:
        raise ValueError(
            f"The log density is not finite at the initial position of chain(s) "
            f"{bad.tolist()} (value {np.asarray(start_lp)[bad[0]]}). Pass init= with "
            "positions where it is finite."
        )

    run_kw = dict(
        kernel=kernel,
        options=options,
        num_warmup=num_warmup,
        num_samples=num_samples,
        thinning=thinning,
        mass_matrix=mass_matrix,
        target_accept=float(target_accept),
        progress_bar=progress_bar,
        target=target,
        unravel=unravel,
        num_chains=num_chains,
        target_key=target_key,
    )

    start = time.perf_counter()
    if spec.cross_chain:
        draws, stats, adaptation = _run_cross_chain(chain_keys, flat, data, key, mesh, **run_kw)
    else:
        draws, stats, adaptation = _run_per_chain(
            chain_keys, flat, data, chain_method, mesh, **run_kw
        )
    draws = jax.block_until_ready(draws)
    sampling_seconds = time.perf_counter() - start

    constrain = _memoised(
        target_key and ("constrain", target_key),
        lambda: jax.jit(
            jax.vmap(
                jax.vmap(lambda d, x: target.constrain_with_data(d, unravel(x)), (None, 0)),
                (None, 0),
            )
        ),
    )
    samples = constrain(data, draws)
    result = MCMCResult(
        samples={k: np.asarray(v) for k, v in samples.items()},
        stats={k: np.asarray(v) for k, v in stats.items()},
        target=target,
        kernel=kernel,
        adaptation={k: np.asarray(v) for k, v in adaptation.items()},
        unconstrained=np.asarray(draws, dtype=dtype),
        seconds=sampling_seconds,
    )
    if diagnose:
        result.diagnose()
    return result


def _warmup_hook(total_ticks: int, progress_bar: bool, keep: Callable | None = None) -> Callable:
    """``adaptation_info_fn`` for blackjax's window adaptations.

    With a progress bar it ticks a host-side bar once per step: blackjax's adaptation
    loops take this hook but draw no bar of their own. It returns ``keep(...)`` for
    adaptations that read their own per-step output (the low-rank one does), and
    otherwise nothing: blackjax's default stacks every warm-up state, which probkit
    discards.
    """
    tick = progress_ticker(total_ticks, desc="warm-up") if progress_bar else None

    def adaptation_info_fn(state, info, adaptation_state):
        if tick is not None:
            tick()
        return None if keep is None else keep(state, info, adaptation_state)

    return adaptation_info_fn


def _default_info_fn(adaptation: Callable) -> Callable:
    """The ``adaptation_info_fn`` a blackjax adaptation uses when given none."""
    return inspect.signature(adaptation).parameters["adaptation_info_fn"].default


def _sampling_loop(algorithm, state, key, num_samples, thinning, kernel, step_size, progress, desc):
    """Draw ``num_samples`` (each after ``thinning`` transitions) from ``state``."""

    def transition(carry, step_key):
        state, _ = carry
        state, info = algorithm.step(step_key, state)
        return (state, info), None

    def one_draw(state, draw_key):
        keys = jax.random.split(draw_key, thinning)
        info0 = jax.eval_shape(algorithm.step, keys[0], state)[1]
        info0 = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), info0)
        (state, info), _ = jax.lax.scan(transition, (state, info0), keys)
        return state, (state.position, extract_stats(kernel, state, info, step_size))

    keys = jax.random.split(key, num_samples)
    return progress_scan(one_draw, state, keys, progress_bar=progress, desc=desc)


def _per_chain_fn(
    *,
    kernel,
    options,
    num_warmup,
    num_samples,
    thinning,
    mass_matrix,
    target_accept,
    progress_bar,
    target,
    unravel,
    num_chains,
    ticks_per_step=1,
    desc="sampling",
):
    """One chain from a flat start: ``(key, x0, data) -> (draws, stats, adaptation)``."""
    total_ticks = num_warmup * ticks_per_step

    def run_chain(chain_key, x0, data):
        def logdensity(x):
            return target.logdensity_with_data(data, unravel(x))

        warm_key, sample_key = jax.random.split(chain_key)
        d = x0.shape[0]
        if kernel in ("nuts", "hmc"):
            algorithm_cls = blackjax.nuts if kernel == "nuts" else blackjax.hmc
            extra = (
                {"max_num_doublings": options["max_num_doublings"]}
                if kernel == "nuts"
                else {"num_integration_steps": options["num_integration_steps"]}
            )
            if num_warmup == 0:
                step = options["step_size"] or 0.1
                params = {
                    "step_size": jnp.asarray(step, x0.dtype),
                    "inverse_mass_matrix": jnp.ones(d, x0.dtype),
                }
                state = algorithm_cls.init(x0, logdensity)
            else:
                init_step = 1.0 if options["step_size"] is None else options["step_size"]
                if mass_matrix == "low_rank":
                    warmup = blackjax.window_adaptation_low_rank(
                        algorithm_cls,
                        logdensity,
                        max_rank=min(10, d),
                        initial_step_size=init_step,
                        target_acceptance_rate=target_accept,
                        adaptation_info_fn=_warmup_hook(
                            total_ticks,
                            progress_bar,
                            keep=_default_info_fn(blackjax.window_adaptation_low_rank),
                        ),
                        **extra,
                    )
                else:
                    warmup = blackjax.window_adaptation(
                        algorithm_cls,
                        logdensity,
                        is_mass_matrix_diagonal=mass_matrix == "diag",
                        initial_step_size=init_step,
                        target_acceptance_rate=target_accept,
                        adaptation_info_fn=_warmup_hook(total_ticks, progress_bar),
                        **extra,
                    )
                (state, params), _ = warmup.run(warm_key, x0, num_steps=num_warmup)
            algorithm = build_sampling_algorithm(kernel, logdensity, params, options)
            _, (draws, stats) = _sampling_loop(
                algorithm,
                state,
                sample_key,
                num_samples,
                thinning,
                kernel,
                params["step_size"],
                progress_bar,
                desc,
            )
            imm = params["inverse_mass_matrix"]
            adaptation = {"step_size": params["step_size"]}
            if isinstance(imm, jax.Array):
                adaptation["inverse_mass_matrix"] = imm
            return draws, stats, adaptation

        # mala / rwm: preconditioned through x = L u
        state, params = preconditioned_window_adaptation(
            kernel,
            logdensity,
            x0,
            warm_key,
            num_warmup,
            diagonal=mass_matrix == "diag",
            target_accept=target_accept,
            step_size=options["step_size"],
            progress_bar=progress_bar,
        )
        algorithm = make_u_kernel(kernel, logdensity, params)
        _, (u_draws, stats) = _sampling_loop(
            algorithm,
            state,
            sample_key,
            num_samples,
            thinning,
            kernel,
            params.step_size,
            progress_bar,
            desc,
        )
        draws = jax.vmap(lambda u: apply_scale(params.scale, u))(u_draws)
        return draws, stats, {"step_size": params.step_size, "scale": params.scale}

    return run_chain


def _sharded(batched, mesh, n_chain: int, n_shared: int) -> Callable:
    """``batched`` with its first ``n_chain`` arguments' chain axis split over ``mesh``."""
    return jax.jit(
        jax.shard_map(
            batched,
            mesh=mesh,
            in_specs=(P(AXIS),) * n_chain + (P(),) * n_shared,
            out_specs=P(AXIS),
            check_vma=False,
        )
    )


def _sharded_call(batched, mesh, chain_args, shared_args):
    """Run ``batched(*chain_args, *shared_args)`` with the chain axis split over ``mesh``.

    Each device runs its own block of chains with ``shard_map`` (no cross-device
    traffic: a NUTS tree on one device never waits for another device's chains).
    Chain ``c`` uses the same key as under ``"vectorized"``; on CPU, XLA's SIMD and
    scalar code paths for transcendental functions can round differently for
    different block sizes, so draws after adaptation agree in distribution (and
    bit for bit whenever the arithmetic does not depend on the block size).
    """
    sharded = _sharded(batched, mesh, len(chain_args), len(shared_args))
    sharding = leading_axis_sharding(mesh)
    chain_args = jax.tree_util.tree_map(lambda x: jax.device_put(x, sharding), chain_args)
    return sharded(*chain_args, *shared_args)


def _settings_key(kw: Mapping[str, Any]) -> tuple:
    """The sampler settings baked into the compiled code, as a hashable tuple."""
    options = tuple(sorted(kw["options"].items()))
    skip = ("options", "target", "unravel", "target_key")
    return (options, *((k, v) for k, v in sorted(kw.items()) if k not in skip))


def _run_per_chain(chain_keys, flat, data, chain_method, mesh, **kw):
    target_key = kw.pop("target_key")
    # A host callback without arguments fires once per step under vmap, once per
    # device under shard_map: the warm-up bar counts accordingly.
    kw["ticks_per_step"] = mesh.size if chain_method == "sharded" else 1
    key = target_key and ("per_chain", target_key, chain_method, mesh, _settings_key(kw))
    if chain_method == "sequential":
        # One compiled function for every chain; each chain draws its own bar.
        fn = _memoised(
            key, lambda: jax.jit(_per_chain_fn(**kw, desc="sampling (one chain at a time)"))
        )
        outputs = [fn(chain_keys[c], flat[c], data) for c in range(kw["num_chains"])]
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *outputs)

    def build():
        batched = jax.vmap(_per_chain_fn(**kw), in_axes=(0, 0, None))
        if chain_method == "vectorized":
            return jax.jit(batched)
        return _sharded(batched, mesh, 2, 1)

    fn = _memoised(key, build)
    if chain_method == "sharded":
        sharding = leading_axis_sharding(mesh)
        chain_keys, flat = (jax.device_put(x, sharding) for x in (chain_keys, flat))
    return fn(chain_keys, flat, data)


def _run_cross_chain(chain_keys, flat, data, key, mesh, **kw):
    """ChEES / MEADS: warm-up pools all chains; sampling is per chain (compiled per call)."""
    kw.pop("target_key")
    kernel, options, target, unravel = kw["kernel"], kw["options"], kw["target"], kw["unravel"]
    num_chains, num_warmup = kw["num_chains"], kw["num_warmup"]

    def warm(flat, data):
        def logdensity(x):
            return target.logdensity_with_data(data, unravel(x))

        warm_key = jax.random.fold_in(key, 2**31 - 2)
        if kernel == "chees":
            adapt = blackjax.chees_adaptation(
                logdensity,
                num_chains,
                target_acceptance_rate=kw["target_accept"],
                max_leapfrog_steps=options["max_leapfrog_steps"],
            )
            optim = optax.adam(options["learning_rate"])
            (states, params), _ = adapt.run(
                warm_key,
                flat,
                options["step_size"],
                optim,
                num_warmup,
                max_sampling_steps=kw["num_samples"] * kw["thinning"],
            )
        else:
            adapt = blackjax.meads_adaptation(
                logdensity, num_chains, num_folds=options["num_folds"]
            )
            (states, params), _ = adapt.run(warm_key, flat, num_warmup)
        return states, params

    # The tuned parameters mix arrays with functions (ChEES' jittered trajectory
    # length). Arrays leave the jitted warm-up; the functions, which close over
    # Python values only, are picked up while tracing.
    static_params: dict = {}

    def warm_arrays(flat, data):
        states, params = warm(flat, data)
        arrays = {}
        for name, value in params.items():
            if callable(value):
                static_params[name] = value
            else:
                arrays[name] = value
        return states, arrays

    if mesh is not None:
        flat = jax.device_put(flat, leading_axis_sharding(mesh))
    states, array_params = jax.jit(warm_arrays)(flat, data)

    def run_chain(chain_key, state, data, array_params):
        def logdensity(x):
            return target.logdensity_with_data(data, unravel(x))

        algorithm = build_sampling_algorithm(
            kernel, logdensity, {**array_params, **static_params}, options
        )
        _, (draws, stats) = _sampling_loop(
            algorithm,
            state,
            chain_key,
            kw["num_samples"],
            kw["thinning"],
            kernel,
            array_params["step_size"],
            kw["progress_bar"],
            "sampling",
        )
        return draws, stats

    batched = jax.vmap(run_chain, in_axes=(0, 0, None, None))
    if mesh is None:
        draws, stats = jax.jit(batched)(chain_keys, states, data, array_params)
    else:
        draws, stats = _sharded_call(batched, mesh, (chain_keys, states), (data, array_params))
    adaptation = {
        k: v for k, v in array_params.items() if np.ndim(v) <= 2 and not math.isnan(np.sum(v))
    }
    return draws, stats, adaptation
