"""Stochastic interpolants (Albergo, Boffi & Vanden-Eijnden 2023).

An interpolant joins ``x_0 ~ rho_0`` and ``x_1 ~ rho_1`` on ``t in [0, 1]``:

    x_t = alpha(t) x_0 + beta(t) x_1 + gamma(t) z,      z ~ N(0, I),

with ``alpha(0) = beta(1) = 1``, ``alpha(1) = beta(0) = 0`` and ``gamma(0) = gamma(1) = 0``
(or ``gamma = 0``). Its law ``rho_t`` is carried by the velocity
``b(x, t) = E[alpha' x_0 + beta' x_1 + gamma' z | x_t = x]``; the denoiser
``eta(x, t) = E[z | x_t = x]`` gives the score ``s = -eta / gamma``. Both are minimisers
of quadratic losses (:func:`velocity_loss`, :func:`denoiser_loss`), and for every
``eps >= 0`` the generative SDE

    dX = [b(X, t) + eps(t) s(X, t)] dt + sqrt(2 eps(t)) dW,     X_0 ~ rho_0,

has ``X_t ~ rho_t`` (``eps = 0``: the probability-flow ODE). ``gamma`` is described by
``gamma^2`` so that ``gamma gamma' = (gamma^2)' / 2`` stays finite at the end points even
for ``gamma = sqrt(a t (1 - t))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_key
from probkit.sde._euler_maruyama import euler_maruyama_step

__all__ = [
    "Interpolant",
    "linear_interpolant",
    "trig_interpolant",
    "interpolate",
    "velocity_loss",
    "denoiser_loss",
    "score_from_denoiser",
    "interpolant_sample",
]

TimeFn = Callable[[jax.Array], jax.Array]
FieldFn = Callable[[jax.Array, jax.Array], jax.Array]


class Interpolant(NamedTuple):
    """``x_t = alpha(t) x_0 + beta(t) x_1 + gamma(t) z`` with ``gamma^2 = gamma_squared(t)``.

    Attributes:
        alpha: ``t -> alpha(t)`` (1 at 0, 0 at 1).
        beta: ``t -> beta(t)`` (0 at 0, 1 at 1).
        gamma_squared: ``t -> gamma(t)^2`` (0 at both ends, or identically 0).
    """

    alpha: TimeFn
    beta: TimeFn
    gamma_squared: TimeFn

    def coefficients(self, t: jax.Array) -> dict[str, jax.Array]:
        """``alpha, beta, gamma`` and their time derivatives at a scalar ``t``.

        ``gamma_dot`` is infinite where ``gamma = 0`` for the square-root choice; use
        ``gamma_gamma_dot`` (always finite) where possible.

        Example:
            >>> from probkit.sde import linear_interpolant
            >>> c = linear_interpolant().coefficients(0.25)
            >>> float(c["alpha"]), float(c["beta_dot"]), round(float(c["gamma"]) ** 2, 4)
            (0.75, 1.0, 0.1875)
        """
        t = jnp.asarray(t, dtype=float)
        alpha, alpha_dot = jax.jvp(self.alpha, (t,), (jnp.ones_like(t),))
        beta, beta_dot = jax.jvp(self.beta, (t,), (jnp.ones_like(t),))
        gamma_sq, gamma_sq_dot = jax.jvp(self.gamma_squared, (t,), (jnp.ones_like(t),))
        gamma = jnp.sqrt(jnp.maximum(gamma_sq, 0.0))
        gamma_gamma_dot = 0.5 * gamma_sq_dot
        safe = jnp.where(gamma > 0, gamma, 1.0)
        gamma_dot = jnp.where(gamma > 0, gamma_gamma_dot / safe, 0.0)
        return dict(
            alpha=alpha,
            beta=beta,
            gamma=gamma,
            alpha_dot=alpha_dot,
            beta_dot=beta_dot,
            gamma_dot=gamma_dot,
            gamma_gamma_dot=gamma_gamma_dot,
        )


def _gamma_squared(kind: str, scale: float) -> TimeFn:
    if kind == "none":
        return lambda t: jnp.zeros_like(t)
    if kind == "sqrt":  # gamma = sqrt(a t (1 - t)), the Brownian-bridge choice
        return lambda t: scale * t * (1.0 - t)
    if kind == "quadratic":  # gamma = a t (1 - t)
        return lambda t: (scale * t * (1.0 - t)) ** 2
    if kind == "sin":  # gamma = sqrt(a) sin(pi t)
        return lambda t: scale * jnp.sin(jnp.pi * t) ** 2
    raise ValueError(f"gamma must be 'none', 'sqrt', 'quadratic' or 'sin', got {kind!r}.")


GammaKind = Literal["none", "sqrt", "quadratic", "sin"]


def linear_interpolant(gamma: GammaKind = "sqrt", scale: float = 1.0) -> Interpolant:
    """The linear path ``alpha = 1 - t``, ``beta = t`` with a ``gamma`` of the given kind.

    ``gamma``: ``"none"`` (0), ``"sqrt"`` (``sqrt(a t (1 - t))``), ``"quadratic"``
    (``a t (1 - t)``) or ``"sin"`` (``sqrt(a) sin(pi t)``), with ``a = scale``.

    Example:
        >>> from probkit.sde import linear_interpolant
        >>> float(linear_interpolant("none").coefficients(0.5)["gamma"])
        0.0
    """
    if not scale >= 0:
        raise ValueError(f"scale must be >= 0, got {scale}.")
    return Interpolant(lambda t: 1.0 - t, lambda t: t, _gamma_squared(gamma, scale))


def trig_interpolant(gamma: GammaKind = "sqrt", scale: float = 1.0) -> Interpolant:
    """The trigonometric path ``alpha = cos(pi t / 2)``, ``beta = sin(pi t / 2)``.

    Example:
        >>> from probkit.sde import trig_interpolant
        >>> round(float(trig_interpolant().coefficients(1.0)["beta"]), 6)
        1.0
    """
    if not scale >= 0:
        raise ValueError(f"scale must be >= 0, got {scale}.")
    return Interpolant(
        lambda t: jnp.cos(0.5 * jnp.pi * t),
        lambda t: jnp.sin(0.5 * jnp.pi * t),
        _gamma_squared(gamma, scale),
    )


def interpolate(
    interpolant: Interpolant, t: jax.Array, x0: jax.Array, x1: jax.Array, z: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(x_t, d x_t / dt)`` for ONE triple ``(x0, x1, z)`` at a scalar ``t``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import interpolate, linear_interpolant
        >>> xt, dxt = interpolate(linear_interpolant("none"), 0.5, jnp.zeros(2), jnp.ones(2),
        ...                       jnp.zeros(2))
        >>> xt.tolist(), dxt.tolist()
        ([0.5, 0.5], [1.0, 1.0])
    """
    c = interpolant.coefficients(t)
    x_t = c["alpha"] * x0 + c["beta"] * x1 + c["gamma"] * z
    dx_t = c["alpha_dot"] * x0 + c["beta_dot"] * x1 + c["gamma_dot"] * z
    return x_t, dx_t


