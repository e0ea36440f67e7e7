"""Tasks: a meta-prior over GMM priors, a likelihood, and the data featurisation.

Amortised forward-KL training draws, per training example, a prior from the meta-prior,
a latent ``z`` from that prior and a data set from the likelihood given ``z``
(:class:`Query`). A :class:`Task` bundles that sampler with the featurisation of data
points into tokens and the ranges the meta-prior covers, which :func:`posterior` checks
queries against.

Meta-prior (shared by the shipped tasks): ``K ~ U{1..max_components}``; with probability
``parametric_probability`` a single Gaussian fed as ``K`` identical tokens, otherwise
weights ``~ Dirichlet(1, ..., 1)``; means ``~ U[-mean_bound, mean_bound]^d``; covariances
``R diag(sigma^2) R^T`` with ``log sigma ~ U[log std_min, log std_max]`` and a uniform
random rotation ``R``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_key

__all__ = [
    "Query",
    "Task",
    "TaskRanges",
    "sample_prior",
    "linear_gaussian_task",
    "logistic_regression_task",
    "linear_gaussian_features",
    "linear_gaussian_tokens",
    "logistic_regression_features",
    "TASKS",
]


class TaskRanges(NamedTuple):
    """The region of priors, data and likelihood parameters a task's meta-prior covers.

    Attributes:
        max_components: largest number of prior components ``K``.
        max_observations: largest number of data points ``n``.
        mean_bound: prior component means lie in ``[-mean_bound, mean_bound]``.
        std_min: smallest prior component standard deviation (any direction).
        std_max: largest prior component standard deviation (any direction).
        obs_matrix_bound: entries of ``obs_matrix`` lie in ``[-bound, bound]``
            (linear-Gaussian tasks).
        noise_std_min: smallest ``noise_std`` (linear-Gaussian tasks).
        noise_std_max: largest ``noise_std`` (linear-Gaussian tasks).
        parametric_probability: probability of a parametric (single-Gaussian) prior.
    """

    max_components: int = 4
    max_observations: int = 20
    mean_bound: float = 5.0
    std_min: float = 0.05
    std_max: float = 3.0
    obs_matrix_bound: float = 2.0
    noise_std_min: float = 0.2
    noise_std_max: float = 2.0
    parametric_probability: float = 0.2


class Query(NamedTuple):
    """One padded training example.

    Attributes:
        log_weights: ``(K,)`` prior log weights (``-inf`` on padding).
        means: ``(K, d)`` prior means.
        cholesky: ``(K, d, d)`` prior Cholesky factors (identity on padding).
        component_mask: ``(K,)`` True for real components.
        parametric: scalar bool, True when the tokens copy one Gaussian.
        data_features: ``(K, N, F)`` data tokens in each component's frame.
        data_mask: ``(N,)`` True for real data points.
        latent: ``(d,)`` the latent drawn from the prior.
    """

    log_weights: jax.Array
    means: jax.Array
    cholesky: jax.Array
    component_mask: jax.Array
    parametric: jax.Array
    data_features: jax.Array
    data_mask: jax.Array
    latent: jax.Array


class Task(NamedTuple):
    """A trainable task.

    Attributes:
        name: the task's name (and the name of its weight file).
        latent_dim: dimension ``d`` of the latent.
        data_feature_dim: number of features of a data token.
        ranges: the region the meta-prior covers.
        sample_query: ``key -> Query``, one draw from the meta-prior and likelihood.
        site_input_dim: how many of the ``data_feature_dim`` features (the last ones) are
            raw site inputs, read only by the network's pseudo-observation site head (0: none).
        site_rank: rows of each pseudo-observation site (1 for one token per scalar
            observation; ``None``: ``latent_dim``).
    """

    name: str
    latent_dim: int
    data_feature_dim: int
    ranges: TaskRanges
    sample_query: Callable[[jax.Array], Query]
    site_input_dim: int = 0
    site_rank: int | None = None


def _random_rotation(key: jax.Array, d: int) -> jax.Array:
    if d == 1:
        return jnp.ones((1, 1))
    q, r = jnp.linalg.qr(jax.random.normal(key, (d, d)))
    return q * jnp.sign(jnp.diagonal(r))[None, :]


def sample_prior(key: jax.Array, latent_dim: int, ranges: TaskRanges):
    """Draw a padded prior from the meta-prior (see the module docstring).

    Args:
        key: a ``jax.random`` key.
        latent_dim: dimension ``d``.
        ranges: the meta-prior's ranges.

    Returns:
        ``(log_weights (K,), means (K, d), cholesky (K, d, d), component_mask (K,),
        parametric ())`` with ``K = ranges.max_components``.

    Example:
        >>> import jax
        >>> from probkit.models.distribution_transformer import TaskRanges, sample_prior
        >>> sample_prior(jax.random.key(0), 2, TaskRanges())[1].shape
        (4, 2)
    """
    check_key(key)
    k_max, d = ranges.max_components, latent_dim
    keys = jax.random.split(key, 6)
    num = jax.random.randint(keys[0], (), 1, k_max + 1)
    mask = jnp.arange(k_max) < num
    parametric = jax.random.bernoulli(keys[1], ranges.parametric_probability) & (num > 1)
    gam = jax.random.gamma(keys[2], 1.0, (k_max,)) + 1e-6
    gam = jnp.where(parametric, 1.0, gam)
    gam = jnp.where(mask, gam, 0.0)
    log_weights = jnp.where(mask, jnp.log(gam / gam.sum()), -jnp.inf)
    means = jax.random.uniform(
        keys[3], (k_max, d), minval=-ranges.mean_bound, maxval=ranges.mean_bound
    )
    log_std = jax.random.uniform(
        keys[4], (k_max, d), minval=np.log(ranges.std_min), maxval=np.log(ranges.std_max)
    )
    rot = jax.vmap(lambda k: _random_rotation(k, d))(jax.random.split(keys[5], k_max))
    cov = jnp.einsum("kij,kj,klj->kil", rot, jnp.exp(2 * log_std), rot)
    chol = jnp.linalg.cholesky(cov)
    # A parametric prior: every token is a copy of the first component.
    means = jnp.where(parametric, jnp.broadcast_to(means[:1], means.shape), means)
    chol = jnp.where(parametric, jnp.broadcast_to(chol[:1], chol.shape), chol)
    chol = jnp.where(mask[:, None, None], chol, jnp.eye(d))
    means = jnp.where(mask[:, None], means, 0.0)
    return log_weights, means, chol, mask, parametric


def _sample_latent(key, log_weights, means, chol):
    key_c, key_e = jax.random.split(key)
    comp = jax.random.categorical(key_c, log_weights)
    return means[comp] + chol[comp] @ jax.random.normal(key_e, (means.shape[-1],))


def linear_gaussian_tokens(
    observations: jax.Array,
    obs_matrix: jax.Array,
    observation_mask: jax.Array,
    row_mask: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Split ``n`` observations of dimension ``m`` into ``n * m`` scalar observations.

    Observation ``i`` of ``y_i = H z + s eps_i`` is ``m`` independent scalar observations
    ``y_ij = H_j z + s eps_ij``, one per row ``H_j`` of ``H``: the data tokens of the
    linear-Gaussian task are these scalars, each with its row, whatever ``m`` is.

    Args:
        observations: ``(N, m)`` (padded) observations.
        obs_matrix: ``(m, d)`` observation matrix ``H``.
        observation_mask: ``(N,)`` True for real observations.
        row_mask: optional ``(m,)`` True for real rows of ``H`` (padding of ``m``).

    Returns:
        ``(values (N m,), rows (N m, d), token_mask (N m,))``, observation-major.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.distribution_transformer._tasks import linear_gaussian_tokens
        >>> values, rows, mask = linear_gaussian_tokens(
        ...     jnp.array([[1.0], [2.0]]), jnp.array([[1.0, -1.0]]), jnp.array([True, False]))
        >>> values.tolist(), rows.shape, mask.tolist()
        ([1.0, 2.0], (2, 2), [True, False])
    """
    num, m = observations.shape
    mask = observation_mask[:, None]
    if row_mask is not None:
        mask = mask & row_mask[None, :]
    mask = jnp.broadcast_to(mask, (num, m)).reshape(-1)
    rows = jnp.broadcast_to(obs_matrix, (num, *obs_matrix.shape)).reshape(num * m, -1)
    return observations.reshape(-1), rows, mask


