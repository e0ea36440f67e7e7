"""Kernel specifications: for each kernel name, how to warm it up, which blackjax
algorithm it samples with, and which statistics it reports.

probkit does not re-implement NUTS, HMC, MALA or random-walk Metropolis: it takes
them from blackjax and adds what blackjax leaves to its users (the driver loop,
warm-up, multi-chain runs, sharding, statistics under ArviZ's names). A
:class:`KernelSpec` is the only place that knows a kernel by name; the loop and the
driver call its functions.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from probkit._lazy import blackjax
from probkit.mcmc._adaptation import (
    PreconditionedParams,
    WindowAdaptation,
    apply_scale,
    make_u_kernel,
    preconditioned_window_adaptation,
    window_adaptation,
)
from probkit.mcmc._gibbs import GibbsInfo, metropolis_within_gibbs
from probkit.progress import progress_ticker

__all__ = ["KERNELS", "ByValueArray", "KernelSpec", "Settings", "check_kernel", "jittered_hmc"]


class ByValueArray:
    """A NumPy array hashed and compared by value, so that settings holding one stay a
    compile key: the same matrix reuses the compiled warm-up, a new one compiles anew."""

    __slots__ = ("_key", "value")

    def __init__(self, value):
        self.value = np.ascontiguousarray(value)
        self._key = (self.value.shape, self.value.dtype.str, self.value.tobytes())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other) -> bool:
        return isinstance(other, ByValueArray) and self._key == other._key


class Settings(NamedTuple):
    """The driver's settings a warm-up reads (hashable: part of the compiled key)."""

    num_warmup: int
    mass_matrix: str
    target_accept: float
    options: tuple  # sorted (name, value) pairs of the kernel's options
    num_chains: int
    num_samples: int
    thinning: int
    progress_bar: bool = False
    ticks_per_step: int = 1
    # mass_matrix="blocks": the flat indices of each dense block (the rest diagonal).
    dense_blocks: tuple = ()
    # The user's inverse mass matrix on the flat unconstrained position: the starting
    # value of the adaptation, or the fixed metric with adapt_mass_matrix=False.
    inverse_mass_matrix: ByValueArray | None = None
    adapt_mass_matrix: bool = True
    # The flat indices of discrete coordinates (a target's Gibbs sites), which NUTS and
    # HMC leave to Metropolis-within-Gibbs sweeps; with the flat dimension.
    gibbs_indices: tuple = ()
    num_dims: int = 0

    @property
    def option(self) -> dict:
        """The kernel's options, plus ``gibbs`` (the discrete coordinates and the
        dimension, or ``None``) for the algorithm builders."""
        gibbs = (self.gibbs_indices, self.num_dims) if self.gibbs_indices else None
        return {**dict(self.options), "gibbs": gibbs}


class KernelSpec(NamedTuple):
    """What probkit knows about one kernel name.

    Attributes:
        name: the name passed as ``kernel=``.
        description: one line for messages and the CLI.
        options: the options a user may pass through ``**kernel_options``, with
            their defaults.
        cross_chain: whether warm-up pools every chain (ChEES, MEADS).
        default_target_accept: the acceptance rate step-size adaptation aims for.
        warmup: per-chain ``(key, logdensity, x0, settings) -> (state, params)``, or
            for cross-chain kernels ``(key, logdensity, x0s, settings) -> (states,
            params)``; ``params`` is a dict of arrays.
        algorithm: ``(logdensity, params, options) -> blackjax.SamplingAlgorithm``.
        statistics: ``(state, info, params) -> dict`` of per-draw statistics under
            ArviZ's names (``lp``, ``acceptance_rate``, ``step_size``, ``diverging``,
            ``energy``, ``n_steps``, ``tree_depth``) plus ``nonfinite``.
        position: ``(params, state_position) -> position``; the identity except for
            kernels that run in whitened coordinates (MALA, RWM).
        tuning: ``(settings, num_dims, dtype) -> WindowAdaptation | None``: the
            warm-up as pure pieces, for kernels whose state does not depend on their
            parameters and that sample in the target's coordinates (HMC, NUTS). The
            driver then runs warm-up and sampling as one loop with one copy of the
            kernel (half the tracing and compilation of a separate warm-up); ``None``
            where the settings need ``warmup`` instead.
    """

    name: str
    description: str
    options: Mapping[str, Any]
    cross_chain: bool
    default_target_accept: float
    warmup: Callable
    algorithm: Callable
    statistics: Callable
    position: Callable
    tuning: Callable | None = None


