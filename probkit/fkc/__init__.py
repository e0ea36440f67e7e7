"""Feynman-Kac correctors for diffusion models: annealing, products of experts, guidance.

Each corrector (Skreta et al., ICML 2025) is a :class:`probkit.smc.FeynmanKac` model
built from score functions ``score(x, t)`` of one forward SDE (:mod:`probkit.sde`):
the particles follow the SDE with the combined score and carry the weights that make
them sample the annealed, product or guided distributions exactly in the continuous
limit. Run it with :func:`probkit.smc.run`; the samples are ``result.particles.x``
with weights ``exp(result.log_weights)``.

Example:
    >>> import jax.numpy as jnp
    >>> import probkit.fkc as fkc
    >>> import probkit.smc as smc
    >>> from probkit.sde import VPSDE
    >>> fk = fkc.anneal(lambda x, t: -x, VPSDE(), 2.0, event_shape=(1,), num_steps=100)
    >>> result = smc.run(fk, num_particles=2000, seed=0)
    >>> result.particles.x.shape
    (2000, 1)
"""

from probkit.fkc._correctors import (
    FKCParticles,
    anneal,
    geometric_mixture,
    guidance,
    product,
    release_schedule,
)
from probkit.fkc._metrics import energy_distance, mmd, wasserstein2

__all__ = [
    "FKCParticles",
    "geometric_mixture",
    "anneal",
    "product",
    "guidance",
    "release_schedule",
    "energy_distance",
    "mmd",
    "wasserstein2",
]
