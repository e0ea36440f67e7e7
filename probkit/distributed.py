"""Device meshes and sharding of the chain / particle axis (see docs/guide/architecture.md).

Chains and particles live on a leading axis. On one device that axis is
vectorised with ``vmap``; on several, the same code shards it over a 1-D
:class:`jax.sharding.Mesh`. Results must not depend on the number of devices:
samplers derive per-chain keys with ``jax.random.fold_in(key, chain_index)``.

Multi-process and multi-host runs use JAX's own multi-controller runtime: call
:func:`initialize` (a thin wrapper over :func:`jax.distributed.initialize`) in every
process before any JAX computation; :func:`chain_mesh` then spans every device of
every process, every process runs the same script, and :func:`gather` brings a
sharded result back to each process (or to process 0 only).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "initialize",
    "is_multiprocess",
    "gather",
    "gather_result",
    "chain_mesh",
    "leading_axis_sharding",
    "shard_leading_axis",
    "check_divisible",
    "check_same_mesh",
]

AXIS = "chains"


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge._backends)
    except (ImportError, AttributeError):  # a JAX without the private registry
        return False


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: int | Sequence[int] | None = None,
    initialization_timeout: int = 300,
    heartbeat_timeout_seconds: int = 100,
    cpu_collectives: str = "gloo",
    **kwargs: Any,
) -> None:
    """Join this process to a multi-process JAX runtime (every process calls it).

    A thin wrapper over :func:`jax.distributed.initialize`. With no arguments JAX
    detects the cluster (SLURM, Open MPI, Kubernetes, Cloud TPU); otherwise pass the
    coordinator's ``host:port``, the number of processes and this one's index. On
    CPU devices it also turns on CPU collectives (``cpu_collectives``, default
    ``"gloo"``), without which a computation spanning processes cannot run.

    Call it before any JAX computation (importing probkit is fine: no probkit module
    starts a backend on import). Failures end every process in bounded time, never a
    hang (JAX's runtime is not fault-tolerant: it stops the processes, exit status
    134): when a process never joins, the others stop after ``initialization_timeout``
    seconds, after printing which process waited for what and what to check; when a
    process dies mid-run, the others stop once it has missed heartbeats for about
    ``heartbeat_timeout_seconds``, with JAX's message naming the task that "stopped
    sending heartbeats".

    Args:
        coordinator_address: ``"host:port"`` of process 0 (``None``: detect).
        num_processes: the number of processes (``None``: detect).
        process_id: this process's index in ``0 .. num_processes - 1`` (``None``: detect).
        local_device_ids: the local devices this process uses (``None``: all).
        initialization_timeout: seconds to wait for every process to join.
        heartbeat_timeout_seconds: seconds without a heartbeat before a process
            counts as dead.
        cpu_collectives: CPU collectives implementation (``"gloo"`` or ``"mpi"``);
            ``None`` leaves JAX's setting alone.
        **kwargs: passed on to :func:`jax.distributed.initialize`.

    Example:
        >>> import probkit as pk
        >>> pk.distributed.initialize  # doctest: +ELLIPSIS
        <function initialize at ...>

        In a script started once per process (e.g. by ``srun``)::

            import probkit as pk
            pk.distributed.initialize()              # before any JAX computation
            mesh = pk.distributed.chain_mesh()       # every device of every process
            result = pk.mcmc.sample(target, num_chains=64, chain_method="sharded", seed=0)
    """
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes={num_processes} must be >= 1 (or None to detect).")
    if process_id is not None and num_processes is not None:
        if not 0 <= process_id < num_processes:
            raise ValueError(
                f"process_id={process_id} must be in 0..{num_processes - 1} "
                f"(num_processes={num_processes})."
            )
    if initialization_timeout <= 0 or heartbeat_timeout_seconds <= 0:
        raise ValueError(
            "initialization_timeout and heartbeat_timeout_seconds must be positive seconds."
        )
    if _backend_started():
        raise RuntimeError(
            "probkit.distributed.initialize() must run before any JAX computation, but a "
            "JAX backend has already started in this process. Call it right after the "
            "imports, before creating arrays, keys or targets."
        )
    if cpu_collectives is not None:
        platforms = (os.environ.get("JAX_PLATFORMS") or jax.config.jax_platforms or "").lower()
        if platforms in ("", "cpu") or platforms.startswith("cpu"):
            jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    who = _describe(coordinator_address, num_processes, process_id)
    # JAX stops (aborts) a process whose runtime does not form in time, from C++, so
    # no Python exception can carry the explanation: a watchdog thread prints it
    # first (the join releases the GIL while it waits).
    joined = threading.Event()
    watchdog = threading.Thread(
        target=_explain_if_not_joined,
        args=(joined, initialization_timeout, who),
        name="probkit-initialize-watchdog",
        daemon=True,
    )
    watchdog.start()
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
            local_device_ids=local_device_ids,
            initialization_timeout=initialization_timeout,
            heartbeat_timeout_seconds=heartbeat_timeout_seconds,
            **kwargs,
        )
    except ValueError as error:  # nothing given and no cluster detected, or bad values
        raise ValueError(
            f"probkit.distributed.initialize could not start {who}: {error}. Outside a "
            "cluster that JAX detects (SLURM, Open MPI, Kubernetes, Cloud TPU), pass "
            "coordinator_address='host:port' (process 0's host and a free port), "
            "num_processes and process_id."
        ) from error
    finally:
        joined.set()


def _describe(coordinator_address, num_processes, process_id) -> str:
    index = "this process" if process_id is None else f"process {process_id}"
    of = "" if num_processes is None else f" of {num_processes}"
    at = "" if coordinator_address is None else f" (coordinator {coordinator_address})"
    return f"{index}{of}{at}"


def _explain_if_not_joined(joined: threading.Event, timeout: float, who: str) -> None:
    if joined.wait(timeout):
        return
    print(
        f"probkit.distributed.initialize: {who} has waited initialization_timeout={timeout} s "
        "for every process to join the JAX runtime, and JAX stops this process now. Check "
        "that every process was started (did the job get all its tasks?), with the same "
        "coordinator address and num_processes and its own process_id; that process 0 runs "
        "on the coordinator's host and its port is reachable from every host (firewall, "
        "*_proxy variables); or raise initialization_timeout when processes start at "
        "different times.",
        file=sys.stderr,
        flush=True,
    )


def is_multiprocess() -> bool:
    """Whether this process is one of several in a JAX multi-process runtime.

    Example:
        >>> from probkit.distributed import is_multiprocess
        >>> is_multiprocess()
        False
    """
    return jax.process_count() > 1


def gather(tree: Any, *, to: str = "all") -> Any:
    """Every leaf of ``tree`` as a NumPy array holding the global value.

    On one process this is ``np.asarray``. On several, a leaf sharded over devices
    of other processes cannot be fetched directly; it is all-gathered across
    processes (every process must call ``gather`` on the same structure, in the same
    order). Replicated leaves (reductions such as a log-evidence) need no
    communication. With ``to="first"`` only process 0 gets the arrays and the others
    get ``None`` leaves (less host memory on large runs; the collective is the same).
    Typed PRNG key arrays come back as key arrays, everything that is not a
    :class:`jax.Array` (Python numbers, strings) as it was.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.distributed import gather
        >>> gather({"x": jnp.arange(3)})["x"].tolist()
        [0, 1, 2]
    """
    if to not in ("all", "first"):
        raise ValueError(f"to={to!r} must be 'all' (every process) or 'first' (process 0).")
    gathered = jax.tree_util.tree_map(_gather_leaf, tree)
    if to == "first" and jax.process_index() != 0:
        return jax.tree_util.tree_map(lambda _: None, gathered)
    return gathered


def _gather_leaf(x: Any) -> Any:
    if not isinstance(x, jax.Array):
        return x if isinstance(x, int | float | bool | str | bytes) else np.asarray(x)
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = _gather_leaf(jax.random.key_data(x))
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    if x.is_fully_addressable:
        return np.asarray(x)
    if x.is_fully_replicated:  # every process already holds the whole value
        return np.asarray(x.addressable_data(0))
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def gather_result(result: Any, *, to: str = "all") -> Any:
    """A sampler's result with every array gathered to host memory (see :func:`gather`).

    For results of runs whose particle or chain axis spans several processes
    (``probkit.smc.run``, ``particle_filter``, ``tempered`` with a multi-process
    ``mesh``): the same result type, its arrays as NumPy arrays holding the global
    values, so its methods (``to_arviz()``, ``summary()``) work. Every process must
    call it. With ``to="first"`` process 0 gets the result and the others ``None``.
    On one process it only moves the arrays to the host.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import probkit.smc as smc
        >>> from probkit.distributed import gather_result
        >>> fk = smc.FeynmanKac(lambda k, n: jax.random.normal(k, (n,)),
        ...                     lambda k, t, x: x, lambda t, p, x: -0.5 * x**2, 2)
        >>> result = gather_result(smc.run(fk, num_particles=8))
        >>> type(result).__name__, type(result.particles).__name__
        ('SMCResult', 'ndarray')
    """
    if to not in ("all", "first"):
        raise ValueError(f"to={to!r} must be 'all' (every process) or 'first' (process 0).")
    gathered = gather(result, to="all")
    return None if to == "first" and jax.process_index() != 0 else gathered


def gather_across_processes(result: Any) -> Any:
    """:func:`gather_result` in a multi-process run; ``result`` itself otherwise.

    The samplers' drivers call it last, so that every process holds the whole result.
    """
    return gather_result(result) if jax.process_count() > 1 else result


def check_same_mesh(mesh: Mesh) -> None:
    """Raise a clear error when the processes of a multi-process run disagree on ``mesh``.

    Every process must build the same mesh (same devices in the same order); a
    mismatch otherwise shows up as a hang or an obscure XLA error in the first
    collective. A no-op on one process.
    """
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    ids = np.asarray([d.id for d in mesh.devices.flat], dtype=np.int64)
    shape = np.asarray(mesh.devices.shape + (len(ids),), dtype=np.int64)
    try:
        multihost_utils.assert_equal(shape, "mesh shape")
        multihost_utils.assert_equal(ids, "mesh devices")
    except AssertionError as error:
        raise ValueError(
            f"process {jax.process_index()} built a mesh that differs from another "
            f"process's ({error}). Build the mesh the same way in every process, e.g. "
            "probkit.distributed.chain_mesh() with no arguments."
        ) from None


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