def _identity_position(params, position):
    del params
    return position


# -- statistics ------------------------------------------------------------------------
def _base_stats(state, info, params) -> dict:
    return {
        "lp": state.logdensity,
        "acceptance_rate": info.acceptance_rate,
        "step_size": jnp.broadcast_to(jnp.asarray(params["step_size"], state.logdensity.dtype), ()),
    }


def _hmc_stats(state, info, params) -> dict:
    return {
        **_base_stats(state, info, params),
        "diverging": info.is_divergent,
        "energy": info.energy,
        "n_steps": info.num_integration_steps,
        "nonfinite": ~jnp.isfinite(info.proposal.logdensity),
    }


def _gibbs_aware(statistics: Callable) -> Callable:
    """``statistics`` of the continuous move, plus the integer sweeps' acceptance rate
    for targets with Gibbs sites (:class:`~probkit.mcmc._gibbs.GibbsInfo`)."""

    def wrapped(state, info, params) -> dict:
        if not isinstance(info, GibbsInfo):
            return statistics(state, info, params)
        if info.continuous is None:  # every coordinate is discrete: no HMC move
            stats = {"lp": state.logdensity, "acceptance_rate": info.acceptance_rate}
        else:
            stats = statistics(state, info.continuous, params)
        return {**stats, "discrete_acceptance_rate": info.discrete_acceptance_rate}

    return wrapped


def _nuts_stats(state, info, params) -> dict:
    ends = (info.trajectory_leftmost_state.logdensity, info.trajectory_rightmost_state.logdensity)
    return {
        **_base_stats(state, info, params),
        "diverging": info.is_divergent,
        "energy": info.energy,
        "n_steps": info.num_integration_steps,
        "tree_depth": info.num_trajectory_expansions,
        "nonfinite": ~(jnp.isfinite(ends[0]) & jnp.isfinite(ends[1])),
    }


def _ghmc_stats(state, info, params) -> dict:
    return {
        **_base_stats(state, info, params),
        "diverging": info.is_divergent,
        "energy": info.energy,
        "nonfinite": ~jnp.isfinite(info.proposal.logdensity),
    }


# blackjax's MALAInfo carries no proposal, and RWInfo.proposal holds the state after
# the accept/reject step: their non-finite proposals show only as rejections, so
# MALA and RWM report no ``nonfinite`` statistic.
_metropolis_stats = _base_stats


def generic_statistics(state, info) -> dict:
    """ArviZ-named statistics of any blackjax-style ``(state, info)``, by field name.

    Used for user-supplied kernels: ``logdensity`` -> ``lp``, ``acceptance_rate``,
    ``is_divergent`` -> ``diverging``, ``energy``, ``num_integration_steps`` ->
    ``n_steps``, ``num_trajectory_expansions`` -> ``tree_depth``, where present.
    """
    names = {
        "acceptance_rate": "acceptance_rate",
        "is_divergent": "diverging",
        "energy": "energy",
        "num_integration_steps": "n_steps",
        "num_trajectory_expansions": "tree_depth",
    }
    stats = {}
    if hasattr(state, "logdensity"):
        stats["lp"] = state.logdensity
    for field, name in names.items():
        value = getattr(info, field, None)
        if value is not None and jnp.ndim(value) == 0:
            stats[name] = value
    return stats


