"""Metropolis-within-Gibbs for discrete sites that cannot be summed out.

A discrete latent site with an infinite support (a Poisson or geometric count) has
no finite set of values to enumerate, and HMC cannot move it. probkit keeps such
sites in the position as integers held in floats and alternates, at every
transition, two moves that each leave the posterior invariant:

1. a sweep over the discrete coordinates, each updated by a Metropolis step with a
   symmetric integer jump (a rounded Gaussian whose scale is that coordinate's
   posterior standard deviation, as estimated by the warm-up's mass-matrix
   adaptation; a jump of zero becomes +-1);
2. one NUTS / HMC transition of the continuous coordinates given the integers,
   with the continuous block of the adapted metric.

This is NumPyro's ``HMCGibbs`` / ``DiscreteHMCGibbs`` scheme; NumPyro's discrete
proposals draw from a site's enumerated support, which a count does not have, so
the integer moves here are random-walk Metropolis. The wrapper has the interface of
a blackjax algorithm module (``init``, ``build_kernel``), so blackjax's window
adaptation tunes the continuous move's step size (on its acceptance rate) and the
metric (on the whole position) exactly as for a continuous target.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probkit._lazy import blackjax

__all__ = ["GibbsInfo", "metropolis_within_gibbs"]


class GibbsInfo(NamedTuple):
    """What one transition reports.

    Attributes:
        acceptance_rate: the continuous move's (what step-size adaptation tunes), or
            the discrete sweep's when every coordinate is discrete.
        discrete_acceptance_rate: the fraction of the sweep's integer proposals
            accepted.
        continuous: the continuous kernel's own info (``None`` when every coordinate
            is discrete).
    """

    acceptance_rate: jax.Array
    discrete_acceptance_rate: jax.Array
    continuous: Any


def _jump_scales(inverse_mass_matrix: jax.Array, index: np.ndarray) -> jax.Array:
    imm = inverse_mass_matrix
    diagonal = imm if imm.ndim == 1 else jnp.diag(imm)
    return jnp.sqrt(diagonal[index])


def discrete_sweep(key, position, logdensity, logdensity_fn, index: np.ndarray, scales):
    """One Metropolis update of each coordinate in ``index``, in order.

    Returns ``(position, logdensity, acceptance rate)``. The jump of coordinate ``j``
    is ``round(scales[j] * N(0, 1))``, or +-1 with equal probabilities when that
    rounds to zero: symmetric, so the acceptance probability is the density ratio.
    """
    index = jnp.asarray(index)

    def update(j, carry):
        x, lp, accepted = carry
        jump_key, sign_key, accept_key = jax.random.split(jax.random.fold_in(key, j), 3)
        jump = jnp.round(scales[j] * jax.random.normal(jump_key, (), x.dtype))
        sign = jnp.where(jax.random.bernoulli(sign_key), 1.0, -1.0).astype(x.dtype)
        proposal = x.at[index[j]].add(jnp.where(jump == 0, sign, jump))
        proposal_lp = logdensity_fn(proposal)
        # NaN (a proposal outside the support whose log density is undefined) rejects.
        accept = jnp.log(jax.random.uniform(accept_key, (), x.dtype)) < proposal_lp - lp
        return (
            jnp.where(accept, proposal, x),
            jnp.where(accept, proposal_lp, lp),
            accepted + accept.astype(x.dtype),
        )

    x, lp, accepted = jax.lax.fori_loop(
        0, index.shape[0], update, (position, logdensity, jnp.zeros((), position.dtype))
    )
    return x, lp, accepted / index.shape[0]


class metropolis_within_gibbs(NamedTuple):  # noqa: N801 - used like blackjax's algorithm modules
    """A blackjax-style algorithm: integer Metropolis sweeps, then ``base`` on the rest.

    Args:
        base: the continuous kernel, a blackjax algorithm module with ``init`` and
            ``build_kernel`` (``blackjax.nuts``, probkit's ``jittered_hmc``).
        discrete_indices: the discrete coordinates of the flat position.
        num_dims: the flat position's size.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jax.scipy.stats import norm, poisson
        >>> from probkit._lazy import blackjax
        >>> from probkit.mcmc._gibbs import metropolis_within_gibbs
        >>> def logdensity(x):  # x[0] ~ N(0, 1), x[1] ~ Poisson(3)
        ...     return norm.logpdf(x[0]) + jnp.where(x[1] >= 0, poisson.logpmf(x[1], 3.0), -jnp.inf)
        >>> algo = metropolis_within_gibbs(blackjax.nuts, (1,), 2)
        >>> state = algo.init(jnp.array([0.0, 2.0]), logdensity)
        >>> step = algo.build_kernel()
        >>> state, info = step(jax.random.key(0), state, logdensity, 0.5, jnp.ones(2))
        >>> bool(state.position[1] == jnp.round(state.position[1]))
        True
    """

    base: Any
    discrete_indices: tuple
    num_dims: int

    @staticmethod
    def init(position, logdensity_fn, *_):
        return blackjax.hmc.init(position, logdensity_fn)

    def build_kernel(self, integrator=None):
        takes_integrator = len(inspect.signature(self.base.build_kernel).parameters) > 0
        if integrator is not None and takes_integrator:
            base_kernel = self.base.build_kernel(integrator)
        else:
            base_kernel = self.base.build_kernel()
        discrete = np.asarray(self.discrete_indices, dtype=int)
        continuous = np.setdiff1d(np.arange(self.num_dims), discrete)

        def kernel(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix, **extra):
            discrete_key, continuous_key = jax.random.split(rng_key)
            x, lp, rate = discrete_sweep(
                discrete_key,
                state.position,
                state.logdensity,
                logdensity_fn,
                discrete,
                _jump_scales(inverse_mass_matrix, discrete),
            )
            if continuous.size == 0:
                new_state = blackjax.mcmc.hmc.HMCState(x, lp, jnp.zeros_like(x))
                return new_state, GibbsInfo(rate, rate, None)

            def conditional(c):
                return logdensity_fn(x.at[continuous].set(c))

            metric = (
                inverse_mass_matrix[continuous]
                if inverse_mass_matrix.ndim == 1
                else inverse_mass_matrix[np.ix_(continuous, continuous)]
            )
            inner = blackjax.hmc.init(x[continuous], conditional)
            inner, info = base_kernel(
                continuous_key, inner, conditional, step_size, metric, **extra
            )
            new_state = blackjax.mcmc.hmc.HMCState(
                x.at[continuous].set(inner.position),
                inner.logdensity,
                jnp.zeros_like(x).at[continuous].set(inner.logdensity_grad),
            )
            return new_state, GibbsInfo(info.acceptance_rate, rate, info)

        return kernel

    def sampling_algorithm(self, logdensity_fn, step_size, inverse_mass_matrix, **extra):
        """The :class:`blackjax.SamplingAlgorithm` for fixed parameters."""
        kernel = self.build_kernel()

        def init(position, rng_key=None):
            del rng_key
            return self.init(position, logdensity_fn)

        def step(rng_key, state):
            return kernel(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix, **extra)

        return blackjax.base.SamplingAlgorithm(init, step)
