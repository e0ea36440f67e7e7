"""Save and load Distribution Transformers: a JSON line of hyperparameters, then equinox leaves."""

from __future__ import annotations

import functools
from pathlib import Path

import equinox as eqx
import jax
from probkit.models._serialise import load_module, save_module
from probkit.models.distribution_transformer._network import DistributionTransformer

__all__ = ["save", "load", "load_pretrained", "WEIGHTS_DIR"]

#: Folder of the shipped weights, one ``<task name>.eqx`` file per task.
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "data" / "distribution_transformer"

_FIELDS = (
    "latent_dim",
    "data_feature_dim",
    "max_components",
    "width",
    "depth",
    "num_heads",
    "sites",
    "site_inputs",
    "site_rank",
)


def save(path: str | Path, model: DistributionTransformer) -> None:
    """Write ``model`` to ``path`` (hyperparameters as JSON, weights by equinox).

    Args:
        path: destination file.
        model: the network.

    Example:
        >>> import jax, os, tempfile
        >>> from probkit.models.distribution_transformer import DistributionTransformer, load, save
        >>> net = DistributionTransformer(1, 8, key=jax.random.key(0), width=16)
        >>> path = os.path.join(tempfile.mkdtemp(), "net.eqx")
        >>> save(path, net); load(path).width
        16
    """
    save_module(path, model, _FIELDS)


def load(path: str | Path) -> DistributionTransformer:
    """Read a network written by :func:`save`.

    Args:
        path: the file.

    Returns:
        The network.

    Example:
        >>> from probkit.models.distribution_transformer import load
        >>> from probkit.models.distribution_transformer._io import WEIGHTS_DIR
        >>> load(WEIGHTS_DIR / "linear_gaussian_1d.eqx").latent_dim
        1
    """
    # Files written before the Gaussian-site head (or its raw site inputs, or the site rank)
    # existed have no "sites" ("site_inputs", "site_rank") entry. The skeleton
    # is built abstractly (shapes only: no random initialisation to throw away).
    return load_module(
        path,
        lambda hyper: eqx.filter_eval_shape(
            DistributionTransformer,
            key=jax.random.key(0),
            **{"sites": False, "site_inputs": 0, "site_rank": None, **hyper},
        ),
    )


@functools.cache
def load_pretrained(task_name: str) -> DistributionTransformer:
    """The shipped network of a task (cached after the first call).

    Args:
        task_name: e.g. ``"linear_gaussian_2d"`` (see ``TASKS``).

    Returns:
        The network.

    Raises:
        ValueError: if no weights are shipped for ``task_name``.

    Example:
        >>> from probkit.models.distribution_transformer import load_pretrained
        >>> load_pretrained("linear_gaussian_2d").latent_dim
        2
    """
    path = WEIGHTS_DIR / f"{task_name}.eqx"
    if not path.exists():
        shipped = sorted(p.stem for p in WEIGHTS_DIR.glob("*.eqx"))
        raise ValueError(
            f"no shipped weights for task {task_name!r}; shipped: {shipped}. Train your own "
            "with probkit.models.distribution_transformer.train and pass model=."
        )
    return load(path)
