"""Targets: log densities on unconstrained pytrees, and the map back to model values.

A :class:`Target` is what every sampler in probkit consumes. It holds

* ``logdensity(z)``: the log density of the unconstrained position ``z`` (a pytree),
  Jacobian of the constraining transforms included;
* ``constrain(z)``: a dict of the model's values (sample sites on their own support,
  plus ``numpyro.deterministic`` sites);
* ``init(key, num)``: ``num`` initial positions with a leading axis.

Data is kept apart from the functions (``target.data``) so that drivers pass it to
their jitted functions as an argument instead of closing over it: closed-over arrays
become compile-time constants, which XLA may spend seconds folding (DESIGN §3).
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Target", "from_numpyro"]

PyTree = Any

_INIT_STRATEGIES = ("uniform", "prior", "median")

# from_numpyro's NumPyro set-up (a model trace and initialize_model, run op by op:
# ~0.2 s, as long as a whole small NUTS run) keyed on the model, the init strategy
# and the data's structure, shapes and dtypes: a new data set of the same shapes only
# re-checks the log density at the cached starting point.
_NUMPYRO_SETUP: collections.OrderedDict = collections.OrderedDict()
_NUMPYRO_SETUP_MAX_ENTRIES = 32


@dataclasses.dataclass(frozen=True)
class Target:
    """A log density on an unconstrained pytree, with the map back to model values.

    Most users build one with :func:`probkit.from_numpyro` or
    :meth:`Target.from_logdensity`; the fields are documented for those who write
    their own samplers.

    Attributes:
        logdensity_with_data: ``(data, z) -> scalar`` log density of the unconstrained
            position ``z`` given the data pytree.
        constrain_with_data: ``(data, z) -> dict`` of constrained model values.
        init_with_data: ``(key, num, data) -> z`` with a leading axis of size ``num``.
        data: the pytree of arrays handed to the functions above.
        example_position: one unconstrained position (no leading axis).
        model: the NumPyro model, when the target came from one.
        model_args / model_kwargs: the arguments the model was bound to.
        compile_key: a hashable identity of the functions above apart from ``data``
            (the model and its static arguments, or the log-density function), or
            ``None``. Samplers memoise their compiled code on it, so that sampling the
            same model again, with new data of the same shapes, does not recompile.

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
    model_args: tuple = ()
    model_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    name: str = "target"
    #: ``data -> (args, kwargs)`` of the model, rebuilt from the data pytree
    assemble_model_args: Callable | None = None
    compile_key: Hashable | None = None

    # -- convenience views with the data bound -------------------------------------
    def logdensity(self, z: PyTree) -> jax.Array:
        """Log density of the unconstrained position ``z`` (data bound)."""
        return self.logdensity_with_data(self.data, z)

    def constrain(self, z: PyTree) -> dict:
        """Constrained model values (sample and deterministic sites) of ``z``."""
        return self.constrain_with_data(self.data, z)

    def init(self, key: jax.Array, num: int) -> PyTree:
        """``num`` initial unconstrained positions, stacked on a leading axis."""
        return self.init_with_data(key, num, self.data)

    @property
    def num_dims(self) -> int:
        """Number of unconstrained scalar dimensions."""
        return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(self.example_position)))

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

        def logdensity_with_data(data, z):
            del data
            return logdensity_fn(z)

        def constrain_with_data(data, z):
            del data
            if isinstance(z, dict):
                return dict(z)
            return {"x": z}

        def init_with_data(key, num, data):
            del data
            if init == "fixed":
                return jax.tree_util.tree_map(
                    lambda x: jnp.broadcast_to(x, (num, *jnp.shape(x))), initial_position
                )
            keys = jax.random.split(key, len(leaves))
            treedef = jax.tree_util.tree_structure(initial_position)
            noise = [
                jax.random.uniform(k, (num, *jnp.shape(x)), minval=-2.0, maxval=2.0)
                for k, x in zip(keys, jax.tree_util.tree_leaves(initial_position), strict=True)
            ]
            return jax.tree_util.tree_map(
                lambda x, e: x + e, initial_position, jax.tree_util.tree_unflatten(treedef, noise)
            )

        return cls(
            logdensity_with_data=logdensity_with_data,
            constrain_with_data=constrain_with_data,
            init_with_data=init_with_data,
            data=(),
            example_position=initial_position,
            name=name,
            compile_key=("logdensity", logdensity_fn),
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
        from numpyro.infer.util import log_likelihood

        def pointwise(samples, data):
            args, kwargs = self.assemble_model_args(data)
            return log_likelihood(self.model, samples, *args, batch_ndims=batch_ndims, **kwargs)

        samples = {k: jnp.asarray(v) for k, v in samples.items()}
        return jax.jit(pointwise)(samples, self.data)


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


def _hashable_or_none(key: Any) -> Hashable | None:
    """``key`` when it can key a cache (static arguments may be unhashable), else None."""
    try:
        hash(key)
    except TypeError:
        return None
    return key


def compiled_cache_key(target: Target) -> Hashable | None:
    """What a compiled sampler of ``target`` may be cached on, or None (never cache).

    The target's ``compile_key`` (the model and its static arguments, or the log
    density function) plus the layout of a position, which ``ravel_pytree``'s
    ``unravel`` depends on. New data of the same shapes give the same key.
    """
    if target.compile_key is None:
        return None
    leaves, treedef = jax.tree_util.tree_flatten(target.example_position)
    layout = tuple((jnp.shape(x), jnp.result_type(x).name) for x in leaves)
    return (target.compile_key, treedef, layout)


def _is_dynamic(leaf: Any) -> bool:
    """Arrays travel as jit arguments; Python scalars and strings stay static."""
    return isinstance(leaf, np.ndarray | jax.Array) and not isinstance(leaf, bool)


def _split_data(args: tuple, kwargs: Mapping[str, Any]):
    """``(dynamic arrays, assemble, signature)``: ``signature`` is what stays static."""
    leaves, treedef = jax.tree_util.tree_flatten((tuple(args), dict(kwargs)))
    dynamic_mask = [_is_dynamic(leaf) for leaf in leaves]
    dynamic = tuple(leaf for leaf, d in zip(leaves, dynamic_mask, strict=True) if d)
    static = [None if d else leaf for leaf, d in zip(leaves, dynamic_mask, strict=True)]

    def assemble(data):
        it = iter(data)
        full = [next(it) if d else s for s, d in zip(static, dynamic_mask, strict=True)]
        return jax.tree_util.tree_unflatten(treedef, full)

    return dynamic, assemble, (treedef, tuple(dynamic_mask), tuple(static))


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
    **kwargs: Any,
) -> Target:
    """Build a :class:`Target` from a NumPyro model bound to its data.

    The log density lives on NumPyro's unconstrained space (Jacobians included), as
    given by ``numpyro.infer.util.initialize_model``; ``constrain`` maps back to every
    sample site and every ``numpyro.deterministic`` site.

    Args:
        model: a NumPyro model function.
        *args: positional arguments of the model (data).
        init: how chains start. ``"uniform"`` (default): uniform in [-2, 2] on the
            unconstrained space, as Stan does; ``"prior"``: draws from the prior;
            ``"median"``: prior medians; or a dict ``{site: value}`` of constrained
            values (sites left out start uniformly).
        **kwargs: keyword arguments of the model (data).

    Raises:
        TypeError: a keyword argument the model does not take.
        ValueError: a model with no latent site, or a log density that is not finite
            at any initialisation (the message names the offending sites).

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
    from numpyro.infer import init_to_median, init_to_sample, init_to_uniform, init_to_value
    from numpyro.infer.util import initialize_model

    if not callable(model):
        raise TypeError(f"model must be a NumPyro model function, got {type(model).__name__}.")
    _check_model_kwargs(model, args, kwargs)

    if isinstance(init, str):
        if init not in _INIT_STRATEGIES:
            raise ValueError(
                f"init must be one of {_INIT_STRATEGIES} or a dict of site values, got {init!r}."
            )
        strategy = {
            "uniform": init_to_uniform(radius=2.0),
            "prior": init_to_sample,
            "median": init_to_median(num_samples=15),
        }[init]
    elif isinstance(init, Mapping):
        strategy = init_to_value(values={k: jnp.asarray(v) for k, v in init.items()})
    else:
        raise TypeError(f"init must be a strategy name or a dict, got {type(init).__name__}.")

    model_name = getattr(model, "__name__", "model")
    dynamic, assemble, signature = _split_data(args, kwargs)
    setup_key = _hashable_or_none(
        (model, init, signature, tuple((jnp.shape(x), jnp.result_type(x)) for x in dynamic))
        if isinstance(init, str)
        else None
    )
    cached = _NUMPYRO_SETUP.get(setup_key) if setup_key is not None else None
    if cached is not None and bool(jnp.isfinite(cached.logdensity_at_start(dynamic))):
        _NUMPYRO_SETUP.move_to_end(setup_key)
        return _numpyro_target(model, args, kwargs, dynamic, assemble, signature, cached)
    trace = _trace_model(model, args, kwargs)
    latent = [
        name for name, site in trace.items() if site["type"] == "sample" and not site["is_observed"]
    ]
    if not latent:
        raise ValueError(
            f"{model_name} has no latent sample site: every numpyro.sample statement has "
            "obs= set, so there is nothing to infer. Remove obs= from the sites to infer."
        )
    discrete = [name for name in latent if getattr(trace[name]["fn"].support, "is_discrete", False)]
    if discrete:
        raise ValueError(
            f"{model_name} has discrete latent site(s) {discrete}: gradient-based kernels "
            "need continuous latents. Marginalise them (e.g. with "
            "numpyro.contrib.funsor's enumeration) or use an SMC sampler."
        )

    def _initialize(key):
        a, kw = assemble(dynamic)
        try:
            return initialize_model(
                key, model, init_strategy=strategy, dynamic_args=True, model_args=a, model_kwargs=kw
            )
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

    info = _initialize(jax.random.PRNGKey(0))
    setup = _numpyro_setup(model, strategy, assemble, info)
    if setup_key is not None:
        _NUMPYRO_SETUP[setup_key] = setup
        if len(_NUMPYRO_SETUP) > _NUMPYRO_SETUP_MAX_ENTRIES:
            _NUMPYRO_SETUP.popitem(last=False)
    return _numpyro_target(model, args, kwargs, dynamic, assemble, signature, setup)


class _NumPyroSetup(NamedTuple):
    """What ``from_numpyro`` takes from NumPyro, as functions of the data arrays."""

    logdensity_with_data: Callable
    constrain_with_data: Callable
    init_with_data: Callable
    example_position: Any
    logdensity_at_start: Callable  # jitted: data -> log density at example_position


def _numpyro_setup(model, strategy, assemble, info) -> _NumPyroSetup:
    from numpyro.infer.util import initialize_model

    potential_gen = info.potential_fn
    postprocess_gen = info.postprocess_fn
    example = info.param_info.z

    def logdensity_with_data(data, z):
        a, kw = assemble(data)
        return -potential_gen(*a, **kw)(z)

    def constrain_with_data(data, z):
        a, kw = assemble(data)
        return postprocess_gen(*a, **kw)(z)

    def init_with_data(key, num, data):
        a, kw = assemble(data)
        keys = jax.random.split(key, num)
        batched = initialize_model(
            keys, model, init_strategy=strategy, dynamic_args=True, model_args=a, model_kwargs=kw
        )
        return batched.param_info.z

    at_start = jax.jit(lambda data: logdensity_with_data(data, example))
    return _NumPyroSetup(
        logdensity_with_data, constrain_with_data, init_with_data, example, at_start
    )


def _numpyro_target(model, args, kwargs, dynamic, assemble, signature, setup) -> Target:
    return Target(
        logdensity_with_data=setup.logdensity_with_data,
        constrain_with_data=setup.constrain_with_data,
        init_with_data=setup.init_with_data,
        data=dynamic,
        example_position=setup.example_position,
        model=model,
        model_args=tuple(args),
        model_kwargs=dict(kwargs),
        name=getattr(model, "__name__", "model"),
        assemble_model_args=assemble,
        compile_key=_hashable_or_none(("numpyro", model, signature)),
    )