# -- HMC with a jittered number of steps -------------------------------------------------
class jittered_hmc(NamedTuple):  # noqa: N801 - used like blackjax's algorithm modules
    """HMC whose number of leapfrog steps is drawn afresh for every transition.

    A fixed trajectory can resonate with the target: on a Gaussian whose period (or
    half-period) matches ``num_steps x step_size`` every proposal returns to (or
    mirrors) the current point, and the chain does not explore. Drawing the number
    of steps uniformly from ``1 .. 2 L - 1`` (mean ``L``), as blackjax's
    ``dynamic_hmc`` and ChEES-HMC do, removes the resonance at the same average cost.
    ``L`` is ``num_steps``, or ``ceil(trajectory_length / step_size)`` (capped at
    ``max_num_steps``) when a trajectory length is given.

    It has the interface of a blackjax algorithm module (``init``, ``build_kernel``),
    so blackjax's window adaptation tunes it.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.mcmc import jittered_hmc
        >>> algo = jittered_hmc(num_steps=8)
        >>> kernel = algo.build_kernel()
        >>> state = algo.init(jnp.zeros(2), lambda x: -0.5 * jnp.sum(x**2))
        >>> new, info = kernel(jax.random.key(0), state, lambda x: -0.5 * jnp.sum(x**2),
        ...                    0.3, jnp.ones(2))
        >>> 1 <= int(info.num_integration_steps) <= 15
        True
    """

    num_steps: int = 16
    trajectory_length: float | None = None
    jitter: bool = True
    max_num_steps: int = 1024

    @staticmethod
    def init(position, logdensity_fn, *_):
        return blackjax.hmc.init(position, logdensity_fn)

    def mean_steps(self, step_size):
        if self.trajectory_length is None:
            return jnp.asarray(self.num_steps, jnp.int32)
        steps = jnp.ceil(self.trajectory_length / step_size)
        return jnp.clip(steps, 1, self.max_num_steps).astype(jnp.int32)

    def build_kernel(self, integrator=None):
        if integrator is None:
            integrator = blackjax.mcmc.integrators.velocity_verlet
        base = blackjax.mcmc.hmc.build_kernel(integrator)

        def kernel(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix, **_):
            mean = self.mean_steps(step_size)
            if self.jitter:
                steps_key, rng_key = jax.random.split(rng_key)
                steps = jax.random.randint(steps_key, (), 1, 2 * mean)
            else:
                steps = mean
            return base(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix, steps)

        return kernel

    def __call__(self, logdensity_fn, step_size, inverse_mass_matrix):
        """The :class:`blackjax.SamplingAlgorithm` for fixed parameters."""
        kernel = self.build_kernel()

        def init(position, rng_key=None):
            del rng_key
            return blackjax.hmc.init(position, logdensity_fn)

        def step(rng_key, state):
            return kernel(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix)

        return blackjax.base.SamplingAlgorithm(init, step)


def _hmc_algorithm_object(options) -> jittered_hmc:
    return jittered_hmc(
        num_steps=int(options["num_integration_steps"]),
        trajectory_length=options["trajectory_length"],
        jitter=bool(options["jitter"]),
    )