def linear_gaussian_features(
    values: jax.Array,
    rows: jax.Array,
    noise_std: jax.Array,
    token_mask: jax.Array,
    means: jax.Array,
    cholesky: jax.Array,
) -> jax.Array:
    """Data tokens of the linear-Gaussian task in each component's frame, ``(K, T, F)``.

    One token per scalar observation ``y_j = h_j^T z + s eps_j`` (see
    :func:`linear_gaussian_tokens`), so that any number ``m`` of rows of ``H`` is served
    by one network. For component ``k`` with mean ``mu`` and Cholesky factor ``L``, in the
    component's whitened coordinates ``u = L^{-1}(z - mu)`` the observation is
    ``r_j = a_j^T u + eps_j`` with ``a_j = L^T h_j / s`` and ``r_j = (y_j - h_j^T mu) / s``.
    Every feature is of order one: magnitudes enter as logarithms, directions normalised.
    Per token: ``sign(r_j)``, ``log |r_j|``, ``a_j / |a_j|``, ``log |a_j|``,
    ``sign(r_j) a_j / |a_j|``, ``vech`` of ``a_j a_j^T / |a_j|^2``, ``log s``, ``log T``
    (``T`` the number of real tokens), and ``asinh`` of ``T r_j a_j`` and of
    ``T vech(a_j a_j^T)`` (attention averages; the factor ``T`` lets it form sums). These
    are the network's inputs. The last ``d + 1`` features are the raw site inputs ``a_j``
    and ``r_j``, read only (and linearly) by the pseudo-observation site head (see
    ``DistributionTransformer``): in that frame the likelihood of ``y_j`` is the site
    ``exp(-(r_j - a_j^T u)^2 / 2)`` (up to a constant shared by all components), linear in
    them. Expressing data in each component's frame keeps the features on one scale
    whatever the prior's location and spread. In 1-D this is exactly the featurisation of
    the earlier square-``H`` networks (one token per observation).

    Args:
        values: ``(T,)`` padded scalar observations.
        rows: ``(T, d)`` their rows of ``H`` (any values on padding).
        noise_std: scalar.
        token_mask: ``(T,)`` True for real scalar observations.
        means: ``(K, d)`` prior component means.
        cholesky: ``(K, d, d)`` prior component Cholesky factors.

    Returns:
        The data tokens (zero on padding).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.distribution_transformer._tasks import (
        ...     linear_gaussian_features, linear_gaussian_tokens)
        >>> values, rows, mask = linear_gaussian_tokens(jnp.ones((3, 2)), jnp.eye(2),
        ...                                             jnp.ones(3, bool))
        >>> chol = jnp.broadcast_to(jnp.eye(2), (4, 2, 2))
        >>> linear_gaussian_features(values, rows, 1.0, mask, jnp.zeros((4, 2)), chol).shape
        (4, 6, 20)
    """
    d = rows.shape[1]
    num = values.shape[0]
    n = jnp.maximum(jnp.sum(token_mask), 1).astype(values.dtype)
    tri_rows, tri_cols = jnp.tril_indices(d)
    tiny = jnp.finfo(values.dtype).tiny ** 0.25

    def one(mean, chol):
        a = rows @ chol / noise_std  # (T, d): a_j = L^T h_j / s
        r = (values - rows @ mean) / noise_std  # (T,)
        a_norm = jnp.maximum(jnp.sqrt(jnp.sum(a * a, axis=-1, keepdims=True)), tiny)
        r_norm = jnp.maximum(jnp.abs(r), tiny)[:, None]
        a_dir, r_dir = a / a_norm, r[:, None] / r_norm
        outer = (a[:, :, None] * a[:, None, :])[:, tri_rows, tri_cols]
        outer_dir = (a_dir[:, :, None] * a_dir[:, None, :])[:, tri_rows, tri_cols]
        return jnp.concatenate(
            [
                r_dir,
                jnp.log(r_norm),
                a_dir,
                jnp.log(a_norm),
                r_dir * a_dir,
                outer_dir,
                jnp.full((num, 1), jnp.log(noise_std)),
                jnp.full((num, 1), jnp.log(n)),
                jnp.arcsinh(n * r[:, None] * a),
                jnp.arcsinh(n * outer),
                a,
                r[:, None],
            ],
            axis=-1,
        )

    feats = jax.vmap(one)(means, cholesky)
    return jnp.where(token_mask[None, :, None], feats, 0.0)


