"""Sequential Monte Carlo on a Feynman-Kac core.

One loop (:func:`run`, pure :func:`loop`) runs every Feynman-Kac model
(:class:`FeynmanKac`): particle filters, tempered and waste-free SMC samplers, and
the Feynman-Kac correctors built elsewhere in probkit. Resampling schemes share the
signature ``(key, log_weights, n) -> indices``.

Example:
    >>> import jax, jax.numpy as jnp
    >>> import probkit.smc as smc
    >>> fk = smc.FeynmanKac(lambda k, n: jax.random.normal(k, (n,)),
    ...                     lambda k, t, x: x + 0.1 * jax.random.normal(k, x.shape),
    ...                     lambda t, p, x: -0.5 * x**2, 5)
    >>> smc.run(fk, num_particles=256).log_weights.shape
    (256,)
"""

from probkit.results import particle_dict as particle_dict  # moved to probkit.results
from probkit.smc._feynman_kac import FeynmanKac, SMCInfo, SMCState, init, step
from probkit.smc._feynman_kac import reweight as reweight
from probkit.smc._kalman import KalmanResult, LinearGaussian, kalman_filter, rts_smoother
from probkit.smc._mcmc_moves import MOVE_KERNELS as MOVE_KERNELS
from probkit.smc._mcmc_moves import MoveInfo as MoveInfo
from probkit.smc._mcmc_moves import adapt_scale as adapt_scale
from probkit.smc._mcmc_moves import mcmc_move
from probkit.smc._mcmc_moves import whitening as whitening
from probkit.smc._resampling import (
    RESAMPLING_SCHEMES as RESAMPLING_SCHEMES,
)
from probkit.smc._resampling import (
    ResamplingFn as ResamplingFn,
)
from probkit.smc._resampling import (
    effective_sample_size,
    get_resampling,
    killing,
    multinomial,
    residual,
    ssp,
    stratified,
    systematic,
)
from probkit.smc._resampling import (
    normalise_log_weights as normalise_log_weights,
)
from probkit.smc._result import SMCHistory, SMCResult
from probkit.smc._run import loop, run, trim
from probkit.smc._run import particle_axis_constraint as particle_axis_constraint
from probkit.smc._state_space import (
    ParticleFilterResult,
    StateSpaceModel,
    ffbs,
    particle_filter,
    particle_filter_loop,
    state_space_feynman_kac,
)
from probkit.smc._tempered import (
    TemperedParticles as TemperedParticles,
)
from probkit.smc._tempered import (
    TemperingParameters as TemperingParameters,
)
from probkit.smc._tempered import (
    tempered,
    tempered_feynman_kac,
    tempered_loop,
)
from probkit.smc._tempering import TemperedPath, tempered_path
from probkit.smc._tempering import next_temperature as next_temperature

# What users call. Also importable from here (the "as" re-exports above), for those
# who build their own samplers:
# SMCInfo's pieces (reweight), the resampling table (RESAMPLING_SCHEMES, ResamplingFn),
# normalise_log_weights, particle_axis_constraint, the tempered sampler's types
# (TemperedParticles, TemperingParameters) and bisection (next_temperature), and the
# MCMC-move helpers (MOVE_KERNELS, MoveInfo, whitening, adapt_scale).
__all__ = [
    # the Feynman-Kac loop
    "FeynmanKac",
    "SMCState",
    "SMCInfo",
    "SMCResult",
    "SMCHistory",
    "init",
    "step",
    "loop",
    "run",
    "trim",
    # resampling
    "multinomial",
    "stratified",
    "systematic",
    "residual",
    "ssp",
    "killing",
    "get_resampling",
    "effective_sample_size",
    # state-space models
    "StateSpaceModel",
    "ParticleFilterResult",
    "state_space_feynman_kac",
    "particle_filter",
    "particle_filter_loop",
    "ffbs",
    "LinearGaussian",
    "KalmanResult",
    "kalman_filter",
    "rts_smoother",
    # tempered and waste-free samplers
    "TemperedPath",
    "tempered_path",
    "tempered_feynman_kac",
    "tempered_loop",
    "tempered",
    "mcmc_move",
]
