"""Targets: log densities on unconstrained pytrees, and the map back to model values.

A :class:`Target` is what every sampler in probkit consumes. It holds

* ``logdensity(z)``: the log density of the unconstrained position ``z`` (a pytree),
  Jacobian of the constraining transforms included;
* ``constrain(z)``: a dict of the model's values (sample sites on their own support,
  plus ``numpyro.deterministic`` sites);
* ``init(key, num)``: ``num`` initial positions with a leading axis.

A Target is an ``equinox.Module``: a pytree whose array leaves are the data, the
initial position or initial values, and the values of NumPyro ``param`` sites, and
whose other leaves (the functions, the model, the init strategy's name) are static.
Drivers pass it whole to functions jitted with ``equinox.filter_jit``, so the data
travel as arguments (closed-over arrays become compile-time constants, which XLA
may spend seconds folding), a new data set of the same shapes compiles nothing, and
anything that changes what is computed (the model, the init strategy, the initial
values) is either an argument or part of the compiled program's static key: there
is no cache to get wrong.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_key

__all__ = ["Target", "from_numpyro"]

PyTree = Any

_INIT_STRATEGIES = ("uniform", "prior", "median")
#: NumPyro's default radius of ``init_to_uniform`` (in unconstrained space).
_UNIFORM_RADIUS = 2.0


class Target(eqx.Module):
    """A log density on an unconstrained pytree, with the map back to model values.

    Most users build one with :func:`probkit.from_numpyro` or
    :meth:`Target.from_logdensity`; the fields are documented for those who write
    their own samplers. A Target is a pytree (an ``equinox.Module``): jit functions
    that take one with ``equinox.filter_jit``, which passes its arrays as arguments
    and keys the compilation on the rest.

    Attributes:
        logdensity_with_data: ``(data, z) -> scalar`` log density of the unconstrained
            position ``z`` given the data pytree.
        constrain_with_data: ``(data, z) -> dict`` of constrained model values.
        init_with_data: ``(key, num, data) -> z`` with a leading axis of size ``num``.
        data: the pytree of arrays handed to the functions above.
        example_position: one unconstrained position (no leading axis).
        model: the NumPyro model, when the target came from one.
        name: a name used in messages.
        assemble_model_args: ``data -> (args, kwargs)`` of the model, rebuilt from the
            data pytree (NumPyro targets).
        enumerated_sites: names of discrete latent sites summed out of the log density
            by enumeration (NumPyro targets; see :func:`infer_discrete`).
        gibbs_sites: names of discrete latent sites with an infinite support (Poisson,
            geometric, negative binomial, ...), which cannot be summed out: they stay
            in the position as integer values held in floats, and
            :func:`probkit.mcmc.sample` updates them by Metropolis-within-Gibbs
            beside its NUTS / HMC moves of the continuous sites.
        reverse_mode_gradients: ``False`` for a model with a ``lax.while_loop`` built
            without ``forward_mode_differentiation``: only gradient-free kernels
            (``"rwm"``) can sample it.
        uniform_init_radius: set when ``init`` is NumPyro's ``init_to_uniform`` search
            on a continuous model (the default of :func:`from_numpyro`): its first try
            draws every unconstrained coordinate uniformly in ``(-r, r)``, and it tries
            again only where the log density or its gradient is not finite there. A
            sampler may draw such starts itself and call ``init`` only for the chains
            that need the search, as :func:`probkit.mcmc.sample` does.

    Example:
        >>> import jax.numpy as jnp
        >>> import probkit as pk
        >>> target = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum(x**2), jnp.zeros(3))
        >>> float(target.logdensity(jnp.ones(3)))
        -1.5
    """

    logdensity_with_data: Callable[[PyTree, PyTree], jax.Array]
    constrain_with_data: Callable[[PyTree, PyTree], dict]
    init_with_data: Callable[[jax.Array, int, PyTree], PyTree]
    data: PyTree
    example_position: PyTree
    model: Callable | None = None
    name: str = eqx.field(default="target", static=True)
    assemble_model_args: Callable | None = None
    enumerated_sites: tuple = eqx.field(default=(), static=True)
    reverse_mode_gradients: bool = eqx.field(default=True, static=True)
    gibbs_sites: tuple = eqx.field(default=(), static=True)
    uniform_init_radius: float | None = eqx.field(default=None, static=True)

    # -- convenience views with the data bound -------------------------------------
    def logdensity(self, z: PyTree) -> jax.Array:
        """Log density of the unconstrained position ``z`` (data bound)."""
        return self.logdensity_with_data(self.data, z)

    def constrain(self, z: PyTree) -> dict:
        """Constrained model values (sample and deterministic sites) of ``z``."""
        return self.constrain_with_data(self.data, z)

    def init(self, key: jax.Array, num: int) -> PyTree:
        """``num`` initial unconstrained positions, stacked on a leading axis."""
        check_key(key)
        return self.init_with_data(key, num, self.data)

    @property
    def num_dims(self) -> int:
        """Number of unconstrained scalar dimensions."""
        return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(self.example_position)))

    @property
    def gibbs_indices(self) -> np.ndarray:
        """Indices of the :attr:`gibbs_sites`' coordinates in the flattened position
        (``jax.flatten_util.ravel_pytree`` order); empty for a continuous target."""
        if not self.gibbs_sites:
            return np.zeros(0, dtype=int)

        def mark(path, leaf):
            name = getattr(path[0], "key", None) if path else None
            return np.full(np.shape(leaf), name in self.gibbs_sites)

        marks = jax.tree_util.tree_leaves(
            jax.tree_util.tree_map_with_path(mark, self.example_position)
        )
        return np.flatnonzero(np.concatenate([np.ravel(m) for m in marks]))

    @property
    def model_args(self) -> tuple:
        """The positional arguments the NumPyro model is bound to (``()`` otherwise)."""
        return () if self.assemble_model_args is None else self.assemble_model_args(self.data)[0]

    @property
    def model_kwargs(self) -> dict:
        """The keyword arguments the NumPyro model is bound to (``{}`` otherwise)."""
        if self.assemble_model_args is None:
            return {}
        return dict(self.assemble_model_args(self.data)[1])

    # -- constructors ---------------------------------------------------------------
    @classmethod
    def from_logdensity(
        cls,
        logdensity_fn: Callable[[PyTree], jax.Array],
        initial_position: PyTree,
        *,
        init: str = "jitter",
        name: str = "target",
    ) -> Target:
        """Wrap a plain log-density function of a pytree.

        Args:
            logdensity_fn: ``z -> scalar`` unnormalised log density.
            initial_position: an example position; chains start near it.
            init: ``"jitter"`` (default) starts chains at ``initial_position`` plus
                U(-2, 2) noise, ``"fixed"`` starts every chain exactly there.
            name: a name used in messages.

        Example:
            >>> import jax.numpy as jnp
            >>> import probkit as pk
            >>> t = pk.Target.from_logdensity(lambda p: -jnp.sum(p["x"] ** 2), {"x": jnp.zeros(2)})
            >>> t.num_dims
            2
        """
        if not callable(logdensity_fn):
            raise TypeError(
                f"logdensity_fn must be a function z -> scalar log density, got "
                f"{type(logdensity_fn).__name__}."
            )
        leaves = jax.tree_util.tree_leaves(initial_position)
        if not leaves:
            raise ValueError(
                "initial_position has no array leaves: pass an array or a pytree of "
                "arrays with the shape of one position, e.g. jnp.zeros(3)."
            )
        if init not in ("jitter", "fixed"):
            raise ValueError(f"init must be 'jitter' or 'fixed', got {init!r}.")
        initial_position = jax.tree_util.tree_map(
            lambda x: jnp.asarray(x, dtype=jnp.result_type(float)), initial_position
        )
        value = logdensity_fn(initial_position)
        if jnp.shape(value) != ():
            raise ValueError(
                f"logdensity_fn must return a scalar, but returned shape {jnp.shape(value)} "
                "at initial_position. Sum over the last axis (e.g. jnp.sum(...)) or pass a "
                "single position without a batch axis."
            )
        if not bool(jnp.isfinite(value)):
            raise ValueError(
                f"logdensity_fn is {float(value)} at initial_position: start from a point "
                "where the log density is finite."
            )
        fns = _LogDensityFunctions(logdensity_fn, initial_position, init)
        return cls(
            logdensity_with_data=fns.logdensity,
            constrain_with_data=fns.constrain,
            init_with_data=fns.init,
            data=(),
            example_position=initial_position,
            name=name,
        )

    # -- model-specific helpers used by results --------------------------------------
    def observed_data(self) -> dict:
        """Observed sites of a NumPyro model, as numpy arrays (empty otherwise)."""
        if self.model is None:
            return {}
        trace = _trace_model(self.model, self.model_args, self.model_kwargs)
        return {
            name: np.asarray(site["value"])
            for name, site in trace.items()
            if site["type"] == "sample" and site["is_observed"]
        }

    def log_likelihood(self, samples: Mapping[str, jax.Array], batch_ndims: int = 2) -> dict:
        """Pointwise log-likelihood of every observed site for constrained ``samples``."""
        if self.model is None:
            return {}
        samples = {k: jnp.asarray(v) for k, v in samples.items()}
        return _pointwise_log_likelihood(self, samples, batch_ndims)


@eqx.filter_jit
def _pointwise_log_likelihood(target: Target, samples: dict, batch_ndims: int) -> dict:
    from numpyro.infer.util import log_likelihood

    args, kwargs = target.assemble_model_args(target.data)
    return log_likelihood(target.model, samples, *args, batch_ndims=batch_ndims, **kwargs)


class _LogDensityFunctions(eqx.Module):
    """A plain log density's functions; the initial position is an array leaf."""

    fn: Callable
    initial_position: PyTree
    mode: str = eqx.field(static=True)

    def logdensity(self, data, z):
        del data
        return self.fn(z)

    def constrain(self, data, z):
        del data
        if isinstance(z, dict):
            return dict(z)
        return {"x": z}

    def init(self, key, num, data):
        del data
        if self.mode == "fixed":
            return jax.tree_util.tree_map(
                lambda x: jnp.broadcast_to(x, (num, *jnp.shape(x))), self.initial_position
            )
        leaves, treedef = jax.tree_util.tree_flatten(self.initial_position)
        keys = jax.random.split(key, len(leaves))
        noise = [
            jax.random.uniform(k, (num, *jnp.shape(x)), minval=-2.0, maxval=2.0)
            for k, x in zip(keys, leaves, strict=True)
        ]
        return jax.tree_util.tree_map(
            lambda x, e: x + e, self.initial_position, jax.tree_util.tree_unflatten(treedef, noise)
        )


