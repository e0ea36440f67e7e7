"""MCMC drivers over blackjax kernels: warm-up, multi-chain runs, sharding, ArviZ output.

Example:
    >>> import jax.numpy as jnp
    >>> import probkit as pk
    >>> target = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum(x**2), jnp.zeros(2))
    >>> result = pk.mcmc.sample(target, num_warmup=100, num_samples=100, num_chains=2)
    >>> result.samples["x"].shape
    (2, 100, 2)
"""

from probkit.mcmc._kernels import KERNELS, KernelSpec
from probkit.mcmc._sample import sample
from probkit.results import MCMCResult, SamplingWarning

__all__ = ["KERNELS", "KernelSpec", "MCMCResult", "SamplingWarning", "sample"]
