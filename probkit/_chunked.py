"""Chunked, interruptible execution of per-chain loops (the driver's machinery).

A loop over chains runs as three compiled programs: ``pre`` (set-up), a chunk of
steps (one program for every chunk: the bounds are dynamic) and ``post``. The host
runs the chunks (:func:`probkit.progress.run_in_chunks`), so Ctrl-C stops a run
within about half a second and keeps the steps done. Each program is the whole
batch of chains: ``vmap`` over chains, or ``shard_map(vmap)`` over a mesh; the chunk
boundary is outside both.

Warm-ups are blackjax's (or probkit's) functions whose main loop is one
``lax.scan`` deep inside. :class:`LoopSplit` cuts such a function at that scan: it
traces the function once to a jaxpr, inlines nested ``jit`` calls, and splits the
equations into those before the scan, the scan's body, and those after it. Every
step evaluates the same equations as the uncut function, so results are the same.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.extend.core import Literal
from jax.sharding import PartitionSpec as P

from probkit._donation import donating_jit
from probkit.distributed import AXIS

__all__ = [
    "LoopSplit",
    "batched",
    "post_program",
    "pre_program",
    "run_chunk",
    "run_while_chunk",
    "split_at_loop",
    "strong_types",
    "write_row",
]

_CALLS = ("pjit", "jit", "closed_call", "core_call")


def _bind(eqn, invals):
    params = eqn.primitive.get_bind_params(eqn.params)
    with eqn.ctx.manager:
        out = eqn.primitive.bind(*invals, **params)
    return out if eqn.primitive.multiple_results else [out]


def _inline_eval(jaxpr, consts, args):
    """Evaluate a jaxpr, inlining nested ``jit`` calls (so that their loops surface)."""
    env: dict = {}

    def read(v):
        return v.val if isinstance(v, Literal) else env[v]

    env.update(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        if eqn.primitive.name in _CALLS and "jaxpr" in eqn.params:
            inner = eqn.params["jaxpr"]
            outs = _inline_eval(inner.jaxpr, inner.consts, invals)
        else:
            outs = _bind(eqn, invals)
        env.update(zip(eqn.outvars, outs, strict=True))
    return [read(v) for v in jaxpr.outvars]


def strong_types(tree):
    """Arrays of fixed (not weak) types: a literal or a weakly typed value that enters
    a compiled loop must come out of it with the same type, or the next chunk would
    compile again."""

    def fix(x):
        x = jnp.asarray(x)
        return jax.lax.convert_element_type(x, x.dtype)

    return jax.tree_util.tree_map(fix, tree)


def _evaluate(eqns, env: dict, wanted: list) -> list:
    """Evaluate only the equations that ``wanted`` (variables or literals) needs."""
    needed = {v for v in wanted if not isinstance(v, Literal)}
    keep = []
    for eqn in reversed(eqns):
        if any(v in needed for v in eqn.outvars):
            keep.append(eqn)
            needed.update(v for v in eqn.invars if not isinstance(v, Literal))
    env = dict(env)

    def read(v):
        return v.val if isinstance(v, Literal) else env[v]

    for eqn in reversed(keep):
        env.update(zip(eqn.outvars, _bind(eqn, [read(v) for v in eqn.invars]), strict=True))
    return [read(v) for v in wanted]


def _inner(eqn):
    """The jaxpr a call-like equation runs on its inputs, or None."""
    for name in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        inner = eqn.params.get(name)
        inner = getattr(inner, "jaxpr", inner)
        if inner is not None and hasattr(inner, "eqns") and len(inner.invars) == len(eqn.invars):
            return inner
    return None


def _flow(eqns, batched: set) -> set:
    """Add to ``batched`` every variable ``vmap`` batches in ``eqns``, as vmap's own
    rules decide it: an equation batches its outputs when an input is batched, except
    that loops find their carries' fixed point, a ``cond`` with an unbatched index
    batches only what a branch batches, and calls look inside."""

    def on(v) -> bool:
        return not isinstance(v, Literal) and v in batched

    def run(jaxpr, flags: list[bool]) -> list[bool]:
        inner = {v for v, f in zip(jaxpr.invars, flags, strict=True) if f}
        inner = _flow(jaxpr.eqns, inner)
        return [not isinstance(v, Literal) and v in inner for v in jaxpr.outvars]

    for eqn in eqns:
        ins = [on(v) for v in eqn.invars]
        n = len(eqn.outvars)
        name = eqn.primitive.name
        if not any(ins):
            outs = [False] * n
        elif name == "cond" and not ins[0]:
            outs = [False] * n
            for branch in eqn.params["branches"]:
                outs = [a or b for a, b in zip(outs, run(branch.jaxpr, ins[1:]), strict=True)]
        elif name == "while":
            nc, nb = eqn.params["cond_nconsts"], eqn.params["body_nconsts"]
            cond_consts, body_consts, carry = ins[:nc], ins[nc : nc + nb], ins[nc + nb :]
            while True:
                if run(eqn.params["cond_jaxpr"].jaxpr, cond_consts + carry)[0]:
                    carry = [True] * len(carry)
                    break
                out = run(eqn.params["body_jaxpr"].jaxpr, body_consts + carry)
                new = [a or b for a, b in zip(out, carry, strict=True)]
                if new == carry:
                    break
                carry = new
            outs = carry
        elif name == "scan":
            nk, nc = eqn.params["num_consts"], eqn.params["num_carry"]
            consts, carry, xs = ins[:nk], ins[nk : nk + nc], ins[nk + nc :]
            while True:
                out = run(eqn.params["jaxpr"].jaxpr, consts + carry + xs)
                new = [a or b for a, b in zip(out[:nc], carry, strict=True)]
                if new == carry:
                    break
                carry = new
            outs = carry + out[nc:]
        elif (inner := _inner(eqn)) is not None and len(inner.outvars) == n:
            outs = run(inner, ins)
        else:
            outs = [True] * n
        batched.update(v for v, f in zip(eqn.outvars, outs, strict=True) if f)
    return batched


class LoopSplit:
    """A function of ``(shared, chain)`` cut at its scan of ``length`` steps.

    ``chain`` holds one chain's inputs (a key, a start); ``shared`` what all chains
    share (the target's data). Values the steps need are sorted the same way: a
    value that does not depend on ``chain`` is computed once, not once per chain.
    Compared by identity; :func:`split_at_loop` keeps one per traced signature.
    """

    def __init__(
        self, fn: Callable, shared: Any, chain: Any, length: int | None, batched: bool = True
    ):
        shared_leaves, self.shared_tree = jax.tree_util.tree_flatten(shared)
        chain_leaves, self.chain_tree = jax.tree_util.tree_flatten(chain)
        n_shared = len(shared_leaves)
        out_tree = []

        def flat_fn(*leaves):
            s = jax.tree_util.tree_unflatten(self.shared_tree, leaves[:n_shared])
            c = jax.tree_util.tree_unflatten(self.chain_tree, leaves[n_shared:])
            out, tree = jax.tree_util.tree_flatten(fn(s, c))
            out_tree.append(tree)
            return out

        traced = jax.make_jaxpr(flat_fn)(*shared_leaves, *chain_leaves)
        self.out_tree = out_tree[0]
        closed = jax.make_jaxpr(lambda *a: _inline_eval(traced.jaxpr, traced.consts, a))(
            *shared_leaves, *chain_leaves
        )
        jaxpr = closed.jaxpr
        if length is not None:  # the scan of `length` steps
            loops = [
                k
                for k, eqn in enumerate(jaxpr.eqns)
                if eqn.primitive.name == "scan"
                and eqn.params["length"] == length
                and not eqn.params["reverse"]
            ]
            if len(loops) != 1:
                raise LookupError(f"found {len(loops)} top-level loops of {length} steps, not 1")
            k = loops[0]
        else:  # the while loop with the largest body
            loops = [k for k, eqn in enumerate(jaxpr.eqns) if eqn.primitive.name == "while"]
            if not loops:
                raise LookupError("found no top-level while loop")
            k = max(loops, key=lambda k: _size(jaxpr.eqns[k].params["body_jaxpr"].jaxpr))
        self.kind = "scan" if length is not None else "while"
        self.jaxpr, self.consts, self.length = jaxpr, closed.consts, length
        self.pre_eqns, self.scan, self.post_eqns = (
            jaxpr.eqns[:k],
            jaxpr.eqns[k],
            jaxpr.eqns[k + 1 :],
        )
        self.shared_vars = jaxpr.invars[:n_shared]
        self.chain_vars = jaxpr.invars[n_shared:]
        params = self.scan.params
        if self.kind == "scan":
            self.body = params["jaxpr"]
            n_consts, n_carry = params["num_consts"], params["num_carry"]
        else:
            self.cond, self.body = params["cond_jaxpr"], params["body_jaxpr"]
            self.n_cond_consts = params["cond_nconsts"]
            n_consts = params["cond_nconsts"] + params["body_nconsts"]
            n_carry = len(self.scan.invars) - n_consts
        ins = self.scan.invars
        self.n_consts, self.n_carry = n_consts, n_carry
        self.n_xs = len(ins) - n_consts - n_carry

        defined_before = set(jaxpr.constvars) | set(jaxpr.invars)
        for eqn in self.pre_eqns:
            defined_before.update(eqn.outvars)
        used_after = []
        for eqn in self.post_eqns:
            used_after.extend(eqn.invars)
        used_after.extend(jaxpr.outvars)
        live, seen = [], set()
        for v in used_after:
            if not isinstance(v, Literal) and v in defined_before and v not in seen:
                seen.add(v)
                live.append(v)
        consts, xs = ins[:n_consts], ins[n_consts + n_carry :]
        self.carry_in = ins[n_consts : n_consts + n_carry]

        # Which values vmap batches, as vmap itself decides it: a value that depends
        # on one chain's inputs is per chain, one that depends only on the shared
        # inputs is computed once, and one that depends on no input is a constant
        # that every program recomputes (so that XLA folds it as it did in the uncut
        # function). Unbatched carries stay unbatched: the arithmetic is then the
        # uncut function's under vmap, to the bit.
        variable = _flow(self.pre_eqns, set(self.shared_vars) | set(self.chain_vars))
        if batched:
            dependent = _flow(self.pre_eqns, set(self.chain_vars))
        else:  # one "chain": everything that is not a constant is its own
            dependent = variable

        def constant(v) -> bool:
            return isinstance(v, Literal) or v not in variable

        def per_chain(v) -> bool:
            return not isinstance(v, Literal) and v in dependent

        carry_dependent = [per_chain(v) for v in self.carry_in]
        while batched:
            if self.kind == "while":
                raise NotImplementedError("batched while loops are not supported")
            body = self.body.jaxpr
            flags = [per_chain(v) for v in consts] + carry_dependent + [per_chain(v) for v in xs]
            inside = _flow(body.eqns, {v for v, f in zip(body.invars, flags, strict=True) if f})
            after = [not isinstance(v, Literal) and v in inside for v in body.outvars[:n_carry]]
            after = [a or d for a, d in zip(after, carry_dependent, strict=True)]
            if after == carry_dependent:
                break
            carry_dependent = after
        if not batched:
            carry_dependent = [True] * n_carry
        self.carry_dependent = carry_dependent
        # (index, variable) of scan constants / inputs / live values, by kind.
        self.chain_consts = [(i, v) for i, v in enumerate(consts) if per_chain(v)]
        self.shared_consts = [
            (i, v) for i, v in enumerate(consts) if not per_chain(v) and not constant(v)
        ]
        self.constant_consts = [(i, v) for i, v in enumerate(consts) if constant(v)]
        self.chain_xs = [(i, v) for i, v in enumerate(xs) if per_chain(v)]
        self.shared_xs = [(i, v) for i, v in enumerate(xs) if not per_chain(v) and not constant(v)]
        self.constant_xs = [(i, v) for i, v in enumerate(xs) if constant(v)]
        self.chain_live = [v for v in live if per_chain(v)]
        self.shared_live = [v for v in live if not per_chain(v) and not constant(v)]
        self.constant_live = [v for v in live if constant(v)]
        self.ys_avals = [v.aval for v in self.body.jaxpr.outvars[n_carry:]]
        if self.kind == "while":
            self.ys_avals = []

    def _env(self, shared_leaves, chain_leaves=None) -> dict:
        env = dict(zip(self.jaxpr.constvars, self.consts, strict=True))
        if shared_leaves is not None:
            env.update(zip(self.shared_vars, shared_leaves, strict=True))
        if chain_leaves is not None:
            env.update(zip(self.chain_vars, chain_leaves, strict=True))
        return env

    # -- the three parts, for one chain (the caller batches them) -------------------------
    def _constants(self, wanted: list) -> list:
        return _evaluate(self.pre_eqns, self._env(None), wanted)

    def _split_carry(self, carry):
        shared = [c for c, d in zip(carry, self.carry_dependent, strict=True) if not d]
        chain = [c for c, d in zip(carry, self.carry_dependent, strict=True) if d]
        return shared, chain

    def _join_carry(self, shared, chain):
        shared, chain = iter(shared), iter(chain)
        return [next(chain) if d else next(shared) for d in self.carry_dependent]

    def pre_shared(self, shared):
        """What every chain shares: ``(values, carry)``: scan constants and inputs,
        values used after the loop, and the loop's unbatched carry."""
        env = self._env(jax.tree_util.tree_leaves(shared))
        wanted = [v for _, v in self.shared_consts + self.shared_xs] + self.shared_live
        carry_vars, _ = self._split_carry(self.carry_in)
        values = _evaluate(self.pre_eqns, env, wanted + carry_vars)
        return values[: len(wanted)], values[len(wanted) :]

    def pre_chain(self, shared, chain):
        """One chain's set-up: ``(values, carry, ys buffers)``."""
        env = self._env(jax.tree_util.tree_leaves(shared), jax.tree_util.tree_leaves(chain))
        wanted = [v for _, v in self.chain_consts + self.chain_xs] + self.chain_live
        _, carry_vars = self._split_carry(self.carry_in)
        values = _evaluate(self.pre_eqns, env, wanted + carry_vars)
        ys = [jnp.zeros((self.length, *a.shape), a.dtype) for a in self.ys_avals]
        return values[: len(wanted)], values[len(wanted) :], ys

    def _loop_inputs(self, shared_values, chain_values):
        """The loop's constants and scanned inputs, in the loop's order."""
        ns_c, nc_c = len(self.shared_consts), len(self.chain_consts)
        consts = [None] * self.n_consts
        xs = [None] * self.n_xs
        for (j, _), val in zip(self.shared_consts, shared_values[:ns_c], strict=True):
            consts[j] = val
        for (j, _), val in zip(self.chain_consts, chain_values[:nc_c], strict=True):
            consts[j] = val
        ns_x = len(self.shared_xs)
        for (j, _), val in zip(self.shared_xs, shared_values[ns_c : ns_c + ns_x], strict=True):
            xs[j] = val
        for (j, _), val in zip(
            self.chain_xs, chain_values[nc_c : nc_c + len(self.chain_xs)], strict=True
        ):
            xs[j] = val
        known = self._constants(
            [v for _, v in self.constant_consts] + [v for _, v in self.constant_xs]
        )
        for (j, _), val in zip(self.constant_consts, known, strict=False):
            consts[j] = val
        for (j, _), val in zip(self.constant_xs, known[len(self.constant_consts) :], strict=True):
            xs[j] = val
        return consts, xs

    def step(self, i, shared_values, chain_values, carry):
        """Step ``i`` of one chain: ``((shared carry, chain carry), y)``."""
        consts, xs = self._loop_inputs(shared_values, chain_values)
        x = [jax.lax.dynamic_index_in_dim(a, i, 0, keepdims=False) for a in xs]
        carry = self._join_carry(*carry)
        outs = jax.core.eval_jaxpr(self.body.jaxpr, self.body.consts, *consts, *carry, *x)
        return tuple(self._split_carry(outs[: self.n_carry])), outs[self.n_carry :]

    def run_while(self, shared_values, chain_values, carry, budget):
        """At most ``budget`` steps of a while loop (unbatched): ``(carry, steps, running)``."""
        consts, _ = self._loop_inputs(shared_values, chain_values)
        cond_consts, body_consts = consts[: self.n_cond_consts], consts[self.n_cond_consts :]
        carry = self._join_carry(*carry)

        def running(carry):
            (out,) = jax.core.eval_jaxpr(self.cond.jaxpr, self.cond.consts, *cond_consts, *carry)
            return out

        def body(loop_state):
            carry, k = loop_state
            outs = jax.core.eval_jaxpr(self.body.jaxpr, self.body.consts, *body_consts, *carry)
            return list(outs), k + 1

        carry, k = jax.lax.while_loop(
            lambda c: running(c[0]) & (c[1] < budget),
            body,
            (list(carry), jnp.zeros((), budget.dtype)),
        )
        return tuple(self._split_carry(carry)), k, running(carry)

    def post(self, shared_values, chain_values, carry, ys):
        """The function's outputs from the loop's results (one chain)."""
        env = dict(zip(self.jaxpr.constvars, self.consts, strict=True))
        n_shared_in = len(self.shared_consts) + len(self.shared_xs)
        n_chain_in = len(self.chain_consts) + len(self.chain_xs)
        env.update(zip(self.shared_live, shared_values[n_shared_in:], strict=True))
        env.update(zip(self.chain_live, chain_values[n_chain_in:], strict=True))
        env.update(zip(self.constant_live, self._constants(self.constant_live), strict=True))
        env.update(zip(self.scan.outvars, [*self._join_carry(*carry), *ys], strict=True))
        outs = _evaluate(self.post_eqns, env, list(self.jaxpr.outvars))
        return jax.tree_util.tree_unflatten(self.out_tree, outs)


def _size(jaxpr) -> int:
    """Equations in a jaxpr, nested ones included."""
    total = 0
    for eqn in jaxpr.eqns:
        total += 1
        for value in eqn.params.values():
            inner = getattr(value, "jaxpr", None)
            if inner is not None and hasattr(inner, "eqns"):
                total += _size(inner)
            elif hasattr(value, "eqns"):
                total += _size(value)
    return total


_SPLITS: OrderedDict = OrderedDict()


def split_at_loop(
    key: Any, fn: Callable, shared: Any, chain: Any, length: int | None, batched: bool = True
) -> LoopSplit:
    """The :class:`LoopSplit` of ``fn`` for these shapes, traced once per ``key``.

    ``key`` names what ``fn`` computes (kernel, settings, the target's static
    part); with the shapes and dtypes of ``shared`` and ``chain`` it identifies the
    split, so a second run with new data of the same shapes reuses it (and the
    programs compiled for it).
    """

    def signature(tree):
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        return treedef, tuple((tuple(x.shape), str(x.dtype)) for x in leaves)

    cache_key = (key, signature(shared), signature(chain), length, batched)
    try:
        hash(cache_key)
    except TypeError:
        return LoopSplit(fn, shared, chain, length, batched)
    if cache_key not in _SPLITS:
        _SPLITS[cache_key] = LoopSplit(fn, shared, chain, length, batched)
        while len(_SPLITS) > 32:
            _SPLITS.popitem(last=False)
    _SPLITS.move_to_end(cache_key)
    return _SPLITS[cache_key]


# -- writing a step's output into its buffer ------------------------------------------------
@jax.custom_batching.custom_vmap
def write_row(buffer: jax.Array, value: jax.Array, index) -> jax.Array:
    """``buffer`` with row ``index`` (of its leading axis) set to ``value``.

    ``lax.dynamic_update_index_in_dim``, batched another way: under ``vmap`` with an
    unbatched ``index`` (a loop's step, the same for every chain), JAX's own rule turns
    the update into a scatter, which XLA compiles to a bounds check and a select around
    the update, in every step; here it stays one in-place update along the buffer's
    second axis. Which is faster depends on the buffer: measure before using it.
    Per-chain indices keep JAX's rule. An index out of range is clamped, as JAX's rule
    and the unbatched update do.
    """
    return jax.lax.dynamic_update_index_in_dim(buffer, value, index, 0)


@write_row.def_vmap
def _write_row_batched(axis_size, in_batched, buffer, value, index):
    buffer_batched, value_batched, index_batched = in_batched
    if index_batched:
        in_axes = (0 if buffer_batched else None, 0 if value_batched else None, 0)
        return jax.vmap(write_row.fun, in_axes=in_axes)(buffer, value, index), True
    if not buffer_batched:
        buffer = jnp.broadcast_to(buffer, (axis_size, *buffer.shape))
    if not value_batched:
        value = jnp.broadcast_to(value, (axis_size, *value.shape))
    return jax.lax.dynamic_update_index_in_dim(buffer, value, index, 1), True


# -- batching over chains -------------------------------------------------------------------
def batched(fn: Callable, batch: Any, shared: Any, chain: Any, *, shared_out: bool = False):
    """``fn(shared, chain)`` for one chain, run for every chain.

    ``batch``: ``None`` (``chain`` is one chain), ``"vmap"`` (a leading chain axis)
    or a mesh (``shard_map`` of ``vmap``: each device runs its block of chains,
    with no traffic between devices). Outputs get a leading chain axis; with
    ``shared_out``, ``fn`` returns ``(unbatched, per_chain)`` and the first part
    keeps no chain axis (it must not depend on ``chain``).
    """
    if batch is None:
        return fn(shared, chain)
    dynamic, static = eqx.partition(shared, eqx.is_array)

    def block(dynamic, chain):
        s = eqx.combine(dynamic, static)
        return jax.vmap(lambda c: fn(s, c), out_axes=(None, 0) if shared_out else 0)(chain)

    if batch == "vmap":
        return block(dynamic, chain)
    out_specs = (P(), P(AXIS)) if shared_out else P(AXIS)
    return jax.shard_map(
        block, mesh=batch, in_specs=(P(), P(AXIS)), out_specs=out_specs, check_vma=False
    )(dynamic, chain)


def _run_chunk(static, carry, ys, start, stop):
    step, batch, shared, chain = static
    shared_carry, chain_carry = carry

    def one(shared_bounds_carry, chain_carry_ys):
        shared, start, stop, shared_carry = shared_bounds_carry
        chain, chain_carry, ys = chain_carry_ys

        def body(i, loop_state):
            carry, ys = loop_state
            carry, y = step(i, shared, chain, carry)
            ys = jax.tree_util.tree_map(
                lambda buffer, value: jax.lax.dynamic_update_index_in_dim(buffer, value, i, 0),
                ys,
                y,
            )
            return carry, ys

        (shared_carry, chain_carry), ys = jax.lax.fori_loop(
            start, stop, body, strong_types(((shared_carry, chain_carry), ys))
        )
        return strong_types((shared_carry, (chain_carry, ys)))

    shared_carry, (chain_carry, ys) = batched(
        one, batch, (shared, start, stop, shared_carry), (chain, chain_carry, ys), shared_out=True
    )
    return (shared_carry, chain_carry), ys


# One program per (step, batch, shapes): the chunk's bounds are arguments. The carry's
# and the output's large buffers are donated (updated in place); the shared values and
# the chains' constants (the first argument) are not: every chunk reads them.
_run_chunk_jit = donating_jit(_run_chunk)


def run_chunk(step, batch, shared, chain, carry, ys, start, stop):
    """Steps ``start .. stop-1`` of every chain (compiled once for every chunk).

    ``step(i, shared, chain, (shared_carry, chain_carry)) -> (carry, y)`` is one
    chain's step ``i``; ``carry`` is ``(shared_carry, chain_carry)`` (the first part
    unbatched) and ``ys`` the per-step output buffers. Returns ``(carry, ys)``.
    """
    return _run_chunk_jit((step, batch, shared, chain), carry, ys, start, stop)


@eqx.filter_jit
def pre_program(split: LoopSplit, batch, shared, chain):
    """The set-up before the loop, for every chain: ``(shared values, chain values,
    (shared carry, chain carry), ys buffers)``."""
    shared_values, shared_carry = split.pre_shared(shared)
    chain_values, chain_carry, ys = batched(split.pre_chain, batch, shared, chain)
    return strong_types((shared_values, chain_values, (shared_carry, chain_carry), ys))


@eqx.filter_jit
def post_program(split: LoopSplit, batch, shared_values, chain_values, carry, ys):
    """The function's outputs from the loop's results, for every chain."""
    shared_carry, chain_carry = carry
    return batched(
        lambda sh, ch: split.post(sh[0], ch[0], (sh[1], ch[1]), ch[2]),
        batch,
        (shared_values, shared_carry),
        (chain_values, chain_carry, ys),
    )


def _run_while(static, carry, start, stop):
    split, shared_values, chain_values = static
    carry, steps, running = split.run_while(
        shared_values, chain_values, strong_types(carry), stop - start
    )
    return strong_types(carry), steps, running


_run_while_jit = donating_jit(_run_while)


def run_while_chunk(split: LoopSplit, shared_values, chain_values, carry, start, stop):
    """At most ``stop - start`` steps of a split while loop: ``(carry, steps, running)``."""
    return _run_while_jit((split, shared_values, chain_values), carry, start, stop)
