"""Importance sampling and self-normalised importance sampling on pytrees.

A target with (possibly unnormalised) log density ``log p`` and a proposal
``q`` (a NumPyro distribution, or a pytree of independent ones) give weighted
draws ``x_i ~ q`` with ``log w_i = log p(x_i) - log q(x_i)``. From them:

- :func:`importance_expectation`: ``mean_i w_i fn(x_i)``, unbiased when ``p`` is
  normalised;
- :func:`self_normalised_expectation`: ``sum_i w_i fn(x_i) / sum_i w_i``, for an
  unnormalised ``p`` (consistent, biased at order 1/n);
- :func:`log_evidence`: ``log mean_i w_i``, the log normalising constant of ``p``;
- :func:`effective_sample_size`: Kish's ``(sum w)^2 / sum w^2``.

Every function is pure, keyed where it draws, and jit/vmap-able. Standard
errors: the sample standard deviation over ``sqrt(n)`` for plain IS; the delta
method, ``sqrt(sum_i wbar_i^2 (fn(x_i) - mu)^2)``, for SNIS.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax import Array

from probkit._checks import check_int, check_key
from probkit._renamed import renamed
from probkit._repr import summary_repr

# Weights are normalised, summed and counted in one place for SMC and importance sampling.
from probkit._weights import effective_sample_size, log_mean_exp, normalised_weights
from probkit.results import SamplingWarning

__all__ = [
    "ImportanceSamples",
    "Estimate",
    "importance_sample",
    "normalised_weights",
    "log_evidence",
    "effective_sample_size",
    "importance_expectation",
    "self_normalised_expectation",
]

PyTree = Any


class ImportanceSamples(NamedTuple):
    """Draws of a proposal and their log importance weights.

    Attributes:
        positions: a pytree whose leaves have a leading axis of ``num_samples``.
        log_weights: ``(num_samples,)`` values ``log p(x_i) - log q(x_i)``.
    """

    positions: PyTree
    log_weights: Array

    def __repr__(self) -> str:
        return summary_repr(self)


class Estimate(NamedTuple):
    """A Monte Carlo estimate and its standard error (pytrees of the same structure)."""

    value: PyTree
    std_error: PyTree

    def __repr__(self) -> str:
        return summary_repr(self)


def _is_distribution(x) -> bool:
    return isinstance(x, dist.Distribution)


def warn_nonfinite_log_weights(log_weights) -> None:
    """Warn (:class:`~probkit.results.SamplingWarning`) when log-weights are NaN or ``+inf``,
    or all ``-inf`` (host side; called through ``jax.debug.callback``).

    Example:
        >>> import warnings
        >>> from probkit.importance._estimators import warn_nonfinite_log_weights
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_nonfinite_log_weights([0.0, float("nan")])
        >>> "NaN" in str(caught[0].message)
        True
    """
    lw = np.asarray(log_weights, dtype=float)
    num_nan, num_inf = int(np.isnan(lw).sum()), int(np.isposinf(lw).sum())
    if num_nan or num_inf:
        what = []
        if num_nan:
            what.append(f"NaN for {num_nan}")
        if num_inf:
            what.append(f"+inf for {num_inf}")
        warnings.warn(
            f"logdensity_fn minus the proposal's log density was {' and '.join(what)} of "
            f"{lw.size} draws, so the log-evidence, the ESS and every estimate from these "
            "weights are NaN or meaningless. Make logdensity_fn finite wherever the proposal "
            "puts mass (return -inf where the target density is zero; look for the log of a "
            "negative number or a scale that reaches 0).",
            SamplingWarning,
            stacklevel=2,
        )
    elif lw.size and np.all(np.isneginf(lw)):
        warnings.warn(
            f"every one of the {lw.size} log-weights is -inf (the target density is zero at "
            "every draw): the proposal misses the target's support. Use a proposal that "
            "covers it, or check logdensity_fn.",
            SamplingWarning,
            stacklevel=2,
        )


def importance_sample(
    key: Array,
    logdensity_fn: Callable[[PyTree], Array],
    proposal: dist.Distribution | PyTree,
    num_samples: int,
    *,
    warn: bool = True,
) -> ImportanceSamples:
    """Draws ``num_samples`` points of ``proposal`` and weighs them by ``logdensity_fn``.

    Args:
        key: a ``jax.random`` key.
        logdensity_fn: log density of the target at ONE position (vmapped here);
            it may be unnormalised.
        proposal: a NumPyro distribution, or a pytree (dict, tuple, ...) of NumPyro
            distributions drawn independently; positions have the same structure.
        num_samples: number of draws (an int or a NumPy integer).
        warn: emit a :class:`~probkit.results.SamplingWarning` when some log-weights are
            NaN or ``+inf`` (or all are ``-inf``); it goes through ``jax.debug.callback``,
            so it also fires under ``jit`` and ``vmap``.

    Raises:
        TypeError: if ``key`` is not a ``jax.random`` key, ``logdensity_fn`` is not
            callable or ``proposal`` is not a (pytree of) NumPyro distribution(s).
        ValueError: if ``num_samples`` is not a positive int, or ``logdensity_fn`` does
            not return a scalar at one position (checked by tracing it once).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import numpyro.distributions as dist
        >>> from probkit.importance import importance_sample, log_evidence
        >>> logp = lambda x: -0.5 * x**2  # N(0, 1) without its 1 / sqrt(2 pi)
        >>> s = importance_sample(jax.random.key(0), logp, dist.Normal(0.0, 2.0), 100_000)
        >>> round(float(jnp.exp(log_evidence(s.log_weights))), 1)  # sqrt(2 pi)
        2.5
    """
    check_key(key)
    num_samples = check_int(num_samples, "num_samples")
    if not callable(logdensity_fn):
        raise TypeError(
            f"logdensity_fn must be a callable mapping one position to a scalar log density, "
            f"got {type(logdensity_fn).__name__}."
        )
    leaves, treedef = jax.tree.flatten(proposal, is_leaf=_is_distribution)
    if not leaves or not all(_is_distribution(leaf) for leaf in leaves):
        raise TypeError(
            "proposal must be a NumPyro distribution or a pytree of NumPyro distributions, "
            f"got {type(proposal).__name__}."
        )
    keys = jax.random.split(key, len(leaves))
    draws, log_q = [], jnp.zeros(num_samples)
    for k, d in zip(keys, leaves, strict=True):
        x = d.sample(k, (num_samples,))
        draws.append(x)
        log_q = log_q + jnp.reshape(d.log_prob(x), (num_samples, -1)).sum(-1)
    positions = jax.tree.unflatten(treedef, draws)
    one = jax.tree.map(lambda x: x[0], positions)
    out = jax.eval_shape(logdensity_fn, one)
    if getattr(out, "shape", None) != ():
        shape = getattr(out, "shape", type(out).__name__)
        raise ValueError(
            f"logdensity_fn must return a scalar log density at ONE position (it is vmapped "
            f"over the num_samples draws here), got shape {shape} for a position of shape "
            f"{jax.tree.map(jnp.shape, one)}; sum the terms of a factorised density "
            "(e.g. jnp.sum(dist.Normal(...).log_prob(x)))."
        )
    log_p = jax.vmap(logdensity_fn)(positions)
    log_weights = jnp.reshape(log_p, (num_samples,)) - log_q
    if warn:
        jax.debug.callback(warn_nonfinite_log_weights, log_weights)
    return ImportanceSamples(positions, log_weights)


def log_evidence(log_weights: Array) -> Array:
    """``log mean_i w_i``: the log normalising constant of the target (unbiased in ``exp``).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.importance import log_evidence
        >>> round(float(log_evidence(jnp.log(jnp.array([1.0, 3.0])))), 4)  # log 2
        0.6931
    """
    return log_mean_exp(log_weights)


def _evaluate(fn, positions):
    return jax.vmap(fn)(positions)


def importance_expectation(samples: ImportanceSamples, fn: Callable[[PyTree], Any]) -> Estimate:
    """Plain importance sampling: ``mean_i w_i fn(x_i)``, for a NORMALISED target density.

    Args:
        samples: from :func:`importance_sample` (or any draws with their log weights).
        fn: maps one position to an array or a pytree of arrays.

    Returns:
        An :class:`Estimate` with the mean and its standard error, leaf by leaf.

    Example:
        >>> import jax
        >>> import numpyro.distributions as dist
        >>> from probkit.importance import importance_sample, importance_expectation
        >>> logp = dist.Normal(1.0, 1.0).log_prob
        >>> s = importance_sample(jax.random.key(0), logp, dist.Normal(0.0, 2.0), 100_000)
        >>> est = importance_expectation(s, lambda x: x)
        >>> bool(abs(est.value - 1.0) < 4 * est.std_error)
        True
    """
    n = samples.log_weights.shape[0]
    w = jnp.exp(samples.log_weights)
    values = _evaluate(fn, samples.positions)

    def weighted(v):
        return jnp.reshape(w, (n,) + (1,) * (v.ndim - 1)) * v

    return Estimate(
        jax.tree.map(lambda v: weighted(v).mean(0), values),
        jax.tree.map(lambda v: weighted(v).std(0, ddof=1) / jnp.sqrt(n), values),
    )


def self_normalised_expectation(
    samples: ImportanceSamples, fn: Callable[[PyTree], Any]
) -> Estimate:
    """Self-normalised IS: ``sum_i w_i fn(x_i) / sum_i w_i``; the target may be unnormalised.

    The standard error is the delta-method one, ``sqrt(sum_i wbar_i^2 (fn(x_i) - mu)^2)``.

    Example:
        >>> import jax
        >>> import numpyro.distributions as dist
        >>> from probkit.importance import importance_sample, self_normalised_expectation
        >>> logp = lambda x: -0.5 * (x - 1.0) ** 2  # unnormalised N(1, 1)
        >>> s = importance_sample(jax.random.key(0), logp, dist.Normal(0.0, 2.0), 100_000)
        >>> est = self_normalised_expectation(s, lambda x: x)
        >>> bool(abs(est.value - 1.0) < 4 * est.std_error)
        True
    """
    n = samples.log_weights.shape[0]
    wbar = normalised_weights(samples.log_weights)
    values = _evaluate(fn, samples.positions)

    def mean(v):
        return jnp.tensordot(wbar, v, axes=1)

    def std_error(v):
        centred = v - mean(v)
        w2 = jnp.reshape(wbar**2, (n,) + (1,) * (v.ndim - 1))
        return jnp.sqrt((w2 * centred**2).sum(0))

    return Estimate(jax.tree.map(mean, values), jax.tree.map(std_error, values))


# The American spelling, kept for existing callers; new code uses the British one.
self_normalized_expectation = renamed(
    self_normalised_expectation, "probkit.importance.self_normalized_expectation"
)