def _trace_model(model, args, kwargs, seed: int = 0):
    """One execution trace of ``model``; latent values come from NumPyro's uniform
    initialisation, which also covers improper priors (``ImproperUniform`` has no
    sampler)."""
    from numpyro import handlers
    from numpyro.infer import init_to_uniform

    seeded = handlers.substitute(handlers.seed(model, rng_seed=seed), substitute_fn=init_to_uniform)
    return handlers.trace(seeded).get_trace(*args, **dict(kwargs))


def _check_model_kwargs(model: Callable, args: tuple, kwargs: Mapping[str, Any]) -> None:
    try:
        signature = inspect.signature(model)
    except (TypeError, ValueError):  # builtins, C callables: nothing to check
        return
    params = signature.parameters
    takes_var_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not takes_var_kwargs:
        accepted = [
            name
            for name, p in params.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        ]
        unknown = [k for k in kwargs if k not in accepted]
        if unknown:
            raise TypeError(
                f"{getattr(model, '__name__', 'model')}() got unknown keyword argument(s) "
                f"{', '.join(repr(k) for k in unknown)}; it accepts {accepted}. Rename the "
                "data keys to match the model's parameters."
            )
    try:
        signature.bind(*args, **kwargs)
    except TypeError as err:
        raise TypeError(
            f"The arguments do not fit {getattr(model, '__name__', 'model')}{signature}: {err}."
        ) from None


