"""Training a :class:`Denoiser` with optax: one compiled loop over minibatches, run in chunks."""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from probkit.models.masked_diffusion._losses import time_agnostic_loss, time_conditioned_loss
from probkit.models.masked_diffusion._network import Denoiser
from probkit.models.masked_diffusion._schedules import MaskingSchedule, get_schedule

from probkit._checks import check_int, check_key, check_seed
from probkit._repr import summary_repr
from probkit.progress import interruptible_scan

__all__ = ["FitResult", "fit", "train_step"]


class FitResult(NamedTuple):
    """A trained denoiser and its minibatch losses.

    Attributes:
        model: the trained :class:`Denoiser` (moving average of the iterates).
        losses: the minibatch loss (negative ELBO estimate, nats per sequence) per step.
    """

    model: Denoiser
    losses: jax.Array

    def __repr__(self) -> str:
        return summary_repr(self)


def _loss(model, key, x0, loss, schedule):
    if loss == "time_agnostic":
        return time_agnostic_loss(model, key, x0, model.vocab_size)
    return time_conditioned_loss(model, key, x0, model.vocab_size, schedule)


def train_step(
    model: Denoiser,
    opt_state: optax.OptState,
    optimizer: optax.GradientTransformation,
    key: jax.Array,
    x0: jax.Array,
    *,
    loss: str = "time_agnostic",
    schedule: str | MaskingSchedule = "linear",
) -> tuple[Denoiser, optax.OptState, jax.Array]:
    """One optax step on a batch ``x0 (n, L)``; returns ``(model, opt_state, loss)``.

    Example:
        >>> import jax, jax.numpy as jnp, equinox as eqx, optax
        >>> from probkit.models.masked_diffusion import Denoiser, train_step
        >>> net = Denoiser(3, 4, key=jax.random.key(0), width=16, depth=1, num_heads=2)
        >>> opt = optax.adam(1e-3)
        >>> state = opt.init(eqx.filter(net, eqx.is_inexact_array))
        >>> net, state, value = train_step(net, state, opt, jax.random.key(1),
        ...                                jnp.zeros((8, 4), int))
        >>> value.shape
        ()
    """
    check_key(key)
    schedule = get_schedule(schedule)
    value, grads = eqx.filter_value_and_grad(_loss)(model, key, x0, loss, schedule)
    updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
    return eqx.apply_updates(model, updates), opt_state, value


def _default_optimizer(learning_rate: float, num_steps: int) -> optax.GradientTransformation:
    # Built inside the compiled loop from the Python learning rate (a static of the
    # body, hashed by value): a second run with new data of the same shapes compiles
    # nothing. (optax's warm-up schedule branches on its peak in Python, so the rate
    # cannot be an array leaf without changing its rounding.)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, min(200, num_steps // 10 + 1), num_steps, learning_rate * 0.05
    )
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, 1e-4))


def _fit_body(settings, data, schedule, static, carry, inputs):
    optimizer, learning_rate, num_steps, batch_size, loss, ema_decay = settings
    if optimizer is None:
        optimizer = _default_optimizer(learning_rate, num_steps)
    params, opt_state, ema = carry
    key, step = inputs
    key_batch, key_loss = jax.random.split(key)
    idx = jax.random.randint(key_batch, (batch_size,), 0, data.shape[0])
    model, opt_state, value = train_step(
        eqx.combine(params, static),
        opt_state,
        optimizer,
        key_loss,
        data[idx],
        loss=loss,
        schedule=schedule,
    )
    params = eqx.filter(model, eqx.is_inexact_array)
    decay = jnp.minimum(ema_decay, (1.0 + step) / (10.0 + step))
    ema = optax.incremental_update(params, ema, 1.0 - decay)
    return (params, opt_state, ema), value


def fit(
    model: Denoiser,
    data: jax.Array,
    *,
    num_steps: int = 3000,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    optimizer: optax.GradientTransformation | None = None,
    loss: str = "time_agnostic",
    schedule: str | MaskingSchedule = "linear",
    ema_decay: float = 0.999,
    seed: int = 0,
    progress_bar: bool = False,
) -> FitResult:
    """Train a denoiser on token sequences ``data (n, L)`` by the negative ELBO.

    The loop runs in chunks of about half a second: Ctrl-C stops it within about a
    second and raises :class:`~probkit.progress.Interrupted`, whose ``partial_result``
    is the :class:`FitResult` of the steps done.

    Args:
        model: an initial :class:`Denoiser`.
        data: int array of clean sequences, values in ``[0, model.vocab_size)``.
        num_steps: optimiser steps.
        batch_size: minibatch size (drawn with replacement).
        learning_rate: peak rate of the default optimiser (Adam-W, warm-up and cosine
            decay, global-norm clipping at 1).
        optimizer: any optax optimiser instead.
        loss: ``"time_agnostic"`` (default, lower variance) or ``"time_conditioned"``.
        schedule: the masking schedule of the time-conditioned loss.
        ema_decay: the returned weights are a moving average with this decay (0: last
            iterate).
        seed: seed of the ``jax.random`` key.
        progress_bar: draw a progress bar (between chunks).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.masked_diffusion import Denoiser, fit
        >>> net = Denoiser(3, 4, key=jax.random.key(0), width=16, depth=1, num_heads=2)
        >>> fit(net, jnp.zeros((64, 4), int), num_steps=5, batch_size=8).losses.shape
        (5,)
    """
    data = jnp.asarray(data)
    if data.ndim != 2 or data.shape[1] != model.length:
        raise ValueError(f"data must have shape (n, {model.length}), got {data.shape}.")
    if not jnp.issubdtype(data.dtype, jnp.integer):
        raise ValueError(f"data must hold integer token ids, got dtype {data.dtype}.")
    lo, hi = int(np.min(np.asarray(data))), int(np.max(np.asarray(data)))
    if lo < 0 or hi >= model.vocab_size:
        raise ValueError(
            f"data tokens must lie in [0, {model.vocab_size}) (no mask tokens); found [{lo}, {hi}]."
        )
    if loss not in ("time_agnostic", "time_conditioned"):
        raise ValueError(f"loss must be 'time_agnostic' or 'time_conditioned', got {loss!r}.")
    num_steps = check_int(num_steps, "num_steps")
    batch_size = check_int(batch_size, "batch_size")
    seed = check_seed(seed)
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must lie in [0, 1), got {ema_decay}.")
    params, static = eqx.partition(model, eqx.is_inexact_array)
    learning_rate = float(learning_rate)
    settings = (optimizer, learning_rate, num_steps, batch_size, loss, float(ema_decay))
    opt_state = (optimizer or _default_optimizer(learning_rate, num_steps)).init(params)
    # The data are array leaves of the body, not constants folded into the program.
    body = jax.tree_util.Partial(
        _fit_body, settings, data.astype(jnp.int32), get_schedule(schedule), static
    )
    keys = jax.random.split(jax.random.key(seed), num_steps)
    steps = jnp.arange(num_steps, dtype=jnp.float32)

    def result(carry, losses) -> FitResult:
        params, _, ema = carry
        return FitResult(eqx.combine(ema if ema_decay > 0 else params, static), losses)

    # The loop donates its carry: copies, so that the caller's network stays valid.
    init = jax.tree_util.tree_map(jnp.copy, (params, opt_state, params))
    carry, losses = interruptible_scan(
        body, init, (keys, steps), progress_bar=progress_bar, desc="training", partial_result=result
    )
    if not bool(jnp.all(jnp.isfinite(losses))):
        raise FloatingPointError("the loss became non-finite during training; lower learning_rate.")
    return result(carry, losses)
