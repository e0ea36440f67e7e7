"""Amortised forward-KL training: minimise ``E[-log q(z | prior, data)]`` over the meta-prior.

Since ``E_{prior, z, data}[-log q(z | prior, data)] = E[KL(p(z | prior, data) || q)] + const``,
this fits the posterior in the mass-covering direction without any posterior samples:
draws of ``(prior, z, data)`` from the generative process suffice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from probkit.models.distribution_transformer._network import DistributionTransformer
from probkit.models.distribution_transformer._tasks import TASKS, Query, Task

from probkit._checks import check_int, check_key
from probkit._gaussian_mixture import log_prob_from_cholesky
from probkit._renamed import renamed
from probkit._repr import summary_repr
from probkit.progress import Interrupted, interruptible_scan

__all__ = ["forward_kl_loss", "train_step", "fit", "FitResult", "init_model"]


def forward_kl_loss(model: DistributionTransformer, queries: Query) -> jax.Array:
    """Mean of ``-log q(z | prior, data)`` over a batch of :class:`Query` (leading axis).

    Args:
        model: the network.
        queries: a batch of queries (every field with a leading batch axis).

    Returns:
        The scalar loss.

    Example:
        >>> import jax
        >>> from probkit.models.distribution_transformer import (
        ...     DistributionTransformer, forward_kl_loss, linear_gaussian_task)
        >>> task = linear_gaussian_task(1)
        >>> batch = jax.vmap(task.sample_query)(jax.random.split(jax.random.key(0), 4))
        >>> net = DistributionTransformer(1, task.data_feature_dim, key=jax.random.key(1), width=16)
        >>> forward_kl_loss(net, batch).shape
        ()
    """

    return _objective(model, queries, 0.0)[1]


def _objective(model: DistributionTransformer, queries: Query, residual_decay):
    """``(forward KL + residual_decay * mean |residuals|^2, forward KL)``."""

    def one(q: Query):
        log_w, means, chol, residuals = model.with_residuals(
            q.log_weights,
            q.means,
            q.cholesky,
            q.component_mask,
            q.data_features,
            q.data_mask,
            q.parametric,
        )
        return -log_prob_from_cholesky(log_w, means, chol, q.latent), jnp.sum(residuals**2)

    nll, penalty = jax.vmap(one)(queries)
    loss = jnp.mean(nll)
    return loss + residual_decay * jnp.mean(penalty), loss


def train_step(
    model: DistributionTransformer,
    opt_state: optax.OptState,
    optimizer: optax.GradientTransformation,
    queries: Query,
    residual_decay: float | jax.Array = 0.0,
) -> tuple[DistributionTransformer, optax.OptState, jax.Array]:
    """One optax step on :func:`forward_kl_loss`; returns ``(model, opt_state, loss)``.

    With ``residual_decay > 0`` the step minimises ``forward_kl_loss + residual_decay *
    E[sum_k |residuals_k|^2]`` (the residual head's outputs, see
    ``DistributionTransformer.with_residuals``): a pull of the residuals towards zero, so
    that what the Gaussian sites can express is expressed by them. (Without it the 2-D
    linear-Gaussian network settled on sites ~30% too sharp, widened again by the head:
    accurate on one query, but the bias compounds in sequential inference.)

    Args:
        model: the network.
        opt_state: the optimiser state.
        optimizer: an optax optimiser.
        queries: a batch of queries.
        residual_decay: weight of the residual penalty in the minimised objective.

    Returns:
        The updated network, optimiser state and the batch loss.

    Example:
        >>> import jax, equinox as eqx, optax
        >>> from probkit.models.distribution_transformer import (
        ...     DistributionTransformer, linear_gaussian_task, train_step)
        >>> task = linear_gaussian_task(1)
        >>> batch = jax.vmap(task.sample_query)(jax.random.split(jax.random.key(0), 4))
        >>> net = DistributionTransformer(1, task.data_feature_dim, key=jax.random.key(1), width=16)
        >>> opt = optax.adam(1e-3)
        >>> state = opt.init(eqx.filter(net, eqx.is_inexact_array))
        >>> net, state, loss = train_step(net, state, opt, batch)
        >>> loss.shape
        ()
    """
    (_, loss), grads = eqx.filter_value_and_grad(_objective, has_aux=True)(
        model, queries, residual_decay
    )
    params = eqx.filter(model, eqx.is_inexact_array)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(model, updates), opt_state, loss


class FitResult(NamedTuple):
    """A trained network and its loss history.

    Attributes:
        model: the trained :class:`DistributionTransformer`.
        losses: the minibatch loss at every step, shape ``(num_steps,)``.
    """

    model: DistributionTransformer
    losses: jax.Array

    def __repr__(self) -> str:
        return summary_repr(self)


def init_model(
    task: Task,
    *,
    key: jax.Array,
    width: int = 64,
    depth: int = 2,
    num_heads: int = 4,
    sites: bool = True,
) -> DistributionTransformer:
    """A fresh (untrained: identity map on the prior) network sized for ``task``.

    Args:
        task: the task.
        key: a ``jax.random`` key for the initial weights.
        width: token width.
        depth: number of attention layers.
        num_heads: attention heads.
        sites: include the Gaussian-site head (see :class:`DistributionTransformer`);
            with it, a task with raw site inputs (``task.site_input_dim > 0``) gets the
            pseudo-observation site head.

    Returns:
        The network.

    Example:
        >>> import jax
        >>> from probkit.models.distribution_transformer import init_model, linear_gaussian_task
        >>> init_model(linear_gaussian_task(2), key=jax.random.key(0), width=16).latent_dim
        2
    """
    check_key(key)
    return DistributionTransformer(
        task.latent_dim,
        task.data_feature_dim,
        key=key,
        max_components=task.ranges.max_components,
        width=width,
        depth=depth,
        num_heads=num_heads,
        sites=sites,
        site_inputs=task.site_input_dim if sites else 0,
        site_rank=task.site_rank if sites and task.site_input_dim else None,
    )


class _TrainBody(eqx.Module):
    """The scan body of :func:`train`: one fresh batch, one optimiser step.

    A Module of static fields, so that the chunked loop's compiled program is found
    again (by value) by a second :func:`train` with the same task, network shape,
    optimiser and sizes.
    """

    static: DistributionTransformer  # the network's non-array parts
    task_sample: Callable = eqx.field(static=True)
    optimizer: optax.GradientTransformation = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    residual_decay: float = eqx.field(static=True)

    def __call__(self, carry, key):
        params, opt_state = carry
        queries = jax.vmap(self.task_sample)(jax.random.split(key, self.batch_size))
        model = eqx.combine(params, self.static)
        model, opt_state, loss = train_step(
            model, opt_state, self.optimizer, queries, self.residual_decay
        )
        return (eqx.filter(model, eqx.is_inexact_array), opt_state), loss


@functools.lru_cache(maxsize=16)
def _default_optimizer(learning_rate: float, num_steps: int) -> optax.GradientTransformation:
    """Adam-W with warm-up + cosine decay and clipping (cached: the same object for the
    same settings, so that a second run compiles nothing)."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, min(200, num_steps // 10 + 1), num_steps, learning_rate * 0.02
    )
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=1e-4))


