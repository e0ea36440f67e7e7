"""Tempered and waste-free SMC samplers for static targets.

The sampler follows ``pi_lambda ∝ p_0 L^lambda`` from ``lambda = 0`` to ``1``
(:mod:`probkit.smc._tempering`). Each step is the Feynman-Kac step of
:func:`probkit.smc.step` with a potential ``G = L^(lambda_t - lambda_{t-1})`` and an
MCMC move invariant for ``pi_{lambda_t}``, in the order reweight, resample, move
(Del Moral, Doucet & Jasra 2006; Chopin & Papaspiliopoulos 2020, ch. 17):

1. next temperature: by bisection so that the conditional ESS is
   ``target_ess * N`` (adaptive), or the next entry of a given schedule;
2. reweight by ``L^delta`` and add ``log sum_i W_i L_i^delta`` to the log-evidence;
3. resample ``N`` particles (resample-move) or ``M = N / P`` particles
   (waste-free, Dau & Chopin 2022);
4. move with a whitened blackjax kernel (:func:`probkit.smc.mcmc_move`), the
   whitening estimated from the previous population (before reweighting and
   resampling, so that each particle's kernel does not depend on its own copies):
   ``num_mcmc_steps`` steps per particle, or, waste-free, ``P - 1`` steps of each
   of the ``M`` chains, all ``N = M P`` visited states kept as the new particles.

The loop is a ``lax.while_loop`` (the number of temperatures is not known in
advance) that records per-step diagnostics in arrays of length
``max_num_steps + 1``; :func:`tempered` trims them. Its progress bar follows the
temperature from 0 to 1 (a host callback per step; one bar under ``vmap``). With a
device mesh, the particle axis is sharded: the bisection, the whitening and the
resampling reduce or gather across devices, and each particle's MCMC chain runs
where the particle lives, from its own key.
"""

from __future__ import annotations

import collections
import weakref
from collections.abc import Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from probkit.distributed import check_divisible
from probkit.progress import progress_fraction
from probkit.smc._feynman_kac import _kahan_add, reweight
from probkit.smc._mcmc_moves import KERNELS, adapt_scale, mcmc_move
from probkit.smc._resampling import (
    ResamplingFn,
    effective_sample_size,
    get_resampling,
    systematic,
)
from probkit.smc._result import SMCResult
from probkit.smc._run import particle_axis_constraint
from probkit.smc._tempering import TemperedPath, next_temperature, tempered_path
from probkit.target import compiled_cache_key

__all__ = ["TemperedState", "tempered_loop", "tempered"]

PyTree = Any


#: Defaults of the adaptive sampler. With moves that leave particles nearly
#: independent, Var(log Z_hat) ~ (number of temperatures) (1 / ess - 1) / N, and the
#: number of temperatures grows as 1 / sqrt(1 / ess - 1): a higher conditional ESS
#: per step buys a lower variance for proportionally more steps. The default 0.5
#: (the usual choice, and blackjax's) takes about 15 temperatures for a 10-d
#: regression with 200 observations at N = 1000 (Var ~ 0.014); 0.7 takes about 21
#: (Var ~ 0.008), still in less time than blackjax's adaptive_tempered_smc at its
#: target 0.5 (which chooses each temperature from the previous population, so it
#: keeps an ESS of about 0.62, 19 temperatures, Var ~ 0.012). Five whitened HMC
#: steps of a quarter period make the particles nearly independent (three leave Var
#: 1.5 times higher). See benchmarks/results/smc.md.
DEFAULT_TARGET_ESS = 0.5
DEFAULT_NUM_MCMC_STEPS = 5


class TemperedState(NamedTuple):
    """State of a tempered SMC sampler.

    Attributes:
        particles: flat unconstrained positions ``(N, d)``.
        log_likelihood: ``log L`` of each particle ``(N,)``.
        log_weights: normalised log-weights ``(N,)``.
        temperature: the current ``lambda``.
        log_evidence / log_evidence_error: Kahan-compensated running ``log Z``.
        scale: the MCMC step-size factor.
        step: number of temperatures done.
    """

    particles: jax.Array
    log_likelihood: jax.Array
    log_weights: jax.Array
    temperature: jax.Array
    log_evidence: jax.Array
    log_evidence_error: jax.Array
    scale: jax.Array
    step: jax.Array