def _is_dynamic(leaf: Any) -> bool:
    """Arrays travel as jit arguments; Python scalars and strings stay static."""
    return isinstance(leaf, np.ndarray | jax.Array) and not isinstance(leaf, bool)


class _Static:
    """A static value compared by equality when it is hashable, else by identity."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def _key(self):
        try:
            hash(self.value)
        except TypeError:
            return ("id", id(self.value))
        return ("value", type(self.value), self.value)

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other) -> bool:
        if not isinstance(other, _Static):
            return NotImplemented
        if self._key()[0] != other._key()[0]:
            return False
        if self._key()[0] == "id":
            return self.value is other.value
        return type(self.value) is type(other.value) and bool(self.value == other.value)


class _Assemble(eqx.Module):
    """``data -> (args, kwargs)``: the model's arguments rebuilt from the array leaves."""

    treedef: Any = eqx.field(static=True)
    dynamic_mask: tuple = eqx.field(static=True)
    static_leaves: tuple = eqx.field(static=True)  # of _Static

    def __call__(self, data):
        it = iter(data)
        full = [
            next(it) if d else s.value
            for s, d in zip(self.static_leaves, self.dynamic_mask, strict=True)
        ]
        return jax.tree_util.tree_unflatten(self.treedef, full)


def _split_data(args: tuple, kwargs: Mapping[str, Any]):
    """``(dynamic arrays, assemble, signature)``: ``signature`` is what stays static."""
    leaves, treedef = jax.tree_util.tree_flatten((tuple(args), dict(kwargs)))
    dynamic_mask = tuple(_is_dynamic(leaf) for leaf in leaves)
    dynamic = tuple(leaf for leaf, d in zip(leaves, dynamic_mask, strict=True) if d)
    static = tuple(
        _Static(None if d else leaf) for leaf, d in zip(leaves, dynamic_mask, strict=True)
    )
    assemble = _Assemble(treedef, dynamic_mask, static)
    return dynamic, assemble, (treedef, dynamic_mask, static)


