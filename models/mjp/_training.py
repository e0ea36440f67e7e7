"""Synthetic prior over MJPs and observation schemes, and supervised training with optax.

The prior (after Berghaus et al., 2024, at small scale): ``K ~ U{2..max_states}``; with
probability 1/2 every jump is allowed, otherwise each off-diagonal jump independently with
probability 1/2 (at least one jump per state); rates log-uniform on
``[rate_low, rate_high]`` (``[0.01, 5]``, 2.7 orders of magnitude, by default); initial distribution
``Dirichlet(1)``; ``num_obs`` observations per path on a regular grid over ``[0, 10]`` or
(with probability 1/2) on a sorted uniform irregular grid; between ``min_paths`` and
``num_paths`` paths; label noise ``0`` with probability 1/2, else ``U(0, max_noise)``.
Snapshots are drawn exactly from ``expm(Q dt)`` (:func:`sample_snapshots`); the
initial distribution is the law of the state at the first observation time. The loss
(:func:`training_loss`) is the Gaussian NLL of the true log-rates plus the Dirichlet NLL
of the true initial distribution.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from probkit.models.mjp._network import AmortizedMJPNetwork
from probkit.models.mjp._process import MJP, rate_matrix_from_rates
from probkit.models.mjp._simulate import sample_snapshots

from probkit._checks import check_int, check_key, check_seed
from probkit._repr import summary_repr
from probkit.progress import interruptible_scan

__all__ = [
    "SyntheticBatch",
    "sample_synthetic",
    "gaussian_nll",
    "dirichlet_nll",
    "training_loss",
    "train_step",
    "fit",
    "FitResult",
]


class SyntheticBatch(NamedTuple):
    """One synthetic data set (a leading batch axis when vmapped).

    Attributes:
        times: ``(N, T)`` observation times.
        observations: ``(N, T)`` labels.
        path_mask: ``(N,)`` real paths.
        num_states: ``K``.
        adjacency: ``(max_states, max_states)`` allowed jumps (within the first ``K``).
        log_rates: ``(max_states, max_states)`` true log-rates (``-inf``-free: 0 where
            not allowed).
        label_noise: the mislabelling probability used.
        initial: ``(max_states,)`` true distribution of the state at the first
            observation time (0 on padding).
    """

    times: jax.Array
    observations: jax.Array
    path_mask: jax.Array
    num_states: jax.Array
    adjacency: jax.Array
    log_rates: jax.Array
    label_noise: jax.Array
    initial: jax.Array


def sample_synthetic(
    key: jax.Array,
    *,
    max_states: int = 6,
    num_paths: int = 300,
    min_paths: int = 50,
    num_obs: int = 50,
    horizon: float = 10.0,
    rate_low: float = 0.01,
    rate_high: float = 5.0,
    max_noise: float = 0.1,
) -> SyntheticBatch:
    """Draw one process and its noisy snapshots from the synthetic prior (module doc).

    Args:
        key: a ``jax.random`` key.
        max_states: padding size; ``K`` is uniform on ``2..max_states``.
        num_paths: padded number of paths ``N`` (static).
        min_paths: smallest number of real paths.
        num_obs: observations per path ``T`` (static).
        horizon: the observation window ``[0, horizon]``.
        rate_low: smallest rate of the log-uniform prior.
        rate_high: largest rate.
        max_noise: largest label-noise probability.

    Returns:
        A :class:`SyntheticBatch`.

    Example:
        >>> import jax
        >>> from probkit.models.mjp import sample_synthetic
        >>> batch = sample_synthetic(jax.random.key(0), num_paths=20, min_paths=5, num_obs=8)
        >>> batch.observations.shape
        (20, 8)
    """
    check_key(key)
    keys = jax.random.split(key, 10)
    k = max_states
    num_states = jax.random.randint(keys[0], (), 2, max_states + 1)
    state_mask = jnp.arange(k) < num_states
    block = state_mask[:, None] & state_mask[None, :] & ~jnp.eye(k, dtype=bool)
    sparse = jax.random.bernoulli(keys[1], 0.5, (k, k))
    # at least one allowed jump out of every state: force a ring i -> i + 1 (mod K)
    ring = jnp.arange(k)[None, :] == (jnp.arange(k)[:, None] + 1) % num_states
    sparse = sparse | ring
    full = jax.random.bernoulli(keys[2], 0.5)
    adjacency = block & jnp.where(full, True, sparse)
    log_rates = jax.random.uniform(
        keys[3], (k, k), minval=np.log(rate_low), maxval=np.log(rate_high)
    )
    log_rates = jnp.where(adjacency, log_rates, 0.0)
    rate_matrix = rate_matrix_from_rates(jnp.where(adjacency, jnp.exp(log_rates), 0.0))
    gammas = jnp.where(state_mask, jax.random.gamma(keys[4], jnp.ones(k)), 0.0)
    initial = gammas / gammas.sum()  # Dirichlet(1) on the first K states
    regular = jnp.linspace(0.0, horizon, num_obs)
    irregular = jnp.sort(jax.random.uniform(keys[5], (num_obs,), maxval=horizon))
    times = jnp.where(jax.random.bernoulli(keys[6], 0.5), regular, irregular)
    noisy = jax.random.bernoulli(keys[7], 0.5)
    label_noise = jnp.where(noisy, jax.random.uniform(keys[8], (), maxval=max_noise), 0.0)
    process = MJP(rate_matrix, initial)
    y = sample_snapshots(keys[9], process, num_paths, times, label_noise=0.0)
    # label noise within the first K states only
    kf, ks, kn = jax.random.split(jax.random.fold_in(keys[9], 1), 3)
    flip = jax.random.bernoulli(kf, label_noise, y.shape)
    shift = jax.random.randint(ks, y.shape, 1, num_states)
    y = jnp.where(flip, (y + shift) % num_states, y)
    n_real = jax.random.randint(kn, (), min_paths, num_paths + 1)
    path_mask = jnp.arange(num_paths) < n_real
    return SyntheticBatch(
        times=jnp.broadcast_to(times, (num_paths, num_obs)),  # shared grid, per path
        observations=y,
        path_mask=path_mask,
        num_states=num_states,
        adjacency=adjacency,
        log_rates=log_rates,
        label_noise=label_noise,
        initial=initial,
    )


def gaussian_nll(network: AmortizedMJPNetwork, batch: SyntheticBatch) -> jax.Array:
    """Gaussian negative log-likelihood of the true log-rates, averaged over allowed jumps.

    Args:
        network: the recognition network.
        batch: a :class:`SyntheticBatch` with a leading batch axis.

    Returns:
        The scalar loss.

    Example:
        >>> import jax
        >>> from probkit.models.mjp import AmortizedMJPNetwork, gaussian_nll, sample_synthetic
        >>> batch = jax.vmap(lambda k: sample_synthetic(k, num_paths=10, min_paths=5,
        ...                  num_obs=6))(jax.random.split(jax.random.key(0), 2))
        >>> net = AmortizedMJPNetwork(jax.random.key(1), width=8)
        >>> bool(jax.numpy.isfinite(gaussian_nll(net, batch)))
        True
    """
    return _losses(network, batch)[0]


def dirichlet_nll(network: AmortizedMJPNetwork, batch: SyntheticBatch) -> jax.Array:
    """Dirichlet negative log-density of the true initial distributions, per state.

    Args:
        network: the recognition network.
        batch: a :class:`SyntheticBatch` with a leading batch axis.

    Returns:
        The scalar loss (summed over each data set's states, divided by the total number
        of states in the batch).

    Example:
        >>> import jax
        >>> from probkit.models.mjp import AmortizedMJPNetwork, dirichlet_nll, sample_synthetic
        >>> batch = jax.vmap(lambda k: sample_synthetic(k, num_paths=10, min_paths=5,
        ...                  num_obs=6))(jax.random.split(jax.random.key(0), 2))
        >>> net = AmortizedMJPNetwork(jax.random.key(1), width=8)
        >>> bool(jax.numpy.isfinite(dirichlet_nll(net, batch)))
        True
    """
    return _losses(network, batch)[1]


def training_loss(network: AmortizedMJPNetwork, batch: SyntheticBatch) -> jax.Array:
    """The training objective: :func:`gaussian_nll` + :func:`dirichlet_nll`.

    Args:
        network: the recognition network.
        batch: a :class:`SyntheticBatch` with a leading batch axis.

    Returns:
        The scalar loss.

    Example:
        >>> import jax
        >>> from probkit.models.mjp import AmortizedMJPNetwork, sample_synthetic, training_loss
        >>> batch = jax.vmap(lambda k: sample_synthetic(k, num_paths=10, min_paths=5,
        ...                  num_obs=6))(jax.random.split(jax.random.key(0), 2))
        >>> net = AmortizedMJPNetwork(jax.random.key(1), width=8)
        >>> bool(jax.numpy.isfinite(training_loss(net, batch)))
        True
    """
    rates, initial = _losses(network, batch)
    return rates + initial


def _losses(network, batch):
    out = jax.vmap(network)(
        batch.times, batch.observations, batch.path_mask, batch.num_states, batch.adjacency
    )
    z = (batch.log_rates - out.log_rate_mean) * jnp.exp(-out.log_rate_log_sd)
    nll = 0.5 * z**2 + out.log_rate_log_sd
    w = batch.adjacency.astype(nll.dtype)
    rate_loss = jnp.sum(nll * w) / jnp.maximum(jnp.sum(w), 1.0)
    state_mask = jnp.arange(batch.initial.shape[-1]) < batch.num_states[:, None]
    alpha = jnp.where(state_mask, out.initial_concentration, 1.0)
    log_p = jnp.log(jnp.where(state_mask, batch.initial, 1.0))
    log_density = (
        jax.scipy.special.gammaln(jnp.sum(jnp.where(state_mask, alpha, 0.0), -1))
        - jnp.sum(jnp.where(state_mask, jax.scipy.special.gammaln(alpha), 0.0), -1)
        + jnp.sum(jnp.where(state_mask, (alpha - 1.0) * log_p, 0.0), -1)
    )
    initial_loss = -jnp.sum(log_density) / jnp.sum(state_mask)
    return rate_loss, initial_loss


class TrainState(NamedTuple):
    """Network, optimiser state and step counter."""

    network: AmortizedMJPNetwork
    opt_state: optax.OptState
    step: jax.Array


def train_step(
    state: TrainState,
    key: jax.Array,
    optimizer: optax.GradientTransformation,
    batch_size: int,
    **prior_options,
) -> tuple[TrainState, jax.Array]:
    """One optax step on a fresh batch of synthetic data sets.

    Args:
        state: the current :class:`TrainState`.
        key: a ``jax.random`` key for the batch.
        optimizer: the optax transformation.
        batch_size: data sets per step (static).
        **prior_options: options of :func:`sample_synthetic`.

    Returns:
        ``(new_state, loss)``.

    Example:
        >>> import jax, optax, equinox as eqx
        >>> from probkit.models.mjp import AmortizedMJPNetwork, train_step
        >>> from probkit.models.mjp._training import TrainState
        >>> net = AmortizedMJPNetwork(jax.random.key(0), width=8)
        >>> opt = optax.adam(1e-3)
        >>> state = TrainState(net, opt.init(eqx.filter(net, eqx.is_array)), 0)
        >>> _, loss = train_step(state, jax.random.key(1), opt, 2, num_paths=10, min_paths=5,
        ...                      num_obs=6)
        >>> loss.shape
        ()
    """
    check_key(key)
    keys = jax.random.split(key, batch_size)
    batch = jax.vmap(lambda k: sample_synthetic(k, **prior_options))(keys)
    loss, grads = eqx.filter_value_and_grad(training_loss)(state.network, batch)
    params = eqx.filter(state.network, eqx.is_array)
    updates, opt_state = optimizer.update(grads, state.opt_state, params)
    network = eqx.apply_updates(state.network, updates)
    return TrainState(network, opt_state, state.step + 1), loss


def _default_optimizer(learning_rate: float, num_steps: int) -> optax.GradientTransformation:
    # Built inside the compiled loop from the Python learning rate (a static of the
    # body, hashed by value), so that a second run compiles nothing.
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, max(1, num_steps // 20), num_steps, learning_rate / 20
    )
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))


def _fit_body(settings, static, carry, step_key):
    learning_rate, num_steps, batch_size, prior_options = settings
    optimizer = _default_optimizer(learning_rate, num_steps)
    params, opt_state, step = carry
    state = TrainState(eqx.combine(params, static), opt_state, step)
    state, loss = train_step(state, step_key, optimizer, batch_size, **dict(prior_options))
    return (eqx.filter(state.network, eqx.is_array), state.opt_state, state.step), loss


class FitResult(NamedTuple):
    """Output of :func:`fit`: the trained network and the loss per step."""

    network: AmortizedMJPNetwork
    losses: np.ndarray

    def __repr__(self) -> str:
        return summary_repr(self)


def fit(
    network: AmortizedMJPNetwork,
    *,
    num_steps: int = 1000,
    batch_size: int = 16,
    learning_rate: float = 2e-3,
    seed: int = 0,
    progress_bar: bool = False,
    **prior_options,
) -> FitResult:
    """Train on fresh synthetic data every step (Adam, cosine decay, gradient clipping).

    Args:
        network: the initial network.
        num_steps: optimisation steps.
        batch_size: synthetic data sets per step.
        learning_rate: peak learning rate.
        seed: seed of the data stream.
        progress_bar: show a progress bar.
        **prior_options: options of :func:`sample_synthetic`.

    Returns:
        :class:`FitResult`. The loop runs in chunks of about half a second: Ctrl-C
        stops it within about a second and raises :class:`~probkit.progress.Interrupted`,
        whose ``partial_result`` is the :class:`FitResult` of the steps done.

    Example:
        >>> import jax
        >>> from probkit.models.mjp import AmortizedMJPNetwork, fit
        >>> net = AmortizedMJPNetwork(jax.random.key(0), width=8)
        >>> fit(net, num_steps=2, batch_size=2, num_paths=10, min_paths=5, num_obs=6).losses.shape
        (2,)
    """
    check_seed(seed)
    num_steps = check_int(num_steps, "num_steps")
    batch_size = check_int(batch_size, "batch_size")
    learning_rate = float(learning_rate)
    params, static = eqx.partition(network, eqx.is_array)
    settings = (learning_rate, num_steps, batch_size, tuple(sorted(prior_options.items())))
    body = jax.tree_util.Partial(_fit_body, settings, static)
    keys = jax.random.split(jax.random.key(seed), num_steps)
    opt_state = _default_optimizer(learning_rate, num_steps).init(params)
    # The loop donates its carry: copies, so that the caller's network stays valid.
    init = jax.tree_util.tree_map(jnp.copy, (params, opt_state, jnp.zeros((), jnp.int32)))

    def result(carry, losses) -> FitResult:
        return FitResult(eqx.combine(carry[0], static), np.asarray(losses))

    carry, losses = interruptible_scan(
        body, init, keys, progress_bar=progress_bar, desc="training", partial_result=result
    )
    return result(carry, losses)
