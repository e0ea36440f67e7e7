"""Optimal mixture weights ``alpha`` on the simplex.

The adaptive sampler draws from ``g_alpha = sum_j alpha_j g_j``. With control
variates ``g_j / g_alpha`` and coefficients ``beta_j``, the weighted sum of the
per-sample second moments of the estimators is

    V(alpha) = E_h[ A(Z) h(Z) / g_alpha(Z) ],
    A(z) = sum_j omega_j ((f_j phi_j - beta_j g_j)(z) / h(z))^2,

estimated on every past point ``z_i ~ h`` (``h`` the deterministic mixture of
all past proposals): ``V(alpha) ~ sum_i c_i / (sum_j alpha_j g_j(z_i))`` with
``c_i = A_i h_i``. This is a linear (L-)optimal-design criterion,
``tr(C M(alpha)^{-1})`` with ``M(alpha) = sum_j alpha_j diag(g_j(z_.))``, convex
in ``alpha``. It is minimised by the multiplicative algorithm

    alpha_j <- alpha_j d_j^(1/2) / sum_k alpha_k d_k^(1/2),
    d_j = -dV/dalpha_j = sum_i c_i g_j(z_i) / g_alpha(z_i)^2,

whose fixed points are the optimality conditions and which decreases ``V`` at
every step for such criteria (Yu 2010, Ann. Statist. 38(3), "Monotonic
convergence of a general algorithm for computing optimal designs"). Everything
is computed in log space, so no density ratio overflows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

__all__ = ["optimize_mixture_weights", "log_weighted_second_moment"]


def log_weighted_second_moment(
    log_components: Array, log_numerator: Array, mask: Array, alpha: Array
) -> Array:
    """``log V(alpha) = log sum_i exp(log_numerator_i - log g_alpha(z_i))`` over the masked points.

    Args:
        log_components: ``log g_j(z_i)``, shape ``(n, J)``.
        log_numerator: ``log c_i = log (A(z_i) h(z_i))``, shape ``(n,)``.
        mask: ``(n,)`` booleans, the points that count.
        alpha: ``(J,)`` mixture weights.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.importance._mixture_weights import log_weighted_second_moment
        >>> v = log_weighted_second_moment(jnp.zeros((4, 2)), jnp.zeros(4), jnp.ones(4, bool),
        ...                                jnp.array([0.5, 0.5]))
        >>> round(float(v), 4)  # log(4)
        1.3863
    """
    log_alpha = jnp.log(jnp.clip(alpha, jnp.finfo(log_components.dtype).tiny))
    log_g_alpha = jax.nn.logsumexp(log_components + log_alpha, axis=-1)
    terms = jnp.where(mask, log_numerator - log_g_alpha, -jnp.inf)
    return jax.nn.logsumexp(terms)


def optimize_mixture_weights(
    log_components: Array,
    log_numerator: Array,
    mask: Array,
    alpha_init: Array,
    *,
    num_steps: int = 100,
    min_weight: float = 1e-8,
) -> Array:
    """Minimises :func:`log_weighted_second_moment` over ``alpha`` on the simplex.

    Args:
        log_components: ``(n, J)`` log densities ``log g_j(z_i)``.
        log_numerator: ``(n,)`` finite values ``log c_i``.
        mask: ``(n,)`` booleans, the points that count.
        alpha_init: ``(J,)`` starting point on the simplex (kept away from its faces).
        num_steps: multiplicative updates.
        min_weight: the weights are floored here (and renormalised) at the end,
            so that every ``g_j`` keeps a share of the sampling law.

    Returns:
        The optimal ``alpha``, shape ``(J,)``, positive and summing to one.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.importance._mixture_weights import optimize_mixture_weights
        >>> # Points where only the second density is large want most of the weight there.
        >>> log_g = jnp.log(jnp.array([[1.0, 0.1], [0.1, 1.0], [0.1, 1.0]]))
        >>> alpha = optimize_mixture_weights(log_g, jnp.zeros(3), jnp.ones(3, bool),
        ...                                  jnp.array([0.5, 0.5]))
        >>> bool(alpha[1] > alpha[0])
        True
    """
    num_j = alpha_init.shape[-1]
    log_c = jnp.where(mask, log_numerator, -jnp.inf)
    # Start inside the simplex: a point on a face could never leave it.
    start = 0.9 * alpha_init + 0.1 / num_j
    log_alpha0 = jnp.log(start / start.sum())

    def step(_, log_alpha):
        log_g_alpha = jax.nn.logsumexp(log_components + log_alpha, axis=-1)
        log_d = jax.nn.logsumexp(
            log_c[:, None] + log_components - 2.0 * log_g_alpha[:, None], axis=0
        )
        log_d = jnp.where(jnp.isfinite(log_d), log_d, -1e30)
        return jax.nn.log_softmax(log_alpha + 0.5 * log_d)

    log_alpha = jax.lax.fori_loop(0, num_steps, step, log_alpha0)
    alpha = jnp.clip(jnp.exp(log_alpha), min_weight)
    return alpha / alpha.sum()