# -- NumPyro models -------------------------------------------------------------------
class _NumPyroFunctions(eqx.Module):
    """A NumPyro model's log density, constraint map and initialiser, as functions of
    the data. ``params`` (values of ``param`` sites) and ``init_values`` are array
    leaves; the model, the arguments' static part and the init strategy are static."""

    model: Callable
    assemble: _Assemble
    strategy: str = eqx.field(static=True)  # "uniform" | "prior" | "median" | "value"
    init_values: dict
    params: dict
    # None: no discrete latent sites; else the model's plate nesting, below which
    # enumerated sites get their own dimensions (NumPyro's ``first_available_dim``).
    enum_plate_nesting: int | None = eqx.field(default=None, static=True)
    # gradients by forward mode (models with lax.while_loop), at a cost ~ dimension
    forward_mode: bool = eqx.field(default=False, static=True)
    # False: reverse mode fails on the model (a while loop) and forward mode is off, so
    # NumPyro's initialiser must not check gradients either
    reverse_mode: bool = eqx.field(default=True, static=True)
    # discrete sites with an infinite support: part of the position, conditioned on
    gibbs_sites: tuple = eqx.field(default=(), static=True)

    def _split(self, z):
        """``(continuous part, Gibbs sites' values as integers)`` of a position."""
        if not self.gibbs_sites:
            return z, {}
        continuous = {k: v for k, v in z.items() if k not in self.gibbs_sites}
        return continuous, _as_counts({k: z[k] for k in self.gibbs_sites})

    def _model(self, enumerate_sites: bool = True, gibbs_values=None):
        from numpyro import handlers

        model = self.model
        if gibbs_values:
            # Observed at the given integers; outside the support the log density is
            # -inf (some log_probs, e.g. the geometric's, are finite at -1).
            model = handlers.condition(_InSupport(model, tuple(gibbs_values)), gibbs_values)
        if self.params:
            model = handlers.substitute(model, data=self.params)
        if self.enum_plate_nesting is not None:
            from numpyro.contrib.funsor import config_enumerate, enum

            model = config_enumerate(model)
            if enumerate_sites:
                model = enum(model, -self.enum_plate_nesting - 1)
            else:  # discrete sites drawn (and dropped) when constraining, as NumPyro does
                model = handlers.seed(model, rng_seed=0)
        return model

    def logdensity(self, data, z):
        from numpyro.infer.util import potential_energy

        a, kw = self.assemble(data)
        enum = self.enum_plate_nesting is not None

        def logdensity(z):
            continuous, gibbs = self._split(z)
            return -potential_energy(self._model(gibbs_values=gibbs), a, kw, continuous, enum=enum)

        if self.forward_mode:
            return _forward_mode_gradient(logdensity)(z)
        return logdensity(z)

    def constrain(self, data, z):
        from numpyro.infer.util import constrain_fn

        a, kw = self.assemble(data)
        continuous, gibbs = self._split(z)
        model = self._model(enumerate_sites=False, gibbs_values=gibbs)
        values = constrain_fn(model, a, kw, continuous, return_deterministic=True)
        return {**values, **gibbs}  # integers, as NumPyro's samplers return them

    def _strategy(self):
        from numpyro.infer import init_to_median, init_to_sample, init_to_uniform, init_to_value

        if self.strategy == "value":
            return init_to_value(values=self.init_values)
        return {
            "uniform": init_to_uniform(radius=_UNIFORM_RADIUS),
            "prior": init_to_sample,
            "median": init_to_median(num_samples=15),
        }[self.strategy]

    def init(self, key, num, data):
        a, kw = self.assemble(data)
        keys = jax.random.split(key, num)
        if self.gibbs_sites:
            return jax.vmap(lambda k: self._gibbs_init(k, data))(keys)
        return self._numpyro_starts(keys, self.model, a, kw)

    def _numpyro_starts(self, key, model, a, kw):
        """NumPyro's initialisation of ``model`` (one key, or a batch of keys)."""
        from numpyro.infer.util import initialize_model

        info = initialize_model(
            key,
            _marked_for_enumeration(model, self.enum_plate_nesting is not None),
            init_strategy=self._strategy(),
            forward_mode_differentiation=self.forward_mode,
            validate_grad=self.reverse_mode or self.forward_mode,
            dynamic_args=True,
            model_args=a,
            model_kwargs=kw,
        )
        return info.param_info.z

    def _gibbs_init(self, key, data, max_tries: int = 10):
        """One start with a finite log density, tried up to ``max_tries`` times: the
        Gibbs sites drawn from the model given the
        init strategy's continuous values (or the ``init`` dict's), then the
        continuous sites initialised by NumPyro given those integers."""
        a, kw = self.assemble(data)

        def attempt(key):
            z = self._gibbs_attempt(key, a, kw)
            return z, self.logdensity(data, z)

        def retry(carry):
            i, _, _ = carry
            z, lp = attempt(jax.random.fold_in(key, i))
            return i + 1, z, lp

        z, lp = attempt(jax.random.fold_in(key, 0))
        _, z, _ = jax.lax.while_loop(
            lambda c: (c[0] < max_tries) & ~jnp.isfinite(c[2]), retry, (1, z, lp)
        )
        return z

    def _gibbs_attempt(self, key, a, kw):
        from numpyro import handlers

        draw_key, init_key = jax.random.split(key)
        model = self.model
        if self.params:
            model = handlers.substitute(model, data=self.params)
        # seed innermost, so that the init strategy finds each site's rng_key
        seeded = handlers.substitute(
            handlers.seed(model, rng_seed=draw_key), substitute_fn=self._strategy()
        )
        trace = handlers.trace(seeded).get_trace(*a, **kw)
        real = jnp.result_type(float)
        gibbs = {k: jnp.asarray(trace[k]["value"], real) for k in self.gibbs_sites}
        others = {
            k: site["value"]
            for k, site in trace.items()
            if site["type"] == "sample" and not site["is_observed"] and k not in self.gibbs_sites
        }
        # A draw from the model often makes the data impossible (a count below an
        # observed count): then move the integers to where every term is finite. A
        # user's init values are kept as given (from_numpyro says if they are impossible).
        if any(k in self.init_values for k in self.gibbs_sites):
            return {**self._continuous_init(init_key, a, kw, gibbs), **gibbs}
        impossible = ~(self._guide_score(model, a, kw, others, gibbs) > _IMPOSSIBLE / 2)
        gibbs = jax.lax.cond(
            impossible,
            lambda g: self._feasible_integers(model, a, kw, others, g),
            lambda g: g,
            gibbs,
        )
        continuous = self._continuous_init(init_key, a, kw, gibbs)
        return {**continuous, **gibbs}

    @staticmethod
    def _guide_score(model, a, kw, values, gibbs):
        """The model's log joint at constrained ``values`` and the Gibbs integers, with
        every -inf (or NaN) log-probability element counted as ``_IMPOSSIBLE``: it
        rises as fewer terms are impossible, which the search below follows."""
        from numpyro import handlers

        conditioned = handlers.condition(
            handlers.seed(model, rng_seed=0), {**values, **_as_counts(gibbs)}
        )
        with warnings.catch_warnings():  # scoring impossible values is the point here
            warnings.filterwarnings("ignore", message="Out-of-support values")
            trace = handlers.trace(conditioned).get_trace(*a, **kw)
        score = 0.0
        for site in trace.values():
            if site["type"] != "sample":
                continue
            lp = site["fn"].log_prob(site["value"])
            score = score + jnp.sum(jnp.where(jnp.isfinite(lp), lp, _IMPOSSIBLE))
        return score

    def _feasible_integers(self, model, a, kw, values, gibbs, sweeps: int = 4):
        """Greedy coordinate search over the Gibbs integers: each coordinate in turn
        takes the best of jumps of +-1, +-2, +-4, ... +-2^12 (or stays)."""
        from jax.flatten_util import ravel_pytree

        flat, unravel = ravel_pytree(gibbs)
        powers = 2.0 ** jnp.arange(13, dtype=flat.dtype)
        jumps = jnp.concatenate([jnp.zeros(1, flat.dtype), powers, -powers])

        def score(g):
            return self._guide_score(model, a, kw, values, unravel(g))

        def coordinate(j, g):
            candidates = g[None, :] + jumps[:, None] * jax.nn.one_hot(j, g.size, dtype=g.dtype)
            return candidates[jnp.argmax(jax.vmap(score)(candidates))]

        def sweep(_, g):
            return jax.lax.fori_loop(0, flat.size, coordinate, g)

        return unravel(jax.lax.fori_loop(0, sweeps, sweep, flat))

    def _continuous_init(self, key, a, kw, gibbs):
        from numpyro import handlers

        model = handlers.condition(self.model, _as_counts(gibbs))
        if self.params:
            model = handlers.substitute(model, data=self.params)
        trace = _trace_model(model, a, kw)
        if not any(s["type"] == "sample" and not s["is_observed"] for s in trace.values()):
            return {}  # every latent site is a Gibbs site
        return self._numpyro_starts(key, model, a, kw)


#: What the initial search counts an impossible log-probability term as.
_IMPOSSIBLE = -1e6


def _as_counts(values: dict) -> dict:
    """Gibbs sites' values (floats in the position) as the integers the model sees."""
    integer = jnp.result_type(int)
    return {k: jnp.round(v).astype(integer) for k, v in values.items()}