def _linear_gaussian_num_features(d: int) -> int:
    network = 1 + 1 + d + 1 + d + d * (d + 1) // 2 + 2 + d + d * (d + 1) // 2
    return network + d + 1


def linear_gaussian_task(latent_dim: int, ranges: TaskRanges = TaskRanges()) -> Task:
    """Linear-Gaussian observations ``y_i = H z + s eps_i`` with ``H`` of shape ``(m, d)``.

    ``m ~ U{1..d}``, ``H`` has entries ``~ U[-obs_matrix_bound, obs_matrix_bound]``,
    ``log s`` is uniform on ``[log noise_std_min, log noise_std_max]`` and
    ``n ~ U{1..max_observations}``; the data tokens are the ``n m`` scalar observations
    (:func:`linear_gaussian_features`), padded to ``max_observations * d``.

    Args:
        latent_dim: dimension ``d`` of ``z``.
        ranges: the meta-prior's ranges.

    Returns:
        The task ``"linear_gaussian_{d}d"``.

    Example:
        >>> import jax
        >>> from probkit.models.distribution_transformer import linear_gaussian_task
        >>> task = linear_gaussian_task(1)
        >>> task.sample_query(jax.random.key(0)).data_features.shape
        (4, 20, 12)
    """
    d = latent_dim

    def sample_query(key: jax.Array) -> Query:
        check_key(key)
        keys = jax.random.split(key, 6)
        log_w, means, chol, mask, parametric = sample_prior(keys[0], d, ranges)
        z = _sample_latent(keys[1], log_w, means, chol)
        b = ranges.obs_matrix_bound
        obs_matrix = jax.random.uniform(keys[2], (d, d), minval=-b, maxval=b)
        # m ~ U{1..d}: the rows of H past the m-th are padding. (Its own key, so that
        # the 1-D task, where m = 1, draws exactly what it drew before m varied.)
        m = jax.random.randint(jax.random.fold_in(key, 1), (), 1, d + 1)
        row_mask = jnp.arange(d) < m
        noise_std = jnp.exp(
            jax.random.uniform(
                keys[3],
                (),
                minval=np.log(ranges.noise_std_min),
                maxval=np.log(ranges.noise_std_max),
            )
        )
        n_max = ranges.max_observations
        n = jax.random.randint(keys[4], (), 1, n_max + 1)
        data_mask = jnp.arange(n_max) < n
        y = z @ obs_matrix.T + noise_std * jax.random.normal(keys[5], (n_max, d))
        values, rows, token_mask = linear_gaussian_tokens(y, obs_matrix, data_mask, row_mask)
        feats = linear_gaussian_features(values, rows, noise_std, token_mask, means, chol)
        return Query(log_w, means, chol, mask, parametric, feats, token_mask, z)

    return Task(
        f"linear_gaussian_{d}d",
        d,
        _linear_gaussian_num_features(d),
        ranges,
        sample_query,
        site_input_dim=d + 1,
        site_rank=1,
    )


