"""Score networks: an equinox MLP on ``(x, Fourier features of t[, label embedding])``.

The network predicts the noise ``eps`` in ``x_t = m(t) x_0 + s(t) eps`` (the DDPM
parameterisation); the score is ``-eps_hat / s(t)``. A class-conditional network embeds
``num_classes + 1`` labels, the last one being the null label of classifier-free
guidance (label dropout trains it as the unconditional model).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.tree_util import Partial

from probkit.sde import LinearSDE, ScoreFn

__all__ = ["ScoreNetwork", "score_fn"]


class ScoreNetwork(eqx.Module):
    """Noise-prediction MLP ``eps_hat(x, t[, label])`` for samples of shape ``event_shape``.

    Args (of the constructor):
        event_shape: shape of one sample.
        key: a ``jax.random`` key for the initial weights and the Fourier frequencies.
        width: hidden width of the MLP.
        depth: number of hidden layers.
        time_features: number of random Fourier frequencies for ``t`` (twice as many
            features, sine and cosine).
        time_scale: standard deviation of those frequencies (``t`` lives in ``[0, t_max]``).
        input_features: number of random Fourier frequencies for ``x`` (0: raw ``x`` only).
        input_scale: standard deviation of those frequencies.
        num_classes: 0 for an unconditional network, else the number of classes (label
            ``num_classes`` is the null label).
        label_features: size of the label embedding.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.diffusion import ScoreNetwork
        >>> net = ScoreNetwork((2,), key=jax.random.key(0), width=32, depth=2)
        >>> net(jnp.zeros(2), 0.5).shape
        (2,)
    """

    mlp: eqx.nn.MLP
    frequencies: jax.Array
    input_frequencies: jax.Array | None
    label_embedding: eqx.nn.Embedding | None
    event_shape: tuple[int, ...] = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    time_features: int = eqx.field(static=True)
    time_scale: float = eqx.field(static=True)
    input_features: int = eqx.field(static=True)
    input_scale: float = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)
    label_features: int = eqx.field(static=True)

    def __init__(
        self,
        event_shape: tuple[int, ...],
        *,
        key: jax.Array,
        width: int = 128,
        depth: int = 3,
        time_features: int = 16,
        time_scale: float = 4.0,
        input_features: int = 0,
        input_scale: float = 1.0,
        num_classes: int = 0,
        label_features: int = 16,
    ):
        event_shape = tuple(int(d) for d in event_shape)
        if not event_shape or any(d < 1 for d in event_shape):
            raise ValueError(f"event_shape must be a tuple of positive ints, got {event_shape}.")
        for name, value in (("width", width), ("depth", depth), ("time_features", time_features)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be an int >= 0, got {num_classes!r}.")
        if not isinstance(input_features, int) or input_features < 0:
            raise ValueError(f"input_features must be an int >= 0, got {input_features!r}.")
        key_mlp, key_freq, key_label, key_in = jax.random.split(key, 4)
        size = 1
        for d in event_shape:
            size *= d
        in_size = size + 2 * time_features + 2 * input_features
        in_size += label_features if num_classes else 0
        self.mlp = eqx.nn.MLP(in_size, size, width, depth, activation=jax.nn.silu, key=key_mlp)
        self.frequencies = time_scale * jax.random.normal(key_freq, (time_features,))
        self.input_frequencies = (
            input_scale * jax.random.normal(key_in, (input_features, size))
            if input_features
            else None
        )
        self.label_embedding = (
            eqx.nn.Embedding(num_classes + 1, label_features, key=key_label)
            if num_classes
            else None
        )
        self.event_shape = event_shape
        self.width, self.depth = int(width), int(depth)
        self.time_features, self.time_scale = int(time_features), float(time_scale)
        self.input_features, self.input_scale = int(input_features), float(input_scale)
        self.num_classes, self.label_features = int(num_classes), int(label_features)

    @property
    def null_label(self) -> int:
        """The label of the unconditional model (``num_classes``)."""
        return self.num_classes

    def __call__(self, x: jax.Array, t: jax.Array, label: jax.Array | None = None) -> jax.Array:
        """Predicted noise for ONE sample ``x`` at time ``t`` (and class ``label``)."""
        if x.shape != self.event_shape:
            raise ValueError(
                f"x must have the network's event_shape {self.event_shape}, got {x.shape}; "
                "the network acts on one sample (vmap it over a batch)."
            )
        angles = 2 * jnp.pi * jax.lax.stop_gradient(self.frequencies) * t
        parts = [x.reshape(-1), jnp.sin(angles), jnp.cos(angles)]
        if self.input_frequencies is not None:
            # Random Fourier features of x counter the spectral bias of MLPs on
            # low-dimensional inputs (Tancik et al. 2020): sharp 2-D densities need them.
            proj = 2 * jnp.pi * jax.lax.stop_gradient(self.input_frequencies) @ x.reshape(-1)
            parts += [jnp.sin(proj), jnp.cos(proj)]
        if self.label_embedding is not None:
            label = self.null_label if label is None else label
            parts.append(self.label_embedding(jnp.asarray(label, jnp.int32)))
        elif label is not None:
            raise ValueError("this network is unconditional (num_classes=0): pass no label.")
        return self.mlp(jnp.concatenate(parts)).reshape(self.event_shape)


def _network_score(model, sde, label, x, t):
    return -model(x, t, label) / sde.marginal(t)[1]


def score_fn(model: ScoreNetwork, sde: LinearSDE, label: int | None = None) -> ScoreFn:
    """The score ``(x, t) -> -eps_hat(x, t) / s(t)`` of a trained network (one sample).

    Returned as a :class:`jax.tree_util.Partial`, so the weights are traced arguments
    (not compile-time constants) of jitted samplers and Feynman-Kac correctors.
    ``label=None`` on a conditional network gives the unconditional (null-label) score.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.diffusion import ScoreNetwork, score_fn
        >>> from probkit.sde import VPSDE
        >>> net = ScoreNetwork((2,), key=jax.random.key(0), width=16, depth=1)
        >>> score_fn(net, VPSDE())(jnp.zeros(2), 0.5).shape
        (2,)
    """
    if label is not None and not model.num_classes:
        raise ValueError("label given, but the network is unconditional (num_classes=0).")
    if label is not None and not 0 <= int(label) <= model.num_classes:
        raise ValueError(
            f"label must be in [0, {model.num_classes}] ({model.num_classes} is the null "
            f"label), got {label}."
        )
    return Partial(_network_score, model, sde, None if label is None else jnp.asarray(label))
