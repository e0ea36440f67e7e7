"""Denoising score matching with optax: the loss, a pure training step and the ``fit`` driver.

For ``x_t = m(t) x_0 + s(t) eps`` the network ``eps_hat`` minimises

    E_t E_{x_0, eps} [ lambda(t) / s(t)^2 |eps_hat(x_t, t) - eps|^2 ],

the denoising form of ``E lambda |score_theta - grad log p_t|^2`` (Vincent 2011; Song et
al. 2021). ``weighting="noise"`` takes ``lambda = s^2`` (the DDPM loss);
``weighting="likelihood"`` takes ``lambda = g(t)^2``, for which the loss bounds the
negative log-likelihood (Song, Durkan, Murray & Ermon 2021). Class-conditional
training replaces each label by the null label with probability ``label_dropout``.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from probkit.models.diffusion._network import ScoreNetwork

from probkit._checks import check_int, check_key, check_seed
from probkit._repr import summary_repr
from probkit.progress import interruptible_scan
from probkit.sde import LinearSDE

__all__ = ["dsm_loss", "train_step", "fit", "FitResult"]

Weighting = Literal["noise", "likelihood"]


def dsm_loss(
    model: ScoreNetwork,
    sde: LinearSDE,
    key: jax.Array,
    x0: jax.Array,
    labels: jax.Array | None = None,
    *,
    weighting: Weighting = "noise",
    label_dropout: float = 0.0,
    t_eps: float | None = None,
) -> jax.Array:
    """Monte Carlo denoising-score-matching loss on a batch ``x0`` of shape ``(n, *event)``.

    Args:
        model: the noise-prediction network.
        sde: the forward SDE.
        key: a ``jax.random`` key (times, noise, label dropout).
        x0: a batch of data.
        labels: integer labels ``(n,)`` for a conditional network.
        weighting: ``"noise"`` or ``"likelihood"`` (see the module docstring).
        label_dropout: probability of replacing a label by the null label.
        t_eps: smallest time drawn (default ``sde.t_min``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.diffusion import ScoreNetwork, dsm_loss
        >>> from probkit.sde import VPSDE
        >>> net = ScoreNetwork((2,), key=jax.random.key(0), width=16, depth=1)
        >>> dsm_loss(net, VPSDE(), jax.random.key(1), jnp.zeros((8, 2))).shape
        ()
    """
    check_key(key)
    if weighting not in ("noise", "likelihood"):
        raise ValueError(f"weighting must be 'noise' or 'likelihood', got {weighting!r}.")
    t_eps = sde.t_min if t_eps is None else t_eps
    n = x0.shape[0]
    key_t, key_eps, key_drop = jax.random.split(key, 3)
    t = jax.random.uniform(key_t, (n,), minval=t_eps, maxval=sde.t_max)
    eps = jax.random.normal(key_eps, x0.shape, x0.dtype)
    mean_coeff, std = jax.vmap(sde.marginal)(t)
    shape = (n,) + (1,) * (x0.ndim - 1)
    x_t = mean_coeff.reshape(shape) * x0 + std.reshape(shape) * eps
    if labels is None:
        eps_hat = jax.vmap(lambda x, s: model(x, s))(x_t, t)
    else:
        drop = jax.random.bernoulli(key_drop, label_dropout, (n,))
        labels = jnp.where(drop, model.null_label, labels)
        eps_hat = jax.vmap(model)(x_t, t, labels)
    err = jnp.sum(((eps_hat - eps) ** 2).reshape(n, -1), axis=-1)
    if weighting == "likelihood":
        err = err * jax.vmap(sde.diffusion)(t) ** 2 / std**2
    return jnp.mean(err)


def train_step(
    model: ScoreNetwork,
    opt_state: optax.OptState,
    optimizer: optax.GradientTransformation,
    sde: LinearSDE,
    key: jax.Array,
    x0: jax.Array,
    labels: jax.Array | None = None,
    *,
    weighting: Weighting = "noise",
    label_dropout: float = 0.0,
) -> tuple[ScoreNetwork, optax.OptState, jax.Array]:
    """One optax step on the DSM loss of a batch; returns ``(model, opt_state, loss)``.

    Example:
        >>> import jax, jax.numpy as jnp, equinox as eqx, optax
        >>> from probkit.models.diffusion import ScoreNetwork, train_step
        >>> from probkit.sde import VPSDE
        >>> net = ScoreNetwork((2,), key=jax.random.key(0), width=16, depth=1)
        >>> opt = optax.adam(1e-3)
        >>> state = opt.init(eqx.filter(net, eqx.is_inexact_array))
        >>> net, state, loss = train_step(net, state, opt, VPSDE(), jax.random.key(1),
        ...                               jnp.zeros((8, 2)))
        >>> loss.shape
        ()
    """
    check_key(key)
    loss, grads = eqx.filter_value_and_grad(dsm_loss)(
        model, sde, key, x0, labels, weighting=weighting, label_dropout=label_dropout
    )
    updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
    return eqx.apply_updates(model, updates), opt_state, loss


class FitResult(NamedTuple):
    """A trained network and its training-loss history.

    Attributes:
        model: the trained :class:`ScoreNetwork` (moving average of the iterates).
        losses: the minibatch loss at every step, shape ``(num_steps,)``.
    """

    model: ScoreNetwork
    losses: jax.Array

    def __repr__(self) -> str:
        return summary_repr(self)


def _default_optimizer(learning_rate, num_steps: int) -> optax.GradientTransformation:
    # Built inside the compiled loop from an array learning rate: a second run with
    # another rate or new data of the same shapes compiles nothing.
    return optax.adam(optax.cosine_decay_schedule(learning_rate, num_steps, alpha=0.05))


def _fit_body(settings, data, labels, learning_rate, sde, static, carry, inputs):
    optimizer, num_steps, batch_size, weighting, label_dropout, ema_decay = settings
    if optimizer is None:
        optimizer = _default_optimizer(learning_rate, num_steps)
    params, opt_state, ema = carry
    key, step = inputs
    key_batch, key_loss = jax.random.split(key)
    idx = jax.random.randint(key_batch, (batch_size,), 0, data.shape[0])
    batch_labels = None if labels is None else labels[idx]
    model, opt_state, loss = train_step(
        eqx.combine(params, static),
        opt_state,
        optimizer,
        sde,
        key_loss,
        data[idx],
        batch_labels,
        weighting=weighting,
        label_dropout=label_dropout,
    )
    params = eqx.filter(model, eqx.is_inexact_array)
    # Warm-up of the decay, min(decay, (1 + k) / (10 + k)), so that short runs are
    # not dominated by the first iterates.
    decay = jnp.minimum(ema_decay, (1.0 + step) / (10.0 + step))
    ema = optax.incremental_update(params, ema, 1.0 - decay)
    return (params, opt_state, ema), loss


def fit(
    model: ScoreNetwork,
    sde: LinearSDE,
    data: jax.Array,
    *,
    labels: jax.Array | None = None,
    num_steps: int = 5000,
    batch_size: int = 256,
    learning_rate: float = 2e-3,
    optimizer: optax.GradientTransformation | None = None,
    weighting: Weighting = "noise",
    label_dropout: float = 0.1,
    ema_decay: float = 0.999,
    seed: int = 0,
    progress_bar: bool = False,
) -> FitResult:
    """Train a score network by denoising score matching.

    The training loop is compiled once and run in chunks of about half a second:
    Ctrl-C stops it within about a second and raises
    :class:`~probkit.progress.Interrupted`, whose ``partial_result`` is the
    :class:`FitResult` of the steps done (its ``losses`` as long as the steps done).

    Args:
        model: an initial :class:`ScoreNetwork`.
        sde: the forward SDE.
        data: training samples, shape ``(n, *model.event_shape)``.
        labels: integer class labels ``(n,)`` (needs ``model.num_classes > 0``).
        num_steps: optimiser steps.
        batch_size: minibatch size (drawn with replacement).
        learning_rate: peak rate of the default optimiser (Adam with cosine decay).
        optimizer: any optax optimiser instead of the default.
        weighting: ``"noise"`` or ``"likelihood"``.
        label_dropout: probability of the null label per example (conditional only).
        ema_decay: the returned weights are an exponential moving average of the
            iterates with this decay, warmed up as ``min(decay, (1 + k) / (10 + k))``
            at step ``k`` (0: the last iterate).
        seed: seed of the ``jax.random`` key.
        progress_bar: draw a progress bar (between chunks).

    Example:
        >>> import jax
        >>> from probkit.models.diffusion import ScoreNetwork, fit
        >>> from probkit.sde import VPSDE
        >>> data = jax.random.normal(jax.random.key(0), (256, 2))
        >>> net = ScoreNetwork((2,), key=jax.random.key(1), width=16, depth=1)
        >>> fit(net, VPSDE(), data, num_steps=10, batch_size=32).losses.shape
        (10,)
    """
    data = jnp.asarray(data)
    if data.ndim < 1 or data.shape[1:] != model.event_shape:
        raise ValueError(f"data must have shape (n, *{model.event_shape}), got {data.shape}.")
    if not np.all(np.isfinite(np.asarray(data))):
        raise ValueError("data contains NaN or infinite values.")
    if labels is not None:
        if not model.num_classes:
            raise ValueError("labels given, but the network is unconditional (num_classes=0).")
        labels = jnp.asarray(labels, jnp.int32)
        if labels.shape != data.shape[:1]:
            raise ValueError(f"labels must have shape ({data.shape[0]},), got {labels.shape}.")
        if int(labels.min()) < 0 or int(labels.max()) >= model.num_classes:
            raise ValueError(f"labels must lie in [0, {model.num_classes}).")
    num_steps = check_int(num_steps, "num_steps")
    batch_size = check_int(batch_size, "batch_size")
    seed = check_seed(seed)
    if not 0.0 <= label_dropout <= 1.0:
        raise ValueError(f"label_dropout must lie in [0, 1], got {label_dropout}.")
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must lie in [0, 1), got {ema_decay}.")
    params, static = eqx.partition(model, eqx.is_inexact_array)
    learning_rate = jnp.asarray(learning_rate, jnp.float32)
    settings = (optimizer, num_steps, batch_size, weighting, float(label_dropout), float(ema_decay))
    opt_state = (optimizer or _default_optimizer(learning_rate, num_steps)).init(params)
    # The data are array leaves of the body, not constants folded into the program.
    body = jax.tree_util.Partial(_fit_body, settings, data, labels, learning_rate, sde, static)
    keys = jax.random.split(jax.random.key(seed), num_steps)
    steps = jnp.arange(num_steps, dtype=jnp.float32)

    def result(carry, losses) -> FitResult:
        params, _, ema = carry
        return FitResult(eqx.combine(ema if ema_decay > 0 else params, static), losses)

    # The loop donates its carry: copies, so that the caller's network stays valid.
    init = jax.tree_util.tree_map(jnp.copy, (params, opt_state, params))
    carry, losses = interruptible_scan(
        body,
        init,
        (keys, steps),
        progress_bar=progress_bar,
        desc="DSM training",
        partial_result=result,
    )
    if not bool(jnp.all(jnp.isfinite(losses))):
        raise FloatingPointError(
            "the DSM loss became non-finite during training; lower learning_rate or check "
            "the data scale."
        )
    return result(carry, losses)
