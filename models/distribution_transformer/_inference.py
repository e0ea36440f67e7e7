"""Posterior queries with the shipped (or your own) networks, and sequential inference.

:func:`posterior` validates a query against the region its network was trained on
(dimension, number of components, number of observations, prior means and scales, and
the likelihood parameters), pads it, runs the network and returns a :class:`GMM`.
:func:`prepare_query` and :func:`apply_model` are the pure pieces under it, for users who
``jit``/``vmap`` queries themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from probkit.models.distribution_transformer._exact import check_linear_gaussian
from probkit.models.distribution_transformer._gmm import GMM
from probkit.models.distribution_transformer._io import load_pretrained
from probkit.models.distribution_transformer._network import DistributionTransformer
from probkit.models.distribution_transformer._tasks import (
    TASKS,
    Query,
    TaskRanges,
    linear_gaussian_features,
    logistic_regression_features,
)

__all__ = ["posterior", "sequential_posterior", "prepare_query", "apply_model", "check_prior_range"]

_TASK_FAMILIES = ("linear_gaussian", "logistic_regression")


def check_prior_range(prior: GMM, ranges: TaskRanges, task_name: str) -> None:
    """Raise if ``prior`` lies outside the meta-prior a network was trained on.

    Components with weight below ``1e-4`` are not checked (they barely matter).

    Args:
        prior: the prior.
        ranges: the task's trained ranges.
        task_name: used in the message.

    Raises:
        ValueError: naming the violated range.

    Example:
        >>> import jax.numpy as jnp
        >>> import probkit.models.distribution_transformer as dt
        >>> dt.check_prior_range(dt.gaussian(jnp.zeros(1), jnp.eye(1)), dt.TaskRanges(), "1-D")
    """
    if prior.num_components > ranges.max_components:
        raise ValueError(
            f"prior has {prior.num_components} components; task {task_name!r} was trained on "
            f"1 to {ranges.max_components}."
        )
    weights = np.asarray(prior.weights)
    used = weights > 1e-4
    means = np.asarray(prior.means)[used]
    stds = np.sqrt(np.linalg.eigvalsh(np.asarray(prior.covariances, np.float64)[used]))
    if np.abs(means).max() > ranges.mean_bound:
        raise ValueError(
            f"prior component means must lie in [-{ranges.mean_bound}, {ranges.mean_bound}] "
            f"(the range task {task_name!r} was trained on); got max |mean| = "
            f"{np.abs(means).max():.3g}. Rescale the problem or train your own network."
        )
    if stds.min() < ranges.std_min * (1 - 1e-3) or stds.max() > ranges.std_max * (1 + 1e-3):
        raise ValueError(
            f"prior component standard deviations (square roots of covariance eigenvalues) "
            f"must lie in [{ranges.std_min}, {ranges.std_max}] (the range task {task_name!r} "
            f"was trained on); got [{stds.min():.3g}, {stds.max():.3g}]."
        )


def _pad_prior(prior: GMM, max_components: int, num_components: int | None):
    k, d = prior.num_components, prior.dim
    parametric = False
    chol = prior.cholesky()
    log_w = jnp.log(prior.weights)
    means = prior.means
    if num_components is not None and num_components != k:
        if k != 1:
            raise ValueError(
                f"num_components={num_components} can only expand a one-component (parametric) "
                f"prior; this prior has {k} components."
            )
        if not 1 <= num_components <= max_components:
            raise ValueError(
                f"num_components must lie in [1, {max_components}], got {num_components}."
            )
        k, parametric = num_components, True
        log_w = jnp.full((k,), -np.log(k), means.dtype)
        means = jnp.broadcast_to(means, (k, d))
        chol = jnp.broadcast_to(chol, (k, d, d))
    pad = max_components - k
    mask = jnp.arange(max_components) < k
    log_w = jnp.concatenate([log_w, jnp.full((pad,), -jnp.inf, means.dtype)])
    means = jnp.concatenate([means, jnp.zeros((pad, d), means.dtype)])
    chol = jnp.concatenate([chol, jnp.broadcast_to(jnp.eye(d, dtype=means.dtype), (pad, d, d))])
    return log_w, means, chol, mask, jnp.asarray(parametric), k


def _pad_rows(x: jax.Array, n_max: int) -> jax.Array:
    return jnp.concatenate([x, jnp.zeros((n_max - x.shape[0],) + x.shape[1:], x.dtype)])


def prepare_query(
    prior: GMM,
    observations: jax.Array,
    *,
    task: str = "linear_gaussian",
    obs_matrix: jax.Array | None = None,
    noise_std: float | None = None,
    inputs: jax.Array | None = None,
    num_components: int | None = None,
    check_range: bool = True,
) -> tuple[str, Query, int]:
    """Validate, pad and featurise a query (no network involved).

    Args:
        prior: the GMM prior.
        observations: linear-Gaussian: ``(n, d)`` observations; logistic regression:
            ``(n,)`` labels in ``{0, 1}``.
        task: ``"linear_gaussian"`` or ``"logistic_regression"``.
        obs_matrix: ``(d, d)`` matrix ``H`` (linear-Gaussian).
        noise_std: noise standard deviation (linear-Gaussian).
        inputs: ``(n, d)`` covariates (logistic regression).
        num_components: expand a one-component prior into this many tokens.
        check_range: raise on inputs outside the trained range.

    Returns:
        ``(task_name, query, num_components)``, ``query.latent`` being zeros.

    Raises:
        ValueError: for an unknown task, missing keyword parameters, wrong shapes or
            (with ``check_range``) inputs outside the trained range.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.distribution_transformer import gaussian, prepare_query
        >>> name, query, k = prepare_query(gaussian(jnp.zeros(1), jnp.eye(1)), jnp.ones((3, 1)),
        ...                                obs_matrix=jnp.eye(1), noise_std=0.5)
        >>> name, query.data_features.shape, k
        ('linear_gaussian_1d', (4, 20, 8), 1)
    """
    if not isinstance(prior, GMM):
        raise TypeError(f"prior must be a GMM, got {type(prior).__name__}.")
    if task not in _TASK_FAMILIES:
        raise ValueError(f"task must be one of {_TASK_FAMILIES}, got {task!r}.")
    name = f"{task}_{prior.dim}d"
    if name not in TASKS:
        dims = sorted(int(t.split("_")[-1][:-1]) for t in TASKS if t.startswith(task))
        raise ValueError(
            f"task {task!r} was trained for latent dimensions {dims}; the prior has dimension "
            f"{prior.dim}. Train your own network with train(...) for other dimensions."
        )
    ranges = TASKS[name].ranges
    if check_range:
        check_prior_range(prior, ranges, name)
    if task == "linear_gaussian":
        if obs_matrix is None or noise_std is None:
            raise ValueError("task='linear_gaussian' needs obs_matrix= and noise_std=.")
        observations, obs_matrix, noise_std = check_linear_gaussian(
            prior, observations, obs_matrix, noise_std
        )
        if obs_matrix.shape != (prior.dim, prior.dim):
            raise ValueError(
                f"the shipped linear-Gaussian networks were trained on square obs_matrix "
                f"(m = d = {prior.dim}); got shape {obs_matrix.shape}."
            )
        if check_range:
            bound = ranges.obs_matrix_bound
            if float(jnp.abs(obs_matrix).max()) > bound:
                raise ValueError(
                    f"obs_matrix entries must lie in [-{bound}, {bound}] (the range {name!r} "
                    f"was trained on); got max |entry| = {float(jnp.abs(obs_matrix).max()):.3g}."
                )
            if not ranges.noise_std_min <= float(noise_std) <= ranges.noise_std_max:
                raise ValueError(
                    f"noise_std must lie in [{ranges.noise_std_min}, {ranges.noise_std_max}] (the "
                    f"range {name!r} was trained on); got {float(noise_std):.3g}."
                )
    else:
        if inputs is None:
            raise ValueError(
                "task='logistic_regression' needs inputs= (covariates of shape (n, d))."
            )
        inputs = jnp.asarray(inputs, prior.means.dtype)
        observations = jnp.asarray(observations, prior.means.dtype).reshape(-1)
        if inputs.shape != (observations.shape[0], prior.dim):
            raise ValueError(
                f"inputs must have shape (n, d) = ({observations.shape[0]}, {prior.dim}), got "
                f"{inputs.shape}."
            )
        if not bool(jnp.all((observations == 0) | (observations == 1))):
            raise ValueError("observations (labels) must be 0 or 1 for logistic regression.")
    n = observations.shape[0]
    if n > ranges.max_observations:
        raise ValueError(
            f"{n} observations given; {name!r} was trained on at most {ranges.max_observations} "
            "per query. Split them into batches and use sequential_posterior."
        )
    n_max = ranges.max_observations
    data_mask = jnp.arange(n_max) < n
    log_w, means, chol, mask, parametric, k = _pad_prior(
        prior, ranges.max_components, num_components
    )
    if task == "linear_gaussian":
        feats = linear_gaussian_features(
            _pad_rows(observations, n_max), obs_matrix, noise_std, data_mask, means, chol
        )
    else:
        feats = logistic_regression_features(
            _pad_rows(inputs, n_max), _pad_rows(observations, n_max), data_mask, means, chol
        )
    query = Query(log_w, means, chol, mask, parametric, feats, data_mask, jnp.zeros(prior.dim))
    return name, query, k


def apply_model(
    model: DistributionTransformer, query: Query
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Run the network on a padded query: ``(log_weights, means, cholesky)``, padded.

    Pure and jit/vmap-able (``query.latent`` is ignored).

    Args:
        model: the network.
        query: a padded query (e.g. from :func:`prepare_query`).

    Returns:
        Posterior log weights ``(K,)``, means ``(K, d)`` and Cholesky factors ``(K, d, d)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.distribution_transformer import (
        ...     apply_model, gaussian, load_pretrained, prepare_query)
        >>> name, query, k = prepare_query(gaussian(jnp.zeros(1), jnp.eye(1)), jnp.ones((3, 1)),
        ...                                obs_matrix=jnp.eye(1), noise_std=0.5)
        >>> apply_model(load_pretrained(name), query)[1].shape
        (4, 1)
    """
    return model(
        query.log_weights,
        query.means,
        query.cholesky,
        query.component_mask,
        query.data_features,
        query.data_mask,
        query.parametric,
    )


