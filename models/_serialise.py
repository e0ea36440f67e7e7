"""One file format for the trained networks of ``probkit.models``.

A file is one JSON line (the hyperparameters that rebuild the module's skeleton, plus
optional metadata) followed by the module's leaves written by
``equinox.tree_serialise_leaves``. The diffusion score networks, the Distribution
Transformers and the amortised MJP network all use it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import equinox as eqx

Module = TypeVar("Module", bound=eqx.Module)


def save_module(
    path: str | Path, module: eqx.Module, fields: Sequence[str], **metadata: Any
) -> None:
    """Write ``module``: its ``fields`` (and ``metadata`` when given) as JSON, then its leaves."""
    header = {name: getattr(module, name) for name in fields}
    if metadata:
        header["metadata"] = metadata
    with open(path, "wb") as f:
        f.write((json.dumps(header) + "\n").encode())
        eqx.tree_serialise_leaves(f, module)


def load_module(path: str | Path, build: Callable[[dict[str, Any]], Module]) -> Module:
    """Read a file of :func:`save_module`: ``build(header)`` makes the skeleton to fill."""
    with open(path, "rb") as f:
        header = json.loads(f.readline().decode())
        return eqx.tree_deserialise_leaves(f, build(header))
