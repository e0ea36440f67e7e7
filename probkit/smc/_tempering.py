"""Tempering paths for SMC samplers, and the adaptive choice of the next temperature.

A tempered SMC sampler moves particles along ``pi_lambda(x) ∝ p_0(x) L(x)^lambda``
from ``lambda = 0`` (a distribution we can sample) to ``lambda = 1`` (the target).
For a NumPyro model, ``p_0`` is the prior and ``L`` the likelihood of the observed
sites (``numpyro.factor`` terms included), both on NumPyro's unconstrained space
(Jacobians in ``p_0``), computed from one trace of the model. For any other
target, ``p_0`` is a user-given reference distribution and
``L = target / reference`` (a geometric path).

Everything works on flat unconstrained vectors of length ``d``. A
:class:`TemperedPath` is an ``equinox.Module``: its functions and the layout of a
position are static, its data (the model's array arguments, the reference's
parameters) are array leaves, so a sampler jitted with ``equinox.filter_jit``
compiles once per model and data shapes, and new data of those shapes are arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.scipy.special import logsumexp

__all__ = ["TemperedPath", "tempered_path", "next_temperature"]

PyTree = Any


class _ByIdentity:
    """A static value that cannot be hashed, compared by identity (compiles per object)."""

    def __init__(self, value: Any):
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other) -> bool:
        return isinstance(other, _ByIdentity) and other.value is self.value


def _hashable(value: Any) -> Hashable:
    try:
        hash(value)
    except TypeError:
        return _ByIdentity(value)
    return value


def _is_data(leaf: Any) -> bool:
    """Arrays travel as jit arguments; Python scalars and strings stay static."""
    return isinstance(leaf, np.ndarray | jax.Array)


def _split_model_arguments(args: tuple, kwargs: dict) -> tuple[tuple, Hashable]:
    """``(arrays, signature)``: the model's array arguments, and all the rest (static)."""
    leaves, treedef = jax.tree_util.tree_flatten((tuple(args), dict(kwargs)))
    mask = tuple(_is_data(leaf) for leaf in leaves)
    arrays = tuple(leaf for leaf, d in zip(leaves, mask, strict=True) if d)
    static = tuple(None if d else _hashable(leaf) for leaf, d in zip(leaves, mask, strict=True))
    return arrays, (treedef, mask, static)


