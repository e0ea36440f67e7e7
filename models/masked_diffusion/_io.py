"""Save and load denoisers in the one format of ``probkit.models`` (JSON line + leaves)."""

from __future__ import annotations

from pathlib import Path

import jax
from probkit.models._serialise import load_module, save_module
from probkit.models.masked_diffusion._network import Denoiser

__all__ = ["save", "load"]

_FIELDS = ("vocab_size", "length", "width", "depth", "num_heads")


def save(path: str | Path, model: Denoiser, **metadata) -> None:
    """Write ``model`` (hyperparameters and ``metadata`` as JSON, weights by equinox).

    Example:
        >>> import jax, tempfile, os
        >>> from probkit.models.masked_diffusion import Denoiser, load, save
        >>> net = Denoiser(3, 4, key=jax.random.key(0), width=8, depth=1, num_heads=2)
        >>> path = os.path.join(tempfile.mkdtemp(), "net.eqx")
        >>> save(path, net); load(path).width
        8
    """
    save_module(path, model, _FIELDS, **metadata)


def load(path: str | Path) -> Denoiser:
    """Read a denoiser written by :func:`save`."""

    def build(header):
        header = {k: v for k, v in header.items() if k != "metadata"}
        return Denoiser(key=jax.random.key(0), **header)

    return load_module(path, build)
