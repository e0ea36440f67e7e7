"""MCMC over blackjax kernels, in three layers.

1. Kernel specifications (:data:`KERNELS`, :class:`KernelSpec`): for each name, its
   warm-up, its blackjax algorithm and the statistics it reports.
2. :func:`loop`: a pure, jittable run of any kernel (``(key, kernel, state) ->
   (last_state, (positions, stats))``) to call inside your own ``jit`` / ``vmap``,
   and :func:`warmup`: a named kernel's warm-up for one chain, as pure (chains with
   data of their own, each warmed up on its own posterior).
3. :func:`sample`: validation before compilation, warm-up, multi-chain runs
   (vectorised, sequential, sharded), progress bars, ArviZ output; it takes a name,
   a blackjax ``SamplingAlgorithm`` or an ``(init, step)`` pair, and continues a run
   from ``result.last_state`` (``init_state=``).

Example:
    >>> import jax.numpy as jnp
    >>> import probkit as pk
    >>> target = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum(x**2), jnp.zeros(2))
    >>> result = pk.mcmc.sample(target, num_warmup=100, num_samples=100, num_chains=2)
    >>> result.samples["x"].shape
    (2, 100, 2)
"""

from probkit.mcmc._kernels import KERNELS, KernelSpec, jittered_hmc
from probkit.mcmc._loop import AdaptedState, loop, transition_key
from probkit.mcmc._sample import sample
from probkit.mcmc._warmup import Tuned, warmup
from probkit.results import MCMCResult, SamplingWarning

__all__ = [
    "KERNELS",
    "AdaptedState",
    "KernelSpec",
    "MCMCResult",
    "SamplingWarning",
    "jittered_hmc",
    "loop",
    "sample",
    "transition_key",
    "Tuned",
    "warmup",
]