def fit(
    task: Task | str,
    *,
    model: DistributionTransformer | None = None,
    num_steps: int = 4000,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    optimizer: optax.GradientTransformation | None = None,
    width: int = 64,
    depth: int = 2,
    num_heads: int = 4,
    residual_decay: float = 0.0,
    seed: int = 0,
    progress_bar: bool = False,
) -> FitResult:
    """Train a Distribution Transformer on a task by amortised forward KL.

    Every step draws a fresh batch ``(prior, z, data)`` from ``task.sample_query`` (so
    there is no fixed training set) and takes one optax step. The steps run as one
    compiled loop, from the host in chunks of about half a second
    (:func:`probkit.progress.interruptible_scan`), so that Ctrl-C stops it and keeps the
    steps done; the result equals one ``lax.scan`` over all steps.

    Args:
        task: a :class:`Task` or the name of a shipped one (see ``TASKS``).
        model: a network to continue training (default: a fresh one from :func:`init_model`).
        num_steps: optimiser steps.
        batch_size: queries per step.
        learning_rate: peak rate of the default optimiser (Adam, cosine decay, clipping).
        optimizer: any optax optimiser instead of the default.
        width: token width of a fresh network.
        depth: attention layers of a fresh network.
        num_heads: attention heads of a fresh network.
        residual_decay: weight of the pull of the residual head's outputs towards zero
            (see :func:`train_step`); the reported losses exclude it.
        seed: seed of the ``jax.random`` key.
        progress_bar: draw a progress bar.

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: for an unknown task name, non-positive sizes, a ``seed`` that is not
            an int ``>= 0`` or a negative ``residual_decay``.
        FloatingPointError: if the loss becomes non-finite.
        probkit.progress.Interrupted: on Ctrl-C, within about a second (the loop runs
            from the host in chunks); its ``partial_result`` is the :class:`FitResult`
            of the steps done (the network after them and their losses).

    Example:
        >>> from probkit.models.distribution_transformer import fit
        >>> result = fit("linear_gaussian_1d", num_steps=5, batch_size=8, width=16)
        >>> result.losses.shape
        (5,)
    """
    if isinstance(task, str):
        if task not in TASKS:
            raise ValueError(
                f"unknown task {task!r}; choose one of {sorted(TASKS)} or pass a Task."
            )
        task = TASKS[task]
    num_steps = check_int(num_steps, "num_steps")
    batch_size = check_int(batch_size, "batch_size")
    seed = check_int(seed, "seed", minimum=0)
    if not residual_decay >= 0.0:
        raise ValueError(f"residual_decay must be >= 0, got {residual_decay!r}.")
    key_init, key_train = jax.random.split(jax.random.key(seed))
    if model is None:
        model = init_model(task, key=key_init, width=width, depth=depth, num_heads=num_heads)
    elif model.latent_dim != task.latent_dim or model.data_feature_dim != task.data_feature_dim:
        raise ValueError(
            f"model (latent_dim={model.latent_dim}, data_feature_dim={model.data_feature_dim}) "
            f"does not fit task {task.name!r} (latent_dim={task.latent_dim}, "
            f"data_feature_dim={task.data_feature_dim})."
        )
    if optimizer is None:
        optimizer = _default_optimizer(float(learning_rate), num_steps)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    # The loop donates its carry: copy, so that a model passed in stays usable.
    init = jax.tree_util.tree_map(jnp.copy, (params, optimizer.init(params)))
    body = _TrainBody(static, task.sample_query, optimizer, batch_size, float(residual_decay))
    try:
        (params, _), losses = interruptible_scan(
            body,
            init,
            jax.random.split(key_train, num_steps),
            progress_bar=bool(progress_bar),
            desc="DT training",
        )
    except Interrupted as stopped:
        done = stopped.steps_done
        err = Interrupted(
            f"Distribution Transformer training interrupted after {done} of {num_steps} "
            "steps: this exception's partial_result is the FitResult of those steps (the "
            "network after them and their losses).",
            steps_done=done,
            carry=stopped.carry,
            ys=stopped.ys,
        )
        err.partial_result = FitResult(eqx.combine(stopped.carry[0], static), stopped.ys)
        raise err from None
    model = eqx.combine(params, static)
    if not bool(jnp.all(jnp.isfinite(losses))):
        raise FloatingPointError(
            "the forward-KL loss became non-finite during training; lower learning_rate."
        )
    return FitResult(model, losses)


# Before the models agreed on one verb (``fit``, returning a ``FitResult``).
train = renamed(fit, "models.distribution_transformer.train")
TrainResult = FitResult
