"""Forward SDEs, reverse-time samplers, the probability-flow ODE and stochastic interpolants.

The forward SDEs (VP, sub-VP, VE, Ornstein-Uhlenbeck, any linear one) expose
``drift``, ``diffusion``, ``marginal``, ``prior_sample``, ``prior_log_prob`` and the
reverse-time process for a score function ``score(x, t)`` of ONE sample. Samplers
(Euler-Maruyama, reverse-diffusion predictor, Langevin corrector) vectorise over
particles; the probability-flow ODE is solved with diffrax and gives log-likelihoods.
Gaussian-mixture data give exact scores, the oracle for all of them. Stochastic
interpolants (linear and trigonometric paths) come with their velocity and denoiser
losses and the generative SDE ``dX = (b + eps s) dt + sqrt(2 eps) dW``.

Example:
    >>> import jax, jax.numpy as jnp
    >>> import probkit.sde as sde
    >>> vp = sde.VPSDE()
    >>> data = sde.gaussian_mixture(jnp.ones(2), jnp.array([[-2.0], [2.0]]), 0.25)
    >>> score = sde.exact_score(data, vp)
    >>> x = sde.predictor_corrector_sample(jax.random.key(0), vp, score, 1000, (1,),
    ...                                    num_steps=200)
    >>> round(float(jnp.mean(x > 0)), 1)
    0.5
"""

from probkit.sde._euler_maruyama import euler_maruyama, euler_maruyama_step
from probkit.sde._fractional import (
    MarkovFBM,
    fbm_covariance,
    markov_fbm,
    markov_fbm_covariance,
    optimal_weights,
    ou_rates,
    sample_fbm,
    sample_markov_fbm,
    stationary_ou_covariance,
)
from probkit.sde._gaussian_mixture import (
    GaussianMixture,
    exact_score,
    gaussian_mixture,
    log_prob_from_cholesky,
    mixture_product,
    noised,
)
from probkit.sde._interpolants import (
    Interpolant,
    denoiser_loss,
    interpolant_sample,
    interpolate,
    linear_interpolant,
    score_from_denoiser,
    trig_interpolant,
    velocity_loss,
)
from probkit.sde._latent import (
    AffineControl,
    ELBOTerms,
    GaussianObservation,
    LatentFit,
    LatentSDE,
    LinearDrift,
    MLPControl,
    MLPDrift,
    elbo,
    fit_latent_sde,
    latent_sde,
    sample_latent_paths,
)
from probkit.sde._linear import (
    OUSDE,
    VESDE,
    VPSDE,
    LinearSDE,
    QuadratureSDE,
    ReverseSDE,
    ScoreFn,
    SubVPSDE,
)
from probkit.sde._probability_flow import divergence, log_likelihood, probability_flow_sample
from probkit.sde._samplers import (
    euler_maruyama_predictor,
    langevin_corrector,
    predictor_corrector_sample,
    reverse_diffusion_predictor,
    time_grid,
)

__all__ = [
    "ScoreFn",
    "LinearSDE",
    "VPSDE",
    "SubVPSDE",
    "VESDE",
    "OUSDE",
    "QuadratureSDE",
    "ReverseSDE",
    "time_grid",
    "euler_maruyama_step",
    "euler_maruyama",
    "euler_maruyama_predictor",
    "reverse_diffusion_predictor",
    "langevin_corrector",
    "predictor_corrector_sample",
    "probability_flow_sample",
    "log_likelihood",
    "divergence",
    "GaussianMixture",
    "gaussian_mixture",
    "log_prob_from_cholesky",
    "noised",
    "exact_score",
    "mixture_product",
    "Interpolant",
    "linear_interpolant",
    "trig_interpolant",
    "interpolate",
    "velocity_loss",
    "denoiser_loss",
    "score_from_denoiser",
    "interpolant_sample",
    # fractional noise (MA-fBM) and latent SDE variational inference
    "MarkovFBM",
    "ou_rates",
    "optimal_weights",
    "markov_fbm",
    "markov_fbm_covariance",
    "fbm_covariance",
    "sample_fbm",
    "sample_markov_fbm",
    "stationary_ou_covariance",
    "LatentSDE",
    "LinearDrift",
    "MLPDrift",
    "AffineControl",
    "MLPControl",
    "GaussianObservation",
    "latent_sde",
    "elbo",
    "sample_latent_paths",
    "fit_latent_sde",
    "LatentFit",
    "ELBOTerms",
]
