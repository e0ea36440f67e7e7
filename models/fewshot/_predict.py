"""Prediction on a new episode: closed-form class posteriors, Student-t predictive class
probabilities, the prototype (nearest class mean) baseline, and calibration."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._niw import NIW, niw_posterior, niw_predictive_log_prob

__all__ = [
    "episode_posteriors",
    "expected_calibration_error",
    "predict_log_proba",
    "predict_proba",
    "prototype_log_proba",
]


def _episode_posteriors(prior: NIW, support: jax.Array) -> NIW:
    # support: (N, K, d); one posterior per class
    return jax.vmap(niw_posterior, in_axes=(None, 0))(prior, support)


def episode_posteriors(prior: NIW, support: jax.Array) -> NIW:
    """Closed-form NIW posteriors of every class of an episode (or of a batch of episodes).

    Args:
        prior: the global :class:`NIW`.
        support: ``(N, K, d)`` for one episode, or ``(E, N, K, d)``: vectorised over
            episodes and classes with ``jax.vmap``.

    Returns:
        An :class:`NIW` with batch axes ``(N,)`` or ``(E, N)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import NIW, episode_posteriors
        >>> prior = NIW(jnp.zeros(2), jnp.array(1.0), jnp.eye(2), jnp.array(4.0))
        >>> episode_posteriors(prior, jnp.ones((10, 5, 3, 2))).loc.shape
        (10, 5, 2)
    """
    support = jnp.asarray(support)
    if support.ndim == 3:
        return _episode_posteriors(prior, support)
    if support.ndim == 4:
        return jax.vmap(_episode_posteriors, in_axes=(None, 0))(prior, support)
    raise ValueError(
        f"support must have shape (ways, shots, d) or (episodes, ways, shots, d), got "
        f"{support.shape}."
    )


def _predict_one(prior: NIW, support: jax.Array, query_x: jax.Array) -> jax.Array:
    posts = _episode_posteriors(prior, support)
    # (M, N): the Student-t predictive of each query under each class
    log_lik = jax.vmap(niw_predictive_log_prob, in_axes=(0, None), out_axes=1)(posts, query_x)
    return jax.nn.log_softmax(log_lik, axis=-1)


def predict_log_proba(prior: NIW, support: jax.Array, query_x: jax.Array) -> jax.Array:
    """Log class probabilities of the queries of a new episode (uniform class prior).

    ``p(y = c | x, support) ∝ t(x; class c's posterior predictive)``: the classes'
    ``(mu, Sigma)`` are integrated out, so few shots give wide, honest predictives.

    Args:
        prior: the global :class:`NIW`.
        support: ``(N, K, d)`` or ``(E, N, K, d)``.
        query_x: ``(M, d)`` or ``(E, M, d)``.

    Returns:
        ``(M, N)`` or ``(E, M, N)`` log-probabilities.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import NIW, predict_log_proba
        >>> prior = NIW(jnp.zeros(2), jnp.array(1.0), jnp.eye(2), jnp.array(4.0))
        >>> support = jnp.stack([jnp.zeros((3, 2)), 5.0 * jnp.ones((3, 2))])
        >>> predict_log_proba(prior, support, jnp.array([[5.0, 5.0]])).argmax(-1).tolist()
        [1]
    """
    support, query_x = jnp.asarray(support), jnp.asarray(query_x)
    if support.ndim == 3 and query_x.ndim == 2:
        return _predict_one(prior, support, query_x)
    if support.ndim == 4 and query_x.ndim == 3 and support.shape[0] == query_x.shape[0]:
        return jax.vmap(_predict_one, in_axes=(None, 0, 0))(prior, support, query_x)
    raise ValueError(
        "support and query_x must be (N, K, d) and (M, d), or (E, N, K, d) and (E, M, d); "
        f"got {support.shape} and {query_x.shape}."
    )


def predict_proba(prior: NIW, support: jax.Array, query_x: jax.Array) -> jax.Array:
    """Class probabilities of the queries: ``exp`` of :func:`predict_log_proba`.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import NIW, predict_proba
        >>> prior = NIW(jnp.zeros(2), jnp.array(1.0), jnp.eye(2), jnp.array(4.0))
        >>> p = predict_proba(prior, jnp.zeros((3, 2, 2)), jnp.zeros((4, 2)))
        >>> p.shape, [round(float(v), 3) for v in p[0]]
        ((4, 3), [0.333, 0.333, 0.333])
    """
    return jnp.exp(predict_log_proba(prior, support, query_x))


def prototype_log_proba(
    support: jax.Array, query_x: jax.Array, temperature: float = 1.0
) -> jax.Array:
    """The prototype baseline: softmax of ``-|x - class mean|^2 / temperature``.

    The nearest-class-mean classifier of prototypical networks (Snell et al., 2017) on the
    fixed features; shapes as in :func:`predict_log_proba`.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import prototype_log_proba
        >>> support = jnp.stack([jnp.zeros((2, 2)), jnp.ones((2, 2))])
        >>> prototype_log_proba(support, jnp.array([[0.9, 0.9]])).argmax(-1).tolist()
        [1]
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    support, query_x = jnp.asarray(support), jnp.asarray(query_x)
    prototypes = support.mean(axis=-2)  # (..., N, d)
    sq = jnp.sum((query_x[..., :, None, :] - prototypes[..., None, :, :]) ** 2, axis=-1)
    return jax.nn.log_softmax(-sq / temperature, axis=-1)


def expected_calibration_error(
    probs: jax.Array, labels: jax.Array, num_bins: int = 15
) -> jax.Array:
    """Expected calibration error of top-1 predictions, with equal-width confidence bins.

    ``sum_b (n_b / n) |accuracy_b - confidence_b|`` (Guo et al., 2017). ``probs``:
    ``(..., C)``, ``labels``: ``(...)``; every leading axis is pooled.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import expected_calibration_error
        >>> probs = jnp.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
        >>> round(float(expected_calibration_error(probs, jnp.array([0, 1, 0, 0]))), 3)
        0.4
    """
    if isinstance(num_bins, bool) or not isinstance(num_bins, int | np.integer) or num_bins < 1:
        raise ValueError(f"num_bins must be a positive int, got {num_bins!r}.")
    probs = jnp.asarray(probs).reshape(-1, jnp.shape(probs)[-1])
    labels = jnp.asarray(labels).reshape(-1)
    if labels.shape[0] != probs.shape[0]:
        raise ValueError(f"labels must have shape {jnp.shape(probs)[:-1]} to match probs.")
    confidence = probs.max(-1)
    correct = (probs.argmax(-1) == labels).astype(probs.dtype)
    bins = jnp.clip(jnp.ceil(confidence * num_bins).astype(int) - 1, 0, num_bins - 1)
    acc_sum = jnp.zeros(num_bins).at[bins].add(correct)
    conf_sum = jnp.zeros(num_bins).at[bins].add(confidence)
    return jnp.sum(jnp.abs(acc_sum - conf_sum)) / labels.shape[0]