# -- warm-ups ------------------------------------------------------------------------------
def _warmup_hook(total_ticks: int, progress_bar: bool, keep: Callable | None = None) -> Callable:
    """``adaptation_info_fn`` for blackjax's window adaptations.

    With a progress bar it ticks a host-side bar once per step: blackjax's adaptation
    loops take this hook but draw no bar of their own. It returns ``keep(...)`` for
    adaptations that read their own per-step output (the low-rank one does), and
    otherwise nothing (blackjax would stack every warm-up state, which probkit
    discards).
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


def block_mask(num_dims: int, blocks: tuple) -> np.ndarray:
    """Ones on the diagonal and inside each dense block, zeros elsewhere."""
    mask = np.eye(num_dims)
    for block in blocks:
        index = np.asarray(block, dtype=int)
        mask[np.ix_(index, index)] = 1.0
    return mask


def user_inverse_mass_matrix(settings: Settings, num_dims: int, dtype) -> jax.Array | None:
    """The user's inverse mass matrix in the form the warm-up uses: as given when it is
    fixed; otherwise as a start for the adapted structure (a vector becomes a diagonal
    matrix for dense and block structures, whose cross-block entries are dropped)."""
    user = settings.inverse_mass_matrix
    if user is None:
        return None
    matrix = jnp.asarray(user.value, dtype)
    if not settings.adapt_mass_matrix:
        return matrix
    if settings.mass_matrix in ("dense", "blocks") and matrix.ndim == 1:
        matrix = jnp.diag(matrix)
    if settings.mass_matrix == "blocks":
        matrix = matrix * jnp.asarray(block_mask(num_dims, settings.dense_blocks), dtype)
    return matrix


def _metric_core(settings: Settings, num_dims: int, dtype):
    """blackjax's Welford metric core for block structures and user matrices: the
    dense estimate restricted to the blocks at every window's end (a principal-block
    restriction of a positive-definite matrix stays positive definite), or a core that
    keeps the user's matrix fixed."""
    from blackjax.adaptation.metric_recipes import MetricCore, lookup_recipe

    start = user_inverse_mass_matrix(settings, num_dims, dtype)
    if not settings.adapt_mass_matrix:
        recipe = "welford_diag" if start.ndim == 1 else "welford_dense"
        core = lookup_recipe(recipe).build_core(initial_inverse_mass_matrix=start)
        return MetricCore(core.init, lambda state, position, grad=None: state, lambda s: s)
    recipe = "welford_diag" if settings.mass_matrix == "diag" else "welford_dense"
    core = lookup_recipe(recipe).build_core(initial_inverse_mass_matrix=start)
    if settings.mass_matrix != "blocks":
        return core
    mask = jnp.asarray(block_mask(num_dims, settings.dense_blocks), dtype)

    def final(state):
        state = core.final(state)
        return state._replace(inverse_mass_matrix=state.inverse_mass_matrix * mask)

    return MetricCore(core.init, core.update, final)


def _with_gibbs(algorithm, options):
    """``algorithm``, or Metropolis-within-Gibbs around it for a target with discrete
    coordinates (``options["gibbs"]``)."""
    if options.get("gibbs") is None:
        return algorithm
    indices, num_dims = options["gibbs"]
    return metropolis_within_gibbs(algorithm, indices, num_dims)


def _window_warmup(algorithm_of: Callable, extra_of: Callable) -> Callable:
    """Stan's window adaptation (blackjax) for an HMC-family algorithm."""

    def warmup(key, logdensity, x0, settings: Settings):
        options = settings.option
        algorithm = _with_gibbs(algorithm_of(options), options)
        extra = extra_of(options)
        d = x0.shape[0]
        if settings.num_warmup == 0:
            step = options["step_size"] or 0.1
            user = settings.inverse_mass_matrix
            params = {
                "step_size": jnp.asarray(step, x0.dtype),
                "inverse_mass_matrix": (
                    jnp.ones(d, x0.dtype) if user is None else jnp.asarray(user.value, x0.dtype)
                ),
            }
            return algorithm.init(x0, logdensity), params
        init_step = 1.0 if options["step_size"] is None else options["step_size"]
        total = settings.num_warmup * settings.ticks_per_step
        if settings.mass_matrix == "low_rank":
            adaptation = blackjax.window_adaptation_low_rank(
                algorithm,
                logdensity,
                max_rank=min(10, d),
                initial_step_size=init_step,
                target_acceptance_rate=settings.target_accept,
                adaptation_info_fn=_warmup_hook(
                    total,
                    settings.progress_bar,
                    keep=_default_info_fn(blackjax.window_adaptation_low_rank),
                ),
                **extra,
            )
        elif settings.mass_matrix == "blocks" or settings.inverse_mass_matrix is not None:
            # The same Stan schedule and step-size averaging as window_adaptation (which
            # is blackjax's shim over staged_adaptation), with probkit's metric core.
            adaptation = blackjax.staged_adaptation(
                algorithm,
                logdensity,
                metric=_metric_core(settings, d, x0.dtype),
                initial_step_size=init_step,
                target_acceptance_rate=settings.target_accept,
                adaptation_info_fn=_warmup_hook(total, settings.progress_bar),
                **extra,
            )
        else:
            adaptation = blackjax.window_adaptation(
                algorithm,
                logdensity,
                is_mass_matrix_diagonal=settings.mass_matrix == "diag",
                initial_step_size=init_step,
                target_acceptance_rate=settings.target_accept,
                adaptation_info_fn=_warmup_hook(total, settings.progress_bar),
                **extra,
            )
        (state, params), _ = adaptation.run(key, x0, num_steps=settings.num_warmup)
        return state, dict(params)

    return warmup


