"""Reverse-time samplers: predictors, the Langevin corrector and the predictor-corrector loop.

Predictors move one sample from ``t`` to ``t - h`` (Song et al., ICLR 2021, App. G):

- :func:`euler_maruyama_predictor`: Euler-Maruyama on the reverse SDE (any noise
  scale ``kappa``; ``kappa = 0`` is Euler on the probability-flow ODE);
- :func:`reverse_diffusion_predictor`: ``x - f_h + G_h^2 s + G_h z`` with the SDE's own
  discretisation ``(f_h, G_h)`` (ancestral DDPM / SMLD steps for VP / VE).

:func:`langevin_corrector` takes Langevin steps on ``p_t`` at fixed ``t`` with the
signal-to-noise step size ``eps = 2 (snr |z| / |s|)^2`` (norms averaged over the batch).
The predictors act on ONE sample, the corrector on a batch;
:func:`predictor_corrector_sample` vectorises over particles and scans over the time grid.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_int, check_key
from probkit.progress import progress_scan
from probkit.sde._euler_maruyama import euler_maruyama_step
from probkit.sde._linear import LinearSDE, ScoreFn

__all__ = [
    "time_grid",
    "euler_maruyama_predictor",
    "reverse_diffusion_predictor",
    "langevin_corrector",
    "predictor_corrector_sample",
]


def time_grid(sde: LinearSDE, num_steps: int, t_min: float | None = None) -> jax.Array:
    """``num_steps + 1`` equally spaced times from ``sde.t_max`` down to ``t_min``.

    Example:
        >>> from probkit.sde import VPSDE, time_grid
        >>> time_grid(VPSDE(t_min=0.5), 2).tolist()
        [1.0, 0.75, 0.5]
    """
    t_min = sde.t_min if t_min is None else t_min
    if not isinstance(num_steps, int | np.integer) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}.")
    if not 0 <= t_min < sde.t_max:
        raise ValueError(f"t_min must lie in [0, t_max={sde.t_max}), got {t_min}.")
    return jnp.linspace(sde.t_max, t_min, num_steps + 1)


def euler_maruyama_predictor(
    key: jax.Array,
    sde: LinearSDE,
    score: ScoreFn,
    x: jax.Array,
    t: jax.Array,
    t_next: jax.Array,
    noise_scale: float = 1.0,
) -> jax.Array:
    """One Euler-Maruyama step of the reverse process from ``t`` to ``t_next < t``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import VPSDE, euler_maruyama_predictor
        >>> x = euler_maruyama_predictor(jax.random.key(0), VPSDE(), lambda x, t: -x,
        ...                              jnp.zeros(2), 1.0, 0.99)
        >>> x.shape
        (2,)
    """
    check_key(key)
    rev = sde.reverse(score, noise_scale)
    dt = t_next - t
    if noise_scale == 0:
        return euler_maruyama_step(x, rev.drift(x, t), dt)
    noise = jax.random.normal(key, x.shape, x.dtype)
    noise_std = rev.diffusion(t) * jnp.sqrt(t - t_next)
    return euler_maruyama_step(x, rev.drift(x, t), dt, noise_std, noise)


def reverse_diffusion_predictor(
    key: jax.Array,
    sde: LinearSDE,
    score: ScoreFn,
    x: jax.Array,
    t: jax.Array,
    t_next: jax.Array,
) -> jax.Array:
    """One reverse-diffusion step ``x - f_h + G_h^2 s(x, t) + G_h z`` (ancestral sampling).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import VESDE, reverse_diffusion_predictor
        >>> x = reverse_diffusion_predictor(jax.random.key(0), VESDE(), lambda x, t: -x,
        ...                                 jnp.zeros(2), 1.0, 0.99)
        >>> x.shape
        (2,)
    """
    check_key(key)
    f_h, g_h = sde.discretize(x, t_next, t - t_next)
    x_mean = x - f_h + g_h**2 * score(x, t)
    return x_mean + g_h * jax.random.normal(key, x.shape, x.dtype)


def langevin_corrector(
    key: jax.Array,
    score: ScoreFn,
    x: jax.Array,
    t: jax.Array,
    snr: float = 0.16,
    num_steps: int = 1,
) -> jax.Array:
    """``num_steps`` Langevin steps ``x + eps s + sqrt(2 eps) z`` on a BATCH ``x`` at fixed ``t``.

    The step size ``eps = 2 (snr ||z|| / ||s||)^2`` sets the ratio of the drift's norm
    to the noise's norm to ``snr``; the norms are averaged over the batch (Song et al.,
    Alg. 4 and 5, with ``alpha = 1``), since per-sample norms give huge steps wherever
    one sample's score nearly vanishes.

    Args:
        key: a ``jax.random`` key.
        score: ``(x, t) -> grad log p_t(x)`` for one sample.
        x: samples, shape ``(n, *event_shape)``.
        t: the time.
        snr: signal-to-noise ratio.
        num_steps: number of Langevin steps.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import langevin_corrector
        >>> langevin_corrector(jax.random.key(0), lambda x, t: -x, jnp.ones((5, 3)), 0.5).shape
        (5, 3)
    """
    check_key(key)
    batch_score = jax.vmap(score, in_axes=(0, None))

    def norm(a):
        return jnp.mean(jnp.linalg.norm(a.reshape(a.shape[0], -1), axis=-1))

    def body(x, key):
        grad = batch_score(x, t)
        noise = jax.random.normal(key, x.shape, x.dtype)
        step = 2.0 * (snr * norm(noise) / jnp.maximum(norm(grad), 1e-12)) ** 2
        return x + step * grad + jnp.sqrt(2.0 * step) * noise, None

    x, _ = jax.lax.scan(body, x, jax.random.split(key, num_steps))
    return x


# The predictor names, checked before anything is compiled.
_PREDICTORS = ("euler_maruyama", "reverse_diffusion", "none")


def predictor_corrector_sample(
    key: jax.Array,
    sde: LinearSDE,
    score: ScoreFn,
    num_samples: int,
    event_shape: tuple[int, ...],
    *,
    num_steps: int = 500,
    predictor: Literal["euler_maruyama", "reverse_diffusion", "none"] = "euler_maruyama",
    corrector: Literal["langevin"] | None = None,
    snr: float = 0.16,
    num_corrector_steps: int = 1,
    noise_scale: float = 1.0,
    t_min: float | None = None,
    x_init: jax.Array | None = None,
    progress_bar: bool = False,
) -> jax.Array:
    """Sample ``p_{t_min}`` by running the reverse process from the prior (predictor-corrector).

    Args:
        key: a ``jax.random`` key.
        sde: the forward SDE.
        score: ``(x, t) -> grad log p_t(x)`` for ONE sample of shape ``event_shape``.
        num_samples: number of independent samples.
        event_shape: shape of one sample.
        num_steps: number of predictor steps on ``linspace(t_max, t_min)``.
        predictor: ``"euler_maruyama"``, ``"reverse_diffusion"`` or ``"none"``
            (corrector-only, i.e. annealed Langevin dynamics).
        corrector: ``"langevin"`` or ``None``.
        snr: signal-to-noise ratio of the Langevin corrector.
        num_corrector_steps: corrector steps after each predictor step.
        noise_scale: ``kappa`` of the Euler-Maruyama predictor (1: reverse SDE).
        t_min: end time (default ``sde.t_min``).
        x_init: initial samples (default: prior draws).
        progress_bar: draw a progress bar.

    Returns:
        an array of shape ``(num_samples, *event_shape)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import VPSDE, predictor_corrector_sample
        >>> sde = VPSDE()
        >>> def score(x, t):  # data N(0, 1): p_t = N(0, 1) for every t
        ...     return -x
        >>> x = predictor_corrector_sample(jax.random.key(0), sde, score, 2000, (1,),
        ...                                num_steps=200)
        >>> round(float(x.std()), 1)
        1.0
    """
    check_key(key)
    num_samples = check_int(num_samples, "num_samples")
    if predictor not in _PREDICTORS:
        raise ValueError(f"predictor must be one of {_PREDICTORS}, got {predictor!r}.")
    if corrector not in ("langevin", None):
        raise ValueError(f"corrector must be 'langevin' or None, got {corrector!r}.")
    if predictor == "none" and corrector is None:
        raise ValueError("predictor='none' needs corrector='langevin' (else nothing moves).")
    if not snr > 0:
        raise ValueError(f"snr must be positive, got {snr}.")
    grid = time_grid(sde, num_steps, t_min)
    key_init, key_loop = jax.random.split(key)
    shape = (num_samples, *tuple(event_shape))
    x = sde.prior_sample(key_init, shape) if x_init is None else jnp.asarray(x_init)
    if x.shape != shape:
        raise ValueError(f"x_init must have shape {shape}, got {x.shape}.")

    def predict(key, x, t, t_next):
        if predictor == "euler_maruyama":
            return euler_maruyama_predictor(key, sde, score, x, t, t_next, noise_scale)
        return reverse_diffusion_predictor(key, sde, score, x, t, t_next)

    def body(x, inputs):
        key, t, t_next = inputs
        key_p, key_c = jax.random.split(key)
        if predictor != "none":
            keys = jax.random.split(key_p, num_samples)
            x = jax.vmap(predict, in_axes=(0, 0, None, None))(keys, x, t, t_next)
        if corrector == "langevin":
            x = langevin_corrector(key_c, score, x, t_next, snr, num_corrector_steps)
        return x, None

    keys = jax.random.split(key_loop, num_steps)
    x, _ = progress_scan(
        body, x, (keys, grid[:-1], grid[1:]), progress_bar=progress_bar, desc="reverse SDE"
    )
    return x
