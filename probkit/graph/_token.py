"""Token-based distributed stochastic optimisation: SA-SRRW (Hu, Doshi & Eun, ICLR 2024).

A token walks over a network of agents; node ``i`` holds a local loss ``f_i``. At each
step the token moves, and the node it lands on supplies the gradient:

    X_{n+1} ~ K_{X_n, .}[x_n]                         (the walk)
    x_{n+1} = x_n + gamma_{n+1} (delta_{X_{n+1}} - x_n)  (its visit measure)
    theta_{n+1} = theta_n - beta_{n+1} grad f_{X_{n+1}}(theta_n)

so that ``theta_n`` converges to a minimiser of ``F(theta) = sum_i mu_i f_i(theta)``.
The paper's three variants differ in which iterate moves on the faster time scale,
with ``gamma_n = (n+1)^(-a)`` and ``beta_n = (n+1)^(-b)``, ``a, b`` in ``(1/2, 1]``:

- ``"faster_walk"`` (case i, ``b > a``: ``beta_n = o(gamma_n)``): the visit measure
  settles first; the asymptotic covariance of ``theta_n`` shrinks like ``O(1/alpha^2)``.
  The paper's recommended choice and the default here (``a = 0.8, b = 0.9``).
- ``"same_rate"`` (case ii, ``a = b = 0.9``): ``O(1/alpha)``.
- ``"faster_parameter"`` (case iii, ``a > b``: ``gamma_n = o(beta_n)``, here
  ``a = 1, b = 0.9``): the parameter moves faster than the visit measure and the
  gain from ``alpha`` is at most ``O(1/alpha)``; kept for comparison.

In every case the covariance with ``alpha > 0`` is no larger than with the base walk
(``alpha = 0``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from probkit._checks import check_key
from probkit._renamed import renamed_argument
from probkit._repr import summary_repr
from probkit.distributed import AXIS, chain_mesh, check_divisible, leading_axis_sharding
from probkit.graph._srrw import PolynomialStepSize, self_repellent_walk
from probkit.graph._walks import MetropolisHastingsWalk, SimpleRandomWalk

__all__ = [
    "SA_SRRW_VARIANTS",
    "OptimisationResult",
    "TokenOptimisation",
    "TokenState",
    "optimise",
    "sa_srrw",
    "token_optimisation",
]

#: variant name -> (a, b): gamma_n = (n+1)^(-a) for the visit measure, beta_n = (n+1)^(-b)
SA_SRRW_VARIANTS: dict[str, tuple[float, float]] = {
    "faster_walk": (0.8, 0.9),
    "same_rate": (0.9, 0.9),
    "faster_parameter": (1.0, 0.9),
}


class TokenState(NamedTuple):
    """The token's walk state, the parameters and the optimiser's state."""

    walk: Any
    params: Any
    opt_state: Any  # () without an optax optimiser
    count: Any  # int32 steps taken


class TokenOptimisation(eqx.Module):
    """A token walk driving stochastic-approximation updates of parameters.

    Build it with :func:`token_optimisation` or :func:`sa_srrw`; run it with
    :func:`optimise`, or call ``init`` / ``step`` inside your own loop.
    """

    walk: Any
    data: Any
    loss: Callable = eqx.field(static=True)
    param_step_size: Callable = eqx.field(static=True)
    optimizer: Any = eqx.field(static=True)

    def init(self, params: Any, node: Any) -> TokenState:
        """The token at ``node`` with parameters ``params``."""
        opt_state = () if self.optimizer is None else self.optimizer.init(params)
        return TokenState(self.walk.init(node), params, opt_state, jnp.zeros((), jnp.int32))

    def step(self, key: Any, state: TokenState) -> tuple[TokenState, Any]:
        """Move the token; the node it reaches supplies the gradient of its loss."""
        check_key(key)
        walk_state, info = self.walk.step(key, state.walk)
        node = walk_state.node
        grads = jax.grad(self.loss)(state.params, node, self.data)
        if self.optimizer is None:
            beta = self.param_step_size(state.count + 1)
            params = jax.tree_util.tree_map(lambda p, g: p - beta * g, state.params, grads)
            opt_state = state.opt_state
        else:
            import optax

            updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
        return TokenState(walk_state, params, opt_state, state.count + 1), info


def token_optimisation(
    walk: Any,
    loss: Callable,
    data: Any = None,
    *,
    param_step_size: Callable | None = None,
    optimizer: Any = None,
    optimiser: Any = None,
) -> TokenOptimisation:
    """Stochastic approximation driven by any token ``walk``.

    Args:
        walk: the token's walk (self-repellent, Metropolis-Hastings, ...). The
            minimised objective is ``sum_i mu_i f_i`` with ``mu`` the walk's target.
        loss: ``loss(params, node, data) -> scalar``, the local loss ``f_node``.
        data: a pytree of arrays passed to ``loss`` (e.g. per-node data indexed by
            ``node``); it travels to compiled code as data, not as constants.
        param_step_size: ``n -> beta_n``; default ``PolynomialStepSize(0.9)``.
        optimizer: an optax ``GradientTransformation`` used instead of plain
            ``theta - beta_n grad``. The papers' convergence and covariance results
            hold for the plain update, which ``optax.sgd(schedule)`` without momentum
            reproduces; momentum, Adam and other adaptive optimisers run but are
            outside the theory (no guarantee on the covariance ordering in alpha).
        optimiser: the old name of ``optimizer`` (deprecated).

    Example:
        >>> import jax.numpy as jnp, networkx as nx
        >>> import probkit.graph as pg
        >>> graph = pg.from_networkx(nx.cycle_graph(5))
        >>> targets = jnp.arange(5.0)
        >>> token = pg.token_optimisation(
        ...     pg.metropolis_hastings_walk(graph),
        ...     lambda theta, node, t: 0.5 * (theta - t[node]) ** 2, targets)
        >>> state = token.init(jnp.zeros(()), 0)
        >>> state.params.shape
        ()
    """
    optimizer = renamed_argument(
        optimizer, optimiser, "optimiser", "optimizer", "graph.token_optimisation"
    )
    if not callable(loss):
        raise TypeError(f"loss must be a callable (params, node, data) -> scalar; got {loss!r}.")
    if param_step_size is None:
        param_step_size = PolynomialStepSize(0.9)
    elif not callable(param_step_size):
        raise TypeError(
            "param_step_size must be a callable n -> beta_n, e.g. PolynomialStepSize(0.9); "
            f"got {type(param_step_size).__name__}."
        )
    if optimizer is not None and not hasattr(optimizer, "update"):
        raise TypeError(
            f"optimizer must be an optax GradientTransformation; got {type(optimizer).__name__}."
        )
    return TokenOptimisation(
        walk=walk, data=data, loss=loss, param_step_size=param_step_size, optimizer=optimizer
    )


def sa_srrw(
    base: MetropolisHastingsWalk | SimpleRandomWalk,
    alpha: float,
    loss: Callable,
    data: Any = None,
    *,
    variant: str = "faster_walk",
    param_scale: float = 1.0,
    chunk_size: int | None = None,
) -> TokenOptimisation:
    """SA-SRRW: a self-repellent token over ``base`` with the paper's step sizes.

    Args:
        base: the reversible base walk (its target ``mu`` weights the local losses).
        alpha: self-repellence, ``>= 0`` (``0``: the base chain drives the token).
        loss: ``loss(params, node, data) -> scalar``.
        data: pytree of arrays passed to ``loss``.
        variant: ``"faster_walk"`` (default), ``"same_rate"`` or
            ``"faster_parameter"``; see :data:`SA_SRRW_VARIANTS` and the module notes.
        param_scale: ``beta_n = param_scale * (n+1)^(-b)``; lower it when the local
            losses are steep (``param_scale * L < 1`` for ``L``-smooth losses keeps the
            first steps stable).
        chunk_size: passed to :func:`self_repellent_walk`.

    Example:
        >>> import jax, jax.numpy as jnp, networkx as nx
        >>> import probkit.graph as pg
        >>> graph = pg.from_networkx(nx.cycle_graph(5))
        >>> token = pg.sa_srrw(pg.metropolis_hastings_walk(graph), 2.0,
        ...                    lambda theta, node, t: 0.5 * (theta - t[node]) ** 2,
        ...                    jnp.arange(5.0))
        >>> result = pg.optimise(token, jnp.zeros(()), seed=0, num_steps=2000)
        >>> abs(float(result.params[0]) - 2.0) < 0.3  # the minimiser is mean(t) = 2
        True
    """
    if variant not in SA_SRRW_VARIANTS:
        raise ValueError(f"variant must be one of {sorted(SA_SRRW_VARIANTS)}; got {variant!r}.")
    if not np.isfinite(param_scale) or param_scale <= 0:
        raise ValueError(f"param_scale must be positive and finite; got {param_scale}.")
    a, b = SA_SRRW_VARIANTS[variant]
    # gamma_1 = 2^-a < 1 for the exponents above, as self_repellent_walk requires.
    walk = self_repellent_walk(
        base, alpha, visit_step_size=PolynomialStepSize(a), chunk_size=chunk_size
    )
    return token_optimisation(
        walk, loss, data, param_step_size=PolynomialStepSize(b, float(param_scale))
    )


class OptimisationResult(NamedTuple):
    """What :func:`optimise` returns (leading axis: tokens, i.e. independent runs)."""

    params: Any  #: final parameters, (num_tokens, ...)
    trace: Any  #: parameters every ``record_every`` steps, (num_tokens, num_records, ...)
    steps: Any  #: the step numbers of the records, (num_records,)
    final_state: Any  #: the tokens' final states

    def __repr__(self) -> str:
        return summary_repr(self)


def _optimise_run(token, keys, starts, params, *, num_records, record_every):
    states = jax.vmap(token.init, in_axes=(None, 0))(params, starts)
    step = jax.vmap(token.step)

    def inner(carry, _):
        # Step t of token w uses fold_in(key_w, t), as in ``sample``.
        t, states = carry
        states, _ = step(jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, t), states)
        return (t + 1, states), None

    def outer(carry, _):
        carry, _ = jax.lax.scan(inner, carry, length=record_every)
        return carry, carry[1].params

    t = jnp.zeros((), jnp.uint32)
    (_, states), trace = jax.lax.scan(outer, (t, states), length=num_records)
    trace = jax.tree_util.tree_map(lambda x: jnp.moveaxis(x, 0, 1), trace)
    return trace, states


_STATIC = ("num_records", "record_every")
_optimise_jit = jax.jit(_optimise_run, static_argnames=_STATIC)


@functools.partial(jax.jit, static_argnames=("mesh", *_STATIC))
def _optimise_sharded(token, keys, starts, params, *, mesh, **static):
    # Token t uses fold_in(key, t) on any number of devices (as in ``sample``).
    return jax.shard_map(
        functools.partial(_optimise_run, **static),
        mesh=mesh,
        in_specs=(P(), P(AXIS), P(AXIS), P()),
        out_specs=P(AXIS),
        check_vma=False,
    )(token, keys, starts, params)


def optimise(
    token: TokenOptimisation,
    params: Any,
    *,
    seed: int,
    num_steps: int,
    num_tokens: int = 1,
    start: Any = None,
    record_every: int | None = None,
    walker_method: str = "vectorized",
) -> OptimisationResult:
    """Run ``num_tokens`` independent token optimisations from the same ``params``.

    Args:
        token: from :func:`sa_srrw` or :func:`token_optimisation`.
        params: initial parameters (a pytree of arrays), shared by every token.
        seed: the random seed; token ``t`` uses ``fold_in(PRNGKey(seed), t)``.
        num_steps: steps per token, rounded down to a multiple of ``record_every``.
        num_tokens: independent runs (e.g. to estimate the error covariance).
        start: ``None`` (default) draws each token's first node from the target;
            or one node for all, or one per token.
        record_every: record the parameters every this many steps (default
            ``num_steps // 100``, at least 1).
        walker_method: ``"vectorized"`` or ``"sharded"`` (tokens over devices).

    Returns:
        an :class:`OptimisationResult`.

    Example: see :func:`sa_srrw`.
    """
    from probkit.graph._sample import _check_int, _start_nodes

    if not isinstance(token, TokenOptimisation):
        raise TypeError(
            f"token must come from sa_srrw or token_optimisation; got {type(token).__name__}."
        )
    num_steps = _check_int("num_steps", num_steps, 1)
    num_tokens = _check_int("num_tokens", num_tokens, 1)
    if record_every is None:
        record_every = max(1, num_steps // 100)
    record_every = _check_int("record_every", record_every, 1)
    if record_every > num_steps:
        raise ValueError(f"record_every={record_every} exceeds num_steps={num_steps}.")
    if walker_method not in ("vectorized", "sharded"):
        raise ValueError(f"walker_method must be 'vectorized' or 'sharded'; got {walker_method!r}.")
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves or not all(jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) for x in leaves):
        raise TypeError("params must be a non-empty pytree of floating-point arrays.")
    params = jax.tree_util.tree_map(jnp.asarray, params)
    num_records = num_steps // record_every
    key = jax.random.PRNGKey(_check_int("seed", seed, 0))
    starts = _start_nodes(token.walk, start, jax.random.fold_in(key, 2**31 - 1), num_tokens)
    keys = jax.vmap(lambda t: jax.random.fold_in(key, t))(jnp.arange(num_tokens))
    static = dict(num_records=num_records, record_every=record_every)
    if walker_method == "sharded":
        mesh = chain_mesh()
        check_divisible(num_tokens, mesh, "num_tokens")
        sharding = leading_axis_sharding(mesh)
        keys, starts = (jax.device_put(x, sharding) for x in (keys, starts))
        trace, states = _optimise_sharded(token, keys, starts, params, mesh=mesh, **static)
    else:
        trace, states = _optimise_jit(token, keys, starts, params, **static)
    final = jax.tree_util.tree_map(lambda x: x[:, -1], trace)
    steps = (jnp.arange(num_records) + 1) * record_every
    return OptimisationResult(params=final, trace=trace, steps=steps, final_state=states)