def _window_tuning(settings: Settings, num_dims: int, dtype) -> WindowAdaptation | None:
    """The window adaptation :func:`_window_warmup` runs, as pieces (the same schedule,
    step-size averaging and metric core), or ``None`` for the low-rank metric (whose
    adaptation blackjax keeps inside its own loop)."""
    if settings.mass_matrix == "low_rank" or settings.num_warmup == 0:
        return None
    step_size = settings.option["step_size"]
    return window_adaptation(
        _metric_core(settings, num_dims, dtype),
        settings.num_warmup,
        1.0 if step_size is None else step_size,
        settings.target_accept,
        dtype,
    )


def _nuts_algorithm(logdensity, params, options):
    algorithm = blackjax.nuts
    if options.get("gibbs") is not None:
        algorithm = _with_gibbs(algorithm, options).sampling_algorithm
    return algorithm(
        logdensity,
        params["step_size"],
        params["inverse_mass_matrix"],
        max_num_doublings=options["max_num_doublings"],
    )


def _hmc_algorithm(logdensity, params, options):
    algorithm = _hmc_algorithm_object(options)
    if options.get("gibbs") is not None:
        algorithm = _with_gibbs(algorithm, options).sampling_algorithm
    return algorithm(logdensity, params["step_size"], params["inverse_mass_matrix"])


def _scale_is_diagonal(settings: Settings) -> bool:
    user = settings.inverse_mass_matrix
    if user is not None and not settings.adapt_mass_matrix:
        return user.value.ndim == 1
    return settings.mass_matrix == "diag"


def _preconditioned_warmup(kernel: str) -> Callable:
    def warmup(key, logdensity, x0, settings: Settings):
        state, params = preconditioned_window_adaptation(
            kernel,
            logdensity,
            x0,
            key,
            settings.num_warmup,
            diagonal=_scale_is_diagonal(settings),
            target_accept=settings.target_accept,
            mask=(
                block_mask(x0.shape[0], settings.dense_blocks)
                if settings.mass_matrix == "blocks" and settings.adapt_mass_matrix
                else None
            ),
            initial_covariance=user_inverse_mass_matrix(settings, x0.shape[0], x0.dtype),
            adapt=settings.adapt_mass_matrix,
            step_size=settings.option["step_size"],
            progress_bar=settings.progress_bar,
        )
        return state, {"step_size": params.step_size, "scale": params.scale}

    return warmup


def _preconditioned_algorithm(kernel: str) -> Callable:
    def algorithm(logdensity, params, options):
        del options
        return make_u_kernel(
            kernel, logdensity, PreconditionedParams(params["step_size"], params["scale"])
        )

    return algorithm


def _scaled_position(params, u):
    return apply_scale(params["scale"], u)


def _halton_steps(random_generator_arg, num_leapfrog_steps):
    # ChEES' jittered trajectory: ceil(halton(i) * L) steps (blackjax's rule; the
    # Halton value does not depend on max_bits while i + 1 < 2**max_bits).
    jitter = blackjax.mcmc.dynamic_hmc.halton_sequence(random_generator_arg, 30)
    return jnp.asarray(jnp.ceil(jitter * num_leapfrog_steps), dtype=int)


