"""A small FIM-style recognition network: noisy snapshots of many paths -> log-rates and
the initial distribution.

Encoder (permutation-invariant over paths, DeepSets): every consecutive pair of
observations ``(y_t, y_{t+1}, dt)`` of every path is embedded as
``onehot(y_t) ⊗ onehot(y_{t+1}) ⊗ g(dt)``, with ``g`` a learned positive feature map of
the lag relative to the data set's mean lag, and these embeddings are averaged over the
pairs and the paths (masked). Row-normalising gives learned-lag empirical transition
frequencies ``F[i, j, :]``. Next to them, closed-form moment estimates of the generator
(:mod:`._moments`: matrix logarithms of the empirical transition matrices at lags of 1, 2
and 3 grid steps, each corrected for a bank of candidate label-noise levels, and how well the
lags agree for each level) are computed from the same pooled counts: they carry the
whole-matrix information (indirect jumps within one lag) that a per-pair decoder cannot
reconstruct on its own. Decoder: a per-state network embeds ``(F_ii, counts, occupancy,
moment diagonals)``, a per-pair network maps ``(F_ij, F_ji, moment estimates of q_ij and
q_ji, h_i, h_j, mean_k h_k, global features, adjacency_ij)`` to the mean and log-standard
deviation of ``log q_ij`` in units of the mean lag, and a per-state head maps the labels
seen at the first observation time (with ``h_i`` and the global features) to a Dirichlet
over the initial distribution, parametrised around the conjugate posterior
``Dirichlet(exp(u_i) (n_i + exp(v_i)))``. The network is therefore equivariant to
relabelling the states, works for any number of states up to ``max_states``, any number
of paths and observations, regular or irregular grids, and is exactly invariant to
rescaling time.

Compared with FIM (Berghaus et al., 2024: transformer/LSTM path encoders and attention
pooling, trained on millions of processes) this is a much smaller model with a strong
inductive bias, small enough to train in minutes on two CPU cores.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from probkit.models.mjp._moments import moment_generators, pair_counts

__all__ = ["AmortizedMJPNetwork", "NetworkOutput", "snapshot_features", "NOISE_BANK", "MOMENT_LAGS"]

# candidate label-noise levels and grid lags of the moment features (part of the architecture)
NOISE_BANK = (0.0, 0.03, 0.06, 0.1)
MOMENT_LAGS = (1, 2, 3)


def snapshot_features(times: jax.Array, observations: jax.Array, path_mask: jax.Array):
    """Lags and masks of the consecutive observation pairs of a data set.

    Args:
        times: ``(N, T)`` observation times (broadcast a shared grid first).
        observations: ``(N, T)`` integer labels.
        path_mask: ``(N,)`` which paths are real (the rest is padding).

    Returns:
        ``(relative_log_lags (N, T-1), pair_mask (N, T-1), log_mean_lag)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.mjp import snapshot_features
        >>> t = jnp.array([[0.0, 1.0, 3.0]])
        >>> rel, mask, log_mean = snapshot_features(t, jnp.array([[0, 1, 1]]), jnp.array([True]))
        >>> round(float(log_mean), 4)  # log 1.5
        0.4055
    """
    dts = jnp.diff(times, axis=-1)
    pair_mask = path_mask[:, None] & (dts > 0)
    weights = pair_mask.astype(times.dtype)
    mean_dt = jnp.sum(dts * weights) / jnp.maximum(jnp.sum(weights), 1.0)
    safe = jnp.where(pair_mask, dts, mean_dt)
    return jnp.log(safe / mean_dt), pair_mask, jnp.log(mean_dt)


class NetworkOutput(NamedTuple):
    """What the network returns for one data set (padded to ``max_states``).

    Attributes:
        log_rate_mean: ``(max_states, max_states)`` mean of each ``log q_ij``.
        log_rate_log_sd: ``(max_states, max_states)`` log standard deviation of each.
        initial_concentration: ``(max_states,)`` Dirichlet concentration of the
            distribution of the state at the first observation time (padding: 0).
    """

    log_rate_mean: jax.Array
    log_rate_log_sd: jax.Array
    initial_concentration: jax.Array


def _moment_features(times, observations, path_mask, num_states, max_states, adjacency):
    """Moment estimates (in units of the mean lag) as pair, state and global features."""
    dtype = times.dtype
    mean_dt = jnp.exp(snapshot_features(times, observations, path_mask)[2])
    noise = jnp.asarray(NOISE_BANK, dtype)
    gens = []
    for lag in MOMENT_LAGS:
        counts, mean_lag = pair_counts(times, observations, path_mask, max_states, lag)
        gens.append(moment_generators(counts, mean_lag, num_states, noise) * mean_dt)
    gen = jnp.stack(gens)  # (lags, noise levels, K, K) rates x mean lag
    real = jnp.arange(max_states) < num_states
    off = real[:, None] & real[None, :] & ~jnp.eye(max_states, dtype=bool)
    log_off = jnp.log(jnp.clip(gen, 1e-3, None))
    pair = jnp.concatenate([log_off / 3.0, jnp.tanh(gen)], axis=1)  # (lags, 2 x noise, K, K)
    pair = pair.reshape(-1, max_states, max_states).transpose(1, 2, 0)
    diag = jnp.diagonal(gen, axis1=-2, axis2=-1)  # (lags, noise, K)
    state = [jnp.log(jnp.clip(-diag, 1e-3, None)).reshape(-1, max_states).T / 3.0]
    forbidden = (off & ~adjacency).astype(dtype)
    leak = jnp.sum(jnp.clip(gen[0], 0.0, None) * forbidden, axis=-1)  # (noise, K)
    state.append(jnp.log(leak + 1e-3).T / 3.0)
    allowed = (off & adjacency).astype(dtype)
    # agreement of the longer lags with the first for each candidate noise level
    gap = (log_off[:1] - log_off[1:]) ** 2 * allowed  # (lags - 1, noise levels, K, K)
    agreement = jnp.sum(gap, axis=(-2, -1)).reshape(-1) / jnp.maximum(jnp.sum(allowed), 1.0)
    return pair, jnp.concatenate(state, axis=1), jnp.log(agreement + 1e-4) / 5.0


_NUM_MOMENT_PAIR = 2 * len(MOMENT_LAGS) * len(NOISE_BANK)
_NUM_MOMENT_STATE = (len(MOMENT_LAGS) + 1) * len(NOISE_BANK)
_NUM_GLOBAL = 4 + (len(MOMENT_LAGS) - 1) * len(NOISE_BANK)


class AmortizedMJPNetwork(eqx.Module):
    """Recognition network: snapshots -> Gaussian over the log-rates and a Dirichlet over
    the initial distribution (see the module doc).

    Attributes:
        lag_features: ``log(dt / mean dt) -> R^M`` (softplus-positive lag weights).
        state_net: per-state embedding.
        pair_net: per-pair head, outputs ``(mean, log sd)`` of ``log(q_ij * mean dt)``.
        initial_net: per-state head, outputs ``(u_i, v_i)`` of the initial Dirichlet.
        max_states: the largest number of states the network handles.
        num_lag_features: ``M``.
        width: hidden width.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.mjp import AmortizedMJPNetwork
        >>> net = AmortizedMJPNetwork(jax.random.key(0), width=16)
        >>> out = net(jnp.broadcast_to(jnp.linspace(0, 5, 10), (4, 10)),
        ...           jnp.zeros((4, 10), int), jnp.ones(4, bool), 3, jnp.ones((6, 6), bool))
        >>> out.log_rate_mean.shape, out.initial_concentration.shape
        ((6, 6), (6,))
    """

    lag_features: eqx.nn.MLP
    state_net: eqx.nn.MLP
    pair_net: eqx.nn.MLP
    initial_net: eqx.nn.MLP
    max_states: int = eqx.field(static=True)
    num_lag_features: int = eqx.field(static=True)
    width: int = eqx.field(static=True)

    def __init__(
        self, key: jax.Array, *, max_states: int = 6, num_lag_features: int = 6, width: int = 64
    ):
        """Initialise the weights.

        Args:
            key: a ``jax.random`` key.
            max_states: largest number of states (inputs are padded to it).
            num_lag_features: ``M``, learned lag weightings of the transition counts.
            width: hidden width of the per-state and per-pair networks.
        """
        k1, k2, k3, k4 = jax.random.split(key, 4)
        m = num_lag_features
        self.max_states = max_states
        self.num_lag_features = m
        self.width = width
        self.lag_features = eqx.nn.MLP(1, m, 16, 2, activation=jax.nn.gelu, key=k1)
        state_in = 2 * m + 3 + _NUM_MOMENT_STATE
        self.state_net = eqx.nn.MLP(state_in, width, width, 1, activation=jax.nn.gelu, key=k2)
        pair_in = 4 * m + 2 * _NUM_MOMENT_PAIR + 3 * width + _NUM_GLOBAL + 1
        self.pair_net = eqx.nn.MLP(pair_in, 2, width, 2, activation=jax.nn.gelu, key=k3)
        initial = eqx.nn.MLP(
            2 + 2 * width + _NUM_GLOBAL, 2, width, 2, activation=jax.nn.gelu, key=k4
        )
        # start at the conjugate Dirichlet(1 + counts) posterior: small last layer
        self.initial_net = eqx.tree_at(
            lambda n: n.layers[-1].weight, initial, 0.01 * initial.layers[-1].weight
        )

    def __call__(
        self,
        times: jax.Array,
        observations: jax.Array,
        path_mask: jax.Array,
        num_states,
        adjacency: jax.Array,
    ) -> NetworkOutput:
        """Gaussians over the log-rates and a Dirichlet over the initial distribution.

        Args:
            times: ``(N, T)`` observation times.
            observations: ``(N, T)`` labels in ``[0, num_states)``.
            path_mask: ``(N,)`` real paths.
            num_states: ``K`` (may be traced).
            adjacency: ``(max_states, max_states)`` allowed jumps.

        Returns:
            :class:`NetworkOutput` (log-rates in the original time units).
        """
        k = self.max_states
        dtype = times.dtype
        rel, pair_mask, log_mean_dt = snapshot_features(times, observations, path_mask)
        lag = jax.nn.softplus(jax.vmap(jax.vmap(self.lag_features))(rel[..., None]))  # (N,P,M)
        w = pair_mask.astype(dtype)
        before = observations[:, :-1].reshape(-1)
        pair_index = before * k + observations[:, 1:].reshape(-1)
        num_pairs = jnp.maximum(jnp.sum(w), 1.0)
        weighted = (w[..., None] * lag).reshape(-1, lag.shape[-1])
        counts = jax.ops.segment_sum(weighted, pair_index, num_segments=k * k)
        counts = counts.reshape(k, k, -1) / num_pairs
        row = counts.sum(1, keepdims=True)
        freq = counts / (row + 1e-6)  # (K, K, M) learned-lag transition frequencies
        log_freq = jnp.log(freq + 1e-3)
        visits = jax.ops.segment_sum(w.reshape(-1), before, num_segments=k)
        occupancy = visits / num_pairs
        num_paths = jnp.maximum(jnp.sum(path_mask.astype(dtype)), 1.0)
        state_mask = jnp.arange(k) < num_states
        moment_pair, moment_state, agreement = _moment_features(
            times, observations, path_mask, num_states, k, adjacency
        )
        diag = jnp.diagonal(freq, axis1=0, axis2=1).T  # (K, M)
        log_diag = jnp.diagonal(log_freq, axis1=0, axis2=1).T
        state_in = jnp.concatenate(
            [
                diag,
                log_diag,
                jnp.log1p(visits)[:, None] / 5.0,
                occupancy[:, None],
                state_mask[:, None].astype(dtype),
                moment_state,
            ],
            axis=1,
        )
        h = jax.vmap(self.state_net)(state_in)  # (K, width)
        sm = state_mask.astype(dtype)[:, None]
        context = jnp.sum(h * sm, 0) / jnp.maximum(jnp.sum(sm), 1.0)
        spread = jnp.sqrt(jnp.sum(rel**2 * w) / num_pairs)
        global_in = jnp.concatenate(
            [
                jnp.stack(
                    [
                        jnp.log(num_pairs) / 5.0,
                        jnp.log(num_paths) / 5.0,
                        spread,
                        jnp.asarray(num_states, dtype) / k,
                    ]
                ),
                agreement,
            ]
        )
        hi = jnp.broadcast_to(h[:, None, :], (k, k, h.shape[-1]))
        hj = jnp.broadcast_to(h[None, :, :], (k, k, h.shape[-1]))
        pair_in = jnp.concatenate(
            [
                freq,
                log_freq,
                jnp.swapaxes(freq, 0, 1),
                jnp.swapaxes(log_freq, 0, 1),
                moment_pair,
                jnp.swapaxes(moment_pair, 0, 1),
                hi,
                hj,
                jnp.broadcast_to(context, (k, k, context.shape[-1])),
                jnp.broadcast_to(global_in, (k, k, global_in.shape[-1])),
                adjacency.astype(dtype)[..., None],
            ],
            axis=-1,
        )
        out = jax.vmap(jax.vmap(self.pair_net))(pair_in)
        mean = out[..., 0] - log_mean_dt
        log_sd = jnp.clip(out[..., 1], -7.0, 3.0)
        # initial distribution: labels at each path's first observation
        first = jax.ops.segment_sum(path_mask.astype(dtype), observations[:, 0], num_segments=k)
        initial_in = jnp.concatenate(
            [
                (first / num_paths)[:, None],
                jnp.log1p(first)[:, None] / 5.0,
                h,
                jnp.broadcast_to(context, (k, context.shape[-1])),
                jnp.broadcast_to(global_in, (k, global_in.shape[-1])),
            ],
            axis=1,
        )
        uv = jnp.clip(jax.vmap(self.initial_net)(initial_in), -5.0, 5.0)
        concentration = jnp.exp(uv[:, 0]) * (first + jnp.exp(uv[:, 1]))
        return NetworkOutput(mean, log_sd, jnp.where(state_mask, concentration, 0.0))