def _moves_one_integer_at_a_time(support) -> bool:
    """Whether every integer coordinate of ``support`` can move on its own (a product
    of one-dimensional supports), as the Gibbs sweep's moves need; a Multinomial's
    counts, which must keep their sum, cannot."""
    while getattr(support, "base_constraint", None) is not None:  # independent(...)
        support = support.base_constraint
    return getattr(support, "event_dim", 0) == 0


def _InSupport(model, sites: tuple):  # noqa: N802 - used like a NumPyro handler
    """``model`` with the named sample sites' log-probabilities -inf outside their
    support (a proposal of -1 for a count must be rejected, and some log_probs, e.g.
    the geometric's, are finite there)."""
    return _support_classes()[0](model, sites)


@functools.cache
def _support_classes():
    import numpyro.distributions as dist
    from numpyro.primitives import Messenger

    class SupportGuard(Messenger):
        def __init__(self, fn, sites):
            self.sites = sites
            super().__init__(fn)

        def process_message(self, msg):
            if msg["type"] == "sample" and msg["name"] in self.sites:
                msg["fn"] = SupportGuarded(msg["fn"])

    class SupportGuarded(dist.Distribution):
        def __init__(self, base):
            self.base = base
            super().__init__(base.batch_shape, base.event_shape)

        @property
        def support(self):
            return self.base.support

        def sample(self, key, sample_shape=()):
            return self.base.sample(key, sample_shape)

        def log_prob(self, value):
            inside = self.base.support(value)
            return jnp.where(inside, self.base.log_prob(value), -jnp.inf)

    return SupportGuard, SupportGuarded


class _ModelStructure(eqx.Module):
    """What the set-up learns from one (abstract) trace of the model."""

    latent: tuple = eqx.field(static=True)
    discrete: tuple = eqx.field(static=True)
    # discrete latent sites without a finite support to enumerate (NumPyro's
    # ``has_enumerate_support``), and whether funsor could be imported
    not_enumerable: tuple = eqx.field(static=True, default=())
    enum_plate_nesting: int | None = eqx.field(static=True, default=None)
    deterministic: tuple = eqx.field(static=True, default=())
    subsampled: tuple = eqx.field(static=True, default=())  # plates with subsample_size
    # the start was the model's centre, not NumPyro's search (see _numpyro_setup)
    at_centre: bool = eqx.field(static=True, default=False)


def _site_params(model, a, kw) -> dict:
    trace = _trace_model(model, a, kw)
    return {k: s["value"] for k, s in trace.items() if s["type"] in ("param", "mutable")}


@eqx.filter_jit
def _numpyro_setup(fns: _NumPyroFunctions, data, check_gradient: bool = True, search: bool = False):
    """One compiled set-up per model structure: param-site values, one starting
    position and its log density (an abstract trace checks the latent sites).

    Without ``search``, a model with only continuous latent sites and the default
    ``init="uniform"`` is checked at its centre (every site at unconstrained zero): a
    program a fifth the size of NumPyro's initialisation, whose random search for a
    start (up to 100 draws, each site's own threefry stream) dominates the set-up's
    compile time. When the log density or its gradient is not finite there, ``from_numpyro``
    calls again with ``search=True``: NumPyro's search, as the samplers' starts use.
    """
    from numpyro.infer.util import initialize_model

    a, kw = fns.assemble(data)
    trace = _trace_model(fns.model, a, kw)
    latent = tuple(
        name for name, site in trace.items() if site["type"] == "sample" and not site["is_observed"]
    )
    discrete = tuple(
        name for name in latent if getattr(trace[name]["fn"].support, "is_discrete", False)
    )
    not_enumerable = tuple(
        name for name in discrete if not getattr(trace[name]["fn"], "has_enumerate_support", False)
    )
    joint = [
        name
        for name in not_enumerable
        if not _moves_one_integer_at_a_time(trace[name]["fn"].support)
    ]
    if joint:
        kinds = sorted({type(trace[name]["fn"]).__name__ for name in joint})
        raise ValueError(
            f"discrete latent site(s) {joint} ({', '.join(kinds)}) have a joint support "
            "(e.g. counts that must sum to a total) and no finite support to enumerate: "
            "probkit's Metropolis-within-Gibbs moves one integer at a time and could never "
            "leave the starting point. Marginalise them in the model, or write them as a "
            "product of one-dimensional sites (a Multinomial as a chain of Binomials)."
        )
    # Sites with a finite support are summed out; the others (not_enumerable) stay in
    # the position and are updated by Metropolis-within-Gibbs.
    enumerable = tuple(name for name in discrete if name not in not_enumerable)
    continuous = tuple(name for name in latent if name not in discrete)
    nesting = _plate_nesting(trace) if enumerable else None
    deterministic = tuple(name for name, site in trace.items() if site["type"] == "deterministic")
    subsampled = tuple(
        name
        for name, site in trace.items()
        if site["type"] == "plate" and _subsample_size(site) < site["args"][0]
    )
    if not (continuous or not_enumerable) or subsampled or (enumerable and not _funsor_available()):
        # Nothing more to compute: the caller raises with the names.
        structure = _ModelStructure(
            latent, enumerable, not_enumerable, nesting, deterministic, subsampled
        )
        return structure, None, None, None
    unknown = sorted(set(fns.init_values) - set(continuous) - set(not_enumerable))
    if unknown:
        return _ModelStructure(latent, tuple(unknown)), None, None, "unknown"
    params = {k: s["value"] for k, s in trace.items() if s["type"] in ("param", "mutable")}
    with_params = eqx.tree_at(
        lambda f: f.params,
        dataclasses.replace(fns, enum_plate_nesting=nesting, gibbs_sites=not_enumerable),
        params,
    )
    # The default strategy draws around the centre; other strategies and init values
    # are checked where NumPyro will start (supports can depend on them).
    at_centre = (
        not (search or enumerable or not_enumerable)
        and fns.strategy == "uniform"
        and not fns.init_values
        and not any(_is_delta(trace[name]["fn"]) for name in continuous)
    )
    if not_enumerable:
        z = jax.tree.map(lambda x: x[0], with_params.init(jax.random.PRNGKey(0), 1, data))
    elif at_centre:
        z = _centre_position(trace, continuous)
    else:
        info = initialize_model(
            jax.random.PRNGKey(0),
            _marked_for_enumeration(fns.model, bool(enumerable)),
            init_strategy=fns._strategy(),
            forward_mode_differentiation=fns.forward_mode,
            validate_grad=check_gradient,
            dynamic_args=True,
            model_args=a,
            model_kwargs=kw,
        )
        z = info.param_info.z
    structure = _ModelStructure(latent, enumerable, not_enumerable, nesting, at_centre=at_centre)
    if not check_gradient:  # a model reverse mode cannot differentiate
        return structure, params, z, with_params.logdensity(data, z)
    lp, grad = jax.value_and_grad(lambda x: with_params.logdensity(data, x))(z)
    finite_grad = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grad)]))
    # NaN unless both the log density and its gradient are finite (NumPyro's criterion).
    return structure, params, z, jnp.where(finite_grad, lp, jnp.nan)