def tempered_loop(
    key: jax.Array,
    path: TemperedPath,
    data: PyTree,
    *,
    num_particles: int,
    kernel: str = "hmc",
    schedule: jax.Array | None = None,
    target_ess: float = DEFAULT_TARGET_ESS,
    num_mcmc_steps: int = DEFAULT_NUM_MCMC_STEPS,
    waste_free: bool = False,
    resampling_fn: ResamplingFn = systematic,
    max_num_steps: int = 500,
    num_integration_steps: int | None = None,
    progress_bar: bool = False,
    mesh: Mesh | None = None,
) -> SMCResult:
    """Tempered SMC as a pure, jittable function of a key and the data (for ``vmap``).

    Per-step arrays in the result (``ess``, ``log_evidence_increments``,
    ``info["temperature"]``, ...) have length ``max_num_steps + 1``; entries after
    ``info["num_steps"]`` are padding. ``particles`` are flat unconstrained positions
    ``(N, d)``; ``samples`` the model's values. See :func:`tempered` for the arguments.

    Example:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist
        >>> import probkit as pk, probkit.smc as smc
        >>> target = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum(x**2), jnp.zeros(2))
        >>> path = smc.tempered_path(target, reference=dist.Normal(jnp.zeros(2), 3.0).to_event(1))
        >>> result = smc.tempered_loop(jax.random.key(0), path, target.data, num_particles=200,
        ...                            kernel="rwm", max_num_steps=20)
        >>> float(result.info["temperature"][result.info["num_steps"]])
        1.0
    """
    n = num_particles
    pin = particle_axis_constraint(mesh) or (lambda x: x)
    if waste_free:
        chain_length = num_mcmc_steps
        num_chains = n // chain_length
    key_init, key_loop = jax.random.split(key)
    x0 = pin(path.sample_prior(key_init, n, data))
    log_lik = jax.vmap(lambda x: path.log_likelihood(data, x))(x0)
    dtype = log_lik.dtype
    uniform = jnp.full((n,), -jnp.log(n), dtype)
    zero = jnp.zeros((), dtype)
    scale0 = jnp.ones((), dtype)
    state = TemperedState(x0, log_lik, uniform, zero, zero, zero, scale0, jnp.zeros((), jnp.int32))
    size = max_num_steps + 1
    nan = jnp.full((size,), jnp.nan, dtype)
    records = {
        "temperature": jnp.ones((size,), dtype).at[0].set(0.0),
        "ess": nan.at[0].set(float(n)),
        "log_evidence_increment": jnp.zeros((size,), dtype),
        "acceptance_rate": nan,
        "squared_jump": nan,
        "scale": nan.at[0].set(scale0),
    }
    report = progress_fraction(desc="tempered SMC") if progress_bar else None

    def cond(carry):
        state, _, _ = carry
        return (state.temperature < 1.0) & (state.step < max_num_steps)

    def body(carry):
        state, records, key = carry
        key, key_resample, key_start, key_move = jax.random.split(key, 4)
        if schedule is None:
            new_temperature = next_temperature(
                state.log_weights, state.log_likelihood, state.temperature, target_ess
            )
        else:
            new_temperature = schedule[jnp.minimum(state.step, schedule.shape[0] - 1)]
        delta = new_temperature - state.temperature
        log_potential = jnp.where(
            state.log_likelihood == -jnp.inf, -jnp.inf, delta * state.log_likelihood
        )
        log_w, increment = reweight(state.log_weights, log_potential)
        log_z, error = _kahan_add(state.log_evidence, state.log_evidence_error, increment)
        ess = effective_sample_size(log_w)

        def logdensity(x):
            return path.log_density(data, x, new_temperature)

        move = dict(
            kernel=kernel,
            scale=state.scale,
            num_integration_steps=num_integration_steps,
            whiten_from=(state.particles, None),
        )
        if waste_free:
            starts = jnp.take(state.particles, resampling_fn(key_start, log_w, num_chains), axis=0)
            chains, info = mcmc_move(
                key_move,
                starts,
                logdensity,
                num_mcmc_steps=chain_length - 1,
                keep_path=True,
                **move,
            )
            particles = chains.reshape(n, -1)
        else:
            resampled = pin(
                jnp.take(state.particles, resampling_fn(key_resample, log_w, n), axis=0)
            )
            particles, info = mcmc_move(
                key_move, resampled, logdensity, num_mcmc_steps=num_mcmc_steps, **move
            )
        particles = pin(particles)
        log_lik = jax.vmap(lambda x: path.log_likelihood(data, x))(particles)
        step = state.step + 1
        if report is not None:
            report(step, new_temperature)
        new_state = TemperedState(
            particles,
            log_lik,
            uniform,
            new_temperature,
            log_z,
            error,
            adapt_scale(state.scale, info.acceptance_rate, kernel),
            step,
        )
        values = {
            "temperature": new_temperature,
            "ess": ess,
            "log_evidence_increment": increment,
            "acceptance_rate": info.acceptance_rate,
            "squared_jump": info.squared_jump,
            "scale": state.scale,
        }
        records = {k: records[k].at[step].set(v) for k, v in values.items()}
        return new_state, records, key

    state, records, _ = jax.lax.while_loop(cond, body, (state, records, key_loop))
    samples = jax.vmap(lambda x: path.constrain(data, x))(state.particles)
    steps = jnp.arange(size)
    return SMCResult(
        particles=state.particles,
        log_weights=state.log_weights,
        log_evidence=state.log_evidence,
        ess=records["ess"],
        resampled=(steps > 0) & (steps <= state.step),
        log_evidence_increments=records["log_evidence_increment"],
        history=None,
        samples=samples,
        info={
            "temperature": records["temperature"],
            "acceptance_rate": records["acceptance_rate"],
            "squared_jump": records["squared_jump"],
            "scale": records["scale"],
            "num_steps": state.step,
        },
    )