def logistic_regression_features(
    inputs: jax.Array,
    labels: jax.Array,
    data_mask: jax.Array,
    means: jax.Array,
    cholesky: jax.Array,
) -> jax.Array:
    """Data tokens of Bayesian logistic regression in each component's frame, ``(K, N, F)``.

    With ``w = mu + L u`` the logit is ``x^T mu + (L^T x)^T u``; per data point and
    component: ``(x^T mu, L^T x, 2y - 1, (2y - 1) x^T mu, (2y - 1) L^T x, log n)``.

    Args:
        inputs: ``(N, d)`` covariates.
        labels: ``(N,)`` labels in ``{0, 1}``.
        data_mask: ``(N,)`` True for real data points.
        means: ``(K, d)`` prior component means.
        cholesky: ``(K, d, d)`` prior component Cholesky factors.

    Returns:
        The data tokens ``(K, N, 2 d + 4)`` (zero on padding).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.distribution_transformer._tasks import logistic_regression_features
        >>> chol = jnp.broadcast_to(jnp.eye(2), (4, 2, 2))
        >>> logistic_regression_features(jnp.ones((3, 2)), jnp.ones(3), jnp.ones(3, bool),
        ...                              jnp.zeros((4, 2)), chol).shape
        (4, 3, 8)
    """
    n = jnp.maximum(jnp.sum(data_mask), 1).astype(inputs.dtype)
    sign = (2.0 * labels - 1.0)[:, None]

    def one(mean, chol):
        offset = inputs @ mean[:, None]  # (N, 1)
        direction = inputs @ chol  # (N, d): rows are (L^T x_i)^T
        return jnp.concatenate(
            [
                offset,
                direction,
                sign,
                sign * offset,
                sign * direction,
                jnp.full((inputs.shape[0], 1), jnp.log(n)),
            ],
            axis=-1,
        )

    feats = jax.vmap(one)(means, cholesky)
    return jnp.where(data_mask[None, :, None], feats, 0.0)


