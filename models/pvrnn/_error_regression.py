"""Online recognition by error regression over a sliding window (Ahmadi and Tani, 2019).

At every time ``t`` the network has seen ``x_0..x_{t-1}``. The adaptive variables of the
last ``window`` steps are optimised (Adam, network weights fixed) to minimise the
window's ``reconstruction + w KL``, starting from the internal state the previous
windows left at the window's first step; the prediction of ``x_t`` is the output of one
more step with the prior mean. Then the window slides by one: its first step's
optimised posterior mean moves the carried state forward, and a new step (adaptive
variables at zero, i.e. the posterior ``N(0, 1)``) enters at the end.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from probkit.models.pvrnn._model import (
    PVRNN,
    AdaptiveVariables,
    generate,
    initial_state,
    rollout,
    sequence_loss,
)

from probkit._repr import summary_repr

__all__ = ["RecognitionResult", "error_regression"]


class RecognitionResult(NamedTuple):
    """Error regression over a sequence; arrays cover times ``window..T-1`` (leading axis).

    Attributes:
        times: the predicted time indices ``t``.
        predictions: one-step-ahead predictions of ``x_t`` from ``x_0..x_{t-1}``.
        reconstructions: the posterior output at ``t - 1`` (last step of the window).
        prior_std: the prior's latent std at ``t`` (the network's expected noise level).
        posterior_mean: the posterior latent mean at ``t - 1``.
        window_loss: the window's final ``reconstruction + w KL``.
    """

    times: np.ndarray
    predictions: jax.Array
    reconstructions: jax.Array
    prior_std: jax.Array
    posterior_mean: jax.Array
    window_loss: jax.Array

    def __repr__(self) -> str:
        return summary_repr(self)


def error_regression(
    model: PVRNN,
    observations,
    *,
    window: int = 10,
    num_iterations: int = 50,
    learning_rate: float = 0.1,
    meta_prior=1.0,
) -> RecognitionResult:
    """Online recognition and one-step prediction of ONE sequence ``(T, obs_dim)``.

    Deterministic: latents are the posterior means during the regression (the
    optimisation then has no sampling noise). Jitted as one ``lax.scan`` over time.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.pvrnn import PVRNN, error_regression
        >>> net = PVRNN(jax.random.key(0), 1)
        >>> x = jnp.sin(jnp.linspace(0, 6, 20))[:, None]
        >>> error_regression(net, x, window=5, num_iterations=3).predictions.shape
        (15, 1)
    """
    observations = jnp.asarray(observations, jnp.float32)
    if observations.ndim != 2 or observations.shape[1] != model.obs_dim:
        raise ValueError(
            f"observations must have shape (T, obs_dim={model.obs_dim}), got {observations.shape}."
        )
    num_time = observations.shape[0]
    if not isinstance(window, int) or not 1 <= window < num_time:
        raise ValueError(f"window must be an int in [1, T={num_time}), got {window!r}.")
    if not isinstance(num_iterations, int) or num_iterations < 1:
        raise ValueError(f"num_iterations must be a positive int, got {num_iterations!r}.")
    preds, recons, prior_std, post_mean, losses = _run(
        model, observations, window, num_iterations, float(learning_rate), meta_prior
    )
    return RecognitionResult(
        np.arange(window, num_time), preds, recons, prior_std, post_mean, losses
    )


@eqx.filter_jit
def _run(model, observations, window, num_iterations, learning_rate, meta_prior):
    optimiser = optax.adam(learning_rate)
    z = model.total_z

    def one_time(carry, t):
        state, adaptive = carry
        start = t - window
        target = jax.lax.dynamic_slice_in_dim(observations, start, window)
        loss = lambda a: sequence_loss(model, a, None, target, meta_prior, state, start)[0]

        def iterate(inner, _):
            a, opt_state = inner
            value, grads = jax.value_and_grad(loss)(a)
            updates, opt_state = optimiser.update(grads, opt_state, a)
            return (optax.apply_updates(a, updates), opt_state), value

        (adaptive, _), values = jax.lax.scan(
            iterate, (adaptive, optimiser.init(adaptive)), None, length=num_iterations
        )
        out = rollout(model, adaptive, None, state, start)
        ahead = generate(model, 1, None, out.final_state, t)
        # Slide: the window's first step (posterior mean) moves the carried state on.
        first = AdaptiveVariables(adaptive.mean[:1], adaptive.log_std[:1])
        next_state = rollout(model, first, None, state, start).final_state
        shifted = AdaptiveVariables(
            jnp.concatenate([adaptive.mean[1:], jnp.zeros((1, z))]),
            jnp.concatenate([adaptive.log_std[1:], jnp.zeros((1, z))]),
        )
        record = (
            ahead.outputs[0],
            out.outputs[-1],
            ahead.prior_std[0],
            out.posterior_mean[-1],
            loss(adaptive),
        )
        return (next_state, shifted), record

    zeros = jnp.zeros((window, z))
    carry = (initial_state(model), AdaptiveVariables(zeros, zeros))
    return jax.lax.scan(one_time, carry, jnp.arange(window, observations.shape[0]))[1]
