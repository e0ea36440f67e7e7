"""Tempered and waste-free SMC samplers for static targets, as Feynman-Kac models.

The sampler follows ``pi_lambda ∝ p_0 L^lambda`` from ``lambda = 0`` to ``1``
(:mod:`probkit.smc._tempering`). :func:`tempered_feynman_kac` writes it as a
:class:`probkit.smc.FeynmanKac` model run by the one SMC loop (Del Moral, Doucet &
Jasra 2006; Chopin & Papaspiliopoulos 2020, ch. 17): step ``t`` resamples (``N``
particles, or ``M = N / P`` for waste-free SMC, Dau & Chopin 2022), moves with an
MCMC kernel invariant for ``pi_{lambda_t}`` (:func:`probkit.smc.mcmc_move`, a
whitened blackjax kernel), then chooses ``lambda_{t+1}`` from the moved particles
(the model's parameters) and reweights by ``G_t = L^(lambda_{t+1} - lambda_t)``.
The parameters also carry the whitening (mean and Cholesky factor of the moved,
equally weighted population: estimated before resampling, so that no particle's
kernel depends on its own copies) and the step-size factor, adapted from each
move's acceptance rate. The loop stops (``done``) after the move at
``lambda = 1``.

``lambda_{t+1}`` is found by bisection so that the conditional ESS is
``target_ess * N`` (adaptive), or is the next entry of a given schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from probkit._checks import check_key, check_seed
from probkit.distributed import check_divisible, gather_across_processes
from probkit.smc._feynman_kac import FeynmanKac, SMCState
from probkit.smc._mcmc_moves import MOVE_KERNELS, adapt_scale, whitened_move, whitening
from probkit.smc._resampling import ResamplingFn, get_resampling, systematic
from probkit.smc._result import SMCResult
from probkit.smc._run import loop, run_interruptible, warn_nan_potentials
from probkit.smc._tempering import TemperedPath, as_target, next_temperature, tempered_path

__all__ = [
    "TemperedParticles",
    "TemperingParameters",
    "tempered_feynman_kac",
    "tempered_loop",
    "tempered",
]

PyTree = Any

# With moves that leave particles nearly independent, Var(log Z_hat) ~ (number of
# temperatures) (1 / ess - 1) / N, and the number of temperatures grows as
# 1 / sqrt(1 / ess - 1): a higher conditional ESS per step buys a lower variance for
# proportionally more steps; 0.5 is the usual choice (and blackjax's). Five whitened
# HMC steps of a quarter period leave the particles nearly independent. Measurements
# behind both: benchmarks/results/smc.md.
DEFAULT_TARGET_ESS = 0.5
DEFAULT_NUM_MCMC_STEPS = 5


class TemperedParticles(NamedTuple):
    """Particles of the tempered sampler.

    Attributes:
        x: flat unconstrained positions ``(N, d)``.
        log_likelihood: ``log L(x)`` ``(N,)``, computed once per move.
        acceptance: each particle's chain's mean acceptance rate in the last move.
        squared_jump: its squared move per whitened dimension in the last move.
    """

    x: jax.Array
    log_likelihood: jax.Array
    acceptance: jax.Array
    squared_jump: jax.Array


class TemperingParameters(NamedTuple):
    """The parameters of step ``t`` of the tempered sampler.

    Attributes:
        temperature: ``lambda_{t+1}``, targeted by the weights after step ``t``.
        previous_temperature: ``lambda_t``, the temperature of step ``t``'s move.
        scale: step-size factor of the next move.
        scale_used: step-size factor of step ``t``'s move.
        mean / chol: whitening of the next move (the moved particles' mean and
            Cholesky factor of their covariance).
        acceptance_rate / squared_jump: mean diagnostics of step ``t``'s move (NaN
            at step 0).
    """

    temperature: jax.Array
    previous_temperature: jax.Array
    scale: jax.Array
    scale_used: jax.Array
    mean: jax.Array
    chol: jax.Array
    acceptance_rate: jax.Array
    squared_jump: jax.Array


class _Tempering(eqx.Module):
    """The pieces of the tempered Feynman-Kac model; arrays are leaves, settings static."""

    path: TemperedPath
    schedule: jax.Array | None
    kernel: str = eqx.field(static=True)
    target_ess: float = eqx.field(static=True)
    num_mcmc_steps: int = eqx.field(static=True)
    waste_free: bool = eqx.field(static=True)
    num_integration_steps: int | None = eqx.field(static=True)

    def log_likelihood(self, x: jax.Array) -> jax.Array:
        return jax.vmap(self.path.log_likelihood)(x)

    def init(self, key: jax.Array, n: int) -> TemperedParticles:
        x = self.path.sample_prior(key, n)
        log_lik = self.log_likelihood(x)
        nan = jnp.full_like(log_lik, jnp.nan)
        return TemperedParticles(x, log_lik, nan, nan)

    def move(
        self, key: jax.Array, t: jax.Array, particles: TemperedParticles, p: TemperingParameters
    ) -> TemperedParticles:
        def logdensity(x):
            return self.path.log_density(x, p.temperature)

        move = dict(
            kernel=self.kernel,
            scale=p.scale,
            num_integration_steps=self.num_integration_steps,
        )
        if self.waste_free:
            # M chains of P states each, all kept: the N = M P new particles.
            chains, acceptance, jump = whitened_move(
                key,
                particles.x,
                logdensity,
                p.mean,
                p.chol,
                num_mcmc_steps=self.num_mcmc_steps - 1,
                keep_path=True,
                **move,
            )
            x = chains.reshape(-1, chains.shape[-1])
            acceptance = jnp.tile(acceptance, self.num_mcmc_steps)
            jump = jnp.tile(jump, self.num_mcmc_steps)
        else:
            x, acceptance, jump = whitened_move(
                key,
                particles.x,
                logdensity,
                p.mean,
                p.chol,
                num_mcmc_steps=self.num_mcmc_steps,
                **move,
            )
        return TemperedParticles(x, self.log_likelihood(x), acceptance, jump)

    def update_parameters(
        self,
        t: jax.Array,
        particles: TemperedParticles,
        log_weights: jax.Array,
        p: TemperingParameters,
    ) -> TemperingParameters:
        if self.schedule is None:
            temperature = next_temperature(
                log_weights, particles.log_likelihood, p.temperature, self.target_ess
            )
        else:
            temperature = self.schedule[jnp.minimum(t, self.schedule.shape[0] - 1)]
        acceptance = jnp.mean(particles.acceptance)
        scale = jnp.where(t > 0, adapt_scale(p.scale, acceptance, self.kernel), p.scale)
        mean, chol = whitening(particles.x)
        return TemperingParameters(
            temperature=temperature.astype(p.temperature.dtype),
            previous_temperature=p.temperature,
            scale=scale,
            scale_used=p.scale,
            mean=mean,
            chol=chol,
            acceptance_rate=acceptance,
            squared_jump=jnp.mean(particles.squared_jump),
        )

    def log_potential(
        self,
        t: jax.Array,
        previous: TemperedParticles,
        particles: TemperedParticles,
        p: TemperingParameters,
    ) -> jax.Array:
        delta = p.temperature - p.previous_temperature
        log_lik = particles.log_likelihood
        # 0 * -inf would be NaN: a zero likelihood stays a zero weight.
        return jnp.where(log_lik == -jnp.inf, -jnp.inf, delta * log_lik)

    def done(self, state: SMCState) -> jax.Array:
        # The move at temperature 1 is done: the particles are draws from the target.
        return state.parameters.previous_temperature >= 1.0


def tempered_feynman_kac(
    path: TemperedPath,
    *,
    num_particles: int,
    kernel: str = "hmc",
    schedule: jax.Array | None = None,
    target_ess: float = DEFAULT_TARGET_ESS,
    num_mcmc_steps: int = DEFAULT_NUM_MCMC_STEPS,
    waste_free: bool = False,
    max_num_steps: int = 500,
    num_integration_steps: int | None = None,
) -> FeynmanKac:
    """Tempered (or waste-free) SMC as a :class:`probkit.smc.FeynmanKac` model.

    Run it with :func:`probkit.smc.loop` or :func:`probkit.smc.run` with
    ``ess_threshold=1.0`` (tempered SMC resamples at every step). Its particles are
    :class:`TemperedParticles`, its parameters :class:`TemperingParameters`; it
    stops after the move at temperature 1, within ``max_num_steps`` temperatures
    (``max_num_steps + 1`` steps). See :func:`tempered` for the arguments.

    Example:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist
        >>> import probkit as pk, probkit.smc as smc
        >>> target = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum(x**2), jnp.zeros(2))
        >>> path = smc.tempered_path(target, reference=dist.Normal(jnp.zeros(2), 3.0).to_event(1))
        >>> fk = smc.tempered_feynman_kac(path, num_particles=200, kernel="rwm")
        >>> result = smc.run(fk, num_particles=200, ess_threshold=1.0)
        >>> float(result.info["parameters"].temperature[-1])
        1.0
    """
    dtype = jnp.result_type(float)
    d = path.num_dims
    one = jnp.ones((), dtype)
    nan = jnp.full((), jnp.nan, dtype)
    initial = TemperingParameters(
        temperature=jnp.zeros((), dtype),
        previous_temperature=jnp.zeros((), dtype),
        scale=one,
        scale_used=one,
        mean=jnp.zeros((d,), dtype),
        chol=jnp.eye(d, dtype=dtype),
        acceptance_rate=nan,
        squared_jump=nan,
    )
    model = _Tempering(
        path=path,
        schedule=None if schedule is None else jnp.asarray(schedule, dtype),
        kernel=kernel,
        target_ess=float(target_ess),
        num_mcmc_steps=int(num_mcmc_steps),
        waste_free=bool(waste_free),
        num_integration_steps=None if num_integration_steps is None else int(num_integration_steps),
    )
    return FeynmanKac(
        init=model.init,
        move=model.move,
        log_potential=model.log_potential,
        num_steps=int(max_num_steps) + 1,
        parameters=initial,
        update_parameters=model.update_parameters,
        done=model.done,
        num_resampled=int(num_particles) // int(num_mcmc_steps) if waste_free else None,
    )


def _shift(first: jax.Array, values: jax.Array) -> jax.Array:
    """``[first, values[0], ..., values[-2]]``: step ``t``'s values as those of ``t + 1``."""
    first = jnp.asarray(first, values.dtype)
    return jnp.concatenate([first[None], values[:-1]])