def logistic_regression_task(latent_dim: int = 2, ranges: TaskRanges = TaskRanges()) -> Task:
    """Bayesian logistic regression ``y_i ~ Bernoulli(sigmoid(x_i . w))``, ``x_i ~ N(0, I)``.

    The latent ``w`` has a GMM prior from the meta-prior; ``n ~ U{1..max_observations}``.

    Args:
        latent_dim: dimension ``d`` of ``w`` (and of each ``x_i``).
        ranges: the meta-prior's ranges (the ``obs_matrix``/``noise_std`` ones are unused).

    Returns:
        The task ``"logistic_regression_{d}d"``.

    Example:
        >>> import jax
        >>> from probkit.models.distribution_transformer import logistic_regression_task
        >>> logistic_regression_task(2).sample_query(jax.random.key(0)).latent.shape
        (2,)
    """
    d = latent_dim

    def sample_query(key: jax.Array) -> Query:
        check_key(key)
        keys = jax.random.split(key, 5)
        log_w, means, chol, mask, parametric = sample_prior(keys[0], d, ranges)
        w = _sample_latent(keys[1], log_w, means, chol)
        n_max = ranges.max_observations
        n = jax.random.randint(keys[2], (), 1, n_max + 1)
        data_mask = jnp.arange(n_max) < n
        x = jax.random.normal(keys[3], (n_max, d))
        y = jax.random.bernoulli(keys[4], jax.nn.sigmoid(x @ w)).astype(x.dtype)
        feats = logistic_regression_features(x, y, data_mask, means, chol)
        return Query(log_w, means, chol, mask, parametric, feats, data_mask, w)

    return Task(f"logistic_regression_{d}d", d, 2 * d + 4, ranges, sample_query)


#: The shipped tasks, by name.
TASKS: dict[str, Task] = {
    "linear_gaussian_1d": linear_gaussian_task(1),
    "linear_gaussian_2d": linear_gaussian_task(2),
    "logistic_regression_2d": logistic_regression_task(2, TaskRanges(std_max=2.0, mean_bound=2.0)),
}
