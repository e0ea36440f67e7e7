"""Training a PV-RNN: network weights and per-sequence adaptive variables by the ELBO (optax)."""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from probkit.models.pvrnn._model import PVRNN, AdaptiveVariables, init_adaptive, sequence_loss

__all__ = ["TrainResult", "train"]


class TrainResult(NamedTuple):
    """A trained PV-RNN, the training sequences' adaptive variables and the loss history.

    ``reconstruction`` and ``kl`` are per step, summed over sequences (``kl`` per layer).
    """

    model: PVRNN
    adaptive: AdaptiveVariables
    reconstruction: np.ndarray
    kl: np.ndarray


def train(
    key: jax.Array,
    model: PVRNN,
    observations,
    *,
    meta_prior=1.0,
    num_steps: int = 1000,
    optimiser: optax.GradientTransformation | None = None,
    adaptive: AdaptiveVariables | None = None,
) -> TrainResult:
    """Minimise ``sum_sequences (reconstruction + w KL)`` over weights and adaptive variables.

    ``observations`` has shape ``(num_sequences, T, obs_dim)``; ``meta_prior`` is ``w``
    (a scalar or one value per layer). Posterior latents are sampled (reparameterised)
    at every step. ``optimiser`` defaults to ``optax.adam(1e-2)`` (the paper uses Adam).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.pvrnn import PVRNN, train
        >>> x = jnp.sin(jnp.linspace(0, 6, 30))[None, :, None]
        >>> fit = train(jax.random.key(0), PVRNN(jax.random.key(1), 1), x, num_steps=100)
        >>> bool(fit.reconstruction[-10:].mean() < fit.reconstruction[:10].mean())
        True
    """
    observations = jnp.asarray(observations, jnp.float32)
    if observations.ndim != 3 or observations.shape[-1] != model.obs_dim:
        raise ValueError(
            f"observations must have shape (num_sequences, T, obs_dim={model.obs_dim}), "
            f"got {observations.shape}."
        )
    if not np.all(np.isfinite(np.asarray(observations))):
        raise ValueError("observations contain NaN or inf.")
    weights = np.broadcast_to(np.asarray(meta_prior, np.float64), (model.num_layers,))
    if np.any(weights < 0):
        raise ValueError(f"meta_prior must be non-negative, got {meta_prior}.")
    num_sequences, num_time = observations.shape[:2]
    if adaptive is None:
        adaptive = init_adaptive(model, num_time, num_sequences)
    optimiser = optax.adam(1e-2) if optimiser is None else optimiser
    params = (eqx.filter(model, eqx.is_inexact_array), adaptive)
    static = eqx.filter(model, eqx.is_inexact_array, inverse=True)

    def loss(params, key):
        net, adapt = params
        net = eqx.combine(net, static)
        keys = jax.random.split(key, num_sequences)
        total, (rec, kl) = jax.vmap(lambda a, k, x: sequence_loss(net, a, k, x, meta_prior))(
            adapt, keys, observations
        )
        return jnp.sum(total), (jnp.sum(rec), jnp.sum(kl, axis=0))

    def step(carry, key):
        params, opt_state = carry
        (_, (rec, kl)), grads = jax.value_and_grad(loss, has_aux=True)(params, key)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), (rec, kl)

    @eqx.filter_jit
    def run(params, opt_state, keys):
        return jax.lax.scan(step, (params, opt_state), keys)

    (params, _), (rec, kl) = run(params, optimiser.init(params), jax.random.split(key, num_steps))
    rec, kl = np.asarray(rec), np.asarray(kl)
    if not np.isfinite(rec[-1]):
        raise FloatingPointError("training diverged (non-finite loss): lower the learning rate.")
    net, adapt = params
    return TrainResult(eqx.combine(net, static), adapt, rec, kl)
