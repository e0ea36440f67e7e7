"""The probability-flow ODE (diffrax): deterministic sampling and exact log-likelihoods.

The ODE ``dx/dt = v(x, t) = f(x, t) - g(t)^2 / 2 score(x, t)`` has the same marginals
``p_t`` as the forward SDE (Song et al., ICLR 2021, Sec. 4.3). Along a solution,
``d log p_t(x_t) / dt = -div v(x_t, t)`` (instantaneous change of variables, Chen et
al. 2018), hence

    log p_{t_min}(x) = log p_{t_max}(x_{t_max}) + int_{t_min}^{t_max} div v(x_t, t) dt,

with ``x_t`` solved forward from ``x_{t_min} = x``. The divergence is exact (the trace
of the Jacobian, ``d`` Jacobian-vector products) or Hutchinson's estimate
``z^T (dv/dx) z`` with one Rademacher ``z`` per sample, drawn once per solve, which
keeps the integrand a smooth function of ``t`` (Grathwohl et al. 2019).

The whole batch is one ODE state; diffrax's adaptive controller picks the steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import jax
import jax.numpy as jnp

from probkit._checks import check_int, check_key
from probkit.sde._linear import LinearSDE, ScoreFn

if TYPE_CHECKING:
    import diffrax

__all__ = ["probability_flow_sample", "log_likelihood", "divergence"]


def divergence(
    fn: Callable[[jax.Array], jax.Array], x: jax.Array, probe: jax.Array | None = None
) -> jax.Array:
    """``div fn(x)``: exact (``probe=None``) or Hutchinson's ``probe . (J probe)``.

    ``x`` is one sample of any shape; ``fn`` maps it to the same shape.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import divergence
        >>> float(divergence(lambda x: 3.0 * x, jnp.ones(4)))
        12.0
    """
    if probe is not None:
        _, jvp = jax.jvp(fn, (x,), (probe,))
        return jnp.sum(probe * jvp)
    flat = x.reshape(-1)
    jac = jax.jacfwd(lambda y: fn(y.reshape(x.shape)).reshape(-1))(flat)
    return jnp.trace(jac)


def _solve(term, t0, t1, y0, solver, rtol, atol, max_steps):
    import diffrax

    return diffrax.diffeqsolve(
        term,
        solver,
        t0=t0,
        t1=t1,
        dt0=None,
        y0=y0,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        saveat=diffrax.SaveAt(t1=True),
        max_steps=max_steps,
    )


def probability_flow_sample(
    key: jax.Array,
    sde: LinearSDE,
    score: ScoreFn,
    num_samples: int,
    event_shape: tuple[int, ...],
    *,
    t_min: float | None = None,
    x_init: jax.Array | None = None,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 4096,
) -> jax.Array:
    """Draw prior samples and carry them by the probability-flow ODE from ``t_max`` to ``t_min``.

    Args:
        key: a ``jax.random`` key (used for the prior draws).
        sde: the forward SDE.
        score: ``(x, t) -> grad log p_t(x)`` for one sample.
        num_samples: number of samples.
        event_shape: shape of one sample.
        t_min: end time (default ``sde.t_min``).
        x_init: start points at ``t_max`` instead of prior draws.
        solver: a diffrax solver (default ``Tsit5``).
        rtol: relative tolerance of the adaptive step-size controller.
        atol: absolute tolerance of the adaptive step-size controller.
        max_steps: the most solver steps diffrax may take.

    Example:
        >>> import jax
        >>> from probkit.sde import VPSDE, probability_flow_sample
        >>> x = probability_flow_sample(jax.random.key(0), VPSDE(), lambda x, t: -x, 4000, (2,))
        >>> round(float(x.std()), 1)  # data N(0, I): the ODE maps N(0, I) to itself
        1.0
    """
    check_key(key)
    num_samples = check_int(num_samples, "num_samples")
    t_min = sde.t_min if t_min is None else float(t_min)
    shape = (num_samples, *tuple(event_shape))
    x = sde.prior_sample(key, shape) if x_init is None else jnp.asarray(x_init)
    if x.shape != shape:
        raise ValueError(f"x_init must have shape {shape}, got {x.shape}.")
    velocity = jax.vmap(sde.probability_flow(score), in_axes=(0, None))
    import diffrax  # here, not at module level: it costs seconds to import

    term = diffrax.ODETerm(lambda t, y, args: velocity(y, t))
    solver = diffrax.Tsit5() if solver is None else solver
    solution = _solve(term, sde.t_max, t_min, x, solver, rtol, atol, max_steps)
    return solution.ys[0]


def log_likelihood(
    sde: LinearSDE,
    score: ScoreFn,
    x: jax.Array,
    *,
    key: jax.Array | None = None,
    method: Literal["exact", "hutchinson"] = "exact",
    t_min: float | None = None,
    prior_log_prob: Callable[[jax.Array], jax.Array] | None = None,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 4096,
) -> jax.Array:
    """``log p_{t_min}(x)`` of each sample by the instantaneous change of variables.

    Args:
        sde: the forward SDE.
        score: ``(x, t) -> grad log p_t(x)`` for one sample.
        x: samples, shape ``(n, *event_shape)``.
        key: needed for ``method="hutchinson"`` (one Rademacher probe per sample and solve).
        method: ``"exact"`` (trace of the Jacobian: ``d`` JVPs, for small ``d``) or
            ``"hutchinson"`` (one JVP, unbiased).
        t_min: the time at which ``x`` lives (default ``sde.t_min``).
        prior_log_prob: log density at ``t_max`` of one sample (default
            ``sde.prior_log_prob``).
        solver: a diffrax solver (default ``Tsit5``).
        rtol: relative tolerance of the adaptive step-size controller.
        atol: absolute tolerance of the adaptive step-size controller.
        max_steps: the most solver steps diffrax may take.

    Returns:
        an array of shape ``(n,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import VPSDE, log_likelihood
        >>> lp = log_likelihood(VPSDE(), lambda x, t: -x, jnp.zeros((1, 2)))
        >>> round(float(lp[0]), 3)  # log N(0; 0, I_2) = -log(2 pi)
        -1.838
    """
    if key is not None:
        check_key(key)
    if method not in ("exact", "hutchinson"):
        raise ValueError(f"method must be 'exact' or 'hutchinson', got {method!r}.")
    if method == "hutchinson" and key is None:
        raise ValueError("method='hutchinson' needs a key for the probe vectors.")
    x = jnp.asarray(x)
    if x.ndim < 1:
        raise ValueError("x must have a leading sample axis: shape (n, *event_shape).")
    t_min = sde.t_min if t_min is None else float(t_min)
    prior_log_prob = sde.prior_log_prob if prior_log_prob is None else prior_log_prob
    velocity = sde.probability_flow(score)
    probes = None
    if method == "hutchinson":
        probes = jax.random.rademacher(key, x.shape, dtype=x.dtype)

    def one(y, t, probe):
        v = velocity(y, t)
        div = divergence(lambda z: velocity(z, t), y, probe)
        return v, div

    def field(t, state, args):
        y, _ = state
        probe_axis = None if args is None else 0
        return jax.vmap(one, in_axes=(0, None, probe_axis))(y, t, args)

    import diffrax

    term = diffrax.ODETerm(field)
    solver = diffrax.Tsit5() if solver is None else solver
    y0 = (x, jnp.zeros(x.shape[0], x.dtype))
    solution = diffrax.diffeqsolve(
        term,
        solver,
        t0=t_min,
        t1=sde.t_max,
        dt0=None,
        y0=y0,
        args=probes,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        saveat=diffrax.SaveAt(t1=True),
        max_steps=max_steps,
    )
    x_end, integral = solution.ys[0][0], solution.ys[1][0]
    return jax.vmap(prior_log_prob)(x_end) + integral
