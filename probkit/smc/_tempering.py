"""Tempering paths for SMC samplers, and the adaptive choice of the next temperature.

A tempered SMC sampler moves particles along ``pi_lambda(x) ∝ p_0(x) L(x)^lambda``
from ``lambda = 0`` (a distribution we can sample) to ``lambda = 1`` (the target).
For a NumPyro model, ``p_0`` is the prior and ``L`` the likelihood of the observed
sites, both on NumPyro's unconstrained space (Jacobians in ``p_0``). For any other
target, ``p_0`` is a user-given reference distribution and
``L = target / reference`` (a geometric path).

Everything works on flat unconstrained vectors of length ``d``
(``jax.flatten_util.ravel_pytree`` of the target's position).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.scipy.special import logsumexp

__all__ = ["TemperedPath", "tempered_path", "next_temperature"]

PyTree = Any


class TemperedPath(NamedTuple):
    """The two ends of a tempering path, on flat unconstrained vectors.

    All functions take the target's data pytree first, so that drivers pass it to
    ``jit`` as an argument.

    Attributes:
        log_prior: ``(data, x) -> log p_0(x)``.
        log_likelihood: ``(data, x) -> log L(x)``.
        sample_prior: ``(key, n, data) -> (n, d)`` draws from ``p_0``.
        constrain: ``(data, x) -> dict`` of model values at the flat position ``x``.
        num_dims: ``d``.
    """

    log_prior: Callable[[PyTree, jax.Array], jax.Array]
    log_likelihood: Callable[[PyTree, jax.Array], jax.Array]
    sample_prior: Callable[[jax.Array, int, PyTree], jax.Array]
    constrain: Callable[[PyTree, jax.Array], dict]
    num_dims: int


def _observed_log_likelihood(model, assemble, constrain_with_data):
    from numpyro import handlers

    def log_likelihood(data, z):
        args, kwargs = assemble(data)
        values = constrain_with_data(data, z)
        trace = handlers.trace(handlers.substitute(model, data=values)).get_trace(*args, **kwargs)
        total = jnp.zeros(())
        for site in trace.values():
            if site["type"] == "sample" and site["is_observed"]:
                log_prob = site["fn"].log_prob(site["value"])
                if site.get("scale") is not None:
                    log_prob = site["scale"] * log_prob
                total = total + jnp.sum(log_prob)
        return total

    return log_likelihood


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
        >>> path.sample_prior(jax.random.key(0), 5, target.data).shape
        (5, 2)
    """
    _, unravel = ravel_pytree(target.example_position)
    flat0, _ = ravel_pytree(target.example_position)
    num_dims = int(flat0.shape[0])
    constrain = lambda data, x: target.constrain_with_data(data, unravel(x))
    logdensity = lambda data, x: target.logdensity_with_data(data, unravel(x))

    if reference is not None:
        event_shape = tuple(getattr(reference, "event_shape", ()))
        batch_shape = tuple(getattr(reference, "batch_shape", ()))
        if not hasattr(reference, "log_prob") or event_shape != (num_dims,) or batch_shape:
            raise ValueError(
                f"reference must be a NumPyro distribution with event shape ({num_dims},) on "
                "the flat unconstrained position (e.g. dist.Normal(jnp.zeros(d), 5.0)"
                f".to_event(1)); got event shape {event_shape} and batch shape {batch_shape}."
            )
        return TemperedPath(
            log_prior=lambda data, x: reference.log_prob(x),
            log_likelihood=lambda data, x: logdensity(data, x) - reference.log_prob(x),
            sample_prior=lambda key, n, data: reference.sample(key, (n,)),
            constrain=constrain,
            num_dims=num_dims,
        )

    if target.model is None:
        raise ValueError(
            "this target has no NumPyro model, so there is no prior to temper from: pass "
            "reference=<a NumPyro distribution over the flat position>, e.g. "
            f"dist.Normal(jnp.zeros({num_dims}), 5.0).to_event(1), broad enough to cover "
            "the target."
        )
    improper = _improper_sites(target)
    if improper:
        raise ValueError(
            f"the prior of site(s) {improper} is improper (flat), so particles cannot be "
            "drawn from it: pass reference=<a proper NumPyro distribution over the flat "
            "unconstrained position> to temper from it instead."
        )

    from numpyro.infer import Predictive
    from numpyro.infer.util import unconstrain_fn

    from probkit.target import _split_data

    model = target.model
    _, assemble = _split_data(target.model_args, target.model_kwargs)
    latent = list(target.example_position)
    log_likelihood_z = _observed_log_likelihood(model, assemble, target.constrain_with_data)

    def log_likelihood(data, x):
        return log_likelihood_z(data, unravel(x))

    def log_prior(data, x):
        # The model's log density minus its likelihood: the prior on the
        # unconstrained space, Jacobians included.
        return logdensity(data, x) - log_likelihood(data, x)

    def sample_prior(key, n, data):
        args, kwargs = assemble(data)
        draws = Predictive(model, num_samples=n, return_sites=latent)(key, *args, **kwargs)
        unconstrained = jax.vmap(lambda p: unconstrain_fn(model, args, kwargs, p))(draws)
        return jax.vmap(lambda z: ravel_pytree(z)[0])(unconstrained)

    return TemperedPath(log_prior, log_likelihood, sample_prior, constrain, num_dims)


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