_apply_jit = eqx.filter_jit(apply_model)


def posterior(
    prior: GMM,
    observations: jax.Array,
    *,
    task: str = "linear_gaussian",
    obs_matrix: jax.Array | None = None,
    noise_std: float | None = None,
    inputs: jax.Array | None = None,
    model: DistributionTransformer | None = None,
    num_components: int | None = None,
    check_range: bool = True,
) -> GMM:
    """Approximate posterior GMM in one forward pass of a Distribution Transformer.

    Linear-Gaussian: ``y_i = obs_matrix @ z + noise_std * eps_i``. Logistic regression:
    ``observations[i] ~ Bernoulli(sigmoid(inputs[i] @ z))``. The shipped weights cover
    latent dimension 1 and 2 (linear-Gaussian) and 2 (logistic regression), 1 to 4 prior
    components and 1 to 20 observations; :class:`TaskRanges` of ``TASKS[name]`` lists the
    prior and likelihood ranges. This driver compiles the network call once per task
    (``eqx.filter_jit``); use :func:`prepare_query` + :func:`apply_model` to control that.

    Args:
        prior: the GMM prior.
        observations: ``(n, d)`` observations (linear-Gaussian) or ``(n,)`` labels.
        task: ``"linear_gaussian"`` or ``"logistic_regression"``.
        obs_matrix: ``(d, d)`` observation matrix (linear-Gaussian).
        noise_std: observation noise standard deviation (linear-Gaussian).
        inputs: ``(n, d)`` covariates (logistic regression).
        model: a network of your own (default: the shipped one for the task and dimension).
        num_components: expand a one-component (parametric) prior into this many
            posterior components.
        check_range: raise on inputs outside the trained range (default True).

    Returns:
        The posterior GMM (as many components as the prior, or ``num_components``).

    Raises:
        ValueError: on bad shapes, missing task parameters or inputs outside the trained range.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.distribution_transformer import gaussian, posterior
        >>> post = posterior(gaussian(jnp.zeros(2), jnp.eye(2)), jnp.ones((5, 2)),
        ...                  obs_matrix=jnp.eye(2), noise_std=0.5)
        >>> post.means.shape
        (1, 2)
    """
    observations = jnp.asarray(observations)
    if observations.shape[0] == 0:
        return prior
    name, query, k = prepare_query(
        prior,
        observations,
        task=task,
        obs_matrix=obs_matrix,
        noise_std=noise_std,
        inputs=inputs,
        num_components=num_components,
        check_range=check_range,
    )
    if model is None:
        model = load_pretrained(name)
    log_w, means, chol = _apply_jit(model, query)
    chol = chol[:k]
    cov = chol @ jnp.swapaxes(chol, -1, -2)
    return GMM(jnp.exp(log_w[:k]), means[:k], 0.5 * (cov + jnp.swapaxes(cov, -1, -2)))


