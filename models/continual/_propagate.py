"""Propagators: density estimators that turn posterior draws into the next task's prior.

Each returns a NumPyro distribution over a flat parameter vector, so the next task's
model uses it as any other prior (``numpyro.sample("theta", prior)``) and
:func:`probkit.from_numpyro` sees its arrays as data: the compiled sampler is reused
from task to task when the prior keeps its shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions import constraints

from probkit._checks import check_key

__all__ = [
    "PROPAGATORS",
    "FlowDistribution",
    "fit_diagonal_gaussian",
    "fit_flow",
    "fit_gaussian",
    "fit_gaussian_mixture",
    "propagate",
]


def _as_draws(samples: Any, name: str = "samples") -> jax.Array:
    """Draws as ``(n, D)``: accepts ``(n, D)`` or ``(chains, draws, D)``."""
    x = jnp.asarray(samples, dtype=jnp.result_type(float))
    if x.ndim == 3:
        x = x.reshape(-1, x.shape[-1])
    if x.ndim != 2:
        raise ValueError(
            f"{name} must have shape (draws, D) or (chains, draws, D), got {x.shape}: "
            "flatten the parameters into one vector per draw."
        )
    if x.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 draws, got {x.shape[0]}.")
    if not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError(f"{name} holds non-finite values: check the sampler's diagnostics.")
    return x


def fit_gaussian(samples: Any, *, jitter: float = 1e-6) -> dist.MultivariateNormal:
    """A full-covariance Gaussian fitted to the draws (sample mean and covariance).

    Exact propagation when the posterior is Gaussian (e.g. Bayesian linear regression),
    up to Monte Carlo error. ``jitter`` times the average variance is added to the
    diagonal so that fewer draws than dimensions still give a proper prior.

    Example:
        >>> import jax
        >>> from probkit.models.continual import fit_gaussian
        >>> draws = jax.random.normal(jax.random.key(0), (200_000, 2)) * 2.0 + 1.0
        >>> prior = fit_gaussian(draws)
        >>> [round(float(v), 1) for v in prior.loc], round(float(prior.covariance_matrix[0, 0]), 1)
        ([1.0, 1.0], 4.0)
    """
    x = _as_draws(samples)
    mean = x.mean(0)
    cov = jnp.cov(x.T).reshape(x.shape[1], x.shape[1])
    cov = cov + jitter * jnp.mean(jnp.diag(cov)) * jnp.eye(x.shape[1])
    return dist.MultivariateNormal(mean, scale_tril=jnp.linalg.cholesky(cov))


def fit_diagonal_gaussian(samples: Any) -> dist.Independent:
    """A diagonal Gaussian (the draws' means and standard deviations).

    Mean-field, as in variational continual learning: it drops every posterior
    correlation, which biases sequential inference when the posterior is correlated.

    Example:
        >>> import jax
        >>> from probkit.models.continual import fit_diagonal_gaussian
        >>> prior = fit_diagonal_gaussian(jax.random.normal(jax.random.key(0), (1000, 3)))
        >>> prior.event_shape
        (3,)
    """
    x = _as_draws(samples)
    return dist.Normal(x.mean(0), x.std(0, ddof=1)).to_event(1)


def fit_gaussian_mixture(
    key: jax.Array,
    samples: Any,
    num_components: int = 3,
    *,
    num_steps: int = 100,
    jitter: float = 1e-4,
) -> dist.MixtureSameFamily:
    """A Gaussian mixture fitted by EM (ott-jax's ``fit_model_em`` from k-means++).

    Draws are standardised before the fit and the mixture mapped back afterwards;
    ``jitter`` (in standardised units) is added to each component's covariance diagonal,
    as scikit-learn's ``reg_covar`` does, so that no component collapses.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.continual import fit_gaussian_mixture
        >>> k1, k2 = jax.random.split(jax.random.key(0))
        >>> x = jnp.concatenate([jax.random.normal(k1, (500, 2)) - 4,
        ...                      jax.random.normal(k2, (500, 2)) + 4])
        >>> prior = fit_gaussian_mixture(jax.random.key(1), x, num_components=2)
        >>> sorted(round(float(m), 0) for m in prior.component_distribution.loc[:, 0])
        [-4.0, 4.0]
    """
    check_key(key)
    if (
        isinstance(num_components, bool)
        or not isinstance(num_components, int | np.integer)
        or num_components < 1
    ):
        raise ValueError(f"num_components must be an int >= 1, got {num_components!r}.")
    from ott.tools.gaussian_mixture import fit_gmm

    x = _as_draws(samples)
    if x.shape[0] < 2 * num_components:
        raise ValueError(
            f"fit_gaussian_mixture needs at least 2 draws per component: {x.shape[0]} draws "
            f"for num_components={num_components}."
        )
    centre, spread = x.mean(0), x.std(0) + 1e-12
    z = (x - centre) / spread
    gmm = fit_gmm.initialize(key, z, None, int(num_components))
    gmm = fit_gmm.fit_model_em(gmm, z, None, int(num_steps))
    d = x.shape[1]
    cov = gmm.covariance + jitter * jnp.eye(d)
    # back to the original units: x = centre + spread * z
    loc = centre + spread * gmm.loc
    scale_tril = spread[:, None] * jnp.linalg.cholesky(cov)
    return dist.MixtureSameFamily(
        dist.Categorical(logits=gmm.log_component_weights()),
        dist.MultivariateNormal(loc, scale_tril=scale_tril),
    )


class FlowDistribution(dist.Distribution):
    """A flowjax distribution as a NumPyro distribution over real vectors (a pytree).

    The flow's arrays are pytree leaves, so a NumPyro model that samples from it can be
    handed to :func:`probkit.from_numpyro` with the flow as an argument: its weights are
    then data of the jitted sampler, not compile-time constants.

    Example:
        >>> import jax
        >>> from flowjax.distributions import StandardNormal
        >>> from probkit.models.continual import FlowDistribution
        >>> d = FlowDistribution(StandardNormal((2,)))
        >>> round(float(d.log_prob(jax.numpy.zeros(2))), 4)
        -1.8379
    """

    support = constraints.real_vector
    pytree_data_fields = ("flow",)

    def __init__(self, flow: Any, *, validate_args: bool | None = None):
        if len(flow.shape) != 1 or flow.cond_shape is not None:
            raise ValueError(
                f"FlowDistribution needs an unconditional flow over vectors, got shape "
                f"{flow.shape} and cond_shape {flow.cond_shape}."
            )
        self.flow = flow
        super().__init__(batch_shape=(), event_shape=tuple(flow.shape), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        check_key(key)
        return self.flow.sample(key, tuple(sample_shape))

    def log_prob(self, value):
        return self.flow.log_prob(value)


def fit_flow(
    key: jax.Array,
    samples: Any,
    *,
    flow_layers: int = 4,
    nn_width: int = 32,
    max_epochs: int = 200,
    max_patience: int = 10,
    learning_rate: float = 1e-3,
    batch_size: int = 128,
) -> FlowDistribution:
    """A masked autoregressive flow (flowjax) fitted to the draws by maximum likelihood.

    The draws are standardised first (an affine bijection is appended to the flow), the
    flow is trained with flowjax's ``fit_to_data`` (Adam, 10 % validation split, early
    stopping after ``max_patience`` epochs without improvement).

    Example:
        >>> import jax
        >>> from probkit.models.continual import fit_flow
        >>> draws = jax.random.normal(jax.random.key(0), (500, 2))
        >>> prior = fit_flow(jax.random.key(1), draws, max_epochs=5)
        >>> prior.sample(jax.random.key(2), (3,)).shape
        (3, 2)
    """
    check_key(key)
    from flowjax.bijections import Affine
    from flowjax.distributions import StandardNormal, Transformed
    from flowjax.flows import masked_autoregressive_flow
    from flowjax.train import fit_to_data

    x = _as_draws(samples)
    d = x.shape[1]
    centre, spread = x.mean(0), x.std(0) + 1e-12
    k_init, k_fit = jax.random.split(key)
    flow = masked_autoregressive_flow(
        k_init, base_dist=StandardNormal((d,)), flow_layers=int(flow_layers), nn_width=nn_width
    )
    flow, _ = fit_to_data(
        k_fit,
        flow,
        (x - centre) / spread,
        learning_rate=learning_rate,
        max_epochs=int(max_epochs),
        max_patience=int(max_patience),
        batch_size=int(min(batch_size, x.shape[0] // 2)),
        show_progress=False,
    )
    return FlowDistribution(Transformed(flow, Affine(centre, spread)))


#: The propagators by name: ``(key, draws, **options) -> NumPyro distribution``.
PROPAGATORS: dict[str, Callable[..., dist.Distribution]] = {
    "gaussian": lambda key, x, **kw: fit_gaussian(x, **kw),
    "diagonal": lambda key, x, **kw: fit_diagonal_gaussian(x, **kw),
    "mixture": fit_gaussian_mixture,
    "flow": fit_flow,
}


def propagate(
    samples: Any,
    method: str | Callable = "gaussian",
    *,
    key: jax.Array | None = None,
    **options: Any,
) -> dist.Distribution:
    """Turn posterior draws into a prior: ``"gaussian"`` (full covariance),
    ``"diagonal"``, ``"mixture"`` (Gaussian mixture by EM) or ``"flow"`` (masked
    autoregressive flow), or a function ``(key, draws, **options) -> distribution``.

    Args:
        samples: ``(draws, D)`` or ``(chains, draws, D)`` posterior draws of a flat
            parameter vector.
        method: the density estimator.
        key: randomness of the mixture's initialisation and the flow's training (default
            ``PRNGKey(0)``).
        **options: passed to the estimator (e.g. ``num_components``, ``flow_layers``).

    Returns:
        A NumPyro distribution with event shape ``(D,)``.

    Example:
        >>> import jax
        >>> from probkit.models.continual import propagate
        >>> draws = jax.random.normal(jax.random.key(0), (2, 500, 3))
        >>> propagate(draws, "diagonal").event_shape
        (3,)
    """
    if key is not None:
        check_key(key)
    if isinstance(method, str):
        if method not in PROPAGATORS:
            raise ValueError(
                f"method must be one of {sorted(PROPAGATORS)} or a function, got {method!r}."
            )
        method = PROPAGATORS[method]
    elif not callable(method):
        raise TypeError(f"method must be a name or a function, got {type(method).__name__}.")
    if key is None:
        key = jax.random.PRNGKey(0)
    prior = method(key, _as_draws(samples), **options)
    if not isinstance(prior, dist.Distribution) or len(prior.event_shape) != 1:
        raise TypeError("a propagator must return a NumPyro distribution over vectors.")
    check = prior.log_prob(_as_draws(samples)[:8])
    if not bool(np.all(np.isfinite(np.asarray(check)))):
        raise FloatingPointError(
            "the fitted prior has non-finite log density at the draws it was fitted to; "
            "try another method or more draws."
        )
    return prior
