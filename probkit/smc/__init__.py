"""Sequential Monte Carlo on a Feynman-Kac core (DESIGN §2).

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

from probkit.results import particle_dict
from probkit.smc._feynman_kac import FeynmanKac, SMCInfo, SMCState, init, reweight, step
from probkit.smc._kalman import KalmanResult, LinearGaussian, kalman_filter, rts_smoother
from probkit.smc._mcmc_moves import KERNELS, MoveInfo, adapt_scale, mcmc_move, whitening
from probkit.smc._resampling import (
    RESAMPLING_SCHEMES,
    ResamplingFn,
    effective_sample_size,
    get_resampling,
    killing,
    multinomial,
    normalise_log_weights,
    residual,
    ssp,
    stratified,
    systematic,
)
from probkit.smc._result import SMCHistory, SMCResult
from probkit.smc._run import loop, particle_axis_constraint, run, trim
from probkit.smc._state_space import (
    ParticleFilterResult,
    StateSpaceModel,
    ffbs,
    particle_filter,
    particle_filter_loop,
    state_space_feynman_kac,
)
from probkit.smc._tempered import TemperedState, tempered, tempered_loop
from probkit.smc._tempering import TemperedPath, next_temperature, tempered_path

__all__ = [
    "FeynmanKac",
    "SMCState",
    "SMCInfo",
    "SMCResult",
    "SMCHistory",
    "init",
    "step",
    "reweight",
    "loop",
    "run",
    "trim",
    "particle_axis_constraint",
    "particle_dict",
    "ResamplingFn",
    "RESAMPLING_SCHEMES",
    "get_resampling",
    "multinomial",
    "stratified",
    "systematic",
    "residual",
    "ssp",
    "killing",
    "normalise_log_weights",
    "effective_sample_size",
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
    "TemperedPath",
    "tempered_path",
    "next_temperature",
    "TemperedState",
    "tempered",
    "tempered_loop",
    "KERNELS",
    "MoveInfo",
    "whitening",
    "mcmc_move",
    "adapt_scale",
]
