"""Synthetic sequences with known, switching noise: the ground truth for PV-RNN's latent noise."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from probkit._checks import check_key

__all__ = ["NoisySequences", "switching_noise_sine"]


class NoisySequences(NamedTuple):
    """Observations ``(num_sequences, T, 1)``, their noise-free signal and true noise std."""

    observations: jax.Array
    signal: jax.Array
    noise_std: jax.Array
    phase: jax.Array


def switching_noise_sine(
    key: jax.Array,
    num_sequences: int,
    num_steps: int,
    *,
    period: int = 20,
    low: float = 0.02,
    high: float = 0.3,
    random_phase: bool = True,
) -> NoisySequences:
    """``x_t = sin(2 pi t / period + phi) + s_t eps_t``: noise ``high`` on the rising half-cycle.

    ``s_t = high`` while ``cos(2 pi t / period + phi) > 0`` (the sine rises), else
    ``low``: the noise level switches twice per period, in step with the signal's phase
    (which a network can track), and ``phi`` is uniform per sequence when
    ``random_phase`` (so the phase must be recognised from data).

    Example:
        >>> import jax
        >>> from probkit.models.pvrnn import switching_noise_sine
        >>> data = switching_noise_sine(jax.random.key(0), 3, 40)
        >>> data.observations.shape, sorted(set(data.noise_std.ravel().tolist()))
        ((3, 40, 1), [0.019999999552965164, 0.30000001192092896])
    """
    check_key(key)
    key_phase, key_noise = jax.random.split(key)
    if random_phase:
        phase = jax.random.uniform(key_phase, (num_sequences, 1), maxval=2 * jnp.pi)
    else:
        phase = jnp.zeros((num_sequences, 1))
    angle = 2 * jnp.pi * jnp.arange(num_steps)[None, :] / period + phase
    signal = jnp.sin(angle)
    noise_std = jnp.where(jnp.cos(angle) > 0, high, low)
    eps = jax.random.normal(key_noise, signal.shape)
    obs = signal + noise_std * eps
    return NoisySequences(obs[..., None], signal[..., None], noise_std, phase[:, 0])
