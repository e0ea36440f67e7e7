"""A small decoder-only transformer (equinox) and step-wise generation for many particles.

Generation keeps each particle's key-value cache, so a particle is ``(solution tokens,
length, cache, next-token logits, done)`` and resampling copies that whole state: the
prefix is never recomputed.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from probkit.models.arithmetic_lm._task import (
    MAX_STEP_TOKENS,
    PAD,
    PROMPT_LENGTH,
    SEMICOLON,
    SEQUENCE_LENGTH,
    STOP,
    VOCAB_SIZE,
)

from probkit._checks import check_key

__all__ = ["ArithmeticLM", "GenerationState", "start", "propose_step"]


class _Block(eqx.Module):
    norm1: eqx.nn.LayerNorm
    qkv: eqx.nn.Linear
    out: eqx.nn.Linear
    norm2: eqx.nn.LayerNorm
    up: eqx.nn.Linear
    down: eqx.nn.Linear
    num_heads: int = eqx.field(static=True)

    def __init__(self, width: int, num_heads: int, key: jax.Array):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.norm1 = eqx.nn.LayerNorm(width)
        self.qkv = eqx.nn.Linear(width, 3 * width, key=k1)
        self.out = eqx.nn.Linear(width, width, key=k2)
        self.norm2 = eqx.nn.LayerNorm(width)
        self.up = eqx.nn.Linear(width, 4 * width, key=k3)
        self.down = eqx.nn.Linear(4 * width, width, key=k4)
        self.num_heads = num_heads

    def _heads(self, x):  # (..., width) -> (..., heads, head_size)
        return x.reshape(x.shape[:-1] + (self.num_heads, -1))

    def _attend(self, q, k, v, mask):
        # q: (T, H, D), k, v: (S, H, D), mask: (T, S)
        scores = jnp.einsum("thd,shd->hts", q, k) / jnp.sqrt(q.shape[-1])
        scores = jnp.where(mask[None], scores, -jnp.inf)
        return jnp.einsum("hts,shd->thd", jax.nn.softmax(scores, axis=-1), v)

    def _mlp(self, x):
        h = jax.vmap(self.norm2)(x)
        return x + jax.vmap(self.down)(jax.nn.gelu(jax.vmap(self.up)(h)))

    def sequence(self, x):
        """Causal self-attention over a whole sequence ``(T, width)`` (training)."""
        q, k, v = jnp.split(jax.vmap(self.qkv)(jax.vmap(self.norm1)(x)), 3, axis=-1)
        t = x.shape[0]
        mask = jnp.tril(jnp.ones((t, t), bool))
        a = self._attend(self._heads(q), self._heads(k), self._heads(v), mask)
        x = x + jax.vmap(self.out)(a.reshape(t, -1))
        return self._mlp(x)

    def one(self, x, position, cache_k, cache_v):
        """One position ``x`` (width,) at ``position``, with caches ``(L, heads, D)``."""
        q, k, v = jnp.split(self.qkv(self.norm1(x)), 3)
        cache_k = cache_k.at[position].set(self._heads(k))
        cache_v = cache_v.at[position].set(self._heads(v))
        mask = (jnp.arange(cache_k.shape[0]) <= position)[None]
        a = self._attend(self._heads(q)[None], cache_k, cache_v, mask)[0]
        x = x + self.out(a.reshape(-1))
        return self._mlp(x[None])[0], cache_k, cache_v


class ArithmeticLM(eqx.Module):
    """A decoder-only transformer over the task's tokens (learned positions, pre-norm).

    Args (of the constructor):
        key: a ``jax.random`` key for the initial weights.
        width: model width.
        depth: number of blocks.
        num_heads: attention heads per block.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.arithmetic_lm import ArithmeticLM
        >>> lm = ArithmeticLM(key=jax.random.key(0), width=16, depth=1, num_heads=2)
        >>> lm.sequence_logits(jnp.zeros(5, jnp.int32)).shape
        (5, 18)
    """

    embedding: eqx.nn.Embedding
    positions: jax.Array
    blocks: tuple[_Block, ...]
    norm: eqx.nn.LayerNorm
    head: eqx.nn.Linear
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    num_heads: int = eqx.field(static=True)

    def __init__(self, *, key: jax.Array, width: int = 64, depth: int = 2, num_heads: int = 4):
        keys = jax.random.split(key, depth + 3)
        self.embedding = eqx.nn.Embedding(VOCAB_SIZE, width, key=keys[0])
        self.positions = 0.02 * jax.random.normal(keys[1], (SEQUENCE_LENGTH, width))
        self.blocks = tuple(_Block(width, num_heads, k) for k in keys[3:])
        self.norm = eqx.nn.LayerNorm(width)
        self.head = eqx.nn.Linear(width, VOCAB_SIZE, key=keys[2])
        self.width, self.depth, self.num_heads = width, depth, num_heads

    def sequence_logits(self, tokens: jax.Array) -> jax.Array:
        """Next-token logits after each prefix ``tokens[:i + 1]``: ``(T, VOCAB_SIZE)``."""
        x = jax.vmap(self.embedding)(tokens) + self.positions[: tokens.shape[0]]
        for block in self.blocks:
            x = block.sequence(x)
        return jax.vmap(self.head)(jax.vmap(self.norm)(x))

    def empty_cache(self) -> jax.Array:
        """Key-value cache of one sequence: ``(depth, 2, SEQUENCE_LENGTH, heads, head_size)``."""
        shape = (self.depth, 2, SEQUENCE_LENGTH, self.num_heads, self.width // self.num_heads)
        return jnp.zeros(shape)

    def advance(self, cache: jax.Array, position: jax.Array, token: jax.Array):
        """Read ``token`` at ``position``: returns (next-token logits, updated cache)."""
        x = self.embedding(token) + self.positions[position]
        new = []
        for i, block in enumerate(self.blocks):
            x, k, v = block.one(x, position, cache[i, 0], cache[i, 1])
            new.append(jnp.stack([k, v]))
        return self.head(self.norm(x)), jnp.stack(new)

    def read(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(logits after the last token, cache) for a prompt of one sequence."""

        def body(carry, inputs):
            _, cache = carry
            position, token = inputs
            return self.advance(cache, position, token), None

        start = (jnp.zeros(VOCAB_SIZE), self.empty_cache())
        positions = jnp.arange(tokens.shape[0])
        (logits, cache), _ = jax.lax.scan(body, start, (positions, tokens))
        return logits, cache


