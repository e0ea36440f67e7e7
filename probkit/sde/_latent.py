"""Latent SDEs driven by (Markov-approximated) fractional noise, fit by variational inference.

The model (Daems et al., ICLR 2024) of a latent path ``x(t)`` in ``R^d`` and noisy
observations ``y_i ~ p(y | x(t_i))`` is

``dx = b(t, x) dt + sigma * dB_H(t)``,   ``B_H ~ sum_k w_k Y_k`` (MA-fBM, one per dimension),

with ``dY_k = -g_k Y_k dt + dW`` sharing one Brownian motion ``W`` per dimension, so that
``(x, Y_1..Y_K)`` is a Markov SDE driven by ``W`` alone. The variational posterior adds a
control ``u(t, x, Y)`` to the Brownian motion, ``dW -> u dt + dW``, which moves ``x`` and
every ``Y_k`` consistently; by Girsanov's theorem the path KL is ``E int |u|^2 dt / 2``,
and

``ELBO = E_q[sum_i log p(y_i | x(t_i))] - E_q[int_0^T |u|^2 / 2 dt] - KL(q(x_0) || p(x_0))``.

The Hurst index (through the optimal weights, :func:`~probkit.sde.optimal_weights`), the
drift (parametric, :class:`LinearDrift`, or an equinox network, :class:`MLPDrift`), the
diffusion scale, the observation model's parameters and the control are all leaves of
one :class:`LatentSDE` module, trained with optax (:func:`fit`). Paths are solved with
diffrax (Euler-Maruyama by default, Ito) when a diffrax solver is passed, with
diffrax's checkpointed adjoint; a plain ``lax.scan`` Euler-Maruyama loop otherwise.

``hurst=None`` gives a Brownian driver (``H = 1/2`` exactly, no OU components).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from probkit._checks import check_int, check_key
from probkit._renamed import renamed_argument
from probkit._repr import summary_repr
from probkit.progress import interruptible_scan
from probkit.sde._fractional import optimal_weights, ou_rates, stationary_ou_covariance

__all__ = [
    "LatentSDE",
    "LinearDrift",
    "MLPDrift",
    "AffineControl",
    "MLPControl",
    "GaussianObservation",
    "latent_sde",
    "elbo",
    "sample_latent_paths",
    "fit_latent_sde",
    "LatentFit",
    "ELBOTerms",
]

# H = _H_LOW + _H_SPAN * sigmoid(logit): learning can never reach the end points, where
# the fBM representation degenerates.
_H_LOW, _H_SPAN = 0.01, 0.98


class LinearDrift(eqx.Module):
    """``b(t, x) = A x + c``: Ornstein-Uhlenbeck (``A = -theta I``) and any linear drift.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import LinearDrift
        >>> LinearDrift.ou(1, rate=2.0, mean=1.0)(0.0, jnp.zeros(1)).tolist()
        [2.0]
    """

    matrix: jax.Array
    offset: jax.Array

    @classmethod
    def ou(cls, dim: int, rate: float = 1.0, mean: float = 0.0) -> LinearDrift:
        """``b(x) = rate (mean - x)`` in every dimension."""
        return cls(-rate * jnp.eye(dim), rate * mean * jnp.ones(dim))

    def __call__(self, t, x):
        return self.matrix @ x + self.offset


class MLPDrift(eqx.Module):
    """A neural drift ``b(t, x)``: an equinox MLP of ``x`` (and of ``t`` with ``use_time``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import MLPDrift
        >>> MLPDrift(jax.random.key(0), 2)(0.0, jnp.zeros(2)).shape
        (2,)
    """

    mlp: eqx.nn.MLP
    use_time: bool = eqx.field(static=True)

    def __init__(self, key, dim: int, width: int = 32, depth: int = 2, use_time: bool = False):
        self.use_time = use_time
        self.mlp = eqx.nn.MLP(dim + int(use_time), dim, width, depth, jax.nn.tanh, key=key)

    def __call__(self, t, x):
        inputs = jnp.concatenate([x, jnp.atleast_1d(t)]) if self.use_time else x
        return self.mlp(inputs)


class AffineControl(eqx.Module):
    """``u(t, z) = a(t) + B(t) z``, ``a, B`` linear in time on each interval between ``knots``.

    ``z`` is the augmented state ``(x, Y)`` flattened. The coefficients may jump at the
    knots (each interval has its own two end values). For a linear drift and Gaussian
    observations the exact posterior's control has this form, with coefficients that
    jump at the observation times: put knots there (and a few between). Starts at zero
    (the prior). The stored coefficients are ``1/scale`` of the control's: exact
    posterior gains are large (``-sigma / r^2`` just before an observation of noise
    scale ``r``) and Adam moves every parameter by about its learning rate per step.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import AffineControl
        >>> c = AffineControl(jnp.linspace(0, 1, 5), dim=1, state_size=3)
        >>> c(0.3, jnp.zeros(1), jnp.zeros((1, 2))).tolist()
        [0.0]
    """

    knots: jax.Array
    offsets: jax.Array
    gains: jax.Array
    scale: float = eqx.field(static=True)

    def __init__(self, knots, dim: int, state_size: int, scale: float = 10.0):
        knots = np.asarray(knots, np.float32)
        if knots.ndim != 1 or len(knots) < 2 or np.any(np.diff(knots) <= 0):
            raise ValueError("knots must be an increasing 1-D array of at least two times.")
        self.knots = jnp.asarray(knots)
        self.offsets = jnp.zeros((len(knots) - 1, 2, dim))
        self.gains = jnp.zeros((len(knots) - 1, 2, dim, state_size))
        self.scale = float(scale)

    def __call__(self, t, x, y):
        z = jnp.concatenate([x, y.reshape(-1)])
        knots = jax.lax.stop_gradient(self.knots)
        # A time on a knot belongs to the interval it starts (an Euler step from t uses it).
        position = jnp.clip(jnp.searchsorted(knots, t, side="right") - 1, 0, len(knots) - 2)
        frac = jnp.clip((t - knots[position]) / (knots[position + 1] - knots[position]), 0.0, 1.0)
        a = (1 - frac) * self.offsets[position, 0] + frac * self.offsets[position, 1]
        b = (1 - frac) * self.gains[position, 0] + frac * self.gains[position, 1]
        return self.scale * (a + b @ z)


class MLPControl(eqx.Module):
    """A neural control ``u(t, x, Y)`` (equinox MLP; last layer zero: starts at the prior).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import MLPControl
        >>> c = MLPControl(jax.random.key(0), dim=1, state_size=3)
        >>> c(0.0, jnp.ones(1), jnp.ones((1, 2))).tolist()
        [0.0]
    """

    mlp: eqx.nn.MLP
    time_scale: float = eqx.field(static=True)

    def __init__(
        self,
        key,
        dim: int,
        state_size: int,
        width: int = 64,
        depth: int = 2,
        time_horizon: float = 1.0,
    ):
        mlp = eqx.nn.MLP(state_size + 1, dim, width, depth, jax.nn.tanh, key=key)
        last = mlp.layers[-1]
        last = eqx.tree_at(
            lambda layer: (layer.weight, layer.bias),
            last,
            (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)),
        )
        self.mlp = eqx.tree_at(lambda m: m.layers[-1], mlp, last)
        self.time_scale = float(time_horizon)

    def __call__(self, t, x, y):
        return self.mlp(jnp.concatenate([jnp.atleast_1d(t / self.time_scale), x, y.reshape(-1)]))


class GaussianObservation(eqx.Module):
    """``y | x ~ Normal(C x + c, exp(log_scale))`` as a NumPyro distribution (learnable).

    Any callable ``x -> numpyro.distributions.Distribution`` works as an observation
    model; this one is the common case, with a learnable noise scale.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import GaussianObservation
        >>> obs = GaussianObservation.identity(1, scale=0.1)
        >>> round(float(obs(jnp.zeros(1)).scale[0]), 3)
        0.1
    """

    matrix: jax.Array
    offset: jax.Array
    log_scale: jax.Array

    @classmethod
    def identity(cls, dim: int, scale: float = 0.1) -> GaussianObservation:
        return cls(jnp.eye(dim), jnp.zeros(dim), jnp.full(dim, jnp.log(scale)))

    def __call__(self, x):
        import numpyro.distributions as dist

        return dist.Normal(self.matrix @ x + self.offset, jnp.exp(self.log_scale))


class LatentSDE(eqx.Module):
    """A latent SDE driven by MA-fBM, with its variational posterior: one equinox module.

    Attributes:
        drift: prior drift ``b(t, x)``.
        log_diffusion: ``log sigma`` per latent dimension (additive noise).
        control: posterior control ``u(t, x, Y)`` (:class:`AffineControl`, :class:`MLPControl`).
        observation: ``x -> numpyro Distribution`` of one observation.
        hurst_logit: ``H = 0.01 + 0.98 sigmoid(hurst_logit)``; ``None``: Brownian driver.
        prior_mean, prior_log_std: ``p(x_0)`` (diagonal Gaussian).
        posterior_mean, posterior_log_std: ``q(x_0)``.
        rates: the OU rates (fixed), kind: ``"I"`` / ``"II"``, time_horizon: ``T``.
    """

    drift: Callable
    log_diffusion: jax.Array
    control: Callable
    observation: Callable
    hurst_logit: jax.Array | None
    prior_mean: jax.Array
    prior_log_std: jax.Array
    posterior_mean: jax.Array
    posterior_log_std: jax.Array
    rates: tuple = eqx.field(static=True)
    kind: str = eqx.field(static=True)
    time_horizon: float = eqx.field(static=True)

    @property
    def dim(self) -> int:
        return self.prior_mean.shape[0]

    @property
    def num_components(self) -> int:
        return 0 if self.hurst_logit is None else len(self.rates)

    @property
    def hurst(self) -> jax.Array:
        """The Hurst index (0.5 for a Brownian driver)."""
        if self.hurst_logit is None:
            return jnp.asarray(0.5)
        return _H_LOW + _H_SPAN * jax.nn.sigmoid(self.hurst_logit)

    def weights(self) -> jax.Array:
        """The MA-fBM weights at the current Hurst index (empty for a Brownian driver)."""
        if self.hurst_logit is None:
            return jnp.zeros(0)
        return optimal_weights(self.hurst, np.asarray(self.rates), self.time_horizon, self.kind)


def _hurst_logit(hurst: float) -> jax.Array:
    p = (hurst - _H_LOW) / _H_SPAN
    return jnp.asarray(np.log(p / (1 - p)), jnp.float32)


def latent_sde(
    key: jax.Array,
    dim: int,
    time_horizon: float,
    *,
    hurst: float | None = 0.5,
    num_components: int = 5,
    kind: Literal["I", "II"] = "I",
    rates=None,
    drift: Callable | None = None,
    diffusion: float = 1.0,
    control: Callable | Literal["affine", "mlp"] = "affine",
    num_knots: int = 41,
    observation: Callable | None = None,
    prior_std: float = 1.0,
) -> LatentSDE:
    """Build a :class:`LatentSDE` with sensible defaults.

    ``drift`` defaults to an OU drift of rate 1 towards 0 (:class:`LinearDrift`);
    ``control`` ``"affine"`` puts ``num_knots`` knots on ``[0, T]``, ``"mlp"`` uses
    :class:`MLPControl`; ``observation`` defaults to :class:`GaussianObservation` with
    identity map and scale 0.1. ``hurst=None`` drives ``x`` by Brownian motion.

    Example:
        >>> import jax
        >>> from probkit.sde import latent_sde
        >>> model = latent_sde(jax.random.key(0), 1, 2.0, hurst=0.3)
        >>> round(float(model.hurst), 3), model.num_components
        (0.3, 5)
    """
    check_key(key)
    if not isinstance(dim, int | np.integer) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}.")
    if not time_horizon > 0:
        raise ValueError(f"time_horizon must be positive, got {time_horizon}.")
    if hurst is not None and not 0.02 < hurst < 0.98:
        raise ValueError(
            f"hurst must lie in (0.02, 0.98) (or None for Brownian noise), got {hurst}."
        )
    if kind not in ("I", "II"):
        raise ValueError(f"kind must be 'I' or 'II', got {kind!r}.")
    if rates is None:
        rates = ou_rates(num_components, time_horizon)
    rates = tuple(float(g) for g in np.asarray(rates))
    k = 0 if hurst is None else len(rates)
    state_size = dim * (1 + k)
    key_drift, key_control = jax.random.split(key)
    if drift is None:
        drift = LinearDrift.ou(dim)
    if control == "affine":
        control = AffineControl(np.linspace(0.0, time_horizon, num_knots), dim, state_size)
    elif control == "mlp":
        control = MLPControl(key_control, dim, state_size, time_horizon=time_horizon)
    elif isinstance(control, str):
        raise ValueError(f"control must be 'affine', 'mlp' or a callable, got {control!r}.")
    if observation is None:
        observation = GaussianObservation.identity(dim)
    return LatentSDE(
        drift=drift,
        log_diffusion=jnp.full(dim, jnp.log(diffusion)),
        control=control,
        observation=observation,
        hurst_logit=None if hurst is None else _hurst_logit(hurst),
        prior_mean=jnp.zeros(dim),
        prior_log_std=jnp.full(dim, jnp.log(prior_std)),
        posterior_mean=jnp.zeros(dim),
        posterior_log_std=jnp.full(dim, jnp.log(prior_std)),
        rates=rates,
        kind=kind,
        time_horizon=float(time_horizon),
    )


class _GridBrownianPath(diffrax.AbstractPath):
    """Brownian motion drawn on the solver's own fixed grid, linear in between.

    Exact at grid points (where a fixed-step solver evaluates it), deterministic (so
    checkpointed backpropagation may re-evaluate it), and one normal draw per step:
    cheaper than a ``VirtualBrownianTree``.
    """

    t0: float
    t1: float
    step: float
    path: jax.Array  # (num_steps + 1, d): W at the grid points

    def evaluate(self, t0, t1=None, left=True):
        def at(t):
            position = jnp.clip((t - self.t0) / self.step, 0.0, self.path.shape[0] - 1.0)
            lower = jnp.clip(jnp.floor(position).astype(jnp.int32), 0, self.path.shape[0] - 2)
            frac = position - lower
            return (1 - frac) * self.path[lower] + frac * self.path[lower + 1]

        return at(t0) if t1 is None else at(t1) - at(t0)


def _solve(key, model: LatentSDE, times, dt, controlled: bool, solver, adjoint, brownian):
    """One path: ``(x at times (n, d), path KL int |u|^2/2)``."""
    d, k = model.dim, model.num_components
    rates = jnp.asarray(model.rates, jnp.float32) if k else jnp.zeros(0)
    weights = model.weights()
    sigma = jnp.exp(model.log_diffusion)
    key_x0, key_y0, key_w = jax.random.split(key, 3)
    if controlled:
        x0 = model.posterior_mean + jnp.exp(model.posterior_log_std) * jax.random.normal(
            key_x0, (d,)
        )
    else:
        x0 = model.prior_mean + jnp.exp(model.prior_log_std) * jax.random.normal(key_x0, (d,))
    if k and model.kind == "I":
        # Type I: the OU components start stationary (under prior and posterior alike, so
        # they add nothing to the KL).
        vals, vecs = jnp.linalg.eigh(stationary_ou_covariance(rates))
        root = vecs * jnp.sqrt(jnp.maximum(vals, 0.0))
        y0 = jax.random.normal(key_y0, (d, k)) @ root.T
    else:
        y0 = jnp.zeros((d, k))
    z0 = jnp.concatenate([x0, y0.reshape(-1), jnp.zeros(1)])

    def unpack(z):
        return z[:d], z[d : d * (1 + k)].reshape(d, k)

    # Everything differentiable reaches the vector fields through ``args`` (not closed
    # over), as diffrax.BacksolveAdjoint requires.
    args = (model, weights, sigma)

    def drift(t, z, args):
        m, w, s = args
        x, y = unpack(z)
        u = m.control(t, x, y) if controlled else jnp.zeros(d)
        if k:
            dy = -rates * y + u[:, None]
            db = dy @ w  # dB = sum_k w_k dY_k (its dt part)
        else:
            dy = y
            db = u
        dx = m.drift(t, x) + s * db
        return jnp.concatenate([dx, dy.reshape(-1), 0.5 * jnp.sum(u**2, keepdims=True)])

    def diffusion(t, z, args):
        _, w, s = args
        x_rows = jnp.diag(s * (jnp.sum(w) if k else 1.0))
        y_rows = jnp.repeat(jnp.eye(d), k, axis=0)  # row (i, k) is e_i
        return jnp.concatenate([x_rows, y_rows, jnp.zeros((1, d))])

    t1 = model.time_horizon
    num_steps = int(np.ceil(t1 / dt))
    step = t1 / num_steps
    if solver is None:
        # The plain Euler-Maruyama loop: the same increments as brownian="grid" gives to
        # diffrax.Euler(), so the two agree to round-off; it compiles in a fraction of
        # the time (diffrax's solve and its checkpointed adjoint are large programs).
        increments = jnp.sqrt(step) * jax.random.normal(key_w, (num_steps, d))

        def euler(z, inputs):
            i, dw = inputs
            t = i * step
            z = z + drift(t, z, args) * step + diffusion(t, z, args) @ dw
            return z, jnp.concatenate([z[:d], z[-1:]])  # the latent state and the KL so far

        _, xs = jax.lax.scan(euler, z0, (jnp.arange(num_steps, dtype=jnp.float32), increments))
        xs = jnp.concatenate([jnp.concatenate([x0, z0[-1:]])[None], xs])
        grid = jnp.arange(num_steps + 1, dtype=jnp.float32) * step
        at = jax.vmap(lambda col: jnp.interp(times, grid, col), in_axes=1, out_axes=1)(xs)
        return at[:, :d], at[-1, -1]
    if brownian == "tree":
        bm = diffrax.VirtualBrownianTree(0.0, t1, tol=dt / 2, shape=(d,), key=key_w)
    elif brownian == "grid":
        increments = jnp.sqrt(step) * jax.random.normal(key_w, (num_steps, d))
        path = jnp.concatenate([jnp.zeros((1, d)), jnp.cumsum(increments, axis=0)])
        bm = _GridBrownianPath(0.0, t1, step, path)
    else:
        raise ValueError(f"brownian must be 'grid' or 'tree', got {brownian!r}.")
    terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))
    sol = diffrax.diffeqsolve(
        terms,
        solver,
        0.0,
        t1,
        dt0=t1 / num_steps,
        y0=z0,
        # The path KL is needed up to the last observation only (the likelihood does
        # not see the path after it), so nothing is saved at t1: saving it beside a last
        # observation at t1 would save one time twice, where BacksolveAdjoint's
        # gradients are NaN.
        saveat=diffrax.SaveAt(ts=times),
        args=args,
        adjoint=adjoint,
        max_steps=num_steps + 1,
    )
    return sol.ys[:, :d], sol.ys[-1, -1]


def _gaussian_kl(mean_q, log_std_q, mean_p, log_std_p):
    var_ratio = jnp.exp(2 * (log_std_q - log_std_p))
    return 0.5 * jnp.sum(
        var_ratio + ((mean_q - mean_p) / jnp.exp(log_std_p)) ** 2 - 1 - 2 * (log_std_q - log_std_p)
    )


def _check_times(times, time_horizon):
    times_np = np.asarray(times)
    if times_np.ndim != 1 or times_np.size == 0:
        raise ValueError("times must be a non-empty 1-D array of observation times.")
    if np.any(np.diff(times_np) < 0) or times_np[0] < 0 or times_np[-1] > time_horizon + 1e-6:
        raise ValueError(f"times must be increasing and lie in [0, time_horizon={time_horizon}].")


def _default_dt(model: LatentSDE, dt):
    if dt is None:
        dt = model.time_horizon / 200
        if model.num_components:
            # Explicit Euler on dY = -g Y dt is stable and accurate for g dt well below 1.
            dt = min(dt, 0.5 / max(model.rates))
    return dt


class ELBOTerms(NamedTuple):
    """The ELBO and its parts (averaged over samples).

    ``path_kl`` is the Girsanov KL of the controlled path up to the last observation
    time (after it the likelihood does not see the path, so it adds nothing but slack).
    """

    elbo: jax.Array
    log_likelihood: jax.Array
    path_kl: jax.Array
    initial_kl: jax.Array


def elbo(
    key: jax.Array,
    model: LatentSDE,
    times,
    observations,
    *,
    num_samples: int = 8,
    dt: float | None = None,
    solver: diffrax.AbstractSolver | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    brownian: Literal["grid", "tree"] = "grid",
) -> ELBOTerms:
    """Monte Carlo ELBO of ONE series ``observations`` (shape ``(n, obs_dim)``) at ``times``.

    ``dt`` defaults to ``min(T/200, 0.5/max(rates))``. ``solver=None`` runs a plain
    Euler-Maruyama loop (``lax.scan``; Ito); a diffrax solver (``diffrax.Euler()``,
    ``diffrax.Heun()``, ...) runs ``diffrax.diffeqsolve`` instead, with ``adjoint``
    (default: checkpointed backpropagation through the solver). The noise is additive,
    so Ito and Stratonovich solutions coincide and ``diffrax.BacksolveAdjoint`` (which
    accepts Stratonovich solvers only) runs with ``solver=diffrax.Heun()`` and
    ``brownian="tree"`` (its gradients are those of the continuous adjoint, which
    approach the discrete ones as ``dt`` shrinks). ``brownian="grid"`` draws the
    Brownian motion on the fixed step grid (fast, exact for fixed-step solvers);
    ``"tree"`` uses diffrax's ``VirtualBrownianTree`` (any solver, adaptive steps).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import elbo, latent_sde
        >>> model = latent_sde(jax.random.key(0), 1, 1.0, hurst=0.3)
        >>> times = jnp.linspace(0.1, 1.0, 10)
        >>> terms = elbo(jax.random.key(1), model, times, jnp.zeros((10, 1)))
        >>> bool(jnp.isfinite(terms.elbo))
        True
    """
    check_key(key)
    adjoint = diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint
    dt = _default_dt(model, dt)
    times = jnp.asarray(times, jnp.float32)

    def one(k):
        xs, kl = _solve(k, model, times, dt, True, solver, adjoint, brownian)
        loglik = jnp.sum(
            jax.vmap(lambda x, y: jnp.sum(model.observation(x).log_prob(y)))(xs, observations)
        )
        return loglik, kl

    loglik, path_kl = jax.vmap(one)(jax.random.split(key, num_samples))
    initial_kl = _gaussian_kl(
        model.posterior_mean, model.posterior_log_std, model.prior_mean, model.prior_log_std
    )
    loglik, path_kl = jnp.mean(loglik), jnp.mean(path_kl)
    return ELBOTerms(loglik - path_kl - initial_kl, loglik, path_kl, initial_kl)


def sample_latent_paths(
    key: jax.Array,
    model: LatentSDE,
    times,
    num_samples: int,
    *,
    posterior: bool = True,
    dt: float | None = None,
    solver: diffrax.AbstractSolver | None = None,
) -> jax.Array:
    """Latent paths ``x(times)`` of shape ``(num_samples, n, d)`` from the posterior (or prior).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import latent_sde, sample_latent_paths
        >>> model = latent_sde(jax.random.key(0), 2, 1.0, hurst=0.7)
        >>> sample_latent_paths(jax.random.key(1), model, jnp.linspace(0, 1, 5), 3).shape
        (3, 5, 2)
    """
    check_key(key)
    _check_times(times, model.time_horizon)
    dt = _default_dt(model, dt)
    times = jnp.asarray(times, jnp.float32)
    run = lambda k: _solve(
        k, model, times, dt, posterior, solver, diffrax.RecursiveCheckpointAdjoint(), "grid"
    )[0]
    return jax.vmap(run)(jax.random.split(key, num_samples))


class LatentFit(NamedTuple):
    """What :func:`fit_latent_sde` returns: the trained model and the per-step history."""

    model: LatentSDE
    elbo: np.ndarray
    hurst: np.ndarray

    def __repr__(self) -> str:
        return summary_repr(self)


def fit_latent_sde(
    key: jax.Array,
    model: LatentSDE,
    times,
    observations,
    *,
    num_steps: int = 500,
    optimizer: optax.GradientTransformation | None = None,
    num_samples: int = 8,
    dt: float | None = None,
    trainable: Callable[[LatentSDE], Any] | None = None,
    solver: diffrax.AbstractSolver | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    brownian: Literal["grid", "tree"] = "grid",
    progress_bar: bool = False,
    optimiser: Any = None,
) -> LatentFit:
    """Maximise the ELBO with optax: drift, diffusion, Hurst index, observation model, control.

    ``observations`` is one series ``(n, obs_dim)`` or several ``(num_series, n,
    obs_dim)`` sharing ``times``; with several, ``model.control`` must hold one control
    per series on a leading axis (e.g. ``eqx.filter_vmap`` over its constructor; see the
    guide) and the ELBO is their sum. ``trainable(model)`` returns the leaves to train
    (default: every floating-point array); ``optimizer`` defaults to ``optax.adam(1e-2)``.
    The loop runs in chunks of about half a second (``progress_bar`` draws a bar):
    Ctrl-C stops it within about a second and raises
    :class:`~probkit.progress.Interrupted`, whose ``partial_result`` is the
    :class:`LatentFit` of the steps done.

    ``optimiser=`` is the old name of ``optimizer=`` (deprecated).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import fit_latent_sde, latent_sde
        >>> model = latent_sde(jax.random.key(0), 1, 1.0, hurst=None)
        >>> times = jnp.linspace(0.0, 1.0, 11)
        >>> fit = fit_latent_sde(jax.random.key(1), model, times, jnp.ones((11, 1)), num_steps=20)
        >>> bool(fit.elbo[-1] > fit.elbo[0])
        True
    """
    optimizer = renamed_argument(
        optimizer, optimiser, "optimiser", "optimizer", "sde.fit_latent_sde"
    )
    check_key(key)
    num_steps = check_int(num_steps, "num_steps")
    _check_times(times, model.time_horizon)
    observations = jnp.asarray(observations, jnp.float32)
    times = jnp.asarray(times, jnp.float32)
    if observations.ndim == 1:
        observations = observations[:, None]
    batched = observations.ndim == 3
    if observations.shape[-2] != times.shape[0]:
        raise ValueError(
            f"observations have {observations.shape[-2]} times, times has {times.shape[0]}: "
            "pass one row per observation time (shape (n, obs_dim) or (num_series, n, obs_dim))."
        )
    if not np.all(np.isfinite(np.asarray(observations))):
        raise ValueError("observations contain NaN or inf; drop those times instead.")
    optimizer = optax.adam(1e-2) if optimizer is None else optimizer
    kwargs = dict(num_samples=num_samples, dt=dt, solver=solver, adjoint=adjoint, brownian=brownian)

    if trainable is None:
        mask = jax.tree.map(eqx.is_inexact_array, model)
    else:
        mask = jax.tree.map(lambda _: False, model)
        mask = eqx.tree_at(trainable, mask, replace_fn=lambda _: True)
    params, static = eqx.partition(model, mask)
    settings = (optimizer, batched, tuple(sorted(kwargs.items())))
    # times and observations are array leaves of the body (not constants of the
    # program): new data of the same shapes compiles nothing.
    body = jax.tree_util.Partial(_fit_step, settings, static, times, observations)

    def result(params, history) -> LatentFit:
        values, hursts = (np.asarray(h) for h in history)
        return LatentFit(
            eqx.combine(params, static), -values.astype(np.float64), hursts.astype(np.float64)
        )

    # The loop donates its carry: copies, so that the caller's model stays valid.
    init = jax.tree_util.tree_map(jnp.copy, (params, optimizer.init(params)))
    (params, _), history = interruptible_scan(
        body,
        init,
        jax.random.split(key, num_steps),
        progress_bar=progress_bar,
        desc="latent SDE fit",
        partial_result=lambda carry, ys: result(carry[0], ys),
    )
    fit = result(params, history)
    if not np.isfinite(fit.elbo[-1]):
        raise FloatingPointError(
            "the ELBO became non-finite: lower the optimizer's learning rate or dt."
        )
    return fit


def _fit_step(settings, static, times, observations, carry, key):
    optimiser, batched, kwargs = settings
    kwargs = dict(kwargs)

    def loss(params, key):
        m = eqx.combine(params, static)
        if not batched:
            return -elbo(key, m, times, observations, **kwargs).elbo
        keys = jax.random.split(key, observations.shape[0])

        def per_series(control, k, y):
            return elbo(k, eqx.tree_at(lambda mm: mm.control, m, control), times, y, **kwargs).elbo

        return -jnp.sum(eqx.filter_vmap(per_series)(m.control, keys, observations))

    params, opt_state = carry
    value, grads = jax.value_and_grad(loss)(params, key)
    updates, opt_state = optimiser.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return (params, opt_state), (value, eqx.combine(params, static).hurst)