def _draw(key, x0, t_eps):
    key_t, key_z = jax.random.split(key)
    t = jax.random.uniform(key_t, (x0.shape[0],), minval=t_eps, maxval=1.0 - t_eps)
    z = jax.random.normal(key_z, x0.shape, x0.dtype)
    return t, z


def _flat_dot(a, b):
    return jnp.sum((a * b).reshape(a.shape[0], -1), axis=-1)


def velocity_loss(
    velocity: FieldFn,
    interpolant: Interpolant,
    key: jax.Array,
    x0: jax.Array,
    x1: jax.Array,
    t_eps: float = 1e-3,
) -> jax.Array:
    """Monte Carlo ``E[|b(x_t, t)|^2 / 2 - (d x_t / dt) . b(x_t, t)]``, ``t ~ U(t_eps, 1 - t_eps)``.

    Minimised by the true velocity ``b``. ``velocity(x, t)`` acts on one sample;
    ``x0``, ``x1`` are paired batches ``(n, *event_shape)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import linear_interpolant, velocity_loss
        >>> x0 = jax.random.normal(jax.random.key(0), (64, 2))
        >>> loss = velocity_loss(lambda x, t: x, linear_interpolant(), jax.random.key(1),
        ...                      x0, x0 + 1.0)
        >>> loss.shape
        ()
    """
    check_key(key)
    t, z = _draw(key, x0, t_eps)
    x_t, dx_t = jax.vmap(interpolate, in_axes=(None, 0, 0, 0, 0))(interpolant, t, x0, x1, z)
    b = jax.vmap(velocity)(x_t, t)
    return jnp.mean(0.5 * _flat_dot(b, b) - _flat_dot(dx_t, b))