def _chees_warmup(key, logdensity, x0s, settings: Settings):
    # The chains start where the driver put them (pathfinder_starts, when
    # pathfinder_init holds: run apart, before the chains are sharded).
    options = settings.option
    adaptation = blackjax.chees_adaptation(
        logdensity,
        settings.num_chains,
        target_acceptance_rate=settings.target_accept,
        max_leapfrog_steps=options["max_leapfrog_steps"],
        # blackjax's ensemble estimate of a diagonal metric (with its floor on the
        # trajectory length); its default, the identity metric, left kidiq's chains
        # where they started (every draw divergent) and earnings' R-hat at 4.8.
        mass_matrix_estimation="diagonal",
    )
    (states, params), _ = adaptation.run(
        key,
        x0s,
        options["step_size"],
        optax.adam(options["learning_rate"]),
        settings.num_warmup,
        max_sampling_steps=settings.num_samples * settings.thinning,
    )
    arrays = {
        "step_size": params["step_size"],
        "inverse_mass_matrix": params["inverse_mass_matrix"],
        "num_leapfrog_steps": jnp.asarray(params["integration_steps_params"][0]),
    }
    return states, arrays


def _chees_algorithm(logdensity, params, options):
    del options
    return blackjax.dynamic_hmc(
        logdensity,
        step_size=params["step_size"],
        inverse_mass_matrix=params["inverse_mass_matrix"],
        next_random_arg_fn=lambda i: i + 1,
        integration_steps_fn=_halton_steps,
        integration_steps_params=(params["num_leapfrog_steps"],),
    )


def pathfinder_starts(key, logdensity, x0s, num_samples: int = 50, maxiter: int = 100):
    """The chains' starts, drawn from multi-path Pathfinder (Zhang et al. 2022, as Stan
    initialises with it): a Pathfinder normal approximation (blackjax.vi.pathfinder)
    found from each chain's start, ``num_samples`` draws from each, and one draw per
    chain picked from the pooled draws by importance resampling (weights
    ``p(x) / q(x)``, without replacement, so that no two chains start at one point).

    Why cross-chain kernels need it: ChEES and MEADS set their step size (and MEADS its
    damping) from statistics pooled over every chain, so one chain far out in the tails
    sets them for all. From dispersed starts (uniform in [-2, 2] on a logistic
    regression with unscaled covariates) MEADS's step collapsed to ~1e-4 and the chains
    did not reach the posterior within the warm-up (coefficients 10-20x too large,
    R-hat 1.3-2.5). Why pooled and resampled rather than one draw from each chain's own
    path: a path that stops short of the typical set (``maxiter`` L-BFGS iterations)
    would still place its chain; the resampling drops its draws, whose weights are
    negligible next to those of paths that arrived. (Where every path stops short, as
    on posteriordb's earnings from the uniform box, no start helps.) A chain keeps its
    own start only when fewer pooled draws than chains have a finite weight.
    """
    from blackjax.vi import pathfinder

    num_chains = x0s.shape[0]
    path_keys = jax.random.split(key, num_chains + 1)

    def one(k, x0):
        approximate_key, draw_key = jax.random.split(k)
        state, _ = pathfinder.approximate(
            approximate_key, logdensity, x0, num_samples, maxiter=maxiter
        )
        xs, logq = pathfinder.sample(draw_key, state, num_samples)
        logp = jax.vmap(logdensity)(xs)
        finite = jnp.all(jnp.isfinite(xs), axis=1) & jnp.isfinite(logp) & jnp.isfinite(logq)
        return xs, jnp.where(finite, logp - logq, -jnp.inf)

    xs, log_weights = jax.vmap(one)(path_keys[1:], x0s)
    xs, log_weights = xs.reshape(-1, x0s.shape[1]), log_weights.reshape(-1)
    # Gumbel top-k: num_chains draws without replacement, in proportion to the weights.
    gumbel = jax.random.gumbel(path_keys[0], log_weights.shape, log_weights.dtype)
    keys, picked = jax.lax.top_k(log_weights + gumbel, num_chains)
    good = jnp.isfinite(keys)
    return jnp.where(good[:, None], xs[picked], x0s)