def _is_delta(fn) -> bool:
    """A ``Delta`` latent site (possibly masked or expanded): NumPyro's initialisation
    refuses it with advice, so the set-up takes that path."""
    while fn is not None:
        if type(fn).__name__ == "Delta":
            return True
        fn = getattr(fn, "base_dist", None)
    return False


def _centre_position(trace, sites: tuple) -> dict:
    """Unconstrained zero for every site in ``sites``: the centre of NumPyro's
    ``init_to_uniform``."""
    from numpyro.distributions import biject_to

    return {
        name: jnp.zeros_like(biject_to(trace[name]["fn"].support).inv(trace[name]["value"]))
        for name in sites
    }


#: Why a gradient-based kernel refuses a target with ``reverse_mode_gradients=False``.
REVERSE_MODE_MESSAGE = (
    "{name} uses lax.while_loop (or a fori_loop with traced bounds), which JAX cannot "
    "differentiate in reverse mode, and kernel {kernel!r} needs gradients. Build the "
    "target with pk.from_numpyro(..., forward_mode_differentiation=True) (gradients by "
    "forward mode), use kernel='rwm', or rewrite the loop with lax.scan."
)


def _subsample_size(plate_site) -> int:
    size, subsample_size = plate_site["args"][:2]
    return size if subsample_size is None else subsample_size


def _forward_mode_gradient(f: Callable) -> Callable:
    """``f`` (a scalar function of a pytree) whose reverse-mode gradient is computed by
    forward mode: JAX cannot reverse-differentiate ``lax.while_loop``, but can push
    tangents through it. Gradients with respect to anything ``f`` closes over (the
    data) are zero."""

    @jax.custom_jvp
    def g(z):
        return f(z)

    @g.defjvp
    def g_jvp(primals, tangents):
        (z,), (z_dot,) = primals, tangents
        grad, value = jax.jacfwd(lambda z: (v := f(z), v), has_aux=True)(z)
        # linear in z_dot with a primal-only gradient: reverse mode transposes this
        out = sum(
            jnp.vdot(g_leaf, t_leaf)
            for g_leaf, t_leaf in zip(jax.tree.leaves(grad), jax.tree.leaves(z_dot), strict=True)
        )
        return value, out

    return g


def _marked_for_enumeration(model, discrete: bool):
    """probkit sums out every discrete site with a finite support, marked or not."""
    if not discrete:
        return model
    from numpyro.contrib.funsor import config_enumerate

    return config_enumerate(model)


def _plate_nesting(trace) -> int:
    """The deepest plate dimension of any sample site (NumPyro's guess, from one trace)."""
    dims = [
        frame.dim
        for site in trace.values()
        if site["type"] == "sample"
        for frame in site["cond_indep_stack"]
        if frame.dim is not None
    ]
    return -min(dims) if dims else 0


def _funsor_available() -> bool:
    try:
        import funsor  # noqa: F401
    except ImportError:
        return False
    return True


def _nonfinite_sites(model, args, kwargs, key) -> list[str]:
    """Sites whose log-probability is not finite at a uniform initialisation."""
    from numpyro import handlers
    from numpyro.infer import init_to_uniform

    bad = []
    # seed innermost, so that the init strategy finds the site's rng_key
    seeded = handlers.substitute(handlers.seed(model, rng_seed=key), substitute_fn=init_to_uniform)
    try:
        trace = handlers.trace(seeded).get_trace(*args, **kwargs)
    except Exception as err:  # the model itself fails: report that instead
        return [f"(the model raised {type(err).__name__}: {err})"]
    for name, site in trace.items():
        if site["type"] != "sample":
            continue
        try:
            lp = site["fn"].log_prob(site["value"])
        except Exception:  # noqa: BLE001 - a failing log_prob is itself the diagnosis
            bad.append(name)
            continue
        if not bool(jnp.all(jnp.isfinite(lp))):
            bad.append(name)
    return bad


