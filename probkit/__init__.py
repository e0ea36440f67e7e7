"""probkit: probabilistic programming and sampling on JAX.

Example:
    >>> import probkit as pk
    >>> sorted(pk.mcmc.KERNELS)
    ['chees', 'hmc', 'mala', 'meads', 'nuts', 'rwm']
"""

from probkit import distributed, mcmc, progress, results
from probkit.results import MCMCResult
from probkit.target import Target, from_numpyro

__version__ = "0.1.0"

__all__ = [
    "MCMCResult",
    "Target",
    "__version__",
    "distributed",
    "from_numpyro",
    "mcmc",
    "progress",
    "results",
]