MEADS_MIN_CHAINS_PER_FOLD = 8


def meads_num_folds(num_chains: int, num_folds: int | None) -> int:
    """MEADS's number of folds: ``num_folds`` as given (checked), or, when it is
    ``None``, the most folds, up to the paper's 4, that split the chains evenly with at
    least 8 chains in each.

    Why 8: each fold's step size and damping come from another fold's chains. With 4
    chains per fold (16 chains in 4 folds) MEADS failed on posteriordb posteriors at
    its defaults: garch11 diverged on every draw, eight schools had R-hat 1.34 and 117
    divergences; the same 16 chains in 2 folds of 8, or 32 chains in 4 folds, sampled
    all of them (R-hat 1.01-1.03 where the ESS per chain allows it, no divergences).
    """
    if num_folds is None:
        for folds in (4, 3, 2):
            if num_chains % folds == 0 and num_chains // folds >= MEADS_MIN_CHAINS_PER_FOLD:
                return folds
        raise ValueError(
            f"kernel='meads' splits the chains into folds (2 to 4) of at least "
            f"{MEADS_MIN_CHAINS_PER_FOLD} chains each and needs at least 4 chains per fold "
            f"in any case: use an even num_chains >= {2 * MEADS_MIN_CHAINS_PER_FOLD} (got "
            f"{num_chains}), or set num_folds yourself; it is meant for many chains "
            "(e.g. 64-512)."
        )
    # Each fold's parameters are estimated from the chains of another fold; with fewer
    # than 4 chains per fold those estimates are unusable.
    if num_chains % num_folds or num_chains < 4 * num_folds:
        raise ValueError(
            f"kernel='meads' splits chains into num_folds={num_folds} folds and needs at "
            f"least 4 chains per fold: use num_chains a multiple of {num_folds} and >= "
            f"{4 * num_folds} (got {num_chains}); it is meant for many chains (e.g. 64-512)."
        )
    return num_folds


def _meads_warmup(key, logdensity, x0s, settings: Settings):
    adaptation = blackjax.meads_adaptation(
        logdensity, settings.num_chains, num_folds=settings.option["num_folds"]
    )
    (states, params), _ = adaptation.run(key, x0s, settings.num_warmup)
    return states, dict(params)


def _meads_algorithm(logdensity, params, options):
    del options
    return blackjax.ghmc(logdensity, **params)


KERNELS: dict[str, KernelSpec] = {
    "nuts": KernelSpec(
        "nuts",
        "No-U-Turn sampler (blackjax.nuts) with Stan's window adaptation",
        {"max_num_doublings": 10, "step_size": None},
        False,
        0.8,
        _window_warmup(
            lambda o: blackjax.nuts, lambda o: {"max_num_doublings": o["max_num_doublings"]}
        ),
        _nuts_algorithm,
        _gibbs_aware(_nuts_stats),
        _identity_position,
        _window_tuning,
    ),
    "hmc": KernelSpec(
        "hmc",
        "Hamiltonian Monte Carlo (blackjax.hmc's kernel) with a jittered number of leapfrog "
        "steps (uniform on 1 .. 2L-1) and Stan's window adaptation",
        {
            "num_integration_steps": 16,
            "trajectory_length": None,
            "jitter": True,
            "step_size": None,
        },
        False,
        0.8,
        _window_warmup(_hmc_algorithm_object, lambda o: {}),
        _hmc_algorithm,
        _gibbs_aware(_hmc_stats),
        _identity_position,
        _window_tuning,
    ),
    "mala": KernelSpec(
        "mala",
        "Metropolis-adjusted Langevin (blackjax.mala), preconditioned by the adapted metric",
        {"step_size": None},
        False,
        0.574,
        _preconditioned_warmup("mala"),
        _preconditioned_algorithm("mala"),
        _metropolis_stats,
        _scaled_position,
    ),
    "rwm": KernelSpec(
        "rwm",
        "Gaussian random-walk Metropolis (blackjax.normal_random_walk), adapted covariance",
        {"step_size": None},
        False,
        0.234,
        _preconditioned_warmup("rwm"),
        _preconditioned_algorithm("rwm"),
        _metropolis_stats,
        _scaled_position,
    ),
    "chees": KernelSpec(
        "chees",
        "ChEES-HMC: jittered HMC with trajectory length tuned across chains "
        "(blackjax.chees_adaptation + blackjax.dynamic_hmc); for many chains on accelerators",
        {
            "learning_rate": 0.025,
            "step_size": 0.1,
            "max_leapfrog_steps": 1000,
            "pathfinder_init": True,
        },
        True,
        0.651,
        _chees_warmup,
        _chees_algorithm,
        _hmc_stats,
        _identity_position,
    ),
    "meads": KernelSpec(
        "meads",
        "MEADS: generalised HMC tuned across chain folds "
        "(blackjax.meads_adaptation + blackjax.ghmc), started from Pathfinder draws; for "
        "many chains on accelerators",
        {"num_folds": None, "pathfinder_init": True},
        True,
        0.8,
        _meads_warmup,
        _meads_algorithm,
        _ghmc_stats,
        _identity_position,
    ),
}


