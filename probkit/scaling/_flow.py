"""Flow models as stochastic samplers: velocity <-> score, ODE -> SDE, interpolant conversion.

A flow model transports ``x_0 ~ N(0, I)`` at ``t = 0`` to data ``x_1`` at ``t = 1`` along
a Gaussian path (a :class:`probkit.sde.Interpolant` with ``gamma = 0``)

    x_t = alpha(t) x_0 + beta(t) x_1,

through the velocity ``b(x, t) = E[alpha' x_0 + beta' x_1 | x_t = x]``. Since
``x = alpha E[x_0 | x] + beta E[x_1 | x]``, the velocity gives both posterior means
(:func:`posterior_means`) and the score ``s = -E[x_0 | x] / alpha``. For every
``eps(t) >= 0`` the SDE

    dX = [b(X, t) + eps(t) s(X, t)] dt + sqrt(2 eps(t)) dW

has the marginals of the ODE ``dX = b dt`` (the added drift and the noise cancel in
the Fokker-Planck equation; :func:`probkit.sde.interpolant_sample` integrates it):
:func:`sde_step` takes one Euler-Maruyama step of it, at one evaluation of the model.
That is what lets particles branch (Kim et al. 2025).

**Interpolant conversion.** Two Gaussian paths with signal-to-noise ratios
``rho = beta / alpha`` and ``rho_bar`` describe the same process up to a change of time
and scale: with ``s(t)`` solving ``rho(s(t)) = rho_bar(t)`` and ``c(t) = alpha_bar(t) /
alpha(s(t)) = beta_bar(t) / beta(s(t))``, ``x_bar_t = c(t) x_{s(t)}`` has the law of the
new path at ``t``, and its velocity is

    b_bar(x, t) = (c'(t) / c(t)) x + c(t) s'(t) b(x / c(t), s(t)),

with ``s' = rho_bar'(t) / rho'(s)`` (implicit differentiation). :func:`convert_velocity`
implements it for any pair of paths (bisection on ``rho / (1 + rho)``, which both
paths increase monotonically from 0 to 1); from the linear path ``rho = s / (1 - s)``, so
``s = rho_bar / (1 + rho_bar)``. :func:`vp_interpolant` writes a variance-preserving
diffusion (:class:`probkit.sde.VPSDE`) as such a path, so a trained diffusion model's
score becomes a flow velocity (:func:`velocity_from_score`) and back.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from probkit._checks import check_key
from probkit.sde import GaussianMixture, Interpolant, LinearSDE

__all__ = [
    "vp_interpolant",
    "posterior_means",
    "score_from_velocity",
    "velocity_from_score",
    "convert_velocity",
    "gaussian_mixture_velocity",
    "gaussian_mixture_marginal",
    "sde_step",
    "diffusion_schedule",
]

FieldFn = Callable[[jax.Array, jax.Array], jax.Array]


def vp_interpolant(sde: LinearSDE) -> Interpolant:
    """A forward diffusion as a Gaussian path: ``alpha(t) = std(tau)``, ``beta(t) = mean(tau)``.

    Flow time ``t in [0, 1]`` runs against diffusion time, ``tau = t_max (1 - t)``, so
    ``t = 1`` is data. The path starts at ``beta(0) = mean(t_max)`` (``~ 7e-3`` for the
    default :class:`probkit.sde.VPSDE`), not exactly at 0.

    Example:
        >>> from probkit.sde import VPSDE
        >>> from probkit.scaling import vp_interpolant
        >>> c = vp_interpolant(VPSDE()).coefficients(1.0)
        >>> float(c["alpha"]), float(c["beta"])
        (0.0, 1.0)
    """

    def tau(t):
        return sde.t_max * (1.0 - t)

    return Interpolant(
        alpha=lambda t: sde.marginal(tau(t))[1],
        beta=lambda t: sde.marginal(tau(t))[0],
        gamma_squared=lambda t: jnp.zeros_like(t),
    )


def _coefficients(path: Interpolant, t):
    c = path.coefficients(t)
    return c["alpha"], c["beta"], c["alpha_dot"], c["beta_dot"]


def posterior_means(
    velocity: FieldFn, path: Interpolant, x: jax.Array, t: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(E[x_0 | x_t = x], E[x_1 | x_t = x])`` from the velocity, for one sample.

    Solves ``x = alpha m_0 + beta m_1`` and ``b = alpha' m_0 + beta' m_1``.
    ``E[x_1 | x]`` is the look-ahead (Tweedie) estimate of the final sample.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import linear_interpolant
        >>> from probkit.scaling import posterior_means
        >>> m0, m1 = posterior_means(lambda x, t: 2.0 - x, linear_interpolant("none"),
        ...                          jnp.ones(1), 0.5)  # x + (1 - t) b
        >>> m1.tolist()
        [1.5]
    """
    alpha, beta, alpha_dot, beta_dot = _coefficients(path, t)
    b = velocity(x, t)
    det = alpha * beta_dot - beta * alpha_dot
    m0 = (beta_dot * x - beta * b) / det
    m1 = (alpha * b - alpha_dot * x) / det
    return m0, m1


