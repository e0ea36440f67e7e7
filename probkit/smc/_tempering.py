"""Tempering paths for SMC samplers, and the adaptive choice of the next temperature.

A tempered SMC sampler moves particles along ``pi_lambda(x) ∝ p_0(x) L(x)^lambda``
from ``lambda = 0`` (a distribution we can sample) to ``lambda = 1`` (the target).
For a NumPyro model, ``p_0`` is the prior and ``L`` the likelihood of the observed
sites (``numpyro.factor`` terms included), both on NumPyro's unconstrained space
(Jacobians in ``p_0``), computed from one trace of the model. For any other
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
        log_prior_and_likelihood: ``(data, x) -> (log p_0(x), log L(x))``, both from
            one evaluation of the model.
        sample_prior: ``(key, n, data) -> (n, d)`` draws from ``p_0``.
        constrain: ``(data, x) -> dict`` of model values at the flat position ``x``.
        num_dims: ``d``.
    """

    log_prior_and_likelihood: Callable[[PyTree, jax.Array], tuple[jax.Array, jax.Array]]
    sample_prior: Callable[[jax.Array, int, PyTree], jax.Array]
    constrain: Callable[[PyTree, jax.Array], dict]
    num_dims: int

    def log_prior(self, data: PyTree, x: jax.Array) -> jax.Array:
        """``log p_0(x)``."""
        return self.log_prior_and_likelihood(data, x)[0]

    def log_likelihood(self, data: PyTree, x: jax.Array) -> jax.Array:
        """``log L(x)``."""
        return self.log_prior_and_likelihood(data, x)[1]

    def log_density(self, data: PyTree, x: jax.Array, temperature: jax.Array) -> jax.Array:
        """``log p_0(x) + temperature * log L(x)``, the tempered log density."""
        log_prior, log_likelihood = self.log_prior_and_likelihood(data, x)
        return log_prior + temperature * log_likelihood


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


def _numpyro_prior_and_likelihood(model, assemble):
    from functools import partial

    from numpyro import handlers
    from numpyro.infer.util import compute_log_probs

    def log_prior_and_likelihood(data, z):
        args, kwargs = assemble(data)
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

    return log_prior_and_likelihood


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

        def reference_and_ratio(data, x):
            log_ref = reference.log_prob(x)
            return log_ref, logdensity(data, x) - log_ref

        return TemperedPath(
            log_prior_and_likelihood=reference_and_ratio,
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
    _, assemble, _ = _split_data(target.model_args, target.model_kwargs)
    latent = list(target.example_position)
    split = _numpyro_prior_and_likelihood(model, assemble)

    def log_prior_and_likelihood(data, x):
        return split(data, unravel(x))

    def sample_prior(key, n, data):
        args, kwargs = assemble(data)
        draws = Predictive(model, num_samples=n, return_sites=latent)(key, *args, **kwargs)
        unconstrained = jax.vmap(lambda p: unconstrain_fn(model, args, kwargs, p))(draws)
        return jax.vmap(lambda z: ravel_pytree(z)[0])(unconstrained)

    return TemperedPath(log_prior_and_likelihood, sample_prior, constrain, num_dims)


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
