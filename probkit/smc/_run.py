"""The SMC driver: ``loop`` (pure, jittable) and ``run`` (top-level, seed in, result out)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from probkit._checks import check_key, check_seed
from probkit._chunked import (
    post_program,
    pre_program,
    run_chunk,
    run_while_chunk,
    split_at_loop,
)
from probkit._threefry import cpu_fast_key
from probkit.distributed import check_divisible, gather_across_processes
from probkit.progress import Interrupted, progress_fraction, progress_scan, run_in_chunks
from probkit.results import SamplingWarning
from probkit.smc._feynman_kac import FeynmanKac, SMCState, has_parameters, init, step
from probkit.smc._resampling import ResamplingFn, get_resampling
from probkit.smc._result import SMCHistory, SMCResult

__all__ = ["loop", "run", "run_interruptible", "trim", "particle_axis_constraint"]

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


def _check_loop_arguments(fk: FeynmanKac, ess_threshold: float, store_history: bool) -> None:
    if fk.num_resampled is not None:
        if ess_threshold <= 0.0:
            raise ValueError(
                f"fk.num_resampled={fk.num_resampled} resamples at every step, but "
                "ess_threshold=0 asks never to: leave ess_threshold out (any value in "
                "(0, 1] resamples at every step with num_resampled)."
            )
        if store_history:
            raise ValueError(
                "store_history=True is not available with fk.num_resampled (the ancestry "
                "of a move that makes N particles from M depends on the move); use "
                "summary_fn to record what you need at each step."
            )


def _padding(x: jax.Array, length: int) -> jax.Array:
    """``length`` copies of ``x``'s shape, filled with NaN (floats) or zero."""
    x = jnp.asarray(x)
    fill = jnp.nan if jnp.issubdtype(x.dtype, jnp.inexact) else 0
    return jnp.full((length, *x.shape), fill, x.dtype)


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
    progress_fn: Callable[[SMCState], jax.Array] | None = None,
    progress_desc: str = "SMC",
    progress_label: str = "progress",
) -> SMCResult:
    """Run the Feynman-Kac model ``fk`` with ``num_particles`` particles (pure, jittable).

    This is :func:`run` without input checks and without ``jit``: use it under your
    own ``jax.jit`` / ``jax.vmap`` (e.g. to run many independent replicates at once).
    ``summary_fn(t, particles, log_weights)``, if given, is evaluated after every step
    and its outputs, stacked on a leading time axis, are returned in
    ``result.info["summaries"]`` (online moments without storing the history).

    A model with ``fk.done`` runs as a ``lax.while_loop`` that stops after the first
    step at which ``done(state)`` holds, or after ``fk.num_steps`` steps. Its per-step
    arrays (``ess``, ``resampled``, ``log_evidence_increments``, ``num_nan``,
    ``info``, ``history``) have length ``fk.num_steps``, valid up to
    ``result.num_steps`` and padded after it (NaN or zero); :func:`run` trims them.
    Without ``done``, the loop is a ``lax.scan`` of ``fk.num_steps - 1`` steps. Both
    draw the same keys, so a ``done`` that never holds gives the same run.

    Progress bars: a ``lax.scan`` counts steps; a loop with ``done`` shows
    ``progress_fn(state)`` (a number in [0, 1], e.g. a temperature; default: steps
    done / ``fk.num_steps``) labelled ``progress_label``, under ``progress_desc``.

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
    check_key(key)
    _check_loop_arguments(fk, ess_threshold, store_history)
    constrain = particle_axis_constraint(mesh)
    # Same bits, drawn by straight-line code on CPU (see probkit._threefry).
    key_init, key_loop = jax.random.split(cpu_fast_key(key))
    state, info0 = init(key_init, fk, num_particles)
    if constrain is not None:
        state = state._replace(particles=constrain(state.particles))
    declares_parameters = has_parameters(fk)

    def _summarise(state):
        return summary_fn(state.t, state.particles, state.log_weights)

    def record(state, info):
        """What is kept of each step (a pytree of per-step values)."""
        if not store_history:  # (T, N) ancestors are only kept with the history
            info = info._replace(ancestors=None)
        hist = (state.particles, state.log_weights) if store_history else None
        summary = None if summary_fn is None else _summarise(state)
        parameters = state.parameters if declares_parameters else None
        return info, hist, summary, parameters

    def body(state, key):
        new_state, info = step(
            key,
            fk,
            state,
            resampling_fn=resampling_fn,
            ess_threshold=ess_threshold,
            constrain=constrain,
        )
        return new_state, record(new_state, info)

    first = record(state, info0)
    num_moves = fk.num_steps - 1
    keys = jax.random.split(key_loop, max(num_moves, 1))
    if fk.done is None:
        if num_moves > 0:
            state, rest = progress_scan(
                body, state, keys, progress_bar=progress_bar, desc=progress_desc
            )
            records = _stack_first(first, rest)
        else:
            records = jax.tree_util.tree_map(lambda x: x[None], first)
        num_steps = jnp.asarray(fk.num_steps, jnp.int32)
    else:
        state, records, num_steps = _while_loop(
            fk,
            state,
            first,
            body,
            keys,
            progress_bar,
            progress_fn,
            progress_desc,
            progress_label,
        )
    infos, hist, summaries, parameters = records
    info = {}
    if summary_fn is not None:
        info["summaries"] = summaries
    if declares_parameters:
        info["parameters"] = parameters
    history = None
    if store_history:
        history = SMCHistory(particles=hist[0], log_weights=hist[1], ancestors=infos.ancestors)
    return SMCResult(
        particles=state.particles,
        log_weights=state.log_weights,
        log_evidence=state.log_evidence,
        ess=infos.ess,
        resampled=infos.resampled,
        log_evidence_increments=infos.log_evidence_increment,
        history=history,
        info=info or None,
        num_steps=num_steps,
        num_nan=infos.num_nan,
    )


def _while_loop(
    fk, state, first, body, keys, progress_bar, progress_fn, progress_desc, progress_label
):
    """``body`` until ``fk.done(state)`` or ``fk.num_steps`` steps; per-step records."""
    size = fk.num_steps
    records = jax.tree_util.tree_map(lambda x: _padding(x, size), first)
    records = jax.tree_util.tree_map(lambda buf, x: buf.at[0].set(x), records, first)
    report = None
    if progress_bar:
        report = progress_fraction(progress_desc, label=progress_label)
        if progress_fn is None:
            progress_fn = lambda s: (s.t + 1) / size  # noqa: E731

    def cond(carry):
        state, _ = carry
        return (state.t + 1 < size) & ~jnp.asarray(fk.done(state), bool)

    def while_body(carry):
        state, records = carry
        key = jax.lax.dynamic_index_in_dim(keys, state.t, keepdims=False)
        state, values = body(state, key)
        if report is not None:
            report(state.t, progress_fn(state))
        records = jax.tree_util.tree_map(
            lambda buf, x: jax.lax.dynamic_update_index_in_dim(buf, x, state.t, 0),
            records,
            values,
        )
        return state, records

    state, records = jax.lax.while_loop(cond, while_body, (state, records))
    return state, records, state.t + 1


_loop_jit = eqx.filter_jit(loop)


class _Bound:
    """``loop_fn(key, *args, **kwargs)`` as a function of ``(arrays, key)``: the arrays of
    ``(args, kwargs)`` are inputs, the rest is fixed. Compared by value (the
    function, the fixed part and its structure), so a split loop and its compiled
    programs are reused by a second call with new data of the same shapes."""

    def __init__(self, loop_fn: Callable, static: Any):
        self.loop_fn, self.static = loop_fn, static
        leaves, treedef = jax.tree_util.tree_flatten(static)
        self._key = (loop_fn, tuple(leaves), treedef)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Bound) and self._key == other._key

    def __call__(self, arrays, key):
        args, kwargs = eqx.combine(arrays, self.static)
        return self.loop_fn(key, *args, **kwargs)


def _abstract(tree):
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), tree)


def run_interruptible(
    loop_fn: Callable,
    key: jax.Array,
    args: tuple,
    kwargs: dict,
    *,
    num_moves: int | None,
    what: str,
    partial: Callable[[Any, int], Any],
):
    """``loop_fn(key, *args, **kwargs)`` with its main loop run from the host in chunks.

    ``loop_fn`` is a pure SMC loop (:func:`loop` or one built on it) with one
    ``lax.scan`` of ``num_moves`` steps, or (``num_moves=None``) one
    ``lax.while_loop``. The loop is compiled once, run in chunks of about half a
    second, and Ctrl-C stops it between chunks: :class:`probkit.progress.Interrupted`
    is raised with ``partial_result = partial(output, steps_done)``, the output
    computed from the state reached (particles, log-evidence so far). Results equal
    ``loop_fn``'s: every step evaluates the same program.
    """
    check_key(key)
    try:
        arrays, static = eqx.partition((args, kwargs), eqx.is_array)
        fn = _Bound(loop_fn, static)
        hash(fn)
        split = split_at_loop(fn, fn, _abstract(arrays), _abstract(key), num_moves, batched=False)
    except (LookupError, TypeError):
        # No loop to cut (a single step), or arguments that cannot key a cache.
        return eqx.filter_jit(loop_fn)(key, *args, **kwargs)
    values: dict = {}

    def make_state():
        shared_values, chain_values, carry, ys = pre_program(split, None, arrays, key)
        values["shared"], values["chain"] = shared_values, chain_values
        if split.kind == "while":
            return carry, 0, True
        return carry, ys

    def output(state):
        carry = state[0]
        ys = state[1] if split.kind == "scan" else []
        return post_program(split, None, values["shared"], values["chain"], carry, ys)

    if split.kind == "scan":

        def run(state, start, stop):
            carry, ys = state
            return run_chunk(
                split.step, None, values["shared"], values["chain"], carry, ys, start, stop
            )

        finished = None
        length = num_moves
    else:

        def run(state, start, stop):
            carry, steps, _ = state
            carry, k, running = run_while_chunk(
                split, values["shared"], values["chain"], carry, start, stop
            )
            return carry, steps + int(k), bool(running)

        def finished(state):
            return not state[2]

        length = np.iinfo(np.int32).max  # until the loop's own condition ends it

    def interrupted(done, state, message):
        del message
        if split.kind == "while":
            done = state[1]
            of = ""
        else:
            of = f" of {num_moves}"
        err = Interrupted(
            f"Interrupted after {done}{of} {what} steps: the particles and log-evidence "
            "reached so far are in this exception's partial_result.",
            steps_done=done,
            carry=state[0],
            ys=None,
        )
        err.partial_result = partial(output(state), done)
        return err

    state = run_in_chunks(
        run,
        make_state,
        length,
        interrupted=interrupted,
        finished=finished,
        desc=what,
        pace_key=split,  # split_at_loop returns one object per loop and shapes
    )
    return output(state)


def _partial_smc(result: SMCResult, done: int) -> SMCResult:
    """The result of a :func:`loop` stopped after ``done`` moves, trimmed to them."""
    if result.num_steps is not None and int(result.num_steps) > done + 1:
        result = result._replace(num_steps=jnp.asarray(done + 1, jnp.int32))
    return trim(result)


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
    for name in ("update_parameters", "done"):
        value = getattr(fk, name)
        if value is not None and not callable(value):
            raise TypeError(f"fk.{name} must be a function or None, got {type(value).__name__}.")
    m = fk.num_resampled
    if m is not None:
        if not isinstance(m, int | np.integer) or not 1 <= m <= num_particles:
            raise ValueError(
                f"fk.num_resampled must be an int in [1, num_particles={num_particles}], got {m!r}."
            )
        if float(ess_threshold) <= 0.0:
            raise ValueError(
                f"fk.num_resampled={m} resamples at every step, but ess_threshold=0 asks "
                "never to: leave ess_threshold out (any value in (0, 1] resamples at every "
                "step with num_resampled)."
            )
    if mesh is not None:
        check_divisible(int(num_particles), mesh, what="num_particles")


def trim(result: SMCResult) -> SMCResult:
    """Cut the per-step arrays of a loop with ``done`` to the steps done (host side).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import probkit.smc as smc
        >>> fk = smc.FeynmanKac(lambda k, n: jnp.zeros(n), lambda k, t, x: x + 1.0,
        ...                     lambda t, p, x: jnp.zeros_like(x), 10,
        ...                     done=lambda s: s.t >= 2)
        >>> out = smc.loop(jax.random.key(0), fk, num_particles=4, resampling_fn=smc.systematic)
        >>> out.ess.shape, smc.trim(out).ess.shape
        ((10,), (3,))
    """
    if result.num_steps is None:
        return result
    keep = int(result.num_steps)
    cut = lambda tree: jax.tree_util.tree_map(lambda x: x[:keep], tree)  # noqa: E731
    return result._replace(
        ess=result.ess[:keep],
        resampled=result.resampled[:keep],
        log_evidence_increments=result.log_evidence_increments[:keep],
        num_nan=None if result.num_nan is None else result.num_nan[:keep],
        history=None if result.history is None else cut(result.history),
        info=None if result.info is None else {k: cut(v) for k, v in result.info.items()},
    )


_NAN_HINT = (
    "Return -inf where the density is zero, and fix the NaN elsewhere (e.g. the log of "
    "a negative number, a scale that can reach 0), or check the model at those particles."
)


def warn_nan_potentials(result: SMCResult, *, what: str = "log_potential", hint: str = "") -> None:
    """Warn (:class:`probkit.results.SamplingWarning`) if any log-potential was NaN."""
    if result.num_nan is None:
        return
    counts = np.asarray(result.num_nan)
    if result.num_steps is not None:
        counts = counts[: int(result.num_steps)]
    bad = np.flatnonzero(counts)
    if not bad.size:
        return
    t = int(bad[0])
    warnings.warn(
        f"{what} was NaN for {int(counts[t])} of {result.num_particles} particles at step "
        f"t={t} ({bad.size} step(s) had NaN, {int(counts.sum())} particle-steps in all). "
        "Those particles got weight zero, which biases the log-evidence and the draws "
        f"unless the density there really is zero. {hint or _NAN_HINT}",
        SamplingWarning,
        stacklevel=3,
    )


def check_finite_log_evidence(result: SMCResult) -> None:
    """Raise a clear error when a step's log-evidence increment is not finite.

    Warns (:class:`probkit.results.SamplingWarning`) when only the sum of finite
    increments overflowed the float range.
    """
    increments = np.asarray(result.log_evidence_increments)
    bad = np.flatnonzero(~np.isfinite(increments))
    if bad.size:
        t = int(bad[0])
        if increments[t] == np.inf:
            cause = (
                "some particle got an infinite weight. log_potential returned +inf there; "
                "return a finite value (or -inf for a zero density)"
            )
        else:
            cause = (
                "every particle got zero or NaN weight. Check log_potential for NaN / -inf "
                "at the particles' values, or use more particles or a gentler sequence of "
                "potentials"
            )
        raise FloatingPointError(
            f"the SMC run broke down at step t={t}: the log-evidence increment is "
            f"{increments[t]} ({cause})."
        )
    if not np.all(np.isfinite(np.asarray(result.log_evidence))):
        # The particles and weights are fine; only the sum is out of range.
        warnings.warn(
            f"the log-evidence overflowed to {np.asarray(result.log_evidence)} although every "
            f"increment is finite (the largest is {np.max(np.abs(increments)):.3g}): their "
            f"{increments.dtype} sum exceeds the float range. Run in float64 "
            "(jax.config.update('jax_enable_x64', True)) or scale log_potential.",
            SamplingWarning,
            stacklevel=3,
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
        probkit.progress.Interrupted: on Ctrl-C, within about a second (the loop runs
            from the host in chunks); ``partial_result`` is the result of the steps done.

    Warns:
        SamplingWarning: when ``log_potential`` was NaN for some particles (they get
            weight zero).

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
    result = run_interruptible(
        loop,
        jax.random.key(check_seed(seed)),
        (fk,),
        {
            "num_particles": int(num_particles),
            "resampling_fn": resampling_fn,
            "ess_threshold": float(ess_threshold),
            "store_history": bool(store_history),
            "progress_bar": bool(progress_bar),
            "mesh": mesh,
            "summary_fn": summary_fn,
        },
        num_moves=None if fk.done is not None else fk.num_steps - 1,
        what="SMC",
        partial=_partial_smc,
    )
    result = trim(result)
    check_finite_log_evidence(result)
    warn_nan_potentials(result)
    # particles sharded over several processes come back whole on every process
    return gather_across_processes(result)
