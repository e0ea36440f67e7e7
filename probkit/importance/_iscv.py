"""Adaptive importance sampling with control variates: the pure kernel.

The method of Demange-Chryst, Bachoc & Morio (arXiv:2212.00568) estimates
``I_j = E_{f_j}[phi_j(X)]``, ``j = 1..J``, from one sample. For a sampling law
``g_alpha = sum_j alpha_j g_j`` the estimator of ``I_j`` averages

    (f_j phi_j - beta_j g_j)(Z) / g_alpha(Z) + beta_j,       Z ~ g_alpha,

i.e. importance sampling plus the control variate ``g_j / g_alpha`` (mean one
under ``g_alpha``). With ``g_j`` proportional to ``|phi_j| f_j`` and
``beta_j = I_j`` the variance of a non-negative ``phi_j`` is zero, for every
``alpha``: the kernel adapts ``g_j`` (cross entropy), ``alpha`` (weighted
variance on the simplex) and ``beta`` (regression on the newest batch) towards
that ideal.

The state keeps every evaluated point in fixed-size arrays, ``num_batches``
slots of ``batch_size`` points, so that every function here compiles once.
The deterministic mixture ``h = sum_k (n_k / N) q_k`` of all proposals used so
far (``q_0`` the input law, ``q_k`` the ``k``-th ``g_alpha``) weights the past
points (Owen & Zhou 2000; Cornuet et al. 2012).

Pure functions, jit- and vmap-able:

- :func:`iscv_init` - state from the first batch, drawn from the input law(s);
- :func:`iscv_propose` - cross-entropy ``g_j`` and optimal ``alpha`` from all points;
- :func:`iscv_update` - add a batch drawn from the proposal; new ``beta`` and variances;
- :func:`iscv_terms` - the per-point terms of the unbiased estimator on a fresh sample.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from probkit.importance._cross_entropy import (
    GaussianMixture,
    component_log_densities,
    fit_cross_entropy,
    mixture_log_density,
)
from probkit.importance._mixture_weights import optimize_mixture_weights

__all__ = [
    "ISCVState",
    "ISCVInfo",
    "iscv_init",
    "iscv_propose",
    "iscv_update",
    "iscv_terms",
    "log_deterministic_mixture",
]


class ISCVState(NamedTuple):
    """Every point evaluated so far and the current control-variate estimator.

    Attributes:
        points: ``(K, n, d)`` points in the working space, ``K`` batch slots of ``n``.
        values: ``(K, n, J)`` values ``phi_j``.
        log_input: ``(K, n, J)`` log input densities ``log f_j``.
        log_initial: ``(K, n)`` log density of the first proposal (the input law(s)).
        proposals: the :class:`GaussianMixture` of each batch, leading axis ``K``
            (slot 0, the input law, holds a placeholder).
        alphas: ``(K, J)`` mixture weights of each batch's proposal (slot 0: the start).
        num_filled: number of filled slots.
        estimates: ``(J,)`` estimates from the newest batch.
        beta: ``(J,)`` control-variate coefficients from the newest batch.
        variances: ``(J,)`` per-point variances of the newest batch's estimator.
    """

    points: Array
    values: Array
    log_input: Array
    log_initial: Array
    proposals: GaussianMixture
    alphas: Array
    num_filled: Array
    estimates: Array
    beta: Array
    variances: Array


class ISCVInfo(NamedTuple):
    """What one :func:`iscv_update` learned from its batch (all shape ``(J,)``)."""

    estimates: Array
    variances: Array
    beta: Array
    alpha: Array


def _signed_exp(sign: Array, log_abs: Array) -> Array:
    return sign * jnp.exp(log_abs)


def _log_abs(values: Array) -> Array:
    return jnp.log(jnp.abs(values))


def _log_abs_difference(sign_a, log_a, sign_b, log_b):
    """``log |sign_a e^log_a - sign_b e^log_b|`` without overflow."""
    top = jnp.maximum(log_a, log_b)
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    diff = sign_a * jnp.exp(log_a - top) - sign_b * jnp.exp(log_b - top)
    return top + jnp.log(jnp.abs(diff))


def _cv_terms(log_input, values, log_g_alpha, log_g, beta):
    """IS terms ``y = f phi / g_alpha``, controls ``c = g_j / g_alpha`` and ``y - beta (c - 1)``."""
    y = _signed_exp(jnp.sign(values), log_input + _log_abs(values) - log_g_alpha[:, None])
    c = jnp.exp(log_g - log_g_alpha[:, None])
    return y, c, y - beta * (c - 1.0)


def iscv_init(
    points: Array,
    values: Array,
    log_input: Array,
    log_initial: Array,
    *,
    num_batches: int,
    num_components: int = 1,
    weights: Array | None = None,
) -> ISCVState:
    """State from a first batch drawn from the input law(s).

    Args:
        points: ``(n, d)`` first batch, drawn from the density ``exp(log_initial)``.
        values: ``(n, J)`` values ``phi_j`` at the points.
        log_input: ``(n, J)`` log input densities ``log f_j`` at the points.
        log_initial: ``(n,)`` log density the points were drawn from.
        num_batches: number of batch slots (the first batch included).
        num_components: Gaussian components per cross-entropy density (1 for "SG").
        weights: ``(J,)`` weights ``omega_j`` of the variance criterion (default ones).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jax.scipy.stats import norm
        >>> from probkit.importance import iscv_init
        >>> z = jax.random.normal(jax.random.key(0), (100, 1))
        >>> logf = norm.logpdf(z).sum(-1)
        >>> state = iscv_init(z, z**2, logf[:, None], logf, num_batches=5)
        >>> state.points.shape, int(state.num_filled)
        ((5, 100, 1), 1)
    """
    n, d = points.shape
    num_j = values.shape[-1]
    dtype = points.dtype
    weights = jnp.ones(num_j, dtype) if weights is None else jnp.asarray(weights, dtype)
    y = _signed_exp(jnp.sign(values), log_input + _log_abs(values) - log_initial[:, None])
    estimates = y.mean(0)
    variances = y.var(0, ddof=1)
    # Start alpha where the paper does: proportional to sqrt(omega_j) |I_j|.
    score = jnp.sqrt(weights) * jnp.abs(estimates)
    alpha0 = jnp.where(score.sum() > 0, score / jnp.where(score.sum() > 0, score.sum(), 1.0), 1.0)
    alpha0 = jnp.where(score.sum() > 0, alpha0, jnp.full(num_j, 1.0 / num_j, dtype))

    def slots(first, fill=0.0):
        buf = jnp.full((num_batches,) + first.shape, fill, first.dtype)
        return buf.at[0].set(first)

    placeholder = GaussianMixture(
        jnp.full((num_batches, num_j, num_components), -jnp.log(num_components), dtype),
        jnp.zeros((num_batches, num_j, num_components, d), dtype),
        jnp.broadcast_to(jnp.eye(d, dtype=dtype), (num_batches, num_j, num_components, d, d)),
    )
    return ISCVState(
        points=slots(points),
        values=slots(values),
        log_input=slots(log_input),
        log_initial=slots(log_initial),
        proposals=placeholder,
        alphas=slots(alpha0),
        num_filled=jnp.asarray(1, jnp.int32),
        estimates=estimates,
        beta=estimates,
        variances=variances,
    )


def log_deterministic_mixture(state: ISCVState) -> Array:
    """``log h`` at every stored point, ``(K, n)``; ``h = (1/k) sum_{l<k} q_l`` over filled slots.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jax.scipy.stats import norm
        >>> from probkit.importance import iscv_init
        >>> from probkit.importance._iscv import log_deterministic_mixture
        >>> z = jax.random.normal(jax.random.key(0), (10, 1))
        >>> logf = norm.logpdf(z).sum(-1)
        >>> state = iscv_init(z, z**2, logf[:, None], logf, num_batches=3)
        >>> bool(jnp.allclose(log_deterministic_mixture(state)[0], logf))
        True
    """
    num_k, n, d = state.points.shape
    flat = state.points.reshape(num_k * n, d)
    log_q = jax.vmap(lambda g, a: mixture_log_density(g, a, flat)[0])(
        state.proposals, state.alphas
    )  # (K, K*n)
    log_q = log_q.at[0].set(state.log_initial.reshape(-1))
    filled = jnp.arange(num_k) < state.num_filled
    log_share = jnp.where(filled, -jnp.log(state.num_filled.astype(flat.dtype)), -jnp.inf)
    log_h = jax.nn.logsumexp(jnp.where(filled[:, None], log_q, -jnp.inf) + log_share[:, None], 0)
    return log_h.reshape(num_k, n)


def iscv_propose(
    state: ISCVState,
    weights: Array | None = None,
    *,
    num_components: int = 1,
    diagonal: bool = False,
    jitter: float = 1e-6,
    num_em_steps: int = 50,
    num_alpha_steps: int = 100,
) -> tuple[GaussianMixture, Array]:
    """Cross-entropy densities ``g_j`` and the optimal weights ``alpha`` from all stored points.

    Each ``g_j`` is fitted to ``|phi_j| f_j`` with the points weighted by ``f_j / h``
    (to ``f_j`` alone if ``phi_j`` vanished on every point). ``alpha`` minimises the
    estimated ``sum_j omega_j Var(estimator_j)`` with the current ``beta`` (see
    :func:`optimize_mixture_weights`), started from the previous ``alpha``.

    Returns:
        ``(g, alpha)``: a :class:`GaussianMixture` with ``J`` mixtures and ``(J,)`` weights.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jax.scipy.stats import norm
        >>> from probkit.importance import iscv_init, iscv_propose
        >>> z = jax.random.normal(jax.random.key(0), (500, 1))
        >>> logf = norm.logpdf(z).sum(-1)
        >>> phis = jnp.concatenate([z**2, z**4], -1)
        >>> state = iscv_init(z, phis, jnp.stack([logf, logf], -1), logf, num_batches=3)
        >>> g, alpha = iscv_propose(state)
        >>> g.means.shape, alpha.shape
        ((2, 1, 1), (2,))
    """
    num_k, n, d = state.points.shape
    num_j = state.values.shape[-1]
    dtype = state.points.dtype
    weights = jnp.ones(num_j, dtype) if weights is None else jnp.asarray(weights, dtype)
    z = state.points.reshape(num_k * n, d)
    values = state.values.reshape(num_k * n, num_j)
    log_f = state.log_input.reshape(num_k * n, num_j)
    mask = (jnp.arange(num_k) < state.num_filled).repeat(n)
    log_h = log_deterministic_mixture(state).reshape(-1)
    log_h = jnp.where(mask, log_h, 0.0)

    # Cross entropy: weights |phi_j| f_j / h on the filled points.
    log_ratio = log_f + _log_abs(values) - log_h[:, None]
    log_ce = jnp.where(mask[:, None], log_ratio, -jnp.inf)
    has_mass = jnp.any(jnp.isfinite(log_ce), axis=0)
    fallback = jnp.where(mask[:, None], log_f - log_h[:, None], -jnp.inf)
    log_ce = jnp.where(has_mass, log_ce, fallback)
    mixture = fit_cross_entropy(
        z,
        log_ce,
        num_components=num_components,
        diagonal=diagonal,
        jitter=jitter,
        num_em_steps=num_em_steps,
    )

    # Weighted second moment of the CV estimators as a function of alpha.
    log_g = component_log_densities(mixture, z)
    beta = state.beta
    log_r = _log_abs_difference(
        jnp.sign(values), log_ratio, jnp.sign(beta), _log_abs(beta) + log_g - log_h[:, None]
    )
    log_a = jax.nn.logsumexp(jnp.log(weights) + 2.0 * log_r, axis=-1)
    very_small = jnp.asarray(-1e30, dtype)
    log_numerator = jnp.where(mask, jnp.maximum(log_a + log_h, very_small), very_small)
    alpha_prev = state.alphas[state.num_filled - 1]
    alpha = optimize_mixture_weights(
        log_g, log_numerator, mask, alpha_prev, num_steps=num_alpha_steps
    )
    return mixture, alpha


def iscv_update(
    state: ISCVState,
    mixture: GaussianMixture,
    alpha: Array,
    points: Array,
    values: Array,
    log_input: Array,
    log_initial: Array,
) -> tuple[ISCVState, ISCVInfo]:
    """Adds a batch drawn from ``g_alpha``; re-estimates ``beta`` and the variances on it.

    ``beta_j = Cov(c_j, y_j) / Var(c_j)`` with ``y_j = f_j phi_j / g_alpha`` and
    ``c_j = g_j / g_alpha`` (when ``Var(c_j)`` vanishes, e.g. for ``J = 1``, the
    control is constant and ``beta_j`` is set to the IS estimate). The variances are
    those of ``y_j - beta_j (c_j - 1)`` on the batch.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jax.scipy.stats import norm
        >>> from probkit.importance import (iscv_init, iscv_propose, iscv_update,
        ...                                 sample_mixture)
        >>> key0, key1 = jax.random.split(jax.random.key(0))
        >>> z = jax.random.normal(key0, (500, 1))
        >>> logf = norm.logpdf(z).sum(-1)
        >>> state = iscv_init(z, z**2, logf[:, None], logf, num_batches=3)
        >>> g, alpha = iscv_propose(state)
        >>> z1 = sample_mixture(key1, g, alpha, 500)
        >>> logf1 = norm.logpdf(z1).sum(-1)
        >>> state, info = iscv_update(state, g, alpha, z1, z1**2, logf1[:, None], logf1)
        >>> int(state.num_filled), bool(abs(info.estimates[0] - 1.0) < 0.1)
        (2, True)
    """
    log_g_alpha, log_g = mixture_log_density(mixture, alpha, points)
    y, c, _ = _cv_terms(log_input, values, log_g_alpha, log_g, jnp.zeros_like(alpha))
    c_mean = c.mean(0)
    c_var = c.var(0, ddof=1)
    cov = ((c - c_mean) * (y - y.mean(0))).sum(0) / (y.shape[0] - 1)
    degenerate = c_var <= 1e-8 * jnp.maximum(c_mean**2, 1.0)
    beta = jnp.where(degenerate, y.mean(0), cov / jnp.where(degenerate, 1.0, c_var))
    terms = y - beta * (c - 1.0)
    estimates = terms.mean(0)
    variances = terms.var(0, ddof=1)

    k = state.num_filled
    proposals = jax.tree.map(lambda buf, new: buf.at[k].set(new), state.proposals, mixture)
    new_state = ISCVState(
        points=state.points.at[k].set(points),
        values=state.values.at[k].set(values),
        log_input=state.log_input.at[k].set(log_input),
        log_initial=state.log_initial.at[k].set(log_initial),
        proposals=proposals,
        alphas=state.alphas.at[k].set(alpha),
        num_filled=k + 1,
        estimates=estimates,
        beta=beta,
        variances=variances,
    )
    return new_state, ISCVInfo(estimates, variances, beta, alpha)


def iscv_terms(
    mixture: GaussianMixture,
    alpha: Array,
    beta: Array,
    points: Array,
    values: Array,
    log_input: Array,
) -> Array:
    """Per-point terms ``(f_j phi_j - beta_j g_j) / g_alpha + beta_j``, shape ``(n, J)``.

    On a sample of ``g_alpha`` independent of ``(g, alpha, beta)`` their column
    means are unbiased estimates of the ``I_j``, and their sample covariance over
    ``n`` estimates the covariance of those means.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jax.scipy.stats import norm
        >>> from probkit.importance import GaussianMixture, iscv_terms
        >>> g = GaussianMixture(  # one N(0, 2^2) proposal
        ...     jnp.zeros((1, 1)), jnp.zeros((1, 1, 1)), jnp.full((1, 1, 1, 1), 4.0)
        ... )
        >>> z = 2.0 * jax.random.normal(jax.random.key(0), (20000, 1))
        >>> logf = norm.logpdf(z).sum(-1)[:, None]
        >>> t = iscv_terms(g, jnp.ones(1), jnp.zeros(1), z, z**2, logf)
        >>> bool(abs(t.mean() - 1.0) < 0.05)
        True
    """
    log_g_alpha, log_g = mixture_log_density(mixture, alpha, points)
    return _cv_terms(log_input, values, log_g_alpha, log_g, beta)[2]
