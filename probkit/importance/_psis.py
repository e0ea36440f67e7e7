"""Pareto-smoothed importance sampling (PSIS) and the k-hat diagnostic.

PSIS (Vehtari, Simpson, Gelman, Yao & Gabry 2024, JMLR 25(72)) replaces the
largest importance ratios by the expected order statistics of a generalised
Pareto distribution fitted to the tail, and reports the fitted shape ``k-hat``:
below 0.5 the weights have finite variance, up to 0.7 PSIS still gives usable
estimates, above 0.7 the estimates are unreliable (the raw weights may not have
a finite mean rate of convergence). The smoothing itself is blackjax's pure-JAX
``psis_weights`` (jit/vmap-able, the same algorithm as ArviZ's ``psislw``);
this module adds the estimates, the effective sample size and the warning.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from probkit._repr import summary_repr
from probkit.importance._estimators import (
    ImportanceSamples,
    effective_sample_size,
    self_normalised_expectation,
    warn_nonfinite_log_weights,
)

__all__ = ["PSISResult", "PSISEstimate", "psis", "psis_expectation", "warn_pareto_khat"]

KHAT_THRESHOLD = 0.7


# blackjax's smoothing is a few dozen primitives (sort, grid fit, ...): compiled once here
# so that eager calls do not dispatch them one by one; inside an outer jit it is inlined.
@functools.partial(jax.jit, static_argnames="r_eff")
def _psis_weights(log_weights, r_eff):
    # blackjax's import starts a JAX backend: imported at the first call, not with probkit.
    from blackjax.diagnostics import psis_weights

    return psis_weights(log_weights, r_eff=r_eff)


class PSISResult(NamedTuple):
    """Pareto-smoothed weights.

    Attributes:
        log_weights: ``(n,)`` smoothed, normalised log weights (``logsumexp == 0``).
        pareto_k: the tail shape estimate ``k-hat``.
        ess: Kish's effective sample size of the smoothed weights.
    """

    log_weights: Array
    pareto_k: Array
    ess: Array

    def __repr__(self) -> str:
        return summary_repr(self)


class PSISEstimate(NamedTuple):
    """A PSIS (self-normalised) estimate, its delta-method standard error, and ``k-hat``."""

    value: Any
    std_error: Any
    pareto_k: Array

    def __repr__(self) -> str:
        return summary_repr(self)


def warn_pareto_khat(pareto_k, threshold: float = KHAT_THRESHOLD) -> None:
    """Warns in words when any ``k-hat`` exceeds ``threshold`` (host side; any array shape).

    Example:
        >>> import warnings
        >>> from probkit.importance._psis import warn_pareto_khat
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_pareto_khat(0.9)
        >>> "k-hat" in str(caught[0].message)
        True
    """
    k = np.asarray(pareto_k, dtype=float)
    bad = ~(k <= threshold)  # NaN counts as bad
    if bad.any():
        worst = float(np.nanmax(k)) if np.isfinite(k).any() else float("nan")
        where = "" if k.ndim == 0 else f" in {int(bad.sum())} of {k.size} weight sets"
        warnings.warn(
            f"Pareto k-hat = {worst:.2f} > {threshold}{where}: the importance weights have a "
            "very heavy right tail, so importance-sampling estimates are unreliable (their error "
            "may not shrink as more draws are added). Use a proposal closer to the target, "
            "with heavier tails (e.g. Student-t), or more adaptation.",
            RuntimeWarning,
            stacklevel=2,
        )


def _nonfinite_problem(lw: np.ndarray) -> str | None:
    if np.isnan(lw).any():
        return f"log_weights has {int(np.isnan(lw).sum())} NaN value(s) of {lw.size}"
    if np.isposinf(lw).any():
        return f"log_weights has {int(np.isposinf(lw).sum())} +inf value(s) of {lw.size}"
    if np.isneginf(lw).all():
        return (
            f"every one of the {lw.size} log_weights is -inf (the target density is zero at "
            "every draw: the proposal misses its support)"
        )
    return None


def _warn_psis(pareto_k, log_weights) -> None:
    lw = np.asarray(log_weights, dtype=float)
    if lw.ndim == 1 and _nonfinite_problem(lw) is not None:
        warn_nonfinite_log_weights(lw)  # the cause, not a "heavy tail"
    else:
        warn_pareto_khat(pareto_k)


def psis(log_weights: Array, *, r_eff: float = 1.0, warn: bool = True) -> PSISResult:
    """Pareto-smooths log importance weights; warns when ``k-hat > 0.7``.

    Args:
        log_weights: ``(n,)`` log importance ratios (any additive constant).
        r_eff: relative efficiency of the draws (1 for independent draws).
        warn: emit a ``RuntimeWarning`` in words when ``k-hat > 0.7``; it goes through
            ``jax.debug.callback``, so it also fires under ``jit`` and ``vmap``.

    Returns:
        A :class:`PSISResult`.

    Raises:
        ValueError: if ``log_weights`` is not 1-D, or (when its values are concrete) holds
            NaN or ``+inf`` or is ``-inf`` everywhere; under ``jit`` those cases give a
            :class:`~probkit.results.SamplingWarning` instead.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.importance import psis
        >>> lw = 0.1 * jax.random.normal(jax.random.key(0), (1000,))  # light-tailed
        >>> res = psis(lw)
        >>> bool(res.pareto_k < 0.5), round(float(jnp.exp(res.log_weights).sum()), 4)
        (True, 1.0)
    """
    log_weights = jnp.asarray(log_weights)
    if log_weights.ndim != 1:
        raise ValueError(
            f"log_weights must have shape (n,), got {log_weights.shape}; vmap psis over "
            "leading axes."
        )
    if log_weights.shape[0] < 2:
        raise ValueError(f"log_weights must hold at least 2 values, got {log_weights.shape}.")
    if not r_eff > 0:
        raise ValueError(f"r_eff must be > 0 (1 for independent draws), got {r_eff!r}.")
    if not isinstance(log_weights, jax.core.Tracer):
        problem = _nonfinite_problem(np.asarray(log_weights, dtype=float))
        if problem is not None:
            raise ValueError(
                f"{problem}: Pareto smoothing needs finite log-weights (-inf allowed for "
                "some). Make the target's log density finite wherever the proposal puts "
                "mass, or use a proposal that covers the target."
            )
    smoothed, khat = _psis_weights(log_weights, r_eff=float(r_eff))
    if warn:
        jax.debug.callback(_warn_psis, khat, log_weights)
    return PSISResult(smoothed, khat, effective_sample_size(smoothed))


def psis_expectation(
    samples: ImportanceSamples, fn: Callable[[Any], Any], *, r_eff: float = 1.0, warn: bool = True
) -> PSISEstimate:
    """Self-normalised IS estimate of ``E_p[fn(X)]`` with Pareto-smoothed weights.

    Example:
        >>> import jax
        >>> import numpyro.distributions as dist
        >>> from probkit.importance import importance_sample, psis_expectation
        >>> logp = lambda x: -0.5 * (x - 1.0) ** 2
        >>> s = importance_sample(jax.random.key(0), logp, dist.Normal(0.0, 2.0), 10_000)
        >>> est = psis_expectation(s, lambda x: x)
        >>> bool(abs(est.value - 1.0) < 4 * est.std_error), bool(est.pareto_k < 0.7)
        (True, True)
    """
    smoothed = psis(samples.log_weights, r_eff=r_eff, warn=warn)
    est = self_normalised_expectation(samples._replace(log_weights=smoothed.log_weights), fn)
    return PSISEstimate(est.value, est.std_error, smoothed.pareto_k)