def from_numpyro(
    model: Callable,
    *args: Any,
    init: str | Mapping[str, Any] = "uniform",
    forward_mode_differentiation: bool = False,
    **kwargs: Any,
) -> Target:
    """Build a :class:`Target` from a NumPyro model bound to its data.

    The log density lives on NumPyro's unconstrained space (Jacobians included), as
    ``numpyro.infer.util.potential_energy`` computes it; ``constrain`` maps back to
    every sample site and every ``numpyro.deterministic`` site. The set-up is
    compiled once per model structure (the model, the arguments' shapes and static
    values, the init strategy): a new data set of the same shapes compiles nothing.

    Discrete latent sites: those with a finite support (``Bernoulli``,
    ``Categorical``, ...) are summed out by enumeration (the ``enum`` extra) and drawn
    back after sampling (:func:`infer_discrete`); those with an infinite support
    (``Poisson``, ``Geometric``, ...) stay in the position as integer-valued
    coordinates (``gibbs_sites``), which ``probkit.mcmc.sample`` updates by
    Metropolis-within-Gibbs beside NUTS or HMC.

    Args:
        model: a NumPyro model function.
        *args: positional arguments of the model (data).
        init: how chains start. ``"uniform"`` (default): uniform in [-2, 2] on the
            unconstrained space, as Stan does; ``"prior"``: draws from the prior;
            ``"median"``: prior medians; or a dict ``{site: value}`` of constrained
            values (sites left out start uniformly). Sites in ``gibbs_sites`` start at a
            draw from the model, moved by a short integer search to where the data
            are possible when that draw makes them impossible.
        forward_mode_differentiation: compute the gradient by forward mode, for models
            with a ``lax.while_loop`` (or a ``fori_loop`` with traced bounds), which
            reverse mode cannot differentiate. It costs about one model evaluation per
            unconstrained dimension.
        **kwargs: keyword arguments of the model (data).

    Raises:
        TypeError: a keyword argument the model does not take.
        ValueError: a model with no latent site, an ``init`` dict naming a site that
            is not a latent site, or a log density that is not finite at any
            initialisation (the message names the offending sites).

    Example:
        >>> import jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> import probkit as pk
        >>> def model(y):
        ...     mu = numpyro.sample("mu", dist.Normal(0, 10))
        ...     numpyro.sample("y", dist.Normal(mu, 1), obs=y)
        >>> target = pk.from_numpyro(model, y=jnp.array([0.5, 1.5]))
        >>> sorted(target.constrain(target.example_position))
        ['mu']
    """
    if not callable(model):
        raise TypeError(f"model must be a NumPyro model function, got {type(model).__name__}.")
    _check_model_kwargs(model, args, kwargs)

    if isinstance(init, str):
        if init not in _INIT_STRATEGIES:
            raise ValueError(
                f"init must be one of {_INIT_STRATEGIES} or a dict of site values, got {init!r}."
            )
        strategy, init_values = init, {}
    elif isinstance(init, Mapping):
        strategy = "value"
        init_values = {k: jnp.asarray(v, dtype=jnp.result_type(float)) for k, v in init.items()}
    else:
        raise TypeError(f"init must be a strategy name or a dict, got {type(init).__name__}.")

    model_name = getattr(model, "__name__", "model")
    dynamic, assemble, _ = _split_data(args, kwargs)
    fns = _NumPyroFunctions(
        model, assemble, strategy, init_values, {}, forward_mode=bool(forward_mode_differentiation)
    )

    def setup(fns, check_gradient=True):
        out = _numpyro_setup(fns, dynamic, check_gradient)
        if out[0].at_centre and not bool(jnp.isfinite(out[3])):
            # not finite at the centre: NumPyro's search for a start
            out = _numpyro_setup(fns, dynamic, check_gradient, search=True)
        return out

    reverse_mode = True
    try:
        structure, params, example, start_lp = setup(fns)
    except ValueError as err:
        if "Reverse-mode differentiation does not work" not in str(err):
            raise
        # Gradient-free kernels (rwm) can still sample it: gradient kernels refuse it
        # with REVERSE_MODE_MESSAGE when they are asked to.
        reverse_mode = False
        fns = dataclasses.replace(fns, reverse_mode=False)
        structure, params, example, start_lp = setup(fns, check_gradient=False)
    except jax.errors.ConcretizationTypeError as err:
        raise ValueError(
            f"Building the log density of {model_name} needed a concrete value where JAX "
            f"has a traced one ({str(err).splitlines()[0]}). A common cause: a discrete "
            "site whose support depends on another latent site (e.g. Binomial(total_count="
            "N) with N sampled), which can be neither summed out nor moved one integer at "
            "a time: marginalise one of them in the model. Otherwise the model uses a "
            "sampled value in Python control flow: use jnp.where or lax.cond instead."
        ) from err
    if structure.subsampled:
        raise ValueError(
            f"{model_name} subsamples its data (plate(s) {list(structure.subsampled)} with "
            "subsample_size): probkit's samplers use the exact log density of all the data. "
            "Remove subsample_size; for large data sets, many chains on an accelerator "
            "(pk.mcmc.sample(..., kernel='chees', num_chains=...)) keep each step cheap."
        )
    if not structure.latent and structure.deterministic:
        raise ValueError(
            f"{model_name} has no latent sample site, only deterministic site(s) "
            f"{list(structure.deterministic)}, whose values need no sampling: run the model "
            "once to get them, e.g. numpyro.handlers.trace(numpyro.handlers.seed(model, 0))"
            ".get_trace(*args)[name]['value']."
        )
    if not structure.latent:
        raise ValueError(
            f"{model_name} has no latent sample site: every numpyro.sample statement has "
            "obs= set, so there is nothing to infer. Remove obs= from the sites to infer."
        )
    if isinstance(start_lp, str):
        raise ValueError(
            f"init names site(s) {list(structure.discrete)} that are not latent sample "
            f"sites of {model_name}; its latent sites are {list(structure.latent)}."
        )
    if structure.discrete and start_lp is None:
        if len(structure.discrete) == len(structure.latent):
            raise ValueError(
                f"every latent site of {model_name} is discrete ({list(structure.discrete)}): "
                "there is nothing continuous to sample. Compute the posterior by exact "
                "enumeration (numpyro.contrib.funsor), or write it as a probkit.smc model."
            )
        raise ImportError(
            f"{model_name} has discrete latent site(s) {list(structure.discrete)}, which "
            "probkit sums out by enumeration with funsor: pip install 'probkit[enum]' "
            "(or pip install funsor)."
        )
    given = sorted(set(structure.not_enumerable) & set(init_values))
    if not bool(jnp.isfinite(start_lp)) and given:
        raise ValueError(
            f"The log density of {model_name} is -inf at init values of {given}: the data "
            "are impossible there (e.g. a count below an observed count). Pass integers "
            "where they are possible, or leave these sites out of init (probkit then "
            "searches for possible starting integers)."
        )
    if not bool(jnp.isfinite(start_lp)) and structure.not_enumerable:
        raise ValueError(
            f"The log density of {model_name} is not finite at any of 100 "
            f"initialisations ({init!r}): the starting values of its discrete site(s) "
            f"{list(structure.not_enumerable)}, drawn from the model, make the data "
            "impossible (e.g. a count below an observed count), or the continuous sites' "
            "do. Pass init={site: value} with values where the data are possible, e.g. "
            f"init={{{structure.not_enumerable[0]!r}: ...}}."
        )
    if not bool(jnp.isfinite(start_lp)):
        _explain_nonfinite(model, assemble(dynamic), fns._strategy(), init, model_name)
    fns = eqx.tree_at(
        lambda f: f.params,
        dataclasses.replace(
            fns,
            enum_plate_nesting=structure.enum_plate_nesting,
            gibbs_sites=structure.not_enumerable,
        ),
        params,
    )
    return Target(
        logdensity_with_data=fns.logdensity,
        constrain_with_data=fns.constrain,
        init_with_data=fns.init,
        data=dynamic,
        example_position=example,
        model=model,
        name=model_name,
        assemble_model_args=assemble,
        enumerated_sites=structure.discrete,
        reverse_mode_gradients=reverse_mode,
        gibbs_sites=structure.not_enumerable,
        # The default start (continuous sites, init="uniform", no init values, finite
        # at the centre): NumPyro's init_to_uniform(radius=2.0), see _strategy.
        uniform_init_radius=_UNIFORM_RADIUS if structure.at_centre else None,
    )