def _assemble(signature: Hashable, arrays: tuple) -> tuple[tuple, dict]:
    treedef, mask, static = signature
    it = iter(arrays)
    leaves = [
        next(it) if d else (s.value if isinstance(s, _ByIdentity) else s)
        for s, d in zip(static, mask, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _layout(position: PyTree) -> Hashable:
    leaves, treedef = jax.tree_util.tree_flatten(position)
    return treedef, tuple(jnp.shape(x) for x in leaves), tuple(jnp.result_type(x) for x in leaves)


def _unravel(layout: Hashable, x: jax.Array) -> PyTree:
    treedef, shapes, dtypes = layout
    sizes = [int(np.prod(shape)) for shape in shapes]
    pieces = jnp.split(x, np.cumsum(sizes)[:-1]) if len(sizes) > 1 else [x]
    leaves = [
        jnp.reshape(piece, shape).astype(dtype)
        for piece, shape, dtype in zip(pieces, shapes, dtypes, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, leaves)


class TemperedPath(eqx.Module):
    """The two ends of a tempering path, on flat unconstrained vectors, with their data.

    Built by :func:`tempered_path`. Static: the NumPyro model, the model's non-array
    arguments and the layout of a position. Array leaves: ``data`` (the model's array
    arguments, or the target's data), ``reference`` (a NumPyro distribution, or
    ``None``) and any arrays inside a plain target's functions; jit functions of a
    path with ``equinox.filter_jit`` (``jax.jit`` takes NumPyro paths as arguments too).

    Example:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist
        >>> import probkit as pk
        >>> from probkit.smc import tempered_path
        >>> target = pk.Target.from_logdensity(lambda x: -jnp.sum(x**2), jnp.zeros(2))
        >>> path = tempered_path(target, reference=dist.Normal(jnp.zeros(2), 3.0).to_event(1))
        >>> path.sample_prior(jax.random.key(0), 5).shape, path.num_dims
        ((5, 2), 2)
    """

    data: PyTree
    reference: Any
    num_dims: int = eqx.field(static=True)
    layout: Hashable = eqx.field(static=True)
    model: Callable | None = eqx.field(static=True, default=None)
    signature: Hashable = eqx.field(static=True, default=None)
    latent: tuple[str, ...] = eqx.field(static=True, default=())
    # A target's own functions may be pytrees with arrays (equinox bound methods):
    # not static, so that equinox.filter_jit passes their arrays as arguments.
    logdensity_fn: Callable | None = None
    constrain_fn: Callable | None = None

    def _model_args(self) -> tuple[tuple, dict]:
        return _assemble(self.signature, self.data)

    def unravel(self, x: jax.Array) -> PyTree:
        """The target's position pytree of a flat vector ``x``."""
        return _unravel(self.layout, x)

    def _log_target(self, x: jax.Array) -> jax.Array:
        if self.model is None:
            return self.logdensity_fn(self.data, self.unravel(x))
        from numpyro.infer.util import potential_energy

        args, kwargs = self._model_args()
        return -potential_energy(self.model, args, kwargs, self.unravel(x))

    def log_prior_and_likelihood(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(log p_0(x), log L(x))`` from one evaluation of the model."""
        if self.reference is not None:
            log_ref = self.reference.log_prob(x)
            return log_ref, self._log_target(x) - log_ref
        args, kwargs = self._model_args()
        return _numpyro_prior_and_likelihood(self.model, args, kwargs, self.unravel(x))

    def log_likelihood(self, x: jax.Array) -> jax.Array:
        """``log L(x)``."""
        return self.log_prior_and_likelihood(x)[1]

    def log_density(self, x: jax.Array, temperature: jax.Array) -> jax.Array:
        """``log p_0(x) + temperature * log L(x)``, the tempered log density."""
        log_prior, log_likelihood = self.log_prior_and_likelihood(x)
        return log_prior + temperature * log_likelihood

    def sample_prior(self, key: jax.Array, n: int) -> jax.Array:
        """``(n, d)`` draws from ``p_0``."""
        if self.reference is not None:
            return self.reference.sample(key, (n,))
        from numpyro.infer import Predictive
        from numpyro.infer.util import unconstrain_fn

        args, kwargs = self._model_args()
        predictive = Predictive(self.model, num_samples=n, return_sites=list(self.latent))
        draws = predictive(key, *args, **kwargs)
        unconstrained = jax.vmap(lambda p: unconstrain_fn(self.model, args, kwargs, p))(draws)
        return jax.vmap(lambda z: ravel_pytree(z)[0])(unconstrained)

    def constrain(self, x: jax.Array) -> dict:
        """The model's values (sample and deterministic sites) at the flat position ``x``."""
        if self.model is None:
            return self.constrain_fn(self.data, self.unravel(x))
        from numpyro.infer.util import constrain_fn

        args, kwargs = self._model_args()
        return constrain_fn(self.model, args, kwargs, self.unravel(x), return_deterministic=True)


def _unconstrain_site(params: dict, site: dict):
    """Substitute the unconstrained value of a latent site, adding its log-Jacobian.

    Mirrors what NumPyro's ``potential_energy`` does, so that one trace of the
    model yields every term of the log density: latent sites and their Jacobians
    (``_<name>_log_det`` factors) form the prior, observed sites the likelihood.
    """
    import numpyro
    from numpyro.distributions import biject_to, constraints
    from numpyro.distributions.util import sum_rightmost

    name = site["name"]
    if name not in params or site["type"] != "sample":
        return None
    value_u = params[name]
    support = site["fn"].support
    if support is constraints.real or (
        isinstance(support, constraints.independent) and support.base_constraint is constraints.real
    ):
        return value_u
    transform = biject_to(support)
    value = transform(value_u)
    log_det = transform.log_abs_det_jacobian(value_u, value)
    log_det = sum_rightmost(
        log_det, jnp.ndim(log_det) - jnp.ndim(value) + len(site["fn"].event_shape)
    )
    numpyro.factor(f"_{name}_log_det", log_det)
    return value


def _numpyro_prior_and_likelihood(model, args, kwargs, z):
    from functools import partial

    from numpyro import handlers
    from numpyro.infer.util import compute_log_probs

    reparam = handlers.substitute(model, substitute_fn=partial(_unconstrain_site, z))
    log_probs, trace = compute_log_probs(reparam, args, kwargs, {})
    log_prior = jnp.zeros(())
    log_likelihood = jnp.zeros(())
    for name, value in log_probs.items():
        site = trace[name]
        jacobian = name.startswith("_") and name.endswith("_log_det") and name[1:-8] in z
        if site["is_observed"] and not jacobian:
            log_likelihood = log_likelihood + value
        else:
            log_prior = log_prior + value
    return log_prior, log_likelihood


def _improper_sites(target) -> list[str]:
    from numpyro import handlers
    from numpyro.infer import init_to_uniform

    # Substitute initial values so that improper sites are never sampled.
    model = handlers.substitute(
        handlers.seed(target.model, rng_seed=0), substitute_fn=init_to_uniform
    )
    trace = handlers.trace(model).get_trace(*target.model_args, **dict(target.model_kwargs))
    improper = []
    for name, site in trace.items():
        if site["type"] == "sample" and not site["is_observed"]:
            fn = site["fn"]
            while hasattr(fn, "base_dist"):
                fn = fn.base_dist
            if type(fn).__name__ == "ImproperUniform":
                improper.append(name)
    return improper


def as_target(target, what: str = "target"):
    """``target`` itself if it is a :class:`probkit.Target`; a NumPyro model without
    arguments becomes one; anything else gets an error that says what to pass."""
    from probkit.target import Target, from_numpyro

    if isinstance(target, Target):
        if target.gibbs_sites:
            raise ValueError(
                f"{target.name} has discrete latent site(s) {list(target.gibbs_sites)} with "
                "an infinite support, which tempered SMC's continuous moves cannot update. "
                "Sample it with pk.mcmc.sample(target) (kernel='nuts' or 'hmc', which update "
                "those sites by Metropolis-within-Gibbs), or marginalise them in the model."
            )
        return target
    if callable(target):
        try:
            required = [
                p
                for p in inspect.signature(target).parameters.values()
                if p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
        except (TypeError, ValueError):
            required = None
        if required == []:
            return from_numpyro(target)
        raise TypeError(
            f"{what} must be a probkit.Target; got the function "
            f"{getattr(target, '__name__', target)!r}, which takes arguments. For a NumPyro "
            "model pass pk.from_numpyro(model, *args, **kwargs) (its data bound); for a log "
            "density pass pk.Target.from_logdensity(fn, example_position) with reference=. "
            "Tempered SMC moves particles with continuous MCMC kernels, so discrete latent "
            "sites must be marginalised first (e.g. numpyro.contrib.funsor enumeration)."
        )
    raise TypeError(
        f"{what} must be a probkit.Target (pk.from_numpyro(model, *args, **kwargs) or "
        f"pk.Target.from_logdensity(fn, example_position)), got {type(target).__name__}."
    )


def tempered_path(target, reference=None) -> TemperedPath:
    """Split a :class:`probkit.Target` into the prior and likelihood of a tempering path.

    Args:
        target: a target from :func:`probkit.from_numpyro` (prior -> posterior path)
            or :meth:`probkit.Target.from_logdensity` (needs ``reference``).
        reference: a NumPyro distribution with event shape ``(d,)`` on the flat
            unconstrained position; the path then runs from it to the target
            (``L = target / reference``), for NumPyro targets too.

    Raises:
        ValueError: no reference for a target without a model, or a model with an
            improper (flat) prior, which cannot be sampled.

    Example:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist
        >>> import probkit as pk
        >>> from probkit.smc import tempered_path
        >>> target = pk.Target.from_logdensity(lambda x: -jnp.sum(x**2), jnp.zeros(2))
        >>> path = tempered_path(target, reference=dist.Normal(jnp.zeros(2), 3.0).to_event(1))
        >>> path.sample_prior(jax.random.key(0), 5).shape
        (5, 2)
    """
    target = as_target(target)
    num_dims = int(ravel_pytree(target.example_position)[0].shape[0])
    layout = _layout(target.example_position)
    if reference is not None:
        event_shape = tuple(getattr(reference, "event_shape", ()))
        batch_shape = tuple(getattr(reference, "batch_shape", ()))
        if not hasattr(reference, "log_prob") or event_shape != (num_dims,) or batch_shape:
            raise ValueError(
                f"reference must be a NumPyro distribution with event shape ({num_dims},) on "
                "the flat unconstrained position (e.g. dist.Normal(jnp.zeros(d), 5.0)"
                f".to_event(1)); got event shape {event_shape} and batch shape {batch_shape}."
            )
    elif target.model is None:
        raise ValueError(
            "this target has no NumPyro model, so there is no prior to temper from: pass "
            "reference=<a NumPyro distribution over the flat position>, e.g. "
            f"dist.Normal(jnp.zeros({num_dims}), 5.0).to_event(1), broad enough to cover "
            "the target."
        )
    else:
        improper = _improper_sites(target)
        if improper:
            raise ValueError(
                f"the prior of site(s) {improper} is improper (flat), so particles cannot be "
                "drawn from it: pass reference=<a proper NumPyro distribution over the flat "
                "unconstrained position> to temper from it instead."
            )
    if target.model is None:
        return TemperedPath(
            data=target.data,
            reference=reference,
            num_dims=num_dims,
            layout=layout,
            logdensity_fn=target.logdensity_with_data,
            constrain_fn=target.constrain_with_data,
        )
    arrays, signature = _split_model_arguments(target.model_args, dict(target.model_kwargs))
    return TemperedPath(
        data=arrays,
        reference=reference,
        num_dims=num_dims,
        layout=layout,
        model=target.model,
        signature=signature,
        latent=tuple(target.example_position),
    )


# Why not blackjax's ``blackjax.smc.ess.ess_solver``: it assumes equal current weights
# (blackjax resamples at every step) and maps NaN log-likelihoods to weight one with
# ``nan_to_num``; the conditional ESS below takes any weights and gives NaN weight zero.
def next_temperature(
    log_weights: jax.Array,
    log_likelihood: jax.Array,
    temperature: jax.Array,
    target_ess: float,
    num_bisection_steps: int = 50,
) -> jax.Array:
    """The next temperature whose conditional ESS is ``target_ess * N``, by bisection.

    The conditional ESS of an increment ``delta`` (Zhou, Johansen & Aston 2016) is
    ``N (sum_i W_i w_i)^2 / sum_i W_i w_i^2`` with ``w_i = L(x_i)^delta``; it equals the
    ESS of the new weights when ``W`` is uniform. Returns 1 when the whole remaining
    step keeps enough ESS.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.smc import next_temperature
        >>> log_w = jnp.full(4, -jnp.log(4.0))
        >>> float(next_temperature(log_w, jnp.zeros(4), jnp.asarray(0.2), 0.5))
        1.0
    """
    log_likelihood = jnp.where(jnp.isnan(log_likelihood), -jnp.inf, log_likelihood)
    log_target = jnp.log(target_ess)

    def log_cess(delta):
        a = log_weights + delta * log_likelihood
        return 2.0 * logsumexp(a) - logsumexp(log_weights + 2.0 * delta * log_likelihood)

    upper = 1.0 - temperature

    def bisect(_, bounds):
        low, high = bounds
        mid = 0.5 * (low + high)
        ok = log_cess(mid) >= log_target
        return jnp.where(ok, mid, low), jnp.where(ok, high, mid)

    low, high = jax.lax.fori_loop(0, num_bisection_steps, bisect, (jnp.zeros_like(upper), upper))
    # `low` keeps the ESS above target; if no positive step does, take the smallest
    # step tried rather than stalling at zero.
    delta = jnp.where(low > 0, low, high)
    delta = jnp.where(log_cess(upper) >= log_target, upper, delta)
    return jnp.minimum(temperature + delta, 1.0)
