"""Learning the global NIW over many episodes: the one-time optimisation of the evidence.

Each episode's class parameters are integrated out in closed form, so an episode
contributes its log marginal likelihood and is never revisited or stored: learning is
stochastic gradient ascent (optax) on the summed evidence of (mini-batches of) episodes.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_int, check_key
from probkit._renamed import renamed_argument
from probkit._repr import summary_repr
from probkit.progress import Interrupted, interruptible_scan

from ._episodes import Episodes, check_episodes
from ._niw import NIW, _log_evidence_from_statistics, check_niw, sufficient_statistics

__all__ = [
    "GlobalFit",
    "episode_log_evidence",
    "fit_global",
    "group_statistics",
    "niw_from_unconstrained",
    "niw_to_unconstrained",
]


class GlobalFit(NamedTuple):
    """The learned global NIW and the optimisation trace.

    Attributes:
        prior: the learned :class:`NIW`.
        params: its unconstrained parameters (see :func:`niw_from_unconstrained`).
        losses: ``(num_steps,)`` negative log evidence per labelled point.
    """

    prior: NIW
    params: dict
    losses: jax.Array

    def __repr__(self) -> str:
        return summary_repr(self)


def niw_to_unconstrained(prior: NIW) -> dict:
    """Unconstrained parameters of an NIW: loc, log kappa, the Cholesky factor of the
    scale with a log diagonal, and log(nu - d + 1).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import NIW, niw_to_unconstrained, niw_from_unconstrained
        >>> prior = NIW(jnp.ones(2), jnp.array(2.0), 3.0 * jnp.eye(2), jnp.array(5.0))
        >>> back = niw_from_unconstrained(niw_to_unconstrained(prior))
        >>> [round(float(v), 4) for v in (back.concentration, back.scale[0, 0], back.dof)]
        [2.0, 3.0, 5.0]
    """
    d = prior.loc.shape[-1]
    chol = jnp.linalg.cholesky(prior.scale)
    diag = jnp.diagonal(chol, axis1=-2, axis2=-1)
    factor = jnp.tril(chol, -1) + jnp.eye(d) * jnp.log(diag)[..., None, :]
    return {
        "loc": jnp.asarray(prior.loc),
        "log_concentration": jnp.log(prior.concentration),
        "scale_factor": factor,
        "log_excess_dof": jnp.log(prior.dof - d + 1),
    }


def niw_from_unconstrained(params: dict) -> NIW:
    """The NIW of :func:`niw_to_unconstrained`'s parameters (any real values are valid).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import niw_from_unconstrained
        >>> p = {"loc": jnp.zeros(2), "log_concentration": jnp.array(0.0),
        ...      "scale_factor": jnp.zeros((2, 2)), "log_excess_dof": jnp.array(0.0)}
        >>> float(niw_from_unconstrained(p).dof)
        2.0
    """
    factor = params["scale_factor"]
    d = factor.shape[-1]
    chol = (
        jnp.tril(factor, -1)
        + jnp.eye(d) * jnp.exp(jnp.diagonal(factor, axis1=-2, axis2=-1))[..., None, :]
    )
    return NIW(
        params["loc"],
        jnp.exp(params["log_concentration"]),
        chol @ jnp.swapaxes(chol, -1, -2),
        d - 1 + jnp.exp(params["log_excess_dof"]),
    )


def group_statistics(episodes: Episodes | jax.Array, include_queries: bool = True):
    """Per (episode, class) sufficient statistics ``(count, mean, scatter)``, flattened to
    ``(E * N, ...)``: what the evidence of the global NIW depends on.

    ``episodes`` is an :class:`Episodes` (support and, with ``include_queries``, the
    labelled queries too) or a bare ``(E, N, K, d)`` support array.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import group_statistics
        >>> n, mean, scatter = group_statistics(jnp.ones((4, 3, 2, 5)))
        >>> n.shape, mean.shape, scatter.shape
        ((12,), (12, 5), (12, 5, 5))
    """
    if isinstance(episodes, Episodes):
        episodes = check_episodes(episodes)
        e, n, k, d = episodes.support.shape
        x = episodes.support.reshape(e, n * k, d)
        y = jnp.broadcast_to(jnp.repeat(jnp.arange(n), k), (e, n * k))
        if include_queries:
            x = jnp.concatenate([x, episodes.query_x], axis=1)
            y = jnp.concatenate([y, episodes.query_y], axis=1)
    else:
        support = jnp.asarray(episodes)
        if support.ndim != 4:
            raise ValueError(
                f"support must have shape (episodes, ways, shots, features), got {support.shape}."
            )
        e, n, k, d = support.shape
        x = support.reshape(e, n * k, d)
        y = jnp.broadcast_to(jnp.repeat(jnp.arange(n), k), (e, n * k))
    return _grouped_statistics(x, y, n)


@functools.partial(jax.jit, static_argnums=2)
def _grouped_statistics(x, y, num_ways):
    e = x.shape[0]
    onehot = jax.nn.one_hot(y, num_ways, dtype=x.dtype)  # (E, M, N)
    per_class = jax.vmap(sufficient_statistics, in_axes=(None, 1))  # over classes
    stats = jax.vmap(per_class)(x, onehot)  # over episodes
    return tuple(s.reshape(e * num_ways, *s.shape[2:]) for s in stats)


def episode_log_evidence(prior: NIW, support: jax.Array) -> jax.Array:
    """``log p(support of each episode | prior)``: ``(E,)`` from a ``(E, N, K, d)`` support.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.fewshot import NIW, episode_log_evidence, sample_episodes
        >>> prior = NIW(jnp.zeros(2), jnp.array(1.0), jnp.eye(2), jnp.array(4.0))
        >>> episode_log_evidence(prior, sample_episodes(jax.random.key(0), prior, 7).support).shape
        (7,)
    """
    support = jnp.asarray(support)
    e, n = support.shape[:2]
    stats = group_statistics(support)
    per_group = jax.vmap(_log_evidence_from_statistics, in_axes=(None, 0, 0, 0))(prior, *stats)
    return per_group.reshape(e, n).sum(axis=1)


def _initial_guess(stats) -> NIW:
    """Moment-matched start: pooled within-class covariance for E[Sigma], kappa from the
    spread of the class means, nu = d + 3 (finite mean and variance of Sigma)."""
    n, mean, scatter = (np.asarray(s, np.float64) for s in stats)
    d = mean.shape[-1]
    within = scatter.sum(0) / max(float(n.sum() - len(n)), 1.0)
    within = within + 1e-6 * np.trace(within) / d * np.eye(d)
    dof = d + 3.0
    spread = np.cov(mean.T, aweights=n).reshape(d, d) if len(n) > 1 else within
    kappa = float(np.clip(np.trace(within) / max(np.trace(spread), 1e-12), 1e-3, 1e3))
    loc = np.average(mean, axis=0, weights=n)
    return NIW(
        jnp.asarray(loc, jnp.float32),
        jnp.asarray(kappa, jnp.float32),
        jnp.asarray(within * (dof - d - 1), jnp.float32),
        jnp.asarray(dof, jnp.float32),
    )


def _negative_log_evidence(params, stats):
    prior = niw_from_unconstrained(params)
    values = jax.vmap(_log_evidence_from_statistics, in_axes=(None, 0, 0, 0))(prior, *stats)
    return -jnp.sum(values) / jnp.sum(stats[0])


def fit_global(
    key: jax.Array,
    episodes: Episodes | jax.Array,
    *,
    num_steps: int = 2000,
    learning_rate: float = 0.03,
    batch_size: int | None = None,
    init: NIW | None = None,
    optimizer: Any = None,
    include_queries: bool = True,
    progress_bar: bool = False,
    optimiser: Any = None,
) -> GlobalFit:
    """Learn the global NIW by maximising the closed-form evidence of many episodes.

    Every class of every episode contributes ``log p(its features | global NIW)``, its
    ``(mu, Sigma)`` integrated out; the sum is maximised with optax (Adam by default) on
    :func:`niw_to_unconstrained`'s parameters, from a moment-matched start.

    Args:
        key: picks the mini-batches (unused when ``batch_size`` is None).
        episodes: :class:`Episodes` (labelled queries included when
            ``include_queries``) or a ``(E, N, K, d)`` support array.
        num_steps: optimiser steps.
        learning_rate: Adam's step size (ignored when ``optimizer`` is given).
        batch_size: episodes per step; None uses every episode each step.
        init: starting NIW (default: moment matching).
        optimizer: an ``optax.GradientTransformation``.
        optimiser: the old name of ``optimizer`` (deprecated).
        include_queries: use the labelled queries of meta-training episodes as data too.
        progress_bar: draw a progress bar.

    Returns:
        :class:`GlobalFit` (learned prior, unconstrained parameters, losses). The loop
        runs in chunks of about half a second: Ctrl-C stops it within about a second
        and raises :class:`~probkit.progress.Interrupted`, whose ``partial_result`` is
        the :class:`GlobalFit` of the steps done.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.fewshot import NIW, sample_episodes, fit_global
        >>> truth = NIW(jnp.zeros(2), jnp.array(0.5), jnp.eye(2), jnp.array(6.0))
        >>> episodes = sample_episodes(jax.random.key(0), truth, 200)
        >>> fit = fit_global(jax.random.key(1), episodes, num_steps=300)
        >>> fit.prior.loc.shape, bool(fit.losses[-1] < fit.losses[0])
        ((2,), True)
    """
    optimizer = renamed_argument(
        optimizer, optimiser, "optimiser", "optimizer", "fewshot.fit_global"
    )
    check_key(key)
    num_steps = check_int(num_steps, "num_steps")
    stats = group_statistics(episodes, include_queries)
    num_groups = stats[0].shape[0]
    num_ways = episodes.num_ways if isinstance(episodes, Episodes) else int(jnp.shape(episodes)[1])
    num_episodes = num_groups // num_ways
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size")
    if batch_size is not None and not batch_size <= num_episodes:
        raise ValueError(f"batch_size must lie in [1, {num_episodes}] episodes, got {batch_size}.")
    start = check_niw(init, "init") if init is not None else _initial_guess(stats)
    params = niw_to_unconstrained(start)
    try:
        losses, params = _optimise(
            key,
            params,
            stats,
            optimizer,
            learning_rate,
            num_steps,
            batch_size,
            num_ways,
            progress_bar,
        )
    except Interrupted as interrupt:
        done = interrupt.carry[0]
        interrupt.partial_result = GlobalFit(niw_from_unconstrained(done), done, interrupt.ys)
        raise
    if not bool(jnp.all(jnp.isfinite(losses))):
        raise FloatingPointError(
            "fit_global: the evidence became non-finite; lower learning_rate or pass init."
        )
    return GlobalFit(niw_from_unconstrained(params), params, losses)


def _optimise_step(settings, stats, learning_rate, carry, key):
    import optax

    optimiser, batch_size, num_ways = settings
    if optimiser is None:  # the default, built here from an array learning rate
        optimiser = optax.adam(learning_rate)
    params, state = carry
    if batch_size is None:
        batch = stats
    else:
        num_episodes = stats[0].shape[0] // num_ways
        chosen = jax.random.choice(key, num_episodes, (batch_size,), replace=False)
        groups = (chosen[:, None] * num_ways + jnp.arange(num_ways)).reshape(-1)
        batch = tuple(s[groups] for s in stats)
    loss, grads = jax.value_and_grad(_negative_log_evidence)(params, batch)
    updates, state = optimiser.update(grads, state, params)
    return (optax.apply_updates(params, updates), state), loss


def _optimise(key, params, stats, optimiser, learning_rate, num_steps, batch_size, num_ways, bar):
    import optax

    learning_rate = jnp.asarray(learning_rate, jnp.float32)
    state = (optax.adam(learning_rate) if optimiser is None else optimiser).init(params)
    # the statistics are array leaves of the body (not closed over): XLA would
    # otherwise fold them into the program as constants, and new episodes of the same
    # shapes would compile again
    body = jax.tree_util.Partial(
        _optimise_step, (optimiser, batch_size, num_ways), stats, learning_rate
    )
    # the loop donates its carry: copies, so that the caller's arrays stay valid
    init = jax.tree_util.tree_map(jnp.copy, (params, state))
    (params, _), losses = interruptible_scan(
        body, init, jax.random.split(key, num_steps), progress_bar=bar, desc="fit_global"
    )
    return losses, params