def _check_option_values(kernel: str, options: Mapping[str, Any]) -> None:
    """Option values that would fail (or silently misbehave) inside compiled code."""
    step = options.get("step_size")
    if step is not None and (
        isinstance(step, bool) or not isinstance(step, int | float) or not step > 0
    ):
        raise ValueError(
            f"step_size must be a positive number (where the step-size adaptation starts, "
            f"or the fixed step with num_warmup=0), got {step!r} for kernel={kernel!r}."
        )
    for name in ("max_num_doublings", "num_integration_steps", "max_leapfrog_steps", "num_folds"):
        value = options.get(name)
        if name == "num_folds" and value is None:
            continue  # MEADS: chosen from num_chains (meads_num_folds)
        if name in options and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    start = options.get("pathfinder_init", True)
    if not isinstance(start, bool):
        raise TypeError(f"pathfinder_init must be True or False, got {start!r}.")
    length = options.get("trajectory_length")
    if length is not None and (not isinstance(length, int | float) or not length > 0):
        raise ValueError(f"trajectory_length must be a positive number, got {length!r}.")
    rate = options.get("learning_rate")
    if rate is not None and not (
        isinstance(rate, int | float) and math.isfinite(rate) and rate > 0
    ):
        raise ValueError(f"learning_rate must be a positive number, got {rate!r}.")


def check_kernel(kernel: str, kernel_options: Mapping[str, Any]) -> KernelSpec:
    """Validate the kernel name and its options before anything is compiled."""
    if not isinstance(kernel, str) or kernel not in KERNELS:
        close = difflib.get_close_matches(str(kernel), KERNELS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown kernel {kernel!r}. Choose one of {sorted(KERNELS)}, or pass a "
            f"blackjax SamplingAlgorithm (or an (init, step) pair).{hint}"
        )
    spec = KERNELS[kernel]
    unknown = [k for k in kernel_options if k not in spec.options]
    if unknown:
        allowed = ", ".join(sorted(spec.options)) or "none"
        raise TypeError(
            f"Unknown option(s) {unknown} for kernel={kernel!r}. Options it accepts: "
            f"{allowed}. (Sampler-wide settings such as num_chains or target_accept are "
            "arguments of probkit.mcmc.sample itself.)"
        )
    if kernel == "hmc" and {"num_integration_steps", "trajectory_length"} <= set(kernel_options):
        raise ValueError(
            "Pass either num_integration_steps or trajectory_length for kernel='hmc', not "
            "both: the number of steps is trajectory_length / step_size."
        )
    _check_option_values(kernel, {**spec.options, **kernel_options})
    return spec
