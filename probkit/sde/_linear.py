"""Forward SDEs with linear drift: VP, sub-VP, VE, Ornstein-Uhlenbeck and a generic one.

Every SDE here has the form (Song et al., ICLR 2021)

    dx = a(t) x dt + g(t) dW,    t in [0, t_max],

so that, given ``x_0``, ``x_t = m(t) x_0 + s(t) eps`` with ``eps ~ N(0, I)``:
:meth:`LinearSDE.marginal` returns ``(m(t), s(t))``. The prior is ``N(0, s(t_max)^2 I)``
(the part of ``x_{t_max}`` that does not depend on the data).

The reverse-time process for a score ``score(x, t) ~ grad log p_t(x)`` is written, as in
Song et al., in the forward time variable (``dt < 0``):

    dx = [f(x, t) - (1 + kappa) / 2 g(t)^2 score(x, t)] dt + sqrt(kappa) g(t) dW,

whose marginals are ``p_t`` for every noise scale ``kappa >= 0``: ``kappa = 1`` is the
reverse SDE of Anderson (1982), ``kappa = 0`` the probability-flow ODE.

Score functions take ONE sample ``x`` (any event shape) and a scalar time ``t``; the
samplers vectorise them over particles with :func:`jax.vmap`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_key

__all__ = [
    "ScoreFn",
    "LinearSDE",
    "VPSDE",
    "SubVPSDE",
    "VESDE",
    "OUSDE",
    "QuadratureSDE",
    "ReverseSDE",
]

ScoreFn = Callable[[jax.Array, jax.Array], jax.Array]


class ReverseSDE(NamedTuple):
    """The reverse-time process ``dx = drift(x, t) dt + diffusion(t) dW`` run with ``dt < 0``.

    Attributes:
        drift: ``(x, t) -> f(x, t) - (1 + kappa) / 2 g(t)^2 score(x, t)`` for one sample.
        diffusion: ``t -> sqrt(kappa) g(t)``.
    """

    drift: Callable[[jax.Array, jax.Array], jax.Array]
    diffusion: Callable[[jax.Array], jax.Array]


def _positive(name: str, value: float) -> None:
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")


class LinearSDE(eqx.Module):
    """Base class of the forward SDEs ``dx = a(t) x dt + g(t) dW`` on ``[0, t_max]``.

    Subclasses define :meth:`drift_coefficient` (``a(t)``), :meth:`diffusion`
    (``g(t)``) and :meth:`marginal` (``(m(t), s(t))``); everything else follows.
    ``t_min`` is the time at which samplers stop (``p_{t_min}`` is the data law
    blurred by ``N(0, s(t_min)^2)``).
    """

    # Subclasses declare the fields ``t_max`` and ``t_min`` (after their own parameters).

    @abc.abstractmethod
    def drift_coefficient(self, t: jax.Array) -> jax.Array:
        """``a(t)`` in ``f(x, t) = a(t) x``."""

    @abc.abstractmethod
    def diffusion(self, t: jax.Array) -> jax.Array:
        """``g(t)``."""

    @abc.abstractmethod
    def marginal(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(m(t), s(t))`` with ``x_t = m(t) x_0 + s(t) eps``."""

    def drift(self, x: jax.Array, t: jax.Array) -> jax.Array:
        """``f(x, t) = a(t) x``.

        Example:
            >>> import jax.numpy as jnp
            >>> from probkit.sde import VPSDE
            >>> VPSDE().drift(jnp.ones(2), 0.0).tolist()
            [-0.05000000074505806, -0.05000000074505806]
        """
        return self.drift_coefficient(t) * x

    def drift_divergence(self, x: jax.Array, t: jax.Array) -> jax.Array:
        """``div f(x, t) = a(t) * x.size`` (the same for every ``x``)."""
        return self.drift_coefficient(t) * x.size

    def prior_std(self) -> jax.Array:
        """Standard deviation ``s(t_max)`` of the prior ``N(0, s(t_max)^2 I)``."""
        return self.marginal(jnp.asarray(self.t_max))[1]

    def prior_sample(self, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """Draw from the prior ``N(0, s(t_max)^2 I)``; ``shape`` includes any batch axes.

        Example:
            >>> import jax
            >>> from probkit.sde import VESDE
            >>> VESDE(sigma_max=10.0).prior_sample(jax.random.key(0), (3, 2)).shape
            (3, 2)
        """
        check_key(key)
        return self.prior_std() * jax.random.normal(key, shape)

    def prior_log_prob(self, x: jax.Array) -> jax.Array:
        """Log density of ONE sample ``x`` (summed over all its axes) under the prior.

        Example:
            >>> import jax.numpy as jnp
            >>> from probkit.sde import VPSDE
            >>> round(float(VPSDE().prior_log_prob(jnp.zeros(2))), 3)  # -log(2 pi)
            -1.838
        """
        std = self.prior_std()
        z = x / std
        return -0.5 * jnp.sum(z**2) - x.size * (jnp.log(std) + 0.5 * jnp.log(2 * jnp.pi))

    def conditional_score(self, x_t: jax.Array, x_0: jax.Array, t: jax.Array) -> jax.Array:
        """``grad log p(x_t | x_0) = -(x_t - m(t) x_0) / s(t)^2`` (the DSM regression target)."""
        mean_coeff, std = self.marginal(t)
        return -(x_t - mean_coeff * x_0) / std**2

    def reverse(self, score: ScoreFn, noise_scale: float = 1.0) -> ReverseSDE:
        """The reverse-time process with marginals ``p_t`` for a score function.

        Args:
            score: ``(x, t) -> grad log p_t(x)`` for one sample.
            noise_scale: ``kappa >= 0``; 1 gives the reverse SDE, 0 the probability-flow ODE.

        Example:
            >>> import jax.numpy as jnp
            >>> from probkit.sde import VPSDE
            >>> rev = VPSDE().reverse(lambda x, t: -x)  # the score of N(0, I)
            >>> round(float(rev.diffusion(1.0)) ** 2, 3)
            20.0
        """
        if not noise_scale >= 0:
            raise ValueError(
                f"noise_scale must be >= 0 (1: reverse SDE, 0: ODE), got {noise_scale}."
            )
        coeff = 0.5 * (1.0 + noise_scale)

        def drift(x, t):
            return self.drift(x, t) - coeff * self.diffusion(t) ** 2 * score(x, t)

        def diffusion(t):
            return jnp.sqrt(noise_scale) * self.diffusion(t)

        return ReverseSDE(drift, diffusion)

    def probability_flow(self, score: ScoreFn) -> Callable[[jax.Array, jax.Array], jax.Array]:
        """The velocity ``v(x, t) = f(x, t) - g(t)^2 / 2 score(x, t)`` of the probability-flow ODE.

        Example:
            >>> import jax.numpy as jnp
            >>> from probkit.sde import VESDE
            >>> v = VESDE().probability_flow(lambda x, t: -x)
            >>> v(jnp.zeros(2), 0.5).tolist()
            [0.0, 0.0]
        """
        return self.reverse(score, noise_scale=0.0).drift

    def discretize(self, x: jax.Array, t: jax.Array, dt: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One forward step ``x_{t+dt} = x + f_dt + G_dt eps`` of the discretised SDE.

        The default is Euler-Maruyama (``f_dt = f dt``, ``G_dt = g sqrt(dt)``);
        VP and VE override it with the DDPM / SMLD chains (Song et al., App. E).
        """
        return self.drift(x, t) * dt, self.diffusion(t) * jnp.sqrt(dt)


class VPSDE(LinearSDE):
    """Variance-preserving SDE ``dx = -beta(t)/2 x dt + sqrt(beta(t)) dW``, linear ``beta``.

    ``beta(t) = beta_min + t (beta_max - beta_min)`` on ``[0, 1]`` (DDPM in continuous
    time); ``m(t) = exp(-int_0^t beta / 2)``, ``s(t)^2 = 1 - m(t)^2``.

    Example:
        >>> from probkit.sde import VPSDE
        >>> m, s = VPSDE().marginal(1.0)
        >>> round(float(m), 4), round(float(s), 4)
        (0.0066, 1.0)
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_max: float = 1.0
    t_min: float = 1e-3

    def __check_init__(self):
        _positive("beta_min", self.beta_min)
        _positive("t_max", self.t_max)
        if not self.beta_max >= self.beta_min:
            raise ValueError(
                f"beta_max must be >= beta_min, got beta_min={self.beta_min}, "
                f"beta_max={self.beta_max}."
            )
        if not 0 < self.t_min < self.t_max:
            raise ValueError(f"t_min must lie in (0, t_max={self.t_max}), got {self.t_min}.")

    def beta(self, t: jax.Array) -> jax.Array:
        """The noise rate ``beta(t)``."""
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def _log_mean_coeff(self, t):
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def drift_coefficient(self, t):
        return -0.5 * self.beta(t)

    def diffusion(self, t):
        return jnp.sqrt(self.beta(t))

    def marginal(self, t):
        log_m = self._log_mean_coeff(jnp.asarray(t))
        return jnp.exp(log_m), jnp.sqrt(-jnp.expm1(2 * log_m))

    def discretize(self, x, t, dt):
        beta_dt = self.beta(t) * dt
        return (jnp.sqrt(1.0 - beta_dt) - 1.0) * x, jnp.sqrt(beta_dt)


class SubVPSDE(VPSDE):
    """Sub-VP SDE: VP drift, ``g(t)^2 = beta(t) (1 - exp(-2 int_0^t beta))``.

    ``s(t) = 1 - exp(-int_0^t beta)``, below the VP standard deviation at every ``t``.

    Example:
        >>> from probkit.sde import SubVPSDE
        >>> round(float(SubVPSDE().marginal(0.5)[1]), 4)
        0.9209
    """

    def diffusion(self, t):
        log_m = self._log_mean_coeff(t)
        return jnp.sqrt(self.beta(t) * -jnp.expm1(4 * log_m))

    def marginal(self, t):
        log_m = self._log_mean_coeff(jnp.asarray(t))
        return jnp.exp(log_m), -jnp.expm1(2 * log_m)

    def discretize(self, x, t, dt):
        return LinearSDE.discretize(self, x, t, dt)


class VESDE(LinearSDE):
    """Variance-exploding SDE ``dx = sqrt(d sigma(t)^2 / dt) dW``, geometric ``sigma``.

    ``sigma(t) = sigma_min (sigma_max / sigma_min)^t``; ``m(t) = 1`` and
    ``s(t)^2 = sigma(t)^2 - sigma_min^2`` (exactly the variance the SDE adds from 0 to t).

    Example:
        >>> from probkit.sde import VESDE
        >>> round(float(VESDE(sigma_min=0.01, sigma_max=50.0).prior_std()), 2)
        50.0
    """

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    t_max: float = 1.0
    t_min: float = 1e-5

    def __check_init__(self):
        _positive("sigma_min", self.sigma_min)
        _positive("t_max", self.t_max)
        if not self.sigma_max > self.sigma_min:
            raise ValueError(
                f"sigma_max must exceed sigma_min, got sigma_min={self.sigma_min}, "
                f"sigma_max={self.sigma_max}."
            )
        if not 0 < self.t_min < self.t_max:
            raise ValueError(f"t_min must lie in (0, t_max={self.t_max}), got {self.t_min}.")

    def sigma(self, t: jax.Array) -> jax.Array:
        """``sigma(t) = sigma_min (sigma_max / sigma_min)^(t / t_max)``."""
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** (t / self.t_max)

    def drift_coefficient(self, t):
        return jnp.zeros_like(jnp.asarray(t, dtype=float))

    def diffusion(self, t):
        log_ratio = np.log(self.sigma_max / self.sigma_min) / self.t_max
        return self.sigma(t) * jnp.sqrt(2.0 * log_ratio)

    def marginal(self, t):
        t = jnp.asarray(t, dtype=float)
        return jnp.ones_like(t), jnp.sqrt(self.sigma(t) ** 2 - self.sigma_min**2)

    def discretize(self, x, t, dt):
        variance = self.sigma(t + dt) ** 2 - self.sigma(t) ** 2
        return jnp.zeros_like(x), jnp.sqrt(variance)


class OUSDE(LinearSDE):
    """Ornstein-Uhlenbeck SDE ``dx = -theta x dt + sigma dW``.

    ``m(t) = exp(-theta t)``, ``s(t)^2 = sigma^2 (1 - exp(-2 theta t)) / (2 theta)``.

    Example:
        >>> from probkit.sde import OUSDE
        >>> round(float(OUSDE(theta=1.0, sigma=2.0 ** 0.5, t_max=10.0).prior_std()), 4)
        1.0
    """

    theta: float = 1.0
    sigma: float = float(np.sqrt(2.0))
    t_max: float = 5.0
    t_min: float = 1e-3

    def __check_init__(self):
        _positive("theta", self.theta)
        _positive("sigma", self.sigma)
        _positive("t_max", self.t_max)
        if not 0 < self.t_min < self.t_max:
            raise ValueError(f"t_min must lie in (0, t_max={self.t_max}), got {self.t_min}.")

    def drift_coefficient(self, t):
        return jnp.full_like(jnp.asarray(t, dtype=float), -self.theta)

    def diffusion(self, t):
        return jnp.full_like(jnp.asarray(t, dtype=float), self.sigma)

    def marginal(self, t):
        t = jnp.asarray(t, dtype=float)
        variance = self.sigma**2 * -jnp.expm1(-2 * self.theta * t) / (2 * self.theta)
        return jnp.exp(-self.theta * t), jnp.sqrt(variance)


_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(48)


def _integrate(fn, upper):
    # Gauss-Legendre on [0, upper]: exact for polynomials of degree < 96.
    nodes = 0.5 * upper * (1.0 + jnp.asarray(_NODES, dtype=float))
    return 0.5 * upper * jnp.sum(jnp.asarray(_WEIGHTS, dtype=float) * jax.vmap(fn)(nodes))


class QuadratureSDE(LinearSDE):
    """A linear SDE from any ``a(t)`` and ``g(t)``; marginals by Gauss-Legendre quadrature.

    ``m(t) = exp(int_0^t a)``, ``s(t)^2 = int_0^t g(u)^2 exp(2 int_u^t a) du`` (48-point
    rules, nested; exact to float precision for smooth schedules).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import QuadratureSDE
        >>> ou = QuadratureSDE(lambda t: -1.0 + 0 * t, lambda t: jnp.sqrt(2.0) + 0 * t, t_max=5.0)
        >>> round(float(ou.marginal(1.0)[1] ** 2), 4)  # 1 - exp(-2)
        0.8647
    """

    drift_fn: Callable[[jax.Array], jax.Array]
    diffusion_fn: Callable[[jax.Array], jax.Array]
    t_max: float = 1.0
    t_min: float = 1e-3

    def __check_init__(self):
        if not (callable(self.drift_fn) and callable(self.diffusion_fn)):
            raise TypeError("drift_fn and diffusion_fn must be functions t -> a(t), t -> g(t).")
        _positive("t_max", self.t_max)
        if not 0 < self.t_min < self.t_max:
            raise ValueError(f"t_min must lie in (0, t_max={self.t_max}), got {self.t_min}.")

    def drift_coefficient(self, t):
        return self.drift_fn(t)

    def diffusion(self, t):
        return self.diffusion_fn(t)

    def marginal(self, t):
        t = jnp.asarray(t, dtype=float)
        big_a = lambda u: _integrate(self.drift_fn, u)
        log_m = big_a(t)
        variance = _integrate(
            lambda u: self.diffusion_fn(u) ** 2 * jnp.exp(2.0 * (log_m - big_a(u))), t
        )
        return jnp.exp(log_m), jnp.sqrt(variance)
