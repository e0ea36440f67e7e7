"""Device meshes and sharding of the chain / particle axis (DESIGN §3).

Chains and particles live on a leading axis. On one device that axis is
vectorised with ``vmap``; on several, the same code shards it over a 1-D
:class:`jax.sharding.Mesh`. Results must not depend on the number of devices:
samplers derive per-chain keys with ``jax.random.fold_in(key, chain_index)``.

Multi-host runs use JAX's own runtime: call :func:`jax.distributed.initialize`
in every process before building the mesh; :func:`chain_mesh` then spans every
device of every process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["chain_mesh", "leading_axis_sharding", "shard_leading_axis", "check_divisible"]

AXIS = "chains"


def chain_mesh(devices: Sequence[jax.Device] | None = None, axis_name: str = AXIS) -> Mesh:
    """A 1-D mesh over ``devices`` (default: every device of every process).

    Example:
        >>> from probkit.distributed import chain_mesh
        >>> chain_mesh().axis_names
        ('chains',)
    """
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices is empty: pass at least one jax.Device, or None for all.")
    return Mesh(np.asarray(devices), (axis_name,))


def leading_axis_sharding(mesh: Mesh, axis_name: str | None = None) -> NamedSharding:
    """The sharding that splits an array's leading axis over the mesh."""
    axis_name = mesh.axis_names[0] if axis_name is None else axis_name
    return NamedSharding(mesh, PartitionSpec(axis_name))


def check_divisible(size: int, mesh: Mesh, what: str = "num_chains") -> None:
    """Raise a clear error when ``size`` cannot be split evenly over the mesh."""
    n = mesh.devices.size
    if size % n:
        lower, upper = (size // n) * n, -(-size // n) * n
        hint = f"{lower} or {upper}" if lower else f"{upper}"
        raise ValueError(
            f"{what}={size} cannot be split evenly over {n} devices; use a multiple of "
            f"{n} (e.g. {hint})."
        )


def shard_leading_axis(tree: Any, mesh: Mesh) -> Any:
    """Place every leaf of ``tree`` with its leading axis split over ``mesh``."""
    sharding = leading_axis_sharding(mesh)
    return jax.tree_util.tree_map(lambda x: jax.device_put(x, sharding), tree)
