"""A small FIM-style recognition network: noisy snapshots of many paths -> log-rates.

Encoder (permutation-invariant over paths, DeepSets): every consecutive pair of
observations ``(y_t, y_{t+1}, dt)`` of every path is embedded as
``onehot(y_t) ⊗ onehot(y_{t+1}) ⊗ g(dt)``, with ``g`` a learned positive feature map of
the lag relative to the data set's mean lag, and these embeddings are averaged over the
pairs and the paths (masked). Row-normalising gives learned-lag empirical transition
frequencies ``F[i, j, :]``. Decoder: a per-state network embeds ``(F_ii, counts,
occupancy)``, a per-pair network maps ``(F_ij, F_ji, h_i, h_j, mean_k h_k, global
features, adjacency_ij)`` to the mean and log-standard deviation of ``log q_ij`` in units
of the mean lag. The network is therefore equivariant to relabelling the states, works
for any number of states up to ``max_states``, any number of paths and observations,
regular or irregular grids, and is exactly invariant to rescaling time.

Compared with FIM (Berghaus et al., 2024: transformer/LSTM path encoders and attention
pooling, trained on millions of processes) this is a much smaller model with a strong
inductive bias, small enough to train in minutes on two CPU cores.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

__all__ = ["AmortizedMJPNetwork", "snapshot_features"]


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


class AmortizedMJPNetwork(eqx.Module):
    """Recognition network: snapshots -> Gaussian over the log-rates (see the module doc).

    Attributes:
        lag_features: ``log(dt / mean dt) -> R^M`` (softplus-positive lag weights).
        state_net: per-state embedding.
        pair_net: per-pair head, outputs ``(mean, log sd)`` of ``log(q_ij * mean dt)``.
        max_states: the largest number of states the network handles.
        num_lag_features: ``M``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.mjp import AmortizedMJPNetwork
        >>> net = AmortizedMJPNetwork(jax.random.key(0), width=16)
        >>> mean, log_sd = net(jnp.broadcast_to(jnp.linspace(0, 5, 10), (4, 10)),
        ...                    jnp.zeros((4, 10), int), jnp.ones(4, bool), 3,
        ...                    jnp.ones((6, 6), bool))
        >>> mean.shape
        (6, 6)
    """

    lag_features: eqx.nn.MLP
    state_net: eqx.nn.MLP
    pair_net: eqx.nn.MLP
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
        k1, k2, k3 = jax.random.split(key, 3)
        m = num_lag_features
        self.max_states = max_states
        self.num_lag_features = m
        self.width = width
        self.lag_features = eqx.nn.MLP(1, m, 16, 2, activation=jax.nn.gelu, key=k1)
        self.state_net = eqx.nn.MLP(2 * m + 3, width, width, 1, activation=jax.nn.gelu, key=k2)
        pair_in = 4 * m + 3 * width + 4 + 1
        self.pair_net = eqx.nn.MLP(pair_in, 2, width, 2, activation=jax.nn.gelu, key=k3)

    def __call__(
        self,
        times: jax.Array,
        observations: jax.Array,
        path_mask: jax.Array,
        num_states,
        adjacency: jax.Array,
    ) -> tuple[jax.Array, jax.Array]:
        """Mean and log-sd of ``log q_ij`` for every pair (``(max_states, max_states)`` each).

        Args:
            times: ``(N, T)`` observation times.
            observations: ``(N, T)`` labels in ``[0, num_states)``.
            path_mask: ``(N,)`` real paths.
            num_states: ``K`` (may be traced).
            adjacency: ``(max_states, max_states)`` allowed jumps.

        Returns:
            ``(mean, log_sd)`` of the log-rates in the original time units.
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
        diag = jnp.diagonal(freq, axis1=0, axis2=1).T  # (K, M)
        log_diag = jnp.diagonal(log_freq, axis1=0, axis2=1).T
        state_in = jnp.concatenate(
            [
                diag,
                log_diag,
                jnp.log1p(visits)[:, None] / 5.0,
                occupancy[:, None],
                state_mask[:, None].astype(dtype),
            ],
            axis=1,
        )
        h = jax.vmap(self.state_net)(state_in)  # (K, width)
        sm = state_mask.astype(dtype)[:, None]
        context = jnp.sum(h * sm, 0) / jnp.maximum(jnp.sum(sm), 1.0)
        spread = jnp.sqrt(jnp.sum(rel**2 * w) / num_pairs)
        global_in = jnp.stack(
            [
                jnp.log(num_pairs) / 5.0,
                jnp.log(num_paths) / 5.0,
                spread,
                jnp.asarray(num_states, dtype) / k,
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
                hi,
                hj,
                jnp.broadcast_to(context, (k, k, context.shape[-1])),
                jnp.broadcast_to(global_in, (k, k, 4)),
                adjacency.astype(dtype)[..., None],
            ],
            axis=-1,
        )
        out = jax.vmap(jax.vmap(self.pair_net))(pair_in)
        mean = out[..., 0] - log_mean_dt
        log_sd = jnp.clip(out[..., 1], -7.0, 3.0)
        return mean, log_sd
