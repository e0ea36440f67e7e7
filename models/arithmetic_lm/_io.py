"""Save and load the arithmetic language model (``probkit.models._serialise`` format)."""

from __future__ import annotations

from pathlib import Path

import jax
from probkit.models._serialise import load_module, save_module
from probkit.models.arithmetic_lm._network import ArithmeticLM

__all__ = ["save", "load", "load_pretrained", "PRETRAINED_PATH"]

_FIELDS = ("width", "depth", "num_heads")

#: The shipped weights (trained by ``python -m probkit.models.arithmetic_lm.train``).
PRETRAINED_PATH = (
    Path(__file__).resolve().parent.parent / "data" / "arithmetic_lm" / "transformer.eqx"
)


def save(path: str | Path, model: ArithmeticLM, **metadata) -> None:
    """Write ``model`` (hyperparameters and ``metadata`` as JSON, then equinox's leaves).

    Example:
        >>> import jax, os, tempfile
        >>> from probkit.models.arithmetic_lm import ArithmeticLM, load, save
        >>> lm = ArithmeticLM(key=jax.random.key(0), width=16, depth=1, num_heads=2)
        >>> path = os.path.join(tempfile.mkdtemp(), "lm.eqx")
        >>> save(path, lm); load(path).width
        16
    """
    save_module(path, model, _FIELDS, **metadata)


def load(path: str | Path) -> ArithmeticLM:
    """Read a model written by :func:`save`."""

    def build(header):
        return ArithmeticLM(
            key=jax.random.key(0),
            width=header["width"],
            depth=header["depth"],
            num_heads=header["num_heads"],
        )

    return load_module(path, build)


def load_pretrained() -> ArithmeticLM:
    """The shipped model (see ``models/data/arithmetic_lm/README.md``).

    Example:
        >>> from probkit.models.arithmetic_lm import load_pretrained
        >>> load_pretrained().width > 0
        True
    """
    if not PRETRAINED_PATH.exists():
        raise FileNotFoundError(
            f"{PRETRAINED_PATH} is missing; train it with "
            "`python -m probkit.models.arithmetic_lm.train`."
        )
    return load(PRETRAINED_PATH)