_tempered_jit = eqx.filter_jit(tempered_loop)
_PATHS: dict[tuple[int, int], tuple[Any, TemperedPath]] = {}
_PATHS_BY_KEY: collections.OrderedDict = collections.OrderedDict()
_PATHS_MAX_ENTRIES = 32


def _cached_path(target, reference) -> TemperedPath:
    # One TemperedPath (hence one compiled sampler) per target and reference:
    # repeated calls reuse the compiled program. Targets with a compile key (NumPyro
    # models, log-density functions) share it across new data of the same shapes.
    cache_key = compiled_cache_key(target)
    if cache_key is not None:
        key = (cache_key, id(reference))
        hit = _PATHS_BY_KEY.get(key)
        if hit is not None and hit[0] is reference:
            _PATHS_BY_KEY.move_to_end(key)
            return hit[1]
        path = tempered_path(target, reference)
        _PATHS_BY_KEY[key] = (reference, path)  # holds the reference: its id stays its own
        if len(_PATHS_BY_KEY) > _PATHS_MAX_ENTRIES:
            _PATHS_BY_KEY.popitem(last=False)
        return path
    key = (id(target), id(reference))
    hit = _PATHS.get(key)
    if hit is not None and hit[0]() is target:
        return hit[1]
    path = tempered_path(target, reference)
    _PATHS[key] = (weakref.ref(target, lambda _: _PATHS.pop(key, None)), path)
    return path


def _check_schedule(schedule) -> np.ndarray | None:
    if isinstance(schedule, str):
        if schedule != "adaptive":
            raise ValueError(
                f"schedule must be 'adaptive' or an array of temperatures, got {schedule!r}."
            )
        return None
    values = np.asarray(schedule, dtype=np.float64).ravel()
    if values.size == 0 or values[-1] != 1.0 or np.any(np.diff(values) <= 0) or values[0] < 0:
        raise ValueError(
            "schedule must be an increasing array of temperatures in (0, 1] ending at 1.0 "
            f"(e.g. np.linspace(0, 1, 20) ** 4), got {values}."
        )
    return values[values > 0]


