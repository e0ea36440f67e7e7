"""Several expectations from one sample: the adaptive IS + control variates driver.

:func:`multiple_expectations` runs the kernel of :mod:`probkit.importance._iscv`
as in Demange-Chryst, Bachoc & Morio (arXiv:2212.00568):

1. ``n = (budget // 2) // num_batches`` points from the input law(s);
2. up to ``num_batches - 1`` adaptive steps: cross-entropy ``g_j``, ``alpha`` on
   the simplex, ``n`` new points from ``g_alpha``, new ``beta`` and variances;
3. stop adapting as soon as the predicted final variance
   ``sum_j omega_j sigma_j^2 / (budget - N_evaluated)`` stops decreasing
   (another step's information does not pay for the points it spends), or when
   half the budget is spent;
4. spend the rest of the budget on a fresh sample of the last ``g_alpha``: the
   final estimates are unbiased, with standard errors.

It is a top-level driver: a host loop (the stopping rule and a user function
that may be plain Python need the host) around jitted pure steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax import Array

from probkit._checks import check_key
from probkit._repr import summary_repr
from probkit.importance._cross_entropy import GaussianMixture, sample_mixture
from probkit.importance._iscv import iscv_init, iscv_propose, iscv_terms, iscv_update
from probkit.importance._laws import FlatLaw
from probkit.importance._space import (
    TRANSFORMS,
    WorkingSpace,
    space_log_densities,
    space_sample,
    space_to_input,
)

__all__ = ["AdaptationHistory", "MultipleExpectationsResult", "multiple_expectations"]

FAMILIES = {"SG": 1, "GM": 2}


class AdaptationHistory(NamedTuple):
    """The adaptive phase, one row per batch (the first batch, from the input law, first).

    Attributes:
        alpha: ``(S, J)`` mixture weights of the ``S`` adaptive proposals.
        beta: ``(S + 1, J)`` control-variate coefficients after each batch.
        estimates: ``(S + 1, J)`` estimates from each batch alone.
        variances: ``(S + 1, J)`` per-point variances of each batch's estimator.
        predicted_variance: ``(S + 1,)`` ``sum_j omega_j variances_j / (budget left)``.
        batch_sizes: number of points of each batch.
        stopped_early: whether the stopping rule ended the adaptation before
            ``num_batches`` batches.
    """

    alpha: np.ndarray
    beta: np.ndarray
    estimates: np.ndarray
    variances: np.ndarray
    predicted_variance: np.ndarray
    batch_sizes: tuple[int, ...]
    stopped_early: bool

    def __repr__(self) -> str:
        return summary_repr(self)


class MultipleExpectationsResult(NamedTuple):
    """Unbiased estimates of ``I_j = E_{f_j}[phi_j(X)]`` from the final fresh sample.

    Attributes:
        estimates: ``(J,)`` estimates.
        std_errors: ``(J,)`` their standard errors.
        covariance: ``(J, J)`` estimated covariance of the estimates.
        alpha: ``(J,)`` final mixture weights.
        beta: ``(J,)`` final control-variate coefficients.
        proposal: the final cross-entropy densities ``g_j`` (working space).
        num_evaluations: points evaluated in all (adaptive phase + final sample).
        final_sample_size: points in the final sample.
        transform: the working-space transform used ("identity", "gaussian", ...).
        history: the :class:`AdaptationHistory`.
    """

    estimates: Array
    std_errors: Array
    covariance: Array
    alpha: Array
    beta: Array
    proposal: GaussianMixture
    num_evaluations: int
    final_sample_size: int
    transform: str
    history: AdaptationHistory

    def __repr__(self) -> str:
        return summary_repr(self)


# The driver's compiled steps (module level, so they are compiled once per shape).
_propose = jax.jit(
    iscv_propose, static_argnames=("num_components", "diagonal", "num_em_steps", "num_alpha_steps")
)
_init = jax.jit(iscv_init, static_argnames=("num_batches", "num_components"))
_update = jax.jit(iscv_update)
_sample = jax.jit(sample_mixture, static_argnames="num_samples")
_terms = jax.jit(iscv_terms)


def _make_evaluator(phis, space: WorkingSpace, num_expected: int | None):
    """``z -> (n, J)`` values of the functions at ``T(z)``, checked."""
    if callable(phis):
        functions = None
    elif isinstance(phis, Sequence) and len(phis) > 0 and all(callable(p) for p in phis):
        functions = list(phis)
    else:
        raise TypeError(
            "phis must be a callable mapping a batch of inputs to (n, J) values, or a sequence "
            "of callables each mapping a batch to (n,) values."
        )

    def evaluate(z: Array) -> Array:
        x = space_to_input(space, z)
        n = z.shape[0]
        if functions is None:
            out = jnp.asarray(phis(x))
            out = out.reshape(n, -1) if out.ndim != 1 or out.shape[0] != n else out[:, None]
        else:
            cols = [jnp.asarray(p(x)) for p in functions]
            for i, col in enumerate(cols):
                if col.size != n:
                    raise ValueError(
                        f"phis[{i}] returned shape {col.shape} for a batch of {n} inputs; "
                        "each function must return one value per input, shape (n,)."
                    )
            out = jnp.stack([c.reshape(n) for c in cols], -1)
        if num_expected is not None and out.shape[-1] != num_expected:
            raise ValueError(
                f"phis gives {out.shape[-1]} expectations but {num_expected} input laws were "
                "given; pass one input law per expectation, or a single law."
            )
        out = out.astype(z.dtype)
        bad = ~np.isfinite(np.asarray(out))
        if bad.any():
            rows, cols_ = np.nonzero(bad)
            raise FloatingPointError(
                f"phis returned non-finite values for expectation(s) {sorted(set(cols_.tolist()))}"
                f" at {len(set(rows.tolist()))} of {n} inputs, e.g. at input "
                f"{np.asarray(x)[rows[0]]!r}; make the functions finite on the support of the "
                "input law."
            )
        return out

    return evaluate


def _check_arguments(budget, num_batches, family, weights):
    if not isinstance(budget, int | np.integer) or budget <= 0:
        raise ValueError(f"budget must be a positive int (number of evaluations), got {budget!r}.")
    if not isinstance(num_batches, int | np.integer) or num_batches < 2:
        raise ValueError(
            f"num_batches must be an int >= 2 (first batch + adaptive steps), got {num_batches!r}."
        )
    if family not in FAMILIES:
        raise ValueError(
            f"family must be 'SG' (single Gaussian) or 'GM' (Gaussian mixture), got {family!r}."
        )
    batch_size = (budget // 2) // num_batches
    if batch_size < 10:
        raise ValueError(
            f"budget={budget} with num_batches={num_batches} leaves batches of {batch_size} "
            "points; increase budget to at least 20 * num_batches or lower num_batches."
        )
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if w.ndim != 1 or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
            raise ValueError(
                "weights must be a 1-D array of finite non-negative numbers, not all zero "
                f"(one omega_j per expectation); got {weights!r}."
            )
    return batch_size


def _laws_of(input_dist) -> list[FlatLaw]:
    if isinstance(input_dist, dist.Distribution):
        return [FlatLaw(input_dist)]
    if isinstance(input_dist, Sequence) and len(input_dist) > 0:
        return [FlatLaw(d, f"input_dist[{i}]") for i, d in enumerate(input_dist)]
    raise TypeError(
        "input_dist must be a NumPyro distribution, or a sequence of them (one input law per "
        f"expectation); got {type(input_dist).__name__}."
    )


def run_multiple_expectations(
    key: Array,
    evaluate: Callable[[Array], Array],
    space: WorkingSpace,
    budget: int,
    *,
    weights=None,
    family: str = "SG",
    num_batches: int = 5,
    diagonal_covariance: bool = False,
    num_em_steps: int = 50,
) -> MultipleExpectationsResult:
    """:func:`multiple_expectations` on a prepared working space and evaluator (internal)."""
    check_key(key)
    batch_size = _check_arguments(budget, num_batches, family, weights)
    num_components = FAMILIES[family]
    law_of = None

    key_init, key_adapt, key_final = jax.random.split(key, 3)
    z = space_sample(space, key_init, num_samples=batch_size)
    values = evaluate(z)
    num_j = values.shape[-1]
    if space.num_laws > 1:
        if space.num_laws != num_j:
            raise ValueError(
                f"{space.num_laws} input laws were given for {num_j} expectations; "
                "pass one law per expectation."
            )
        law_of = jnp.arange(num_j)
    if weights is None:
        omega = jnp.ones(num_j, z.dtype)
    else:
        omega = jnp.asarray(weights, z.dtype)
        if omega.shape != (num_j,):
            raise ValueError(
                f"weights has shape {omega.shape} but phis gives {num_j} expectations; pass "
                f"one weight per expectation, shape ({num_j},)."
            )

    def densities(z):
        """``(log f_j for each expectation, log q_0)`` at the points."""
        logs, log_initial = space_log_densities(space, z)
        if law_of is not None:
            return logs[:, law_of], log_initial
        return jnp.broadcast_to(logs, z.shape[:1] + (num_j,)), log_initial

    log_input, log_initial = densities(z)
    state = _init(
        z,
        values,
        log_input,
        log_initial,
        num_batches=num_batches,
        num_components=num_components,
        weights=omega,
    )
    omega_np = np.asarray(omega)
    num_evaluated = batch_size
    predicted = [float(omega_np @ np.asarray(state.variances)) / (budget - num_evaluated)]
    alphas, betas = [], [np.asarray(state.beta)]
    estimates, variances = [np.asarray(state.estimates)], [np.asarray(state.variances)]
    stopped_early = False
    mixture = alpha = None
    for step_key in jax.random.split(key_adapt, num_batches - 1):
        mixture, alpha = _propose(
            state,
            omega,
            num_components=num_components,
            diagonal=diagonal_covariance,
            num_em_steps=num_em_steps,
        )
        z = _sample(step_key, mixture, alpha, num_samples=batch_size)
        values = evaluate(z)
        state, info = _update(state, mixture, alpha, z, values, *densities(z))
        num_evaluated += batch_size
        alphas.append(np.asarray(alpha))
        betas.append(np.asarray(info.beta))
        estimates.append(np.asarray(info.estimates))
        variances.append(np.asarray(info.variances))
        predicted.append(float(omega_np @ variances[-1]) / (budget - num_evaluated))
        if not np.isfinite(predicted[-1]):
            raise FloatingPointError(
                "the adaptive importance sampler produced a non-finite variance estimate; "
                "check that phis are finite and not too heavy-tailed under the input law, "
                "or try family='SG' with diagonal_covariance=True."
            )
        if num_evaluated < budget // 2 and predicted[-1] >= predicted[-2]:
            stopped_early = True
            break

    final_size = budget - num_evaluated
    # The final sample is drawn and evaluated in pieces: the smallest final sample the rule
    # allows (budget - num_batches * batch_size points), then one batch_size piece per batch
    # the rule saved. Every array has one of two shapes, so nothing recompiles between runs.
    sizes = [budget - num_batches * batch_size] + [batch_size] * (num_batches - len(alphas) - 1)
    chunks = []
    for c, size in enumerate(sizes):
        z = _sample(jax.random.fold_in(key_final, c), mixture, alpha, num_samples=size)
        values = evaluate(z)
        chunks.append(np.asarray(_terms(mixture, alpha, state.beta, z, values, densities(z)[0])))
    terms = np.concatenate(chunks, 0).astype(np.float64)
    estimates_final = jnp.asarray(terms.mean(0), z.dtype)
    covariance = jnp.asarray(np.atleast_2d(np.cov(terms, rowvar=False)) / final_size, z.dtype)
    history = AdaptationHistory(
        alpha=np.stack(alphas),
        beta=np.stack(betas),
        estimates=np.stack(estimates),
        variances=np.stack(variances),
        predicted_variance=np.asarray(predicted),
        batch_sizes=(batch_size,) * (len(alphas) + 1),
        stopped_early=stopped_early,
    )
    return MultipleExpectationsResult(
        estimates=estimates_final,
        std_errors=jnp.sqrt(jnp.diag(covariance)),
        covariance=covariance,
        alpha=alpha,
        beta=state.beta,
        proposal=mixture,
        num_evaluations=num_evaluated + final_size,
        final_sample_size=final_size,
        transform=space.transform,
        history=history,
    )


def multiple_expectations(
    key: Array,
    phis: Callable | Sequence[Callable],
    input_dist: dist.Distribution | Sequence[dist.Distribution],
    budget: int,
    *,
    weights=None,
    family: str = "SG",
    num_batches: int = 5,
    diagonal_covariance: bool = False,
    transform: str = "auto",
    num_em_steps: int = 50,
) -> MultipleExpectationsResult:
    """Estimates ``I_j = E_{f_j}[phi_j(X)]``, ``j = 1..J``, from one budget of evaluations.

    Adaptive importance sampling with control variates (Demange-Chryst, Bachoc &
    Morio, arXiv:2212.00568): one cross-entropy density ``g_j`` per expectation,
    fitted to ``|phi_j| f_j``; samples from ``g_alpha = sum_j alpha_j g_j`` with
    ``alpha`` minimising ``sum_j omega_j Var(estimator_j)`` over the simplex
    (estimated on every past point through the deterministic mixture of all
    past proposals); control variates ``g_j / g_alpha`` with coefficients
    ``beta_j`` refitted on each batch; a stopping rule that ends the adaptation
    when another step would not lower the predicted final variance; and a final
    fresh sample of the last ``g_alpha`` (at least half the budget) for
    unbiased estimates with standard errors.

    Working space: Gaussian densities need ``R^d``, so the sampler works on
    ``z`` with ``x = T(z)``. With ``transform="auto"`` ``T`` is the identity for
    laws on ``R^d``; the iso-probabilistic transform ``x_i = F_i^{-1}(Phi(z_i))``
    (which makes the first input law a standard Gaussian) for laws with
    independent coordinates and NumPyro ``cdf``/``icdf`` (Uniform, Exponential,
    LogNormal, ...); NumPyro's ``biject_to(support)`` otherwise. The estimates do
    not depend on the choice; the efficiency does.

    Args:
        key: a ``jax.random`` key.
        phis: a function mapping a batch of inputs (``(n,)`` for a scalar law,
            ``(n, d)`` for a vector law) to ``(n, J)`` values, or a sequence of
            ``J`` functions each returning ``(n,)``. JAX or plain NumPy code; it
            is called on whole batches, outside ``jit``.
        input_dist: a NumPyro distribution ``f`` (all ``I_j`` under the same law),
            or a sequence of ``J`` distributions on the same space, one per
            expectation (the first is then drawn from an equal mixture of them).
        budget: total number of points at which ``phis`` is evaluated.
        weights: ``(J,)`` non-negative ``omega_j`` of the criterion
            ``sum_j omega_j Var_j`` (default ones; ``1 / I_j^2`` balances relative errors).
        family: ``"SG"`` (one Gaussian per ``g_j``) or ``"GM"`` (two-component mixture,
            weighted EM) for multimodal ``|phi_j| f``. Fitted on few points, mixture
            components can be narrower than ``|phi_j| f`` in its tails, which makes the
            weights heavy-tailed (estimates and standard errors too small): "SG", whose
            fit is wider than ``f`` for growing ``|phi_j|``, is the safer default.
        num_batches: batches of the adaptive phase at most, the first one included;
            each has ``(budget // 2) // num_batches`` points.
        diagonal_covariance: diagonal covariances for the Gaussian densities.
        transform: ``"auto"``, ``"identity"``, ``"gaussian"`` or ``"unconstrained"``.
        num_em_steps: EM iterations for ``family="GM"``.

    Returns:
        A :class:`MultipleExpectationsResult` (``estimates``, ``std_errors``,
        ``covariance``, the final ``alpha``/``beta``/``proposal`` and the ``history``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import numpyro.distributions as dist
        >>> from probkit.importance import multiple_expectations
        >>> moments = lambda x: jnp.stack([x**2, x**4, x**6], -1)  # 1, 3, 15
        >>> res = multiple_expectations(jax.random.key(0), moments, dist.Normal(0.0, 1.0), 4000,
        ...                             weights=1.0 / jnp.array([1.0, 3.0, 15.0]) ** 2)
        >>> bool(jnp.all(jnp.abs(res.estimates - jnp.array([1.0, 3.0, 15.0]))
        ...               < 5 * res.std_errors))
        True
    """
    check_key(key)
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}.")
    laws = _laws_of(input_dist)
    space = WorkingSpace(laws, transform)
    evaluate = _make_evaluator(phis, space, len(laws) if len(laws) > 1 else None)
    return run_multiple_expectations(
        key,
        evaluate,
        space,
        budget,
        weights=weights,
        family=family,
        num_batches=num_batches,
        diagonal_covariance=diagonal_covariance,
        num_em_steps=num_em_steps,
    )
