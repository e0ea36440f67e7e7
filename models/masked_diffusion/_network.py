"""A small time-free denoiser: an equinox transformer encoder over token ids.

RADD (Ou et al. 2024) shows that the concrete score of absorbing diffusion is the
conditional distribution of clean data given the revealed tokens times an analytic
function of time, so the network needs no time input: it maps a partly masked sequence
to logits of the clean token at every position (bidirectional attention, no causal
mask).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Denoiser"]


class _Block(eqx.Module):
    norm_attention: eqx.nn.LayerNorm
    attention: eqx.nn.MultiheadAttention
    norm_mlp: eqx.nn.LayerNorm
    mlp: eqx.nn.MLP

    def __init__(self, width: int, num_heads: int, *, key: jax.Array):
        key_attention, key_mlp = jax.random.split(key)
        self.norm_attention = eqx.nn.LayerNorm(width)
        self.attention = eqx.nn.MultiheadAttention(num_heads, width, key=key_attention)
        self.norm_mlp = eqx.nn.LayerNorm(width)
        self.mlp = eqx.nn.MLP(width, width, 4 * width, 1, activation=jax.nn.gelu, key=key_mlp)

    def __call__(self, h: jax.Array) -> jax.Array:
        z = jax.vmap(self.norm_attention)(h)
        h = h + self.attention(z, z, z)
        return h + jax.vmap(self.mlp)(jax.vmap(self.norm_mlp)(h))


class Denoiser(eqx.Module):
    """Time-free transformer denoiser ``x (L,) -> logits (L, V)`` (pre-norm blocks).

    Args (of the constructor):
        vocab_size: ``V``; token ids ``0 .. V-1``, the mask token is ``V``.
        length: sequence length ``L`` (learned position embeddings).
        key: a ``jax.random`` key for the initial weights.
        width: embedding width.
        depth: number of transformer blocks.
        num_heads: attention heads (must divide ``width``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.masked_diffusion import Denoiser
        >>> net = Denoiser(3, 6, key=jax.random.key(0), width=16, depth=1, num_heads=2)
        >>> net(jnp.array([0, 3, 3, 1, 2, 3])).shape
        (6, 3)
    """

    token_embedding: eqx.nn.Embedding
    position_embedding: jax.Array
    blocks: tuple[_Block, ...]
    norm: eqx.nn.LayerNorm
    head: eqx.nn.Linear
    vocab_size: int = eqx.field(static=True)
    length: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    num_heads: int = eqx.field(static=True)

    def __init__(
        self,
        vocab_size: int,
        length: int,
        *,
        key: jax.Array,
        width: int = 64,
        depth: int = 2,
        num_heads: int = 4,
    ):
        for name, value in (
            ("vocab_size", vocab_size),
            ("length", length),
            ("width", width),
            ("depth", depth),
            ("num_heads", num_heads),
        ):
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if width % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide width ({width}).")
        keys = jax.random.split(key, depth + 3)
        self.token_embedding = eqx.nn.Embedding(vocab_size + 1, width, key=keys[0])
        self.position_embedding = 0.02 * jax.random.normal(keys[1], (length, width))
        self.blocks = tuple(_Block(width, num_heads, key=k) for k in keys[3:])
        self.norm = eqx.nn.LayerNorm(width)
        self.head = eqx.nn.Linear(width, vocab_size, key=keys[2])
        self.vocab_size, self.length = int(vocab_size), int(length)
        self.width, self.depth, self.num_heads = int(width), int(depth), int(num_heads)

    @property
    def mask_token(self) -> int:
        """The mask id (``vocab_size``)."""
        return self.vocab_size

    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits ``(L, V)`` of the clean tokens of ONE partly masked sequence ``x``."""
        if x.shape != (self.length,):
            raise ValueError(
                f"x must have shape ({self.length},) (one sequence; vmap over a batch), "
                f"got {x.shape}."
            )
        h = jax.vmap(self.token_embedding)(x.astype(jnp.int32)) + self.position_embedding
        for block in self.blocks:
            h = block(h)
        return jax.vmap(self.head)(jax.vmap(self.norm)(h))
