"""Generative and neural models built on the probkit core (imported as probkit.models).

Each model family is a subpackage, reachable as an attribute and imported on first
access (``import probkit as pk; pk.models.gflownet``), so ``import probkit.models``
stays light.

Example:
    >>> import probkit as pk
    >>> "gflownet" in dir(pk.models)
    True
    >>> pk.models.posteriordb.__name__
    'probkit.models.posteriordb'
"""

from typing import TYPE_CHECKING

from probkit._lazy import attach

#: Model families reachable as ``probkit.models.<name>``, imported on first access.
_SUBPACKAGES = (
    "arithmetic_lm",
    "continual",
    "diffusion",
    "distribution_transformer",
    "fewshot",
    "gflownet",
    "masked_diffusion",
    "mjp",
    "posteriordb",
    "pvrnn",
)

__all__ = list(_SUBPACKAGES)


__getattr__, __dir__ = attach("probkit.models", globals(), _SUBPACKAGES)
del attach


if TYPE_CHECKING:  # static analysers and IDEs see the eager imports
    from probkit.models import (  # noqa: F401
        arithmetic_lm,
        continual,
        diffusion,
        distribution_transformer,
        fewshot,
        gflownet,
        masked_diffusion,
        mjp,
        posteriordb,
        pvrnn,
    )
