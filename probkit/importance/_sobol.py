"""Sobol' sensitivity indices: pick-freeze, Saltelli (quasi-random) and adaptive IS + CV.

All three methods estimate the same handful of expectations over the pair
``(X, X')`` of independent copies of the inputs. With ``A = X``, ``B = X'``,
``AB_i`` = ``A`` with coordinate ``i`` taken from ``B`` and ``BA_i`` = ``B`` with
coordinate ``i`` taken from ``A``:

- ``D      = E[(f(A) - f(B))^2] / 2``             (= Var f(X))
- ``V_i    = E[f(B) (f(AB_i) - f(A))]``           (Saltelli et al. 2010, first order)
- ``VT_i   = E[(f(A) - f(AB_i))^2] / 2``          (Jansen 1999, total)
- ``Vc_ij  = E[f(BA_i) f(AB_j) - f(A) f(B)]``     (closed second order, Saltelli 2002)

and ``S_i = V_i / D``, ``T_i = VT_i / D``, ``S_ij = Vc_ij / D - S_i - S_j``.
A row costs ``d + 2`` evaluations of ``f`` (``2d + 2`` with second order). These are
``formulas="saltelli-jansen"`` (the default).

``formulas="non-centered"`` uses the products of the original pick-freeze scheme
(Sobol' 1993; Homma & Saltelli 1996), the expectations that Demange-Chryst, Bachoc
& Morio estimate with their adaptive IS + CV (arXiv:2212.00568; their code,
``numerical_tests/cantilever_beam_sobol.py``, does first-order indices this way):

- ``P_i = E[f(A) f(BA_i)]``, ``Q_i = E[f(A) f(AB_i)]``, ``mu = E[f(A)]``, ``m2 = E[f(A)^2]``

with ``D = m2 - mu^2``, ``S_i = (P_i - mu^2) / D`` and ``T_i = 1 - (Q_i - mu^2) / D``;
a row costs ``2d + 1`` evaluations (``f(B)`` is not needed). For a positive ``f`` all
these integrands are positive, which is the case the adaptive IS + CV is built for
(zero variance at its optimum); plain Monte Carlo with them suffers from the
cancellation in ``P_i - mu^2`` when ``mu^2`` is large against ``D``.

- ``"pick-freeze"``: i.i.d. rows from the input law;
- ``"saltelli"``: rows from a scrambled Sobol' sequence (``scipy.stats.qmc``) pushed
  through the marginal quantile functions (the randomised-QMC design of
  Saltelli's scheme; use a power-of-two number of rows);
- ``"iscv"``: the expectations above estimated jointly by
  :func:`~probkit.importance.multiple_expectations` on the product law of
  ``(X, X')`` (Demange-Chryst, Bachoc & Morio, arXiv:2212.00568, Sect. 5).

Standard errors come from the delta method on the estimated covariance of the
expectations (for ``"saltelli"`` that covariance is the i.i.d. one, which
overstates the error of a randomised QMC design: conservative).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax import Array
from scipy.stats import qmc

from probkit._checks import check_key
from probkit._repr import summary_repr
from probkit.importance._laws import ProductLaw, as_flat_law
from probkit.importance._multiple_expectations import (
    MultipleExpectationsResult,
    run_multiple_expectations,
)
from probkit.importance._space import WorkingSpace, space_to_input

__all__ = ["SobolResult", "sobol_indices", "sobol_integrands"]

METHODS = ("iscv", "pick-freeze", "saltelli")
FORMULAS = ("saltelli-jansen", "non-centered")


class SobolResult(NamedTuple):
    """Sobol' indices with delta-method standard errors.

    Attributes:
        first_order: ``(d,)`` first-order indices ``S_i``.
        total: ``(d,)`` total indices ``T_i``.
        first_order_std_error, total_std_error: their standard errors.
        second_order: ``(d, d)`` symmetric matrix of ``S_ij`` (zero diagonal), or ``None``.
        second_order_std_error: its standard errors, or ``None``.
        variance: the output variance ``Var f(X)``, and ``variance_std_error``.
        expectations: the estimated ``(V_1..V_d, VT_1..VT_d, D, Vc_ij...)``, or
            ``(P_1..P_d, Q_1..Q_d, mu, m2)`` with ``formulas="non-centered"``.
        expectations_covariance: their estimated covariance.
        num_evaluations: evaluations of ``f`` spent.
        method: the method used.
        iscv: the :class:`MultipleExpectationsResult` for ``method="iscv"``, else ``None``.
    """

    first_order: Array
    total: Array
    first_order_std_error: Array
    total_std_error: Array
    second_order: Array | None
    second_order_std_error: Array | None
    variance: Array
    variance_std_error: Array
    expectations: Array
    expectations_covariance: Array
    num_evaluations: int
    method: str
    iscv: MultipleExpectationsResult | None

    def __repr__(self) -> str:
        return summary_repr(self)


def _pairs(d: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(d, k=1)


def sobol_integrands(f_a: Array, f_b: Array, f_ab: Array, f_ba: Array | None = None) -> Array:
    """Per-row integrands ``(V_i.., VT_i.., D, Vc_ij..)`` from evaluations on the design.

    Args:
        f_a: ``(n,)`` values ``f(A)``.
        f_b: ``(n,)`` values ``f(B)``.
        f_ab: ``(n, d)`` values ``f(AB_i)``.
        f_ba: ``(n, d)`` values ``f(BA_i)`` (second order), or ``None``.

    Returns:
        ``(n, 2d + 1 [+ d(d-1)/2])`` integrands whose means are the expectations.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.importance import sobol_integrands
        >>> sobol_integrands(jnp.ones(4), jnp.zeros(4), jnp.ones((4, 2))).shape
        (4, 5)
    """
    first = f_b[:, None] * (f_ab - f_a[:, None])
    total = 0.5 * (f_a[:, None] - f_ab) ** 2
    variance = 0.5 * (f_a - f_b)[:, None] ** 2
    cols = [first, total, variance]
    if f_ba is not None:
        i, j = _pairs(f_ab.shape[-1])
        cols.append(f_ba[:, i] * f_ab[:, j] - (f_a * f_b)[:, None])
    return jnp.concatenate(cols, axis=-1)


_integrands = jax.jit(sobol_integrands)


@jax.jit
def _noncentered_integrands(f_a: Array, f_ab: Array, f_ba: Array) -> Array:
    """Per-row ``(f(A) f(BA_i).., f(A) f(AB_i).., f(A), f(A)^2)``, shape ``(n, 2d + 2)``."""
    return jnp.concatenate(
        [f_a[:, None] * f_ba, f_a[:, None] * f_ab, f_a[:, None], f_a[:, None] ** 2], -1
    )


def _indices_from_noncentered(means: Array, d: int) -> Array:
    mean, variance = means[2 * d], means[2 * d + 1] - means[2 * d] ** 2
    first = (means[:d] - mean**2) / variance
    total = 1.0 - (means[d : 2 * d] - mean**2) / variance
    return jnp.concatenate([first, total, variance[None]])


def _indices_from_expectations(means: Array, d: int, second_order: bool) -> Array:
    first, total, variance = means[:d], means[d : 2 * d], means[2 * d]
    s = first / variance
    out = [s, total / variance, variance[None]]
    if second_order:
        i, j = _pairs(d)
        out.append(means[2 * d + 1 :] / variance - s[i] - s[j])
    return jnp.concatenate(out)


@jax.jit(static_argnames=("second_order", "with_b"))
def _design(a: Array, b: Array, second_order: bool, with_b: bool = True) -> Array:
    """Rows ``A[, B], AB_1..AB_d[, BA_1..BA_d]`` stacked, shape ``(m * n, d)``."""
    d = a.shape[-1]
    eye = jnp.eye(d, dtype=bool)
    ab = jnp.where(eye[:, None, :], b[None], a[None])  # (d, n, d): AB_i
    blocks = [a[None], b[None], ab] if with_b else [a[None], ab]
    if second_order:
        blocks.append(jnp.where(eye[:, None, :], a[None], b[None]))  # BA_i
    return jnp.concatenate(blocks, 0).reshape(-1, d)


def _check_f(f: Callable, law, key: Array) -> None:
    """One evaluation of ``f`` on 4 draws, before the design: the output shape, and (for a
    JAX function) out-of-bounds indexing, which JAX would otherwise clamp silently."""
    d = law.dim
    probe = law.sample(key, 4)
    try:
        from jax.experimental import checkify

        error, out = checkify.checkify(lambda x: jnp.asarray(f(x)), errors=checkify.index_checks)(
            probe
        )
    except Exception:  # not traceable by JAX (a NumPy callable): a plain call below
        out = None
    else:
        message = error.get()
        if message:
            raise IndexError(
                f"f indexes past its input: input_dist has d={d} coordinates, so f receives "
                f"arrays of shape (n, {d}) and may read columns 0..{d - 1} only "
                f"({message.strip()}). Make input_dist's dimension match what f reads."
            )
    if out is None:
        try:
            out = np.asarray(f(np.asarray(probe)))
        except IndexError as error:
            raise IndexError(
                f"f indexes past its input: input_dist has d={d} coordinates, so f receives "
                f"arrays of shape (n, {d}) ({error}). Make input_dist's dimension match what f "
                "reads."
            ) from error
    if tuple(np.shape(out)) != (4,):
        raise ValueError(
            f"f must map a batch of inputs of shape (n, {d}) (d={d} from input_dist) to "
            f"outputs of shape (n,); for inputs of shape (4, {d}) it returned shape "
            f"{tuple(np.shape(out))}."
        )


def _make_integrand_evaluator(f: Callable, d: int, second_order: bool, formulas: str):
    noncentered = formulas == "non-centered"
    # Whether f ever returned two different values (a constant f has no variance to share).
    seen = {"first": None, "varied": False}

    def evaluate_rows(a: Array, b: Array) -> Array:
        n = a.shape[0]
        if noncentered:  # rows A, AB_1..AB_d, BA_1..BA_d
            rows = _design(a, b, second_order=True, with_b=False)
        else:
            rows = _design(a, b, second_order=second_order)
        out = jnp.asarray(f(rows))
        if out.size != rows.shape[0]:
            raise ValueError(
                f"f returned shape {out.shape} for a batch of {rows.shape[0]} inputs; f must map "
                "(n, d) inputs to (n,) outputs."
            )
        out = out.reshape(-1, n).astype(a.dtype)
        host = np.asarray(out)
        if not np.all(np.isfinite(host)):
            raise FloatingPointError(
                "f returned non-finite values on the Sobol' design; make it finite on the "
                "support of input_dist."
            )
        if not seen["varied"]:
            if seen["first"] is None:
                seen["first"] = host.flat[0]
            seen["varied"] = bool(np.any(host != seen["first"]))
        if noncentered:
            return _noncentered_integrands(out[0], out[1 : 1 + d].T, out[1 + d :].T)
        f_ba = out[2 + d :].T if second_order else None
        return _integrands(out[0], out[1], out[2 : 2 + d].T, f_ba)

    evaluate_rows.varied = lambda: seen["varied"]
    return evaluate_rows


def _law_for_sobol(input_dist):
    law = as_flat_law(input_dist)
    if not law.has_marginals:
        raise ValueError(
            "Sobol' indices need independent inputs: pass a NumPyro distribution with "
            "batch_shape (d,) (e.g. dist.Uniform(lows, highs)), Independent of one, or a list "
            "of scalar distributions."
        )
    return law


def _seed_from_key(key: Array) -> int:
    return int(jax.random.randint(key, (), 0, np.iinfo(np.int32).max))


def sobol_indices(
    key: Array,
    f: Callable[[Array], Array],
    input_dist: dist.Distribution | Sequence[dist.Distribution],
    budget: int,
    *,
    method: str = "iscv",
    second_order: bool = False,
    family: str = "SG",
    num_batches: int = 5,
    formulas: str = "saltelli-jansen",
) -> SobolResult:
    """First-order, total (and closed second-order) Sobol' indices of ``f`` under ``input_dist``.

    Args:
        key: a ``jax.random`` key.
        f: maps a batch of inputs ``(n, d)`` to outputs ``(n,)``; a JAX function or a
            plain Python/NumPy callable, always called on whole batches.
        input_dist: independent inputs: a NumPyro distribution with ``batch_shape``
            ``(d,)`` (or ``Independent`` of one), or a list of ``d`` scalar distributions.
        budget: evaluations of ``f``; each design row costs ``d + 2`` (``2d + 2`` with
            ``second_order``, ``2d + 1`` with ``formulas="non-centered"``), so
            ``budget // (d + 2)`` rows are used by default.
        method: ``"iscv"`` (adaptive importance sampling with control variates),
            ``"pick-freeze"`` (i.i.d. Monte Carlo) or ``"saltelli"`` (randomised
            quasi-Monte Carlo, Sobol' points).
        second_order: also estimate the second-order indices ``S_ij``.
        family: option of :func:`multiple_expectations` for ``"iscv"``.
        num_batches: option of :func:`multiple_expectations` for ``"iscv"``.
        formulas: ``"saltelli-jansen"`` (centred integrands: Saltelli 2010 first
            order, Jansen total) or ``"non-centered"`` (the products ``f(A) f(BA_i)``,
            ``f(A) f(AB_i)``, ``f(A)``, ``f(A)^2`` that arXiv:2212.00568 estimates; suits
            ``"iscv"`` for a positive ``f`` whose output varies little around its mean).

    Returns:
        A :class:`SobolResult`.

    Raises:
        ValueError: for an unknown ``method`` or ``formulas``, a too small ``budget``,
            dependent inputs, ``second_order`` with ``formulas="non-centered"``, an ``f``
            whose output is not ``(n,)`` for ``(n, d)`` inputs (checked with one
            evaluation before the design), or an ``f`` that is constant on every
            evaluation (zero variance: the indices are 0 / 0).
        IndexError: if ``f`` (a JAX function) indexes past the ``d`` coordinates of
            ``input_dist``.
        FloatingPointError: if ``f`` returns non-finite values.
        TypeError: if ``f`` is not callable or ``key`` is not a ``jax.random`` key.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import numpyro.distributions as dist
        >>> from probkit.importance import sobol_indices
        >>> f = lambda x: x[:, 0] + 2.0 * x[:, 1]  # S = (1/5, 4/5), T = S
        >>> res = sobol_indices(jax.random.key(0), f, dist.Normal(jnp.zeros(2), 1.0), 65536,
        ...                     method="pick-freeze")
        >>> [round(float(s), 1) for s in res.first_order]
        [0.2, 0.8]
    """
    check_key(key)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if formulas not in FORMULAS:
        raise ValueError(f"formulas must be one of {FORMULAS}, got {formulas!r}.")
    if second_order and formulas == "non-centered":
        raise ValueError(
            "second_order=True needs formulas='saltelli-jansen' (the non-centred products "
            "give first-order and total indices only)."
        )
    check_key(key)
    if not callable(f):
        raise TypeError("f must be a callable mapping (n, d) inputs to (n,) outputs.")
    law = _law_for_sobol(input_dist)
    d = law.dim
    if formulas == "non-centered":
        per_row = 2 * d + 1
    else:
        per_row = 2 * d + 2 if second_order else d + 2
    if not isinstance(budget, int | np.integer) or budget < 20 * per_row:
        raise ValueError(
            f"budget must be an int of at least {20 * per_row} evaluations "
            f"({per_row} per design row for d={d}), got {budget!r}."
        )
    num_rows = budget // per_row
    # A key of its own (folded in), so that the draws below are those of earlier versions.
    _check_f(f, law, jax.random.fold_in(key, 0x5AB0))
    evaluate_rows = _make_integrand_evaluator(f, d, second_order, formulas)
    iscv = None
    if method == "pick-freeze":
        key_a, key_b = jax.random.split(key)
        terms = evaluate_rows(law.sample(key_a, num_rows), law.sample(key_b, num_rows))
        means = terms.mean(0)
        covariance = jnp.atleast_2d(jnp.cov(terms, rowvar=False)) / num_rows
    elif method == "saltelli":
        if not law.has_quantiles:
            raise ValueError(
                "method='saltelli' needs marginals with NumPyro cdf/icdf; use "
                "method='pick-freeze' or 'iscv'."
            )
        sobol = qmc.Sobol(2 * d, scramble=True, rng=np.random.default_rng(_seed_from_key(key)))
        u = jnp.asarray(sobol.random(num_rows), dtype=jnp.result_type(float))
        eps = jnp.finfo(u.dtype).eps
        u = jnp.clip(u, eps, 1.0 - eps)
        terms = evaluate_rows(law.marginal_icdf(u[:, :d]), law.marginal_icdf(u[:, d:]))
        means = terms.mean(0)
        covariance = jnp.atleast_2d(jnp.cov(terms, rowvar=False)) / num_rows
    else:
        space = WorkingSpace([ProductLaw([law, law])], "auto")
        evaluate = lambda z: evaluate_rows(*jnp.split(space_to_input(space, z), 2, axis=-1))
        iscv = run_multiple_expectations(
            key, evaluate, space, num_rows, family=family, num_batches=num_batches
        )
        means, covariance = iscv.estimates, iscv.covariance
        num_rows = iscv.num_evaluations

    if formulas == "non-centered":
        index_map = lambda m: _indices_from_noncentered(m, d)
    else:
        index_map = lambda m: _indices_from_expectations(m, d, second_order)
    values = index_map(means)
    variance = float(values[2 * d])
    if not evaluate_rows.varied() or not variance > 0:
        what = (
            "f returned the same value at every one of the inputs it was evaluated on"
            if not evaluate_rows.varied()
            else f"the estimated output variance is {variance:.3g}"
        )
        raise ValueError(
            f"{what}: Sobol' indices share out the variance of f, which is zero here, so they "
            "are undefined (0 / 0). Check that f depends on its inputs; if it varies only on "
            "a small region of input_dist, raise budget."
        )
    jac = jax.jacfwd(index_map)(means)
    std_errors = jnp.sqrt(jnp.clip(jnp.diag(jac @ covariance @ jac.T), 0.0))
    second = second_se = None
    if second_order:
        i, j = _pairs(d)
        second = jnp.zeros((d, d)).at[i, j].set(values[2 * d + 1 :])
        second_se = jnp.zeros((d, d)).at[i, j].set(std_errors[2 * d + 1 :])
        second, second_se = second + second.T, second_se + second_se.T
    return SobolResult(
        first_order=values[:d],
        total=values[d : 2 * d],
        first_order_std_error=std_errors[:d],
        total_std_error=std_errors[d : 2 * d],
        second_order=second,
        second_order_std_error=second_se,
        variance=values[2 * d],
        variance_std_error=std_errors[2 * d],
        expectations=means,
        expectations_covariance=covariance,
        num_evaluations=int(num_rows) * per_row,
        method=method,
        iscv=iscv,
    )
