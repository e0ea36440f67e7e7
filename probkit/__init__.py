"""probkit: probabilistic programming and sampling on JAX.

Every subpackage is an attribute of ``probkit``, loaded on first use (PEP 562), so
``import probkit`` stays light: it imports neither torch nor blackjax and does not
start a JAX backend (``probkit.distributed.initialize`` can still be called after it).

Example:
    >>> import probkit as pk
    >>> sorted(pk.mcmc.KERNELS)
    ['chees', 'hmc', 'mala', 'meads', 'nuts', 'rwm']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from probkit import _cpu_threads
from probkit._compilation_cache import (
    compilation_cache_dir,
    configure_from_environment,
    set_compilation_cache,
)
from probkit._cpu_threads import cpu_threads
from probkit._lazy import attach

__version__ = "0.1.0"

# Before anything starts a JAX backend: XLA reads both when its CPU client starts.
_cpu_threads.configure_from_environment()
configure_from_environment()
del configure_from_environment

#: Subpackages reachable as ``probkit.<name>``, imported on first attribute access.
_SUBPACKAGES = (
    "bayesopt",
    "bridges",
    "distributed",
    "fkc",
    "graph",
    "importance",
    "mcmc",
    "models",
    "progress",
    "results",
    "scaling",
    "sde",
    "smc",
    "target",
)

#: Names re-exported at the top level: name -> module that defines it.
_NAMES = {
    "GaussianMixture": "probkit._gaussian_mixture",
    "gaussian_mixture": "probkit._gaussian_mixture",
    "MCMCResult": "probkit.results",
    "SamplingWarning": "probkit.results",
    "Target": "probkit.target",
    "from_numpyro": "probkit.target",
    "infer_discrete": "probkit.target",
}

__all__ = [
    "GaussianMixture",
    "MCMCResult",
    "SamplingWarning",
    "Target",
    "__version__",
    "compilation_cache_dir",
    "cpu_threads",
    "from_numpyro",
    "gaussian_mixture",
    "infer_discrete",
    "set_compilation_cache",
    *_SUBPACKAGES,
]


__getattr__, __dir__ = attach("probkit", globals(), _SUBPACKAGES, _NAMES)
del attach


if TYPE_CHECKING:  # static analysers and IDEs see the eager imports
    from probkit import (  # noqa: F401
        bayesopt,
        bridges,
        distributed,
        fkc,
        graph,
        importance,
        mcmc,
        models,
        progress,
        results,
        scaling,
        sde,
        smc,
        target,
    )
    from probkit._gaussian_mixture import GaussianMixture, gaussian_mixture  # noqa: F401
    from probkit.results import MCMCResult, SamplingWarning  # noqa: F401
    from probkit.target import Target, from_numpyro, infer_discrete  # noqa: F401