def infer_discrete(
    target: Target, samples: Mapping[str, Any], *, key: jax.Array, batch_ndims: int = 2
) -> dict:
    """Posterior draws of a target's enumerated discrete sites, one per continuous draw.

    :func:`from_numpyro` sums discrete latent sites with a finite support out of the
    log density, so samplers only see the continuous sites. This draws each discrete
    site from its exact conditional posterior given one draw of the continuous sites
    (NumPyro's ``infer_discrete`` by forward-filtering backward-sampling), and recomputes
    the deterministic sites in ``samples`` with them. :func:`probkit.mcmc.sample` calls
    it for you.

    Args:
        target: a target from :func:`from_numpyro` with ``enumerated_sites``.
        samples: constrained draws of the continuous sites, each with ``batch_ndims``
            leading axes (e.g. ``result.samples``: chains x draws).
        key: a JAX PRNG key, e.g. ``jax.random.key(0)``.
        batch_ndims: how many leading axes the draws have.

    Returns:
        ``{site: draws}`` for the enumerated sites and the deterministic sites found in
        ``samples``.

    Example:
        >>> import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> import probkit as pk
        >>> def mixture(y):
        ...     w = numpyro.sample("w", dist.Beta(1.0, 1.0))
        ...     with numpyro.plate("data", y.shape[0]):
        ...         z = numpyro.sample("z", dist.Bernoulli(w))
        ...         numpyro.sample("y", dist.Normal(4.0 * z - 2.0, 1.0), obs=y)
        >>> target = pk.from_numpyro(mixture, jnp.array([-2.1, 1.9, 2.2]))
        >>> target.enumerated_sites
        ('z',)
        >>> draws = pk.infer_discrete(target, {"w": jnp.full((2, 5), 0.5)}, key=jax.random.key(0))
        >>> draws["z"].shape
        (2, 5, 3)
    """
    check_key(key)
    from numpyro import handlers
    from numpyro.infer import Predictive

    if not target.enumerated_sites:
        raise ValueError(
            f"{target.name} has no enumerated discrete sites (target.enumerated_sites is "
            "empty): there is nothing to infer."
        )
    fns = getattr(target.logdensity_with_data, "__self__", None)
    model = target.model
    if isinstance(fns, _NumPyroFunctions) and fns.params:
        model = handlers.substitute(model, data=fns.params)
    a, kw = target.model_args, target.model_kwargs
    trace = _trace_model(target.model, a, kw)
    continuous = {
        name
        for name, site in trace.items()
        if site["type"] == "sample"
        and not site["is_observed"]
        and name not in target.enumerated_sites
    }
    deterministic = [
        name for name, site in trace.items() if site["type"] == "deterministic" and name in samples
    ]
    missing = sorted(continuous - set(samples))
    if missing:
        raise ValueError(f"samples lacks the continuous site(s) {missing} of {target.name}.")
    given = {name: jnp.asarray(samples[name]) for name in continuous}
    predictive = Predictive(
        model,
        posterior_samples=given,
        infer_discrete=True,
        return_sites=list(target.enumerated_sites) + deterministic,
        batch_ndims=int(batch_ndims),
    )
    return dict(predictive(key, *a, **kw))


def _explain_nonfinite(model, args_kwargs, strategy, init, model_name) -> None:
    """Run NumPyro's initialisation eagerly: its error (or a non-finite start) is
    turned into a message naming the offending sites."""
    from numpyro.infer.util import initialize_model

    a, kw = args_kwargs
    key = jax.random.PRNGKey(0)
    try:
        initialize_model(key, model, init_strategy=strategy, model_args=a, model_kwargs=kw)
    except RuntimeError as err:
        if "valid initial parameters" not in str(err):
            raise
    bad = _nonfinite_sites(model, a, kw, key)
    where = (
        f" Non-finite log-probability at site(s): {', '.join(bad)}."
        if bad
        else " Every site's log-probability was finite, so the gradient is not."
    )
    raise ValueError(
        f"The log density of {model_name} is not finite at any of 100 "
        f"initialisations ({init!r}).{where} Check those sites' parameters and "
        "supports against the data (e.g. a scale that can be zero or negative), "
        "or pass init={site: value} with a valid starting point."
    ) from None