def score_from_velocity(velocity: FieldFn, path: Interpolant) -> FieldFn:
    """The score ``s(x, t) = -E[x_0 | x_t = x] / alpha(t)`` (``t < 1``).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import linear_interpolant
        >>> from probkit.scaling import score_from_velocity
        >>> # x_1 = 0: x_t = (1 - t) x_0, b = -x / (1 - t), score = -x / (1 - t)^2
        >>> s = score_from_velocity(lambda x, t: -x / (1 - t), linear_interpolant("none"))
        >>> s(jnp.ones(1), 0.5).tolist()
        [-4.0]
    """

    def score(x, t):
        m0, _ = posterior_means(velocity, path, x, t)
        return -m0 / path.coefficients(t)["alpha"]

    return score


def velocity_from_score(score: Callable, sde: LinearSDE) -> tuple[FieldFn, Interpolant]:
    """A diffusion model's score ``score(x, tau)`` as a flow velocity on :func:`vp_interpolant`.

    ``E[x_0 | x] = -alpha s`` and ``E[x_1 | x] = (x + alpha^2 s) / beta`` give
    ``b = alpha' E[x_0 | x] + beta' E[x_1 | x]``. Returns ``(velocity, path)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import VPSDE
        >>> from probkit.scaling import velocity_from_score
        >>> v, path = velocity_from_score(lambda x, tau: -x, VPSDE())  # data N(0, I)
        >>> float(jnp.abs(v(jnp.ones(2), 0.5)).max()) < 1e-5  # N(0, I) is stationary
        True
    """
    path = vp_interpolant(sde)

    def velocity(x, t):
        alpha, beta, alpha_dot, beta_dot = _coefficients(path, t)
        s = score(x, sde.t_max * (1.0 - t))
        return -alpha_dot * alpha * s + beta_dot * (x + alpha**2 * s) / beta

    return velocity, path


def _signal_fraction(path: Interpolant, t):
    # g = beta / (alpha + beta) = rho / (1 + rho): increasing in the SNR rho, and bounded
    # (0 at pure noise, 1 at data), so both end points stay finite.
    alpha, beta = path.alpha(t), path.beta(t)
    return beta / (alpha + beta)


