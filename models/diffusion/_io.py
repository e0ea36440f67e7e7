"""Save and load score networks: a JSON line of hyperparameters, then equinox's leaves."""

from __future__ import annotations

from pathlib import Path

import jax
from probkit.models._serialise import load_module, save_module
from probkit.models.diffusion._network import ScoreNetwork

__all__ = ["save", "load", "load_pretrained", "PRETRAINED_PATH"]

#: The shipped checkerboard score network (``python -m probkit.models.diffusion.train``).
PRETRAINED_PATH = Path(__file__).resolve().parent.parent / "data" / "diffusion" / "checkerboard.eqx"

_FIELDS = (
    "event_shape",
    "width",
    "depth",
    "time_features",
    "time_scale",
    "input_features",
    "input_scale",
    "num_classes",
    "label_features",
)


def save(path: str | Path, model: ScoreNetwork) -> None:
    """Write ``model`` to ``path`` (hyperparameters as JSON, weights by equinox).

    Example:
        >>> import jax, tempfile, os
        >>> from probkit.models.diffusion import ScoreNetwork, load, save
        >>> net = ScoreNetwork((2,), key=jax.random.key(0), width=8, depth=1)
        >>> path = os.path.join(tempfile.mkdtemp(), "net.eqx")
        >>> save(path, net); load(path).width
        8
    """
    save_module(path, model, _FIELDS)


def load(path: str | Path) -> ScoreNetwork:
    """Read a network written by :func:`save`."""

    def build(hyper):
        hyper = {**hyper, "event_shape": tuple(hyper["event_shape"])}
        return ScoreNetwork(key=jax.random.key(0), **hyper)

    return load_module(path, build)


def load_pretrained() -> ScoreNetwork:
    """The shipped score network of the 4x4 checkerboard on [-2, 2]^2 (VP SDE).

    See ``models/data/diffusion/README.md`` for how it was trained and how well it
    fits; retrain with ``python -m probkit.models.diffusion.train``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.diffusion import load_pretrained, score_fn
        >>> from probkit.sde import VPSDE
        >>> score = score_fn(load_pretrained(), VPSDE())
        >>> score(jnp.zeros(2), 0.5).shape
        (2,)
    """
    if not PRETRAINED_PATH.exists():
        raise FileNotFoundError(
            f"{PRETRAINED_PATH} is missing; train it with "
            "`python -m probkit.models.diffusion.train`."
        )
    return load(PRETRAINED_PATH)
