"""MCMC moves for SMC samplers: blackjax kernels, preconditioned by the particles.

Between temperatures, the particle cloud tells the scale and correlations of the
current distribution. The moves whiten it: with ``m`` and ``Sigma = L L^T`` the
particles' mean and covariance, the blackjax kernel (random-walk Metropolis, MALA
or HMC) runs on ``u = L^{-1}(x - m)``, where the distribution is close to isotropic
with unit scale, and positions map back as ``x = m + L u`` (an affine map: the
Jacobian is constant, so every kernel stays exact). Step sizes are set in whitened
units times a factor ``scale`` that each move adapts from the previous move's mean
acceptance rate: ``2.38 / sqrt(d)`` for RWM (Roberts & Rosenthal 2001),
``d^{-1/3}`` for MALA. HMC integrates for a quarter period (``pi / 2``) of a unit
Gaussian, which turns a particle into an independent draw when the whitened target
is Gaussian; the number of leapfrog steps follows the step size (or is given), and
each particle and step jitters its step size by up to 40% so that no trajectory
length resonates with a direction of the target. The factor is capped so that a
trajectory is at most that quarter period: half a period (``pi``) maps a Gaussian
particle to its mirror image, ``x -> 2 m - x``, so that an even number of HMC steps
leaves particles (and their duplicates after resampling) nearly where they started.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from probkit._lazy import blackjax
from probkit._weights import normalised_weights

__all__ = [
    "MOVE_KERNELS",
    "MoveInfo",
    "whitening",
    "mcmc_move",
    "adapt_scale",
]

#: The MCMC kernels an SMC move can use (``probkit.mcmc.KERNELS`` is MCMC's own table).
MOVE_KERNELS = ("rwm", "mala", "hmc")

#: Acceptance rates the step-size factor is tuned towards.
TARGET_ACCEPTANCE = {"rwm": 0.3, "mala": 0.574, "hmc": 0.75}


class MoveInfo(NamedTuple):
    """Diagnostics of one move.

    Attributes:
        acceptance_rate: mean acceptance rate over particles and steps.
        squared_jump: mean squared distance between each particle's start and end,
            in whitened units per dimension (about 2 for independent draws).
    """

    acceptance_rate: jax.Array
    squared_jump: jax.Array


def whitening(
    particles: jax.Array, log_weights: jax.Array | None = None, jitter: float = 1e-6
) -> tuple[jax.Array, jax.Array]:
    """Mean ``m`` and Cholesky factor ``L`` of the (weighted) particles' covariance.

    ``particles`` is ``(n, d)``; ``log_weights`` (unnormalised, optional) weight them.
    A relative ``jitter`` on the diagonal keeps ``L`` invertible when particles are
    few or degenerate.

    Example:
        >>> import jax
        >>> from probkit.smc import whitening
        >>> m, L = whitening(jax.random.normal(jax.random.key(0), (1000, 2)) * 3.0)
        >>> L.shape
        (2, 2)
    """
    if log_weights is None:
        weights = jnp.full(particles.shape[:1], 1.0 / particles.shape[0], particles.dtype)
    else:
        weights = normalised_weights(log_weights)
    mean = weights @ particles
    centred = particles - mean
    cov = (centred * weights[:, None]).T @ centred
    level = jnp.maximum(jnp.mean(jnp.diag(cov)), 1e-12)
    cov = cov + jitter * level * jnp.eye(cov.shape[0], dtype=cov.dtype)
    return mean, jnp.linalg.cholesky(cov)


#: Relative jitter of the HMC trajectory length: each particle and step draws its
#: step size uniformly in ``[1 - HMC_JITTER, 1 + HMC_JITTER]`` times the nominal one.
HMC_JITTER = 0.4

#: HMC trajectory length in whitened units: a quarter period of a unit Gaussian.
HMC_TRAJECTORY = float(jnp.pi / 2)


def _default_num_integration_steps(num_dims: int) -> int:
    """Leapfrog steps of the HMC move when none are given: ``round(1.05 d^(1/4))``.

    HMC's step size must shrink as ``d^(-1/4)`` to keep its acceptance rate (Beskos
    et al. 2013); in whitened units a step of about ``1.5 d^(-1/4)`` is accepted ~75%
    of the time, so this many steps span the quarter period ``pi / 2`` (2 steps for
    ``d = 10``, 3 for 100, 6 for 1000). The count is static (a compiled loop of known
    length); the step size then adapts to the acceptance rate.
    """
    return max(1, round(1.05 * num_dims**0.25))


def _hmc_step_size(scale: jax.Array, num_integration_steps: int) -> jax.Array:
    # The trajectory spans scale * pi / 2; scale <= 1 (MAX_SCALE).
    return scale * HMC_TRAJECTORY / num_integration_steps


def _algorithm(
    kernel: str,
    logdensity_u: Callable,
    num_dims: int,
    scale,
    num_integration_steps: int | None,
):
    """``(init, step)`` of one chain; ``step(key, state) -> (state, acceptance_rate)``."""
    if kernel == "rwm":
        sigma = scale * 2.38 / jnp.sqrt(num_dims)
        algorithm = blackjax.additive_step_random_walk.normal_random_walk(logdensity_u, sigma)
    elif kernel == "mala":
        algorithm = blackjax.mala(logdensity_u, scale * num_dims ** (-1.0 / 3.0))
    elif kernel == "hmc":
        if num_integration_steps is None:
            num_integration_steps = _default_num_integration_steps(num_dims)
        num_steps = int(num_integration_steps)  # static: the leapfrog loop is a scan
        step_size = _hmc_step_size(scale, num_steps)
        hmc_kernel = blackjax.hmc.build_kernel()
        unit = jnp.ones(num_dims)

        def hmc_step(key, state):
            # A step size jittered per particle and step breaks the periodicity of
            # a fixed trajectory (which in a direction of a different scale can
            # bring a particle back to where it started); still exact, as a
            # mixture of HMC kernels with state-independent weights.
            key_jitter, key_step = jax.random.split(key)
            jitter = jax.random.uniform(
                key_jitter, minval=1.0 - HMC_JITTER, maxval=1.0 + HMC_JITTER
            )
            state, info = hmc_kernel(
                key_step, state, logdensity_u, step_size * jitter, unit, num_steps
            )
            return state, info.acceptance_rate

        return (lambda u: blackjax.hmc.init(u, logdensity_u)), hmc_step
    else:
        raise ValueError(f"kernel must be one of {MOVE_KERNELS}, got {kernel!r}.")

    def step(key, state):
        state, info = algorithm.step(key, state)
        return state, info.acceptance_rate

    return algorithm.init, step


def mcmc_move(
    key: jax.Array,
    particles: jax.Array,
    logdensity: Callable[[jax.Array], jax.Array],
    *,
    kernel: str,
    scale: jax.Array,
    num_mcmc_steps: int,
    num_integration_steps: int | None = None,
    keep_path: bool = False,
    whiten_from: tuple[jax.Array, jax.Array | None] | None = None,
) -> tuple[jax.Array, MoveInfo]:
    """Move every particle ``num_mcmc_steps`` times with a whitened blackjax kernel.

    Each particle runs its own chain from its own key (``split(key, n)``), so the
    result does not depend on how the particle axis is laid out over devices.

    Args:
        key: a ``jax.random`` key.
        particles: ``(n, d)`` flat positions.
        logdensity: ``x -> log pi(x)`` for one flat position (the kernel's target).
        kernel: ``"rwm"``, ``"mala"`` or ``"hmc"``.
        scale: factor on the kernel's default step size.
        num_mcmc_steps: steps per particle.
        num_integration_steps: leapfrog steps of HMC, or ``None`` for
            ``round(1.05 d^(1/4))`` (2 for ``d = 10``).
        keep_path: return every state, ``(num_mcmc_steps + 1, n, d)`` with the start
            first (waste-free SMC), instead of the last one.
        whiten_from: ``(particles, log_weights)`` to estimate the whitening from
            (default: the particles being moved, equally weighted). SMC samplers pass
            the previous population, before reweighting and resampling: estimating
            the whitening from the resampled particles themselves (with their
            duplicates), or from the reweighted population, makes each particle's
            kernel depend on its own copies, which biases the log-evidence upwards
            (measured in benchmarks/results/smc.md, notes).

    Returns:
        the moved particles and a :class:`MoveInfo`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.smc import mcmc_move
        >>> x = jax.random.normal(jax.random.key(0), (100, 2))
        >>> new, info = mcmc_move(jax.random.key(1), x, lambda z: -0.5 * jnp.sum(z**2),
        ...                       kernel="rwm", scale=1.0, num_mcmc_steps=5)
        >>> new.shape
        (100, 2)
    """
    mean, chol = whitening(*((particles, None) if whiten_from is None else whiten_from))
    moved, acceptance, jump = whitened_move(
        key,
        particles,
        logdensity,
        mean,
        chol,
        kernel=kernel,
        scale=scale,
        num_mcmc_steps=num_mcmc_steps,
        num_integration_steps=num_integration_steps,
        keep_path=keep_path,
    )
    return moved, MoveInfo(jnp.mean(acceptance), jnp.mean(jump))


def whitened_move(
    key: jax.Array,
    particles: jax.Array,
    logdensity: Callable[[jax.Array], jax.Array],
    mean: jax.Array,
    chol: jax.Array,
    *,
    kernel: str,
    scale: jax.Array,
    num_mcmc_steps: int,
    num_integration_steps: int | None = None,
    keep_path: bool = False,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """:func:`mcmc_move` with a given whitening ``(mean, chol)``, diagnostics per particle.

    Returns the moved particles (``(num_mcmc_steps + 1, n, d)`` with ``keep_path``),
    each chain's mean acceptance rate ``(n,)`` and squared jump per whitened
    dimension ``(n,)``.
    """
    n, num_dims = particles.shape
    to_x = lambda u: mean + chol @ u
    logdensity_u = lambda u: logdensity(to_x(u))
    u0 = jax.scipy.linalg.solve_triangular(chol, (particles - mean).T, lower=True).T
    init, step = _algorithm(kernel, logdensity_u, num_dims, scale, num_integration_steps)

    def chain(key, u):
        def one_step(state, key):
            state, acceptance = step(key, state)
            return state, (state.position if keep_path else None, acceptance)

        keys = jax.random.split(key, num_mcmc_steps)
        state, (path, acceptance) = jax.lax.scan(one_step, init(u), keys)
        return state.position, path, acceptance

    # vmap over chains of scans: one fused loop per particle runs faster on CPU
    # than a scan over vmapped steps.
    last, path, acceptance = jax.vmap(chain)(jax.random.split(key, n), u0)
    jump = jnp.sum((last - u0) ** 2, axis=-1) / num_dims
    acceptance = jnp.mean(acceptance, axis=-1)
    if keep_path:
        path = jnp.concatenate([u0[None], jnp.swapaxes(path, 0, 1)], axis=0)
        return jax.vmap(jax.vmap(to_x))(path), acceptance, jump
    return jax.vmap(to_x)(last), acceptance, jump


#: Largest step-size factor per kernel (HMC: a trajectory of at most ``pi / 2``).
MAX_SCALE = {"rwm": jnp.inf, "mala": jnp.inf, "hmc": 1.0}


def adapt_scale(scale: jax.Array, acceptance_rate: jax.Array, kernel: str) -> jax.Array:
    """Multiply the step-size factor by ``exp(2 (acceptance - target))``, within [0.5, 2].

    The factor is capped at ``MAX_SCALE[kernel]``.

    Example:
        >>> from probkit.smc import adapt_scale
        >>> float(adapt_scale(1.0, 0.0, "rwm")) < 1.0
        True
    """
    factor = jnp.exp(2.0 * (acceptance_rate - TARGET_ACCEPTANCE[kernel]))
    factor = jnp.where(jnp.isfinite(factor), factor, 0.5)
    return jnp.minimum(scale * jnp.clip(factor, 0.5, 2.0), MAX_SCALE[kernel])