def tempered_loop(
    key: jax.Array,
    path: TemperedPath,
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
    """Tempered SMC as a pure, jittable function of a key and a path (for ``vmap``).

    :func:`tempered_feynman_kac` run by :func:`probkit.smc.loop`, its per-step
    records laid out per temperature: entry ``k`` of ``ess``,
    ``log_evidence_increments`` and ``info["temperature"]`` is the reweighting to
    ``lambda_k`` (entry 0: ``lambda_0 = 0``), entry ``k`` of
    ``info["acceptance_rate"]``, ``info["squared_jump"]`` and ``info["scale"]`` the
    move at ``lambda_k``. Arrays have length ``max_num_steps + 1``; entries after
    ``info["num_steps"]`` (the number of temperatures) are padding. ``particles``
    are flat unconstrained positions ``(N, d)``; ``samples`` the model's values. See
    :func:`tempered` for the arguments. The data travel inside ``path`` (an
    ``equinox.Module``): jit with ``equinox.filter_jit``, or pass ``path`` as an
    argument of ``jax.jit``.

    Example:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist
        >>> import probkit as pk, probkit.smc as smc
        >>> target = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum(x**2), jnp.zeros(2))
        >>> path = smc.tempered_path(target, reference=dist.Normal(jnp.zeros(2), 3.0).to_event(1))
        >>> result = smc.tempered_loop(jax.random.key(0), path, num_particles=200,
        ...                            kernel="rwm", max_num_steps=20)
        >>> float(result.info["temperature"][result.info["num_steps"]])
        1.0
    """
    check_key(key)
    fk = tempered_feynman_kac(
        path,
        num_particles=num_particles,
        kernel=kernel,
        schedule=schedule,
        target_ess=target_ess,
        num_mcmc_steps=num_mcmc_steps,
        waste_free=waste_free,
        max_num_steps=max_num_steps,
        num_integration_steps=num_integration_steps,
    )
    result = loop(
        key,
        fk,
        num_particles=num_particles,
        resampling_fn=resampling_fn,
        ess_threshold=1.0,
        progress_bar=progress_bar,
        mesh=mesh,
        progress_fn=lambda state: state.parameters.previous_temperature,
        progress_desc="tempered SMC",
        progress_label="temperature",
    )
    p = result.info["parameters"]
    x = result.particles.x
    samples = jax.vmap(path.constrain)(x)
    return result._replace(
        particles=x,
        ess=_shift(num_particles, result.ess),
        log_evidence_increments=_shift(0.0, result.log_evidence_increments),
        num_nan=_shift(0, result.num_nan),
        samples=samples,
        info={
            "temperature": _shift(0.0, p.temperature),
            "acceptance_rate": p.acceptance_rate,
            "squared_jump": p.squared_jump,
            "scale": p.scale_used,
            "num_steps": result.num_steps - 1,
        },
    )


_tempered_jit = eqx.filter_jit(tempered_loop)


def _trim_tempered(result: SMCResult) -> SMCResult:
    """Cut :func:`tempered_loop`'s per-step arrays to the temperatures used (host side)."""
    num_steps = int(result.info["num_steps"])
    keep = num_steps + 1
    info = {k: np.asarray(v)[:keep] for k, v in result.info.items() if k != "num_steps"}
    info["num_steps"] = num_steps
    return result._replace(
        ess=result.ess[:keep],
        resampled=result.resampled[:keep],
        log_evidence_increments=result.log_evidence_increments[:keep],
        num_nan=result.num_nan[:keep],
        info=info,
    )


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
            "schedule must be an increasing array of temperatures in [0, 1] ending at 1.0 "
            f"(a leading 0, the reference, may be left out; e.g. np.linspace(0, 1, 20) ** 4), "
            f"got {values}."
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
        probkit.progress.Interrupted: on Ctrl-C, within about a second;
            ``partial_result`` holds the particles and log-evidence at the temperature
            reached.

    Example:
        >>> import jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> import probkit as pk, probkit.smc as smc
        >>> def model(y):
        ...     mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        ...     numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)
        >>> result = smc.tempered(pk.from_numpyro(model, y=jnp.array([1.0, 2.0, 3.0])),
        ...                       num_particles=4000, kernel="rwm")
        >>> round(float(result.samples["mu"].mean()), 1)  # exact 1.9934; spread 0.009
        2.0
    """
    target = as_target(target)
    if kernel not in MOVE_KERNELS:
        raise ValueError(f"kernel must be one of {MOVE_KERNELS}, got {kernel!r}.")
    if not isinstance(num_particles, int | np.integer) or num_particles < 2:
        raise ValueError(f"num_particles must be an int >= 2, got {num_particles!r}.")
    if not 0.0 < float(target_ess) < 1.0:
        raise ValueError(f"target_ess must lie in (0, 1), got {target_ess!r}.")
    if not isinstance(num_mcmc_steps, int | np.integer) or num_mcmc_steps < 1:
        raise ValueError(f"num_mcmc_steps must be a positive int, got {num_mcmc_steps!r}.")
    if waste_free and num_mcmc_steps < 2:
        raise ValueError(
            "waste-free SMC runs num_particles / num_mcmc_steps chains of length "
            f"num_mcmc_steps, so it needs num_mcmc_steps >= 2, got {num_mcmc_steps} "
            "(e.g. num_mcmc_steps=10 with num_particles=1000)."
        )
    if waste_free and num_particles % num_mcmc_steps:
        raise ValueError(
            "waste-free SMC runs num_particles / num_mcmc_steps chains of length "
            f"num_mcmc_steps: num_particles={num_particles} must be a multiple of "
            f"num_mcmc_steps={num_mcmc_steps}."
        )
    if num_integration_steps is not None and (
        not isinstance(num_integration_steps, int | np.integer) or num_integration_steps < 1
    ):
        raise ValueError(
            "num_integration_steps must be a positive int, or None for round(1.05 d^(1/4)) "
            f"leapfrog steps in dimension d, got {num_integration_steps!r}."
        )
    if not isinstance(max_num_steps, int | np.integer) or max_num_steps < 1:
        raise ValueError(f"max_num_steps must be a positive int, got {max_num_steps!r}.")
    if mesh is not None:
        check_divisible(int(num_particles), mesh, what="num_particles")
        if waste_free:
            check_divisible(
                int(num_particles) // int(num_mcmc_steps),
                mesh,
                what="num_particles / num_mcmc_steps (the number of waste-free chains)",
            )
    schedule_values = _check_schedule(schedule)
    if schedule_values is not None:
        max_num_steps = len(schedule_values)
    path = tempered_path(target, reference)
    result = run_interruptible(
        tempered_loop,
        jax.random.key(check_seed(seed)),
        (path,),
        {
            "num_particles": int(num_particles),
            "kernel": kernel,
            "schedule": None if schedule_values is None else jnp.asarray(schedule_values),
            "target_ess": float(target_ess),
            "num_mcmc_steps": int(num_mcmc_steps),
            "waste_free": bool(waste_free),
            "resampling_fn": get_resampling(resampling),
            "max_num_steps": int(max_num_steps),
            "num_integration_steps": (
                None if num_integration_steps is None else int(num_integration_steps)
            ),
            "progress_bar": bool(progress_bar),
            "mesh": mesh,
        },
        num_moves=None,
        what="tempered SMC",
        partial=lambda result, done: _trim_tempered(result),
    )
    result = _trim_tempered(result)
    info = result.info
    increments = np.asarray(result.log_evidence_increments)
    if not np.all(np.isfinite(increments)):
        bad = int(np.flatnonzero(~np.isfinite(increments))[0])
        raise FloatingPointError(
            f"tempered SMC broke down at step {bad} (temperature {info['temperature'][bad]:.3g}): "
            "every particle got zero or NaN likelihood weight. Check the model's log "
            "likelihood for NaN at prior draws, or pass a reference closer to the target."
        )
    warn_nan_potentials(
        result,
        what="the log-likelihood",
        hint=(
            "Check the model's likelihood at prior draws (e.g. a scale or rate that can be "
            "zero or negative there) and return -inf where it is truly zero, or pass a "
            "reference= that avoids that region."
        ),
    )
    if info["temperature"][-1] < 1.0:
        raise RuntimeError(
            f"tempered SMC reached temperature {info['temperature'][-1]:.3g} < 1 after "
            f"max_num_steps={max_num_steps} steps: raise max_num_steps, lower target_ess, or "
            "use more particles / MCMC steps so that each step keeps more ESS."
        )
    return gather_across_processes(result)
