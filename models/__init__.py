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

import importlib
from typing import TYPE_CHECKING

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


def __getattr__(name: str):
    if name not in _SUBPACKAGES:
        raise AttributeError(f"module 'probkit.models' has no attribute {name!r}")
    value = importlib.import_module(f"probkit.models.{name}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
