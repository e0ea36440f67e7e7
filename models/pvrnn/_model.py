"""The PV-RNN generative model (Ahmadi and Tani, Neural Computation 2019).

Each layer ``l`` (0 = bottom, fastest) has deterministic MTRNN units with time
constant ``tau_l`` and stochastic latents ``z``:

``h_t = (1 - 1/tau) h_{t-1} + (W_dd d_{t-1} + W_zd z_t + W_top d_t^{l+1} + c) / tau``,
``d_t = tanh(h_t)``;

prior ``p(z_t | d_{t-1}) = N(tanh(W_mu d_{t-1} + b_mu), exp(W_sigma d_{t-1} + b_sigma))``
(unit Gaussian at ``t = 0``), posterior ``q(z_t) = N(tanh(A_mu_t), exp(A_sigma_t))`` with
*adaptive variables* ``A`` -- free parameters per sequence and time step, learned with
the network. The top layer is updated first, so lower layers see ``d_t^{l+1}`` of the
same step. Output: ``x_t = W_out d_t^0 + b_out`` with Gaussian noise of fixed scale.

The loss of one sequence is ``sum_t |x_t - xhat_t|^2 / (2 s^2) + sum_l w_l KL_l``, the
negative ELBO with the KL weighted by the *meta-prior* ``w``.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_key

__all__ = [
    "PVRNN",
    "AdaptiveVariables",
    "Rollout",
    "init_adaptive",
    "initial_state",
    "rollout",
    "generate",
    "sequence_loss",
]


def _dense(key, rows: int, cols: int) -> jax.Array:
    return jax.random.normal(key, (rows, cols)) / np.sqrt(max(cols, 1))


class _Layer(eqx.Module):
    w_dd: jax.Array
    w_zd: jax.Array
    w_top: jax.Array
    bias: jax.Array
    w_mu: jax.Array
    b_mu: jax.Array
    w_sigma: jax.Array
    b_sigma: jax.Array
    tau: float = eqx.field(static=True)


class PVRNN(eqx.Module):
    """A PV-RNN: MTRNN layers with learned-prior latents and a linear Gaussian output.

    Args:
        key: initialisation key.
        obs_dim: dimension of an observation.
        num_d: deterministic units per layer, bottom first.
        num_z: latent units per layer.
        tau: time constants per layer (larger = slower).
        output_std: the output noise scale ``s`` (fixed, as in the paper's squared error).

    Example:
        >>> import jax
        >>> from probkit.models.pvrnn import PVRNN
        >>> net = PVRNN(jax.random.key(0), 1, num_d=(16, 8), num_z=(2, 1), tau=(2.0, 8.0))
        >>> net.num_layers, net.total_z
        (2, 3)
    """

    layers: tuple
    w_out: jax.Array
    b_out: jax.Array
    output_std: float = eqx.field(static=True)

    def __init__(
        self,
        key: jax.Array,
        obs_dim: int,
        num_d: tuple[int, ...] = (20,),
        num_z: tuple[int, ...] = (2,),
        tau: tuple[float, ...] = (2.0,),
        output_std: float = 0.1,
    ):
        if not (len(num_d) == len(num_z) == len(tau)) or len(num_d) == 0:
            raise ValueError(
                f"num_d, num_z and tau need one entry per layer, got {num_d}, {num_z}, {tau}."
            )
        if any(t < 1 for t in tau):
            raise ValueError(f"every time constant tau must be >= 1, got {tau}.")
        if not output_std > 0:
            raise ValueError(f"output_std must be positive, got {output_std}.")
        layers = []
        keys = jax.random.split(key, len(num_d) + 1)
        for index, (nd, nz, t) in enumerate(zip(num_d, num_z, tau, strict=True)):
            k = jax.random.split(keys[index], 5)
            above = num_d[index + 1] if index + 1 < len(num_d) else 0
            layers.append(
                _Layer(
                    w_dd=_dense(k[0], nd, nd),
                    w_zd=_dense(k[1], nd, nz),
                    w_top=_dense(k[2], nd, above),
                    bias=jnp.zeros(nd),
                    w_mu=0.1 * _dense(k[3], nz, nd),
                    b_mu=jnp.zeros(nz),
                    w_sigma=0.1 * _dense(k[4], nz, nd),
                    b_sigma=jnp.zeros(nz),
                    tau=float(t),
                )
            )
        self.layers = tuple(layers)
        self.w_out = _dense(keys[-1], obs_dim, num_d[0])
        self.b_out = jnp.zeros(obs_dim)
        self.output_std = float(output_std)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_z(self) -> tuple[int, ...]:
        return tuple(layer.w_zd.shape[1] for layer in self.layers)

    @property
    def total_z(self) -> int:
        return sum(self.num_z)

    @property
    def obs_dim(self) -> int:
        return self.w_out.shape[0]


class AdaptiveVariables(NamedTuple):
    """Posterior parameters ``A`` of one or more sequences: ``(..., T, total_z)`` each."""

    mean: jax.Array
    log_std: jax.Array


class Rollout(NamedTuple):
    """One pass through a sequence (leading axis: time)."""

    outputs: jax.Array  # (T, obs_dim)
    prior_mean: jax.Array  # (T, total_z)
    prior_std: jax.Array
    posterior_mean: jax.Array
    posterior_std: jax.Array
    kl: jax.Array  # (T, num_layers)
    states: tuple  # per layer: h (T, num_d)
    final_state: tuple  # per layer: h at the last step


def init_adaptive(
    model: PVRNN, num_steps: int, num_sequences: int | None = None
) -> AdaptiveVariables:
    """Adaptive variables at zero: posterior ``N(0, 1)`` at every step.

    Example:
        >>> import jax
        >>> from probkit.models.pvrnn import PVRNN, init_adaptive
        >>> init_adaptive(PVRNN(jax.random.key(0), 1), 50, 4).mean.shape
        (4, 50, 2)
    """
    shape = (
        (num_steps, model.total_z)
        if num_sequences is None
        else (num_sequences, num_steps, model.total_z)
    )
    return AdaptiveVariables(jnp.zeros(shape), jnp.zeros(shape))


def initial_state(model: PVRNN) -> tuple:
    """The internal state before the first step: ``h = 0`` in every layer."""
    return tuple(jnp.zeros(layer.w_dd.shape[0]) for layer in model.layers)


def _split(values: jax.Array, sizes: tuple[int, ...]) -> list[jax.Array]:
    return jnp.split(values, np.cumsum(sizes)[:-1], axis=-1)


def _kl(mq, sq, mp, sp):
    return jnp.sum(jnp.log(sp / sq) + (sq**2 + (mq - mp) ** 2) / (2 * sp**2) - 0.5)


def _step(model: PVRNN, state, t, z_source, noise):
    """One time step. ``z_source(l, prior_mean, prior_std) -> (z, q_mean, q_std)``."""
    new_state = [None] * model.num_layers
    pm_all, ps_all, qm_all, qs_all, kls = [], [], [], [], []
    noise_layers = _split(noise, model.num_z)
    above = None
    for index in reversed(range(model.num_layers)):
        layer = model.layers[index]
        h_prev = state[index]
        d_prev = jnp.tanh(h_prev)
        first = t == 0
        prior_mean = jnp.where(first, 0.0, jnp.tanh(layer.w_mu @ d_prev + layer.b_mu))
        prior_std = jnp.where(first, 1.0, jnp.exp(layer.w_sigma @ d_prev + layer.b_sigma))
        z, q_mean, q_std = z_source(index, prior_mean, prior_std, noise_layers[index])
        top = layer.w_top @ above if above is not None else 0.0
        drive = layer.w_dd @ d_prev + layer.w_zd @ z + top + layer.bias
        h = (1 - 1 / layer.tau) * h_prev + drive / layer.tau
        new_state[index] = h
        above = jnp.tanh(h)
        pm_all.insert(0, prior_mean)
        ps_all.insert(0, prior_std)
        qm_all.insert(0, q_mean)
        qs_all.insert(0, q_std)
        kls.insert(0, _kl(q_mean, q_std, prior_mean, prior_std))
    output = model.w_out @ jnp.tanh(new_state[0]) + model.b_out
    info = (
        output,
        jnp.concatenate(pm_all),
        jnp.concatenate(ps_all),
        jnp.concatenate(qm_all),
        jnp.concatenate(qs_all),
        jnp.stack(kls),
    )
    return tuple(new_state), info


def rollout(
    model: PVRNN,
    adaptive: AdaptiveVariables,
    key: jax.Array | None = None,
    state: tuple | None = None,
    start: int | jax.Array = 0,
) -> Rollout:
    """Run the network through ``T`` steps with posterior latents ``z ~ q`` (one sequence).

    ``key=None`` uses the posterior means instead of samples. ``start`` is the global
    index of the first step (the unit-Gaussian prior applies at global step 0 only) and
    ``state`` the internal state before it.

    Example:
        >>> import jax
        >>> from probkit.models.pvrnn import PVRNN, init_adaptive, rollout
        >>> net = PVRNN(jax.random.key(0), 1)
        >>> rollout(net, init_adaptive(net, 10), jax.random.key(1)).outputs.shape
        (10, 1)
    """
    if key is not None:
        check_key(key)
    state = initial_state(model) if state is None else state
    num_steps = adaptive.mean.shape[0]
    if key is None:
        noise = jnp.zeros((num_steps, model.total_z))
    else:
        noise = jax.random.normal(key, (num_steps, model.total_z))
    means = _split(jnp.tanh(adaptive.mean), model.num_z)
    stds = _split(jnp.exp(adaptive.log_std), model.num_z)

    def body(state, inputs):
        t, i, eps = inputs

        def posterior(index, _pm, _ps, e):
            q_mean, q_std = means[index][i], stds[index][i]
            return q_mean + q_std * e, q_mean, q_std

        new_state, info = _step(model, state, t, posterior, eps)
        return new_state, (info, new_state)

    steps = jnp.arange(num_steps)
    final, (info, states) = jax.lax.scan(body, state, (steps + start, steps, noise))
    return Rollout(*info, states=states, final_state=final)


def generate(
    model: PVRNN,
    num_steps: int,
    key: jax.Array | None = None,
    state: tuple | None = None,
    start: int | jax.Array = 0,
) -> Rollout:
    """Free-running generation from the learned prior (``key=None``: prior means).

    Example:
        >>> import jax
        >>> from probkit.models.pvrnn import PVRNN, generate
        >>> generate(PVRNN(jax.random.key(0), 2), 5, jax.random.key(1)).outputs.shape
        (5, 2)
    """
    if key is not None:
        check_key(key)
    state = initial_state(model) if state is None else state
    if key is None:
        noise = jnp.zeros((num_steps, model.total_z))
    else:
        noise = jax.random.normal(key, (num_steps, model.total_z))

    def body(state, inputs):
        t, eps = inputs

        def prior(index, prior_mean, prior_std, e):
            return prior_mean + prior_std * e, prior_mean, prior_std

        new_state, info = _step(model, state, t, prior, eps)
        return new_state, (info, new_state)

    final, (info, states) = jax.lax.scan(body, state, (jnp.arange(num_steps) + start, noise))
    return Rollout(*info, states=states, final_state=final)


def _layer_weights(model: PVRNN, meta_prior) -> jax.Array:
    w = jnp.asarray(meta_prior, jnp.float32)
    return jnp.broadcast_to(w, (model.num_layers,))


def sequence_loss(
    model: PVRNN,
    adaptive: AdaptiveVariables,
    key: jax.Array | None,
    observations: jax.Array,
    meta_prior,
    state: tuple | None = None,
    start: int | jax.Array = 0,
):
    """``(loss, (reconstruction, kl per layer))`` of one sequence ``(T, obs_dim)``.

    ``reconstruction = sum_t |x_t - xhat_t|^2 / (2 s^2)``; ``loss = reconstruction +
    sum_l w_l KL_l`` with the meta-prior ``w`` (a scalar or one value per layer).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.pvrnn import PVRNN, init_adaptive, sequence_loss
        >>> net = PVRNN(jax.random.key(0), 1)
        >>> adaptive = init_adaptive(net, 8)
        >>> loss, (rec, kl) = sequence_loss(net, adaptive, None, jnp.zeros((8, 1)), 1.0)
        >>> kl.shape
        (1,)
    """
    if key is not None:  # None: the posterior means, no sampling
        check_key(key)
    out = rollout(model, adaptive, key, state, start)
    rec = jnp.sum((out.outputs - observations) ** 2) / (2 * model.output_std**2)
    kl = jnp.sum(out.kl, axis=0)
    return rec + jnp.sum(_layer_weights(model, meta_prior) * kl), (rec, kl)