def _matching_time(source: Interpolant, target: Interpolant, t: jax.Array) -> jax.Array:
    """``s(t)`` with ``rho_source(s) = rho_target(t)``, differentiable in ``t``."""
    g = _signal_fraction(target, t)
    zero, one = jnp.zeros_like(g), jnp.ones_like(g)
    # A source that does not reach SNR 0 (a VP path starts at a small nonzero signal) is
    # matched at its end point there.
    low, high = _signal_fraction(source, zero), _signal_fraction(source, one)
    inside = (g >= low) & (g <= high)
    g = jnp.where(inside, g, jnp.where(g <= low, low, high))

    # Bisection on [0, 1] (48 halvings reach float32 resolution), then one Newton step
    # so that jax.jvp gives s' = g_target'(t) / g_source'(s).
    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        below = _signal_fraction(source, mid) < g
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 48, body, (zero, one))
    s0 = jax.lax.stop_gradient(0.5 * (lo + hi))
    value, slope = jax.jvp(lambda s: _signal_fraction(source, s), (s0,), (jnp.ones_like(s0),))
    return s0 - (value - g) / slope


def convert_velocity(velocity: FieldFn, source: Interpolant, target: Interpolant) -> FieldFn:
    """The velocity of the same model on another Gaussian path (time and scale change).

    ``velocity`` is the model's field on ``source``; the result is its field on
    ``target`` (see the module docstring for the formula). Valid for ``0 < t < 1``; where
    ``target``'s signal-to-noise ratio lies outside the range ``source`` covers (a
    linear path at ``t = 0`` against a VP path, which starts at a small nonzero signal),
    the source's end point is used.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import linear_interpolant, trig_interpolant
        >>> from probkit.scaling import convert_velocity
        >>> lin, trig = linear_interpolant("none"), trig_interpolant("none")
        >>> v = convert_velocity(lambda x, t: jnp.zeros_like(x), lin, lin)
        >>> float(jnp.abs(v(jnp.ones(2), 0.3)).max()) < 1e-5  # same path: unchanged
        True
    """

    def time_and_scale(t):
        s = _matching_time(source, target, t)
        a_bar, b_bar = target.alpha(t), target.beta(t)
        a_s, b_s = source.alpha(s), source.beta(s)
        # Least squares of c (alpha_bar, beta_bar) = c (alpha_s, beta_s): stable at both ends.
        c = (a_bar * a_s + b_bar * b_s) / (a_s**2 + b_s**2)
        return s, c

    def converted(x, t):
        t = jnp.asarray(t, dtype=float)
        (s, c), (s_dot, c_dot) = jax.jvp(time_and_scale, (t,), (jnp.ones_like(t),))
        return (c_dot / c) * x + c * s_dot * velocity(x / c, s)

    return converted


def gaussian_mixture_marginal(
    mixture: GaussianMixture, path: Interpolant, t: jax.Array
) -> GaussianMixture:
    """The exact law of ``x_t = alpha x_0 + beta x_1`` for data ``x_1 ~ mixture``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import gaussian_mixture, linear_interpolant
        >>> from probkit.scaling import gaussian_mixture_marginal
        >>> gmm = gaussian_mixture(jnp.ones(1), jnp.ones((1, 1)), 1.0)
        >>> gaussian_mixture_marginal(gmm, linear_interpolant("none"), 0.5).means.tolist()
        [[0.5]]
    """
    c = path.coefficients(t)
    alpha, beta = c["alpha"], c["beta"]
    d = mixture.means.shape[-1]
    cov = beta**2 * mixture.covariances + alpha**2 * jnp.eye(d)
    return GaussianMixture(mixture.log_weights, beta * mixture.means, cov)