class GenerationState(NamedTuple):
    """Particles of one problem's partial solutions (leading axis: particles).

    Attributes:
        solution: ``(n, SEQUENCE_LENGTH - PROMPT_LENGTH)`` generated tokens, PAD after.
        length: ``(n,)`` number of generated tokens.
        logits: ``(n, VOCAB_SIZE)`` next-token logits.
        cache: ``(n, depth, 2, SEQUENCE_LENGTH, heads, head_size)`` key-value caches.
        done: ``(n,)`` the solution ended (``.``, no delimiter within a step's token
            budget, or no room left).
        num_steps: ``(n,)`` steps generated so far.
    """

    solution: jax.Array
    length: jax.Array
    logits: jax.Array
    cache: jax.Array
    done: jax.Array
    num_steps: jax.Array


def start(model: ArithmeticLM, prompt: jax.Array, num_particles: int) -> GenerationState:
    """``num_particles`` empty solutions of one prompt (the prompt read once, then copied).

    Example:
        >>> import jax
        >>> from probkit.models.arithmetic_lm import ArithmeticLM, make_problems, start
        >>> lm = ArithmeticLM(key=jax.random.key(0), width=16, depth=1, num_heads=2)
        >>> start(lm, make_problems(0, 1).prompt[0], 4).logits.shape
        (4, 18)
    """
    logits, cache = model.read(jnp.asarray(prompt))
    n = num_particles
    return GenerationState(
        solution=jnp.full((n, SEQUENCE_LENGTH - PROMPT_LENGTH), PAD, jnp.int32),
        length=jnp.zeros(n, jnp.int32),
        logits=jnp.broadcast_to(logits, (n,) + logits.shape),
        cache=jnp.broadcast_to(cache, (n,) + cache.shape),
        done=jnp.zeros(n, bool),
        num_steps=jnp.zeros(n, jnp.int32),
    )


def _one_step(model, key, state: GenerationState, temperature):
    solution, length, logits, cache, done, num_steps = state
    capacity = solution.shape[0]

    def body(carry, key):
        solution, length, logits, cache, active = carry
        tok = jax.random.categorical(key, logits / temperature).astype(jnp.int32)
        write = active & (length < capacity)
        index = jnp.minimum(length, capacity - 1)
        solution = jnp.where(write, solution.at[index].set(tok), solution)
        new_logits, new_cache = model.advance(cache, PROMPT_LENGTH + index, tok)
        logits = jnp.where(write, new_logits, logits)
        cache = jnp.where(write, new_cache, cache)
        length = length + write
        ended = (tok == SEMICOLON) | (tok == STOP)
        return (solution, length, logits, cache, write & ~ended), None

    keys = jax.random.split(key, MAX_STEP_TOKENS)
    (solution, length, logits, cache, unfinished), _ = jax.lax.scan(
        body, (solution, length, logits, cache, ~done), keys
    )
    last = solution[jnp.maximum(length - 1, 0)]
    # Finished: stopped with '.', ran out of room, or exceeded the step's token budget.
    new_done = done | (last == STOP) | (length >= capacity) | unfinished
    return GenerationState(solution, length, logits, cache, new_done, num_steps + (~done))


def propose_step(
    key: jax.Array, model: ArithmeticLM, state: GenerationState, temperature: float = 1.0
) -> GenerationState:
    """Sample one more step (up to ``;`` or ``.``, at most 8 tokens) for every live particle.

    Finished particles are returned unchanged.

    Example:
        >>> import jax
        >>> from probkit.models.arithmetic_lm import (ArithmeticLM, make_problems,
        ...                                          propose_step, start)
        >>> lm = ArithmeticLM(key=jax.random.key(0), width=16, depth=1, num_heads=2)
        >>> s = start(lm, make_problems(0, 1).prompt[0], 3)
        >>> propose_step(jax.random.key(1), lm, s).num_steps.tolist()
        [1, 1, 1]
    """
    check_key(key)
    keys = jax.random.split(key, state.length.shape[0])
    return jax.vmap(_one_step, in_axes=(None, 0, 0, None))(model, keys, state, temperature)