def tempered(
    target,
    *,
    num_particles: int = 1000,
    kernel: str = "hmc",
    schedule: str | Sequence[float] | np.ndarray = "adaptive",
    target_ess: float = DEFAULT_TARGET_ESS,
    num_mcmc_steps: int = DEFAULT_NUM_MCMC_STEPS,
    waste_free: bool = False,
    seed: int = 0,
    reference=None,
    resampling: str | ResamplingFn = "systematic",
    max_num_steps: int = 500,
    num_integration_steps: int | None = None,
    progress_bar: bool = False,
    mesh: Mesh | None = None,
) -> SMCResult:
    """Tempered SMC sampler of a :class:`probkit.Target`: posterior draws and log-evidence.

    Tempers from the prior to the posterior of a NumPyro model (likelihood = observed
    sites), or from ``reference`` to any target. Every ``(N,)`` array in the result
    is trimmed to the temperatures actually used.

    Args:
        target: a :class:`probkit.Target` (e.g. from :func:`probkit.from_numpyro`).
        num_particles: ``N``.
        kernel: MCMC move, ``"hmc"``, ``"mala"`` or ``"rwm"`` (blackjax kernels,
            preconditioned by the particles' covariance, step size adapted between
            temperatures).
        schedule: ``"adaptive"`` (next temperature by bisection on the conditional
            ESS) or an increasing array of temperatures ending at 1.
        target_ess: conditional ESS fraction kept by each adaptive step (0.7 takes
            about 1.4 times as many temperatures as 0.5, for about 0.6 times the
            variance of the log-evidence).
        num_mcmc_steps: MCMC steps per particle and temperature; with
            ``waste_free=True`` the length ``P`` of each chain (``N / P`` chains, all
            states kept).
        waste_free: waste-free SMC (Dau & Chopin 2022).
        seed: seed of the ``jax.random`` key.
        reference: a NumPyro distribution over the flat unconstrained position to
            temper from (needed for targets without a NumPyro model).
        resampling: resampling scheme name or function.
        max_num_steps: bound on the number of temperatures.
        num_integration_steps: leapfrog steps of the HMC kernel, or ``None`` (default)
            for ``round(1.05 d^(1/4))`` (2 for ``d = 10``: HMC's step size shrinks as
            ``d^(-1/4)``); the trajectory spans at most a quarter period of the
            whitened target.
        progress_bar: draw a bar of the temperature going from 0 to 1.
        mesh: a 1-D device mesh (e.g. :func:`probkit.distributed.chain_mesh`) to shard
            the particle axis over; ``num_particles`` must be a multiple of its size.
            Every particle's MCMC chain has its own key, so the run matches the
            unsharded one up to the summation order of reductions over particles.

    Returns:
        an :class:`SMCResult`; ``samples`` holds equally-weighted constrained draws
        (site -> ``(N, *shape)``), ``log_evidence`` the estimate of ``log Z``, and
        ``info`` the ``temperature``, ``acceptance_rate``, ``squared_jump`` (mean
        squared move per whitened dimension, about 2 for independent draws) and
        ``scale`` per step.

    Raises:
        RuntimeError: the temperature did not reach 1 within ``max_num_steps``.
        FloatingPointError: every particle got zero weight.

    Example:
        >>> import jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> import probkit as pk, probkit.smc as smc
        >>> def model(y):
        ...     mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        ...     numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)
        >>> result = smc.tempered(pk.from_numpyro(model, y=jnp.array([1.0, 2.0, 3.0])),
        ...                       num_particles=500, kernel="rwm")
        >>> round(float(result.samples["mu"].mean()), 1)
        2.0
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}.")
    if not isinstance(num_particles, int | np.integer) or num_particles < 2:
        raise ValueError(f"num_particles must be an int >= 2, got {num_particles!r}.")
    if not 0.0 < float(target_ess) < 1.0:
        raise ValueError(f"target_ess must lie in (0, 1), got {target_ess!r}.")
    if not isinstance(num_mcmc_steps, int | np.integer) or num_mcmc_steps < 1:
        raise ValueError(f"num_mcmc_steps must be a positive int, got {num_mcmc_steps!r}.")
    if waste_free and (num_mcmc_steps < 2 or num_particles % num_mcmc_steps):
        raise ValueError(
            "waste-free SMC runs num_particles / num_mcmc_steps chains of length "
            f"num_mcmc_steps: num_particles={num_particles} must be a multiple of "
            f"num_mcmc_steps={num_mcmc_steps} (>= 2)."
        )
    if num_integration_steps is not None and (
        not isinstance(num_integration_steps, int | np.integer) or num_integration_steps < 1
    ):
        raise ValueError(
            "num_integration_steps must be a positive int, or None for round(1.05 d^(1/4)) "
            f"leapfrog steps in dimension d, got {num_integration_steps!r}."
        )
    if mesh is not None:
        check_divisible(int(num_particles), mesh, what="num_particles")
    schedule_values = _check_schedule(schedule)
    if schedule_values is not None:
        max_num_steps = len(schedule_values)
    path = _cached_path(target, reference)
    schedule_array = None if schedule_values is None else jnp.asarray(schedule_values)
    result = _tempered_jit(
        jax.random.key(seed),
        path,
        target.data,
        num_particles=int(num_particles),
        kernel=kernel,
        schedule=schedule_array,
        target_ess=float(target_ess),
        num_mcmc_steps=int(num_mcmc_steps),
        waste_free=bool(waste_free),
        resampling_fn=get_resampling(resampling),
        max_num_steps=int(max_num_steps),
        num_integration_steps=None if num_integration_steps is None else int(num_integration_steps),
        progress_bar=bool(progress_bar),
        mesh=mesh,
    )
    num_steps = int(result.info["num_steps"])
    keep = num_steps + 1
    info = {k: np.asarray(v)[:keep] for k, v in result.info.items() if k != "num_steps"}
    info["num_steps"] = num_steps
    result = result._replace(
        ess=result.ess[:keep],
        resampled=result.resampled[:keep],
        log_evidence_increments=result.log_evidence_increments[:keep],
        info=info,
    )
    if not np.all(np.isfinite(np.asarray(result.log_evidence_increments))):
        bad = int(np.flatnonzero(~np.isfinite(np.asarray(result.log_evidence_increments)))[0])
        raise FloatingPointError(
            f"tempered SMC broke down at step {bad} (temperature {info['temperature'][bad]:.3g}): "
            "every particle got zero or NaN likelihood weight. Check the model's log "
            "likelihood for NaN at prior draws, or pass a reference closer to the target."
        )
    if info["temperature"][-1] < 1.0:
        raise RuntimeError(
            f"tempered SMC reached temperature {info['temperature'][-1]:.3g} < 1 after "
            f"max_num_steps={max_num_steps} steps: raise max_num_steps, lower target_ess, or "
            "use more particles / MCMC steps so that each step keeps more ESS."
        )
    return result