def gaussian_mixture_velocity(mixture: GaussianMixture, path: Interpolant) -> FieldFn:
    """The exact velocity of a Gaussian path to Gaussian-mixture data (the test oracle).

    ``E[x_1 | x] = sum_k r_k(x) (mu_k + beta Sigma_k C_k^-1 (x - beta mu_k))`` with
    ``C_k = beta^2 Sigma_k + alpha^2 I`` and ``r_k`` the component responsibilities;
    ``E[x_0 | x] = (x - beta E[x_1 | x]) / alpha``. Valid for ``t < 1``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import gaussian_mixture, linear_interpolant
        >>> from probkit.scaling import gaussian_mixture_velocity
        >>> gmm = gaussian_mixture(jnp.ones(1), jnp.full((1, 1), 3.0), 1e-6)
        >>> v = gaussian_mixture_velocity(gmm, linear_interpolant("none"))
        >>> round(float(v(jnp.zeros(1), 0.0)[0]), 3)  # a point mass at 3: b = 3 - x_0
        3.0
    """

    def velocity(x, t):
        alpha, beta, alpha_dot, beta_dot = _coefficients(path, t)
        marginal = gaussian_mixture_marginal(mixture, path, t)
        resp = marginal.responsibilities(x)
        diff = x[None, :] - beta * mixture.means
        solved = jnp.linalg.solve(marginal.covariances, diff[..., None])[..., 0]
        gain = jnp.einsum("kij,kj->ki", mixture.covariances, solved)
        m1 = resp @ (mixture.means + beta * gain)
        m0 = (x - beta * m1) / alpha
        return alpha_dot * m0 + beta_dot * m1

    return velocity


def diffusion_schedule(
    path: Interpolant, epsilon: float | Callable[[jax.Array], jax.Array]
) -> Callable[[jax.Array], jax.Array]:
    """``eps(t)``: a function of ``t`` as given, or ``epsilon * alpha(t)`` for a number.

    ``alpha(t)`` vanishes at the data end, where the score ``~ 1 / alpha`` blows up, so
    ``eps s`` stays bounded.
    """
    if callable(epsilon):
        return epsilon
    scale = float(epsilon)
    if scale < 0:
        raise ValueError(f"epsilon must be >= 0 (0: the ODE), got {epsilon!r}.")
    return lambda t: scale * path.coefficients(t)["alpha"]


def step_from_velocity(
    key: jax.Array,
    path: Interpolant,
    x: jax.Array,
    b: jax.Array,
    t: jax.Array,
    t_next: jax.Array,
    eps_fn: Callable[[jax.Array], jax.Array],
) -> jax.Array:
    """Euler-Maruyama from ``x`` at ``t`` given the velocity ``b = b(x, t)`` already evaluated.

    The score comes from the same ``b`` (:func:`posterior_means`), so a step costs one
    evaluation of the model, and the caller can reuse that evaluation for a look-ahead.
    """
    check_key(key)
    alpha, beta, alpha_dot, beta_dot = _coefficients(path, t)
    h = t_next - t
    eps = eps_fn(t)
    m0 = (beta_dot * x - beta * b) / (alpha * beta_dot - beta * alpha_dot)
    drift = b - eps * m0 / alpha
    noise = jax.random.normal(key, x.shape, x.dtype)
    return x + drift * h + jnp.sqrt(2.0 * eps * h) * noise


def sde_step(
    key: jax.Array,
    velocity: FieldFn,
    path: Interpolant,
    x: jax.Array,
    t: jax.Array,
    t_next: jax.Array,
    epsilon: float | Callable[[jax.Array], jax.Array] = 0.0,
) -> jax.Array:
    """One Euler-Maruyama step of ``dX = [b + eps s] dt + sqrt(2 eps) dW`` for a batch ``x``.

    ``epsilon = 0`` is an Euler step of the ODE; a number gives
    ``eps(t) = epsilon * alpha(t)`` (:func:`diffusion_schedule`), a function is used as
    given. One evaluation of ``velocity`` per sample. (For whole trajectories,
    :func:`probkit.sde.interpolant_sample` integrates the same SDE.)

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import linear_interpolant
        >>> from probkit.scaling import sde_step
        >>> x = sde_step(jax.random.key(0), lambda x, t: -x, linear_interpolant("none"),
        ...              jnp.ones((3, 2)), 0.0, 0.1, epsilon=0.5)
        >>> x.shape
        (3, 2)
    """
    check_key(key)
    eps_fn = diffusion_schedule(path, epsilon)
    b = jax.vmap(velocity, in_axes=(0, None))(x, t)
    return step_from_velocity(key, path, x, b, t, t_next, eps_fn)