def sequential_posterior(
    prior: GMM,
    observation_batches: Sequence[jax.Array],
    *,
    input_batches: Sequence[jax.Array] | None = None,
    num_components: int | None = None,
    **kwargs,
) -> list[GMM]:
    """Feed each posterior back as the next prior over a stream of observation batches.

    The number of components stays fixed (the prior's, or ``num_components`` for a
    one-component prior expanded at the first step), whereas an exact filter for a GMM
    prior also keeps ``K`` components here (the latent is static) — so no truncation.

    Args:
        prior: the initial GMM prior.
        observation_batches: one array of observations per step.
        input_batches: one array of covariates per step (logistic regression).
        num_components: expand a one-component prior at the first step.
        **kwargs: passed to :func:`posterior` (``task``, ``obs_matrix``, ``noise_std``,
            ``model``, ``check_range``).

    Returns:
        The posterior after each step.

    Raises:
        ValueError: as :func:`posterior`, or if ``input_batches`` has the wrong length.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.distribution_transformer import gaussian, sequential_posterior
        >>> posts = sequential_posterior(gaussian(jnp.zeros(1), jnp.eye(1)),
        ...                              [jnp.ones((2, 1)), jnp.ones((3, 1))],
        ...                              obs_matrix=jnp.eye(1), noise_std=1.0)
        >>> len(posts)
        2
    """
    if input_batches is not None and len(input_batches) != len(observation_batches):
        raise ValueError(
            f"input_batches has {len(input_batches)} entries, observation_batches "
            f"{len(observation_batches)}; give one per step."
        )
    out = []
    current = prior
    for step, batch in enumerate(observation_batches):
        inputs = None if input_batches is None else input_batches[step]
        current = posterior(
            current,
            batch,
            inputs=inputs,
            num_components=num_components if step == 0 else None,
            **kwargs,
        )
        out.append(current)
    return out
