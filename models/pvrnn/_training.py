"""Training a PV-RNN: network weights and per-sequence adaptive variables by the ELBO (optax)."""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from probkit.models.pvrnn._model import PVRNN, AdaptiveVariables, init_adaptive, sequence_loss

from probkit._checks import check_int, check_key
from probkit._renamed import renamed, renamed_argument
from probkit._repr import summary_repr
from probkit.progress import interruptible_scan

__all__ = ["FitResult", "fit"]


class FitResult(NamedTuple):
    """A trained PV-RNN, the training sequences' adaptive variables and the loss history.

    ``reconstruction`` and ``kl`` are per step, summed over sequences (``kl`` per layer).
    """

    model: PVRNN
    adaptive: AdaptiveVariables
    reconstruction: np.ndarray
    kl: np.ndarray

    def __repr__(self) -> str:
        return summary_repr(self)


def _loss(params, static, observations, meta_prior, key):
    net, adapt = params
    net = eqx.combine(net, static)
    keys = jax.random.split(key, observations.shape[0])
    total, (rec, kl) = jax.vmap(lambda a, k, x: sequence_loss(net, a, k, x, meta_prior))(
        adapt, keys, observations
    )
    return jnp.sum(total), (jnp.sum(rec), jnp.sum(kl, axis=0))


def _train_body(optimiser, static, observations, meta_prior, carry, key):
    # optimiser None: the default, built here so that it is part of the compiled
    # program's structure rather than a new closure per call.
    optimiser = optax.adam(1e-2) if optimiser is None else optimiser
    params, opt_state = carry
    (_, (rec, kl)), grads = jax.value_and_grad(_loss, has_aux=True)(
        params, static, observations, meta_prior, key
    )
    updates, opt_state = optimiser.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), (rec, kl)


def fit(
    key: jax.Array,
    model: PVRNN,
    observations,
    *,
    meta_prior=1.0,
    num_steps: int = 1000,
    optimizer: optax.GradientTransformation | None = None,
    adaptive: AdaptiveVariables | None = None,
    progress_bar: bool = False,
    optimiser: Any = None,
) -> FitResult:
    """Minimise ``sum_sequences (reconstruction + w KL)`` over weights and adaptive variables.

    ``observations`` has shape ``(num_sequences, T, obs_dim)``; ``meta_prior`` is ``w``
    (a scalar or one value per layer). Posterior latents are sampled (reparameterised)
    at every step. ``optimizer`` defaults to ``optax.adam(1e-2)`` (the paper uses Adam).
    ``progress_bar`` draws a bar. The loop runs in chunks of about half a second:
    Ctrl-C stops it within about a second and raises
    :class:`~probkit.progress.Interrupted`, whose ``partial_result`` is the
    :class:`FitResult` of the steps done.

    ``optimiser=`` is the old name of ``optimizer=`` (deprecated).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.pvrnn import PVRNN, fit
        >>> x = jnp.sin(jnp.linspace(0, 6, 30))[None, :, None]
        >>> result = fit(jax.random.key(0), PVRNN(jax.random.key(1), 1), x, num_steps=100)
        >>> bool(result.reconstruction[-10:].mean() < result.reconstruction[:10].mean())
        True
    """
    optimizer = renamed_argument(optimizer, optimiser, "optimiser", "optimizer", "pvrnn.fit")
    check_key(key)
    num_steps = check_int(num_steps, "num_steps")
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
    params = (eqx.filter(model, eqx.is_inexact_array), adaptive)
    static = eqx.filter(model, eqx.is_inexact_array, inverse=True)
    opt_state = (optax.adam(1e-2) if optimizer is None else optimizer).init(params)
    # The observations and meta-prior weights are array leaves of the body (not
    # constants folded into the program): new data of the same shapes compiles nothing.
    body = jax.tree_util.Partial(
        _train_body, optimizer, static, observations, jnp.asarray(meta_prior, jnp.float32)
    )

    def result(carry, history) -> FitResult:
        (net, adapt), _ = carry
        rec, kl = (np.asarray(h) for h in history)
        return FitResult(eqx.combine(net, static), adapt, rec, kl)

    # The loop donates its carry: copies, so that the caller's network stays valid.
    init = jax.tree_util.tree_map(jnp.copy, (params, opt_state))
    carry, history = interruptible_scan(
        body,
        init,
        jax.random.split(key, num_steps),
        progress_bar=progress_bar,
        desc="PV-RNN training",
        partial_result=result,
    )
    fitted = result(carry, history)
    if not np.isfinite(fitted.reconstruction[-1]):
        raise FloatingPointError("training diverged (non-finite loss): lower the learning rate.")
    return fitted


# Before the models agreed on one verb (``fit``, returning a ``FitResult``).
train = renamed(fit, "models.pvrnn.train")
TrainResult = FitResult
