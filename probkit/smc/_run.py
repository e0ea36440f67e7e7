"""The SMC driver: ``loop`` (pure, jittable) and ``run`` (top-level, seed in, result out)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from probkit._threefry import cpu_fast_key
from probkit.distributed import check_divisible
from probkit.progress import progress_scan
from probkit.smc._feynman_kac import FeynmanKac, init, step
from probkit.smc._resampling import ResamplingFn, get_resampling
from probkit.smc._result import SMCHistory, SMCResult

__all__ = ["loop", "run", "particle_axis_constraint"]

PyTree = Any


def particle_axis_constraint(mesh: Mesh | None) -> Callable[[PyTree], PyTree] | None:
    """A function pinning every leaf's leading (particle) axis to ``mesh`` inside ``jit``.

    Returns ``None`` for ``mesh=None``.

    Example:
        >>> from probkit.distributed import chain_mesh
        >>> from probkit.smc import particle_axis_constraint
        >>> callable(particle_axis_constraint(chain_mesh()))
        True
    """
    if mesh is None:
        return None
    sharding = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))
    return lambda tree: jax.tree_util.tree_map(
        lambda x: jax.lax.with_sharding_constraint(x, sharding), tree
    )


def _stack_first(first: PyTree, rest: PyTree) -> PyTree:
    return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b], axis=0), first, rest)


def loop(
    key: jax.Array,
    fk: FeynmanKac,
    *,
    num_particles: int,
    resampling_fn: ResamplingFn,
    ess_threshold: float = 0.5,
    store_history: bool = False,
    progress_bar: bool = False,
    mesh: Mesh | None = None,
    summary_fn: Callable[[jax.Array, PyTree, jax.Array], PyTree] | None = None,
) -> SMCResult:
    """Run the Feynman-Kac model ``fk`` with ``num_particles`` particles (pure, jittable).

    This is :func:`run` without input checks and without ``jit``: use it under your
    own ``jax.jit`` / ``jax.vmap`` (e.g. to run many independent replicates at once).
    ``summary_fn(t, particles, log_weights)``, if given, is evaluated after every step
    and its outputs, stacked on a leading time axis, are returned in
    ``result.info["summaries"]`` (online moments without storing the history).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import probkit.smc as smc
        >>> fk = smc.FeynmanKac(lambda k, n: jax.random.normal(k, (n,)),
        ...                     lambda k, t, x: x, lambda t, p, x: -0.5 * x**2, 1)
        >>> keys = jax.random.split(jax.random.key(0), 3)
        >>> run = jax.vmap(lambda k: smc.loop(k, fk, num_particles=100,
        ...                                   resampling_fn=smc.systematic).log_evidence)
        >>> run(keys).shape
        (3,)
    """
    constrain = particle_axis_constraint(mesh)
    # Same bits, drawn by straight-line code on CPU (see probkit._threefry).
    key_init, key_loop = jax.random.split(cpu_fast_key(key))
    state, info0 = init(fk, key_init, num_particles)
    if constrain is not None:
        state = state._replace(particles=constrain(state.particles))

    def _summarise(state):
        return summary_fn(state.t, state.particles, state.log_weights)

    def body(state, key):
        new_state, info = step(
            fk,
            key,
            state,
            resampling_fn=resampling_fn,
            ess_threshold=ess_threshold,
            constrain=constrain,
        )
        hist = (new_state.particles, new_state.log_weights) if store_history else None
        summary = None if summary_fn is None else _summarise(new_state)
        if not store_history:  # (T, N) ancestors are only kept with the history
            info = info._replace(ancestors=None)
        return new_state, (info, hist, summary)

    first = state
    num_moves = fk.num_steps - 1
    if num_moves > 0:
        keys = jax.random.split(key_loop, num_moves)
        state, (infos, hist, summaries) = progress_scan(
            body, state, keys, progress_bar=progress_bar, desc="SMC"
        )
        if not store_history:
            info0 = info0._replace(ancestors=None)
        infos = _stack_first(info0, infos)
    else:
        infos = jax.tree_util.tree_map(lambda x: x[None], info0)
        hist = jax.tree_util.tree_map(lambda x: x[:0], (state.particles, state.log_weights))
        summaries = (
            None
            if summary_fn is None
            else jax.tree_util.tree_map(lambda x: x[None][:0], _summarise(first))
        )
    info = None
    if summary_fn is not None:
        info = {"summaries": _stack_first(_summarise(first), summaries)}
    history = None
    if store_history:
        history = SMCHistory(
            particles=_stack_first(first.particles, hist[0]),
            log_weights=_stack_first(first.log_weights, hist[1]),
            ancestors=infos.ancestors,
        )
    return SMCResult(
        particles=state.particles,
        log_weights=state.log_weights,
        log_evidence=state.log_evidence,
        ess=infos.ess,
        resampled=infos.resampled,
        log_evidence_increments=infos.log_evidence_increment,
        history=history,
        info=info,
    )


_loop_jit = eqx.filter_jit(loop)


def _check_run_arguments(fk, num_particles, ess_threshold, mesh) -> None:
    if not isinstance(fk, FeynmanKac):
        raise TypeError(
            f"fk must be a probkit.smc.FeynmanKac(init, move, log_potential, num_steps), "
            f"got {type(fk).__name__}."
        )
    for name in ("init", "move", "log_potential"):
        if not callable(getattr(fk, name)):
            raise TypeError(
                f"fk.{name} must be a function, got {type(getattr(fk, name)).__name__}."
            )
    if not isinstance(fk.num_steps, int | np.integer) or fk.num_steps < 1:
        raise ValueError(f"fk.num_steps must be a positive int, got {fk.num_steps!r}.")
    if not isinstance(num_particles, int | np.integer) or num_particles < 1:
        raise ValueError(f"num_particles must be a positive int, got {num_particles!r}.")
    if not 0.0 <= float(ess_threshold) <= 1.0:
        raise ValueError(
            f"ess_threshold must lie in [0, 1] (1 resamples every step, 0 never), got "
            f"{ess_threshold!r}."
        )
    if mesh is not None:
        check_divisible(int(num_particles), mesh, what="num_particles")


def check_finite_log_evidence(result: SMCResult) -> None:
    """Raise a clear error when the log-evidence of a run is not finite."""
    increments = np.asarray(result.log_evidence_increments)
    bad = np.flatnonzero(~np.isfinite(increments))
    if bad.size:
        t = int(bad[0])
        raise FloatingPointError(
            f"the SMC run broke down at step t={t}: the log-evidence increment is "
            f"{increments[t]} (every particle got zero or NaN weight). Check log_potential "
            "for NaN / -inf at the particles' values, or use more particles or a gentler "
            "sequence of potentials."
        )


def run(
    fk: FeynmanKac,
    *,
    num_particles: int,
    seed: int = 0,
    resampling: str | ResamplingFn = "systematic",
    ess_threshold: float = 0.5,
    store_history: bool = False,
    progress_bar: bool = False,
    mesh: Mesh | None = None,
    summary_fn: Callable[[jax.Array, PyTree, jax.Array], PyTree] | None = None,
) -> SMCResult:
    """Run a Feynman-Kac model with SMC: the one loop behind every SMC method in probkit.

    Step 0 draws ``X_0 ~ M_0`` and weights by ``G_0``; each step ``t >= 1``
    resamples when ESS < ``ess_threshold * N``, moves ``X_t ~ M_t(X_{t-1})`` and
    reweights by ``G_t``. The run is compiled once per model (``equinox.filter_jit``:
    arrays inside ``fk``, e.g. in ``jax.tree_util.Partial``, are traced arguments).

    Args:
        fk: the :class:`FeynmanKac` model.
        num_particles: ``N``.
        seed: seed of the ``jax.random`` key.
        resampling: a scheme name (``"systematic"``, ``"stratified"``,
            ``"multinomial"``, ``"residual"``, ``"ssp"``, ``"killing"``) or a function
            ``(key, log_weights, n) -> indices``.
        ess_threshold: resample when ESS/N falls below it (1.0: every step, 0.0: never).
        store_history: keep particles, weights and ancestors of every step.
        progress_bar: draw a progress bar.
        mesh: a 1-D device mesh (e.g. :func:`probkit.distributed.chain_mesh`) to shard
            the particle axis over; resampling then gathers across devices.
        summary_fn: ``(t, particles, log_weights) -> pytree`` evaluated after every
            step; stacked in ``result.info["summaries"]``.

    Returns:
        an :class:`SMCResult`.

    Raises:
        FloatingPointError: when every particle got zero weight at some step.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import probkit.smc as smc
        >>> fk = smc.FeynmanKac(
        ...     init=lambda key, n: jax.random.normal(key, (n,)),
        ...     move=lambda key, t, x: 0.5 * x + jax.random.normal(key, x.shape),
        ...     log_potential=lambda t, prev, x: -0.5 * (x - 1.0) ** 2,
        ...     num_steps=10,
        ... )
        >>> result = smc.run(fk, num_particles=1000, seed=1)
        >>> result.ess.shape, bool(jnp.isfinite(result.log_evidence))
        ((10,), True)
    """
    _check_run_arguments(fk, num_particles, ess_threshold, mesh)
    resampling_fn = get_resampling(resampling)
    result = _loop_jit(
        jax.random.key(seed),
        fk,
        num_particles=int(num_particles),
        resampling_fn=resampling_fn,
        ess_threshold=float(ess_threshold),
        store_history=bool(store_history),
        progress_bar=bool(progress_bar),
        mesh=mesh,
        summary_fn=summary_fn,
    )
    check_finite_log_evidence(result)
    return result