def denoiser_loss(
    denoiser: FieldFn,
    interpolant: Interpolant,
    key: jax.Array,
    x0: jax.Array,
    x1: jax.Array,
    t_eps: float = 1e-3,
) -> jax.Array:
    """Monte Carlo ``E[|eta(x_t, t)|^2 / 2 - z . eta(x_t, t)]``, minimised by ``E[z | x_t]``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import denoiser_loss, linear_interpolant
        >>> x0 = jax.random.normal(jax.random.key(0), (64, 2))
        >>> float(denoiser_loss(lambda x, t: 0 * x, linear_interpolant(), jax.random.key(1),
        ...                     x0, x0))
        0.0
    """
    check_key(key)
    t, z = _draw(key, x0, t_eps)
    x_t, _ = jax.vmap(interpolate, in_axes=(None, 0, 0, 0, 0))(interpolant, t, x0, x1, z)
    eta = jax.vmap(denoiser)(x_t, t)
    return jnp.mean(0.5 * _flat_dot(eta, eta) - _flat_dot(z, eta))


def score_from_denoiser(denoiser: FieldFn, interpolant: Interpolant) -> FieldFn:
    """The score ``s(x, t) = -eta(x, t) / gamma(t)`` (defined where ``gamma > 0``).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import linear_interpolant, score_from_denoiser
        >>> s = score_from_denoiser(lambda x, t: x, linear_interpolant("sqrt", 4.0))
        >>> s(jnp.ones(1), 0.5).tolist()  # gamma(1/2) = 1
        [-1.0]
    """

    def score(x, t):
        return -denoiser(x, t) / interpolant.coefficients(t)["gamma"]

    return score


def interpolant_sample(
    key: jax.Array,
    velocity: FieldFn,
    score: FieldFn | None,
    x0: jax.Array,
    *,
    epsilon: float | TimeFn = 0.0,
    num_steps: int = 200,
    t_span: tuple[float, float] = (0.0, 1.0),
) -> jax.Array:
    """Euler-Maruyama on ``dX = [b + eps s] dt + sqrt(2 eps) dW`` from ``X_{t0} = x0`` to ``t1``.

    Args:
        key: a ``jax.random`` key.
        velocity: ``b(x, t)`` for one sample.
        score: ``s(x, t)`` for one sample (``None`` only with ``epsilon = 0``).
        x0: start points, shape ``(n, *event_shape)``, draws of ``rho_{t0}``.
        epsilon: the diffusion level, a number or a function of ``t``; 0 gives the ODE.
        num_steps: number of Euler-Maruyama steps.
        t_span: ``(t0, t1)``; keep away from a singular score at the end points.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import interpolant_sample
        >>> x0 = jax.random.normal(jax.random.key(0), (500, 1))
        >>> x1 = interpolant_sample(jax.random.key(1), lambda x, t: jnp.ones_like(x), None, x0)
        >>> round(float(x1.mean() - x0.mean()), 4)  # b = 1 moves everything by 1
        1.0
    """
    check_key(key)
    eps_fn = epsilon if callable(epsilon) else (lambda t: jnp.asarray(float(epsilon)))
    stochastic = callable(epsilon) or float(epsilon) != 0.0
    if stochastic and score is None:
        raise ValueError("epsilon > 0 needs a score function (score_from_denoiser builds one).")
    if not isinstance(num_steps, int | np.integer) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}.")
    ts = jnp.linspace(t_span[0], t_span[1], num_steps + 1)

    def body(x, inputs):
        key, t, t_next = inputs
        h = t_next - t
        drift = jax.vmap(velocity, in_axes=(0, None))(x, t)
        if stochastic:
            eps = eps_fn(t)
            drift = drift + eps * jax.vmap(score, in_axes=(0, None))(x, t)
            noise = jax.random.normal(key, x.shape, x.dtype)
            return euler_maruyama_step(x, drift, h, jnp.sqrt(2.0 * eps * h), noise), None
        return euler_maruyama_step(x, drift, h), None

    keys = jax.random.split(key, num_steps)
    x, _ = jax.lax.scan(body, x0, (keys, ts[:-1], ts[1:]))
    return x
