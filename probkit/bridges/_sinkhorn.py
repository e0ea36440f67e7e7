"""Entropic optimal transport between weighted empirical measures (log-domain Sinkhorn).

The solver is OTT-JAX's log-domain Sinkhorn (Cuturi et al., "Optimal Transport Tools",
2022); probkit wraps it so that every bridge solver gets one result type with the plan,
both costs and the convergence diagnostics. For a cost matrix ``C``, weights ``a`` and
``b`` and ``epsilon > 0`` it solves

    P* = argmin_{P 1 = a, P^T 1 = b}  <C, P> + epsilon KL(P || a b^T).

The result reports the *transport cost* ``<C, P>`` and the *entropic objective*
``<C, P> + epsilon KL(P || a b^T)`` separately. For every ``epsilon``,
``0 <= <C, P_eps> - OT(a, b) <= epsilon min(H(a), H(b))`` (the mutual information of a
coupling is at most the entropy of either marginal), which the tests use against an
exact linear-programming solution.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probkit._repr import summary_repr
from probkit.results import SamplingWarning

__all__ = ["SinkhornResult", "sinkhorn", "squared_distances"]


class SinkhornResult(NamedTuple):
    """Output of :func:`sinkhorn`.

    Attributes:
        plan: the transport plan ``P``, shape ``(n, m)``; its rows sum to ``a`` and its
            columns to ``b`` up to ``marginal_errors``.
        transport_cost: ``<C, P>``, the cost of moving the mass along ``P``.
        entropic_cost: the entropic objective ``<C, P> + epsilon KL(P || a b^T)``.
        potentials: the dual potentials ``(f, g)`` with
            ``P_ij = exp((f_i + g_j - C_ij) / epsilon)`` (``-inf`` where a weight is
            zero).
        num_iterations: Sinkhorn iterations run.
        marginal_errors: L1 errors ``(|P 1 - a|_1, |P^T 1 - b|_1)``.
        converged: whether the plan is finite and both marginal errors are at most
            ``threshold``.
    """

    plan: jax.Array
    transport_cost: jax.Array
    entropic_cost: jax.Array
    potentials: tuple[jax.Array, jax.Array]
    num_iterations: jax.Array
    marginal_errors: jax.Array
    converged: jax.Array

    def __repr__(self) -> str:
        return summary_repr(self)


def squared_distances(x: jax.Array, y: jax.Array) -> jax.Array:
    """Pairwise squared Euclidean distances ``|x_i - y_j|^2``.

    Args:
        x: points, shape ``(n, d)``.
        y: points, shape ``(m, d)``.

    Returns:
        an ``(n, m)`` matrix (computed from differences, so never negative).

    Raises:
        ValueError: if ``x`` and ``y`` are not 2-D with the same number of columns.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.bridges import squared_distances
        >>> squared_distances(jnp.zeros((1, 2)), jnp.array([[3.0, 4.0]])).tolist()
        [[25.0]]
    """
    if jnp.ndim(x) != 2 or jnp.ndim(y) != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must be 2-D arrays (points, dim) with the same dim, got shapes "
            f"{jnp.shape(x)} and {jnp.shape(y)}; reshape single points to (1, dim)."
        )
    diff = x[:, None, :] - y[None, :, :]
    return jnp.sum(diff * diff, axis=-1)


def _check_weights(name: str, weights, size: int, dim_name: str) -> jax.Array:
    if weights is None:
        return jnp.full((size,), 1.0 / size)
    weights = jnp.asarray(weights)
    if weights.shape != (size,):
        raise ValueError(
            f"{name} must have shape ({size},) to match the cost matrix's {dim_name}, "
            f"got {weights.shape}."
        )
    if not isinstance(weights, jax.core.Tracer):
        w = np.asarray(weights)
        if not np.all(np.isfinite(w)):
            bad = np.flatnonzero(~np.isfinite(w))
            raise ValueError(
                f"{name} must be finite; entries {bad[:5].tolist()} are {w[bad[0]]}. Give "
                f"every point a finite, non-negative weight."
            )
        if np.any(w < 0):
            bad = np.flatnonzero(w < 0)
            raise ValueError(
                f"{name} must be non-negative; entries {bad[:5].tolist()} are negative (the "
                f"first {w[bad[0]]:.6g}). Weights are probabilities: drop those points or "
                "give them weight 0."
            )
        if abs(w.sum() - 1.0) > 1e-4:
            raise ValueError(
                f"{name} must sum to 1 (got sum {w.sum():.6g}); normalise it with "
                f"{name} / {name}.sum()."
            )
    return weights


def _ott_sinkhorn():
    with warnings.catch_warnings():
        # OTT-JAX imports jaxopt, which warns on import that it is unmaintained.
        warnings.simplefilter("ignore", DeprecationWarning)
        from ott.geometry import geometry
        from ott.problems.linear import linear_problem
        from ott.solvers.linear import sinkhorn as ott_sinkhorn
    return geometry, linear_problem, ott_sinkhorn


def warn_not_converged(
    converged, marginal_errors, epsilon, num_iterations, *, fix: str | None = None
) -> None:
    """Warn (:class:`~probkit.results.SamplingWarning`) when a Sinkhorn plan did not
    converge: its marginals are off, so it is not a coupling of ``a`` and ``b`` (host side,
    any batch shape).

    Example:
        >>> import warnings
        >>> from probkit.bridges._sinkhorn import warn_not_converged
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_not_converged(False, [0.9, 0.0], 1e-4, 2000)
        >>> "epsilon" in str(caught[0].message)
        True
    """
    ok = np.asarray(converged, dtype=bool)
    if ok.all():
        return
    errors = np.asarray(marginal_errors, dtype=float)
    worst = float(np.nanmax(errors)) if np.isfinite(errors).any() else float("nan")
    eps = np.asarray(epsilon, dtype=float)
    where = "" if ok.ndim == 0 else f" in {int((~ok).sum())} of {ok.size} problems"
    warnings.warn(
        f"Sinkhorn did not converge{where}: after {int(np.max(num_iterations))} iterations the "
        f"plan's marginals are off by {worst:.3g} in L1 (the weights sum to 1), so the plan "
        f"is not a coupling of the two weight vectors (epsilon = {float(eps.min()):.3g}). "
        + (
            fix
            or "Use a larger epsilon (about 1e-2 to 1e-1 times the largest cost), a larger "
            "max_iterations, or a looser threshold; the solver already works in the log "
            "domain."
        ),
        SamplingWarning,
        stacklevel=3,
    )


def sinkhorn(
    cost_matrix: jax.Array,
    a: jax.Array | None = None,
    b: jax.Array | None = None,
    *,
    epsilon: float | jax.Array,
    threshold: float = 1e-3,
    max_iterations: int = 2000,
    warn: bool = True,
) -> SinkhornResult:
    """Entropic optimal transport between weighted point sets by log-domain Sinkhorn.

    Pure and traceable: ``jax.jit`` and ``jax.vmap`` it (over cost matrices, weights or
    ``epsilon``) as you like; under ``vmap`` each problem stops at its own iteration.

    Args:
        cost_matrix: ground costs ``C``, shape ``(n, m)``.
        a: source weights, shape ``(n,)``, non-negative, summing to 1 (default uniform).
            Zero weights are allowed (padding).
        b: target weights, shape ``(m,)`` (default uniform).
        epsilon: entropic regularisation, in the units of ``cost_matrix``. Smaller values
            approach unregularised OT but need more iterations; below about
            ``1e-3 * C.max()`` in float32 the iteration may not converge.
        threshold: the largest L1 error of either marginal of the returned plan for
            ``converged`` to be true (the solver iterates to half of it, so that the
            plan it returns meets it despite float32 rounding).
        max_iterations: iteration cap; check ``converged`` in the result.
        warn: emit a :class:`~probkit.results.SamplingWarning` saying what to change when
            the plan did not converge; it goes through ``jax.debug.callback``, so it also
            fires under ``jit`` and ``vmap``.

    Returns:
        a :class:`SinkhornResult`.

    Raises:
        ValueError: if the shapes or weights are inconsistent or ``epsilon`` is not
            positive (checked before tracing when the values are concrete).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.bridges import sinkhorn, squared_distances
        >>> x = jax.random.normal(jax.random.key(0), (20, 2))
        >>> # A small epsilon converges slowly: at 0.05, 1% of such problems need more
        >>> # than the default 2000 iterations.
        >>> out = sinkhorn(squared_distances(x, x + 1.0), epsilon=0.05, max_iterations=10_000)
        >>> bool(out.converged), round(float(out.transport_cost), 1)
        (True, 2.0)
    """
    cost_matrix = jnp.asarray(cost_matrix)
    if cost_matrix.ndim != 2:
        raise ValueError(
            f"cost_matrix must be 2-D (n, m), got shape {cost_matrix.shape}; vmap sinkhorn "
            "to solve a batch of problems."
        )
    n, m = cost_matrix.shape
    a = _check_weights("a", a, n, "rows")
    b = _check_weights("b", b, m, "columns")
    if not isinstance(epsilon, jax.core.Tracer) and not np.all(np.asarray(epsilon) > 0):
        raise ValueError(f"epsilon must be positive, got {epsilon!r}.")
    if not isinstance(threshold, jax.core.Tracer) and not np.all(np.asarray(threshold) > 0):
        raise ValueError(f"threshold must be positive, got {threshold!r}.")
    if (
        isinstance(max_iterations, bool)
        or not isinstance(max_iterations, int | np.integer)
        or max_iterations < 10
    ):
        raise ValueError(
            f"max_iterations must be an int >= 10 (the marginal error is checked every 10 "
            f"iterations), got {max_iterations!r}."
        )

    geometry, linear_problem, ott_sinkhorn = _ott_sinkhorn()
    geom = geometry.Geometry(cost_matrix=cost_matrix, epsilon=epsilon)
    solver = ott_sinkhorn.Sinkhorn(
        lse_mode=True,
        # ott stops on its own estimate of the marginal error, taken before the last
        # update; the plan it returns can then miss `threshold` by float32 rounding
        # (seen: 1.1e-4 against 1e-4). Aim at half, so that the plan meets it.
        threshold=threshold / 2,
        max_iterations=int(max_iterations),
    )
    out = solver(linear_problem.LinearProblem(geom, a, b))
    plan = out.matrix
    transport_cost = jnp.sum(plan * cost_matrix)
    ratio = plan / (a[:, None] * b[None, :])
    kl = jnp.sum(jnp.where(plan > 0, plan * jnp.log(jnp.where(plan > 0, ratio, 1.0)), 0.0))
    entropic_cost = transport_cost + epsilon * kl
    marginal_errors = jnp.stack(
        [jnp.sum(jnp.abs(plan.sum(1) - a)), jnp.sum(jnp.abs(plan.sum(0) - b))]
    )
    # Judged on the returned plan itself rather than on the solver's flag.
    finite = jnp.all(jnp.isfinite(plan))
    converged = jnp.logical_and(finite, jnp.max(marginal_errors) <= threshold)
    num_iterations = jnp.asarray(out.n_iters)
    if warn:
        jax.debug.callback(warn_not_converged, converged, marginal_errors, epsilon, num_iterations)
    return SinkhornResult(
        plan=plan,
        transport_cost=transport_cost,
        entropic_cost=entropic_cost,
        potentials=(out.f, out.g),
        num_iterations=num_iterations,
        marginal_errors=marginal_errors,
        converged=converged,
    )
