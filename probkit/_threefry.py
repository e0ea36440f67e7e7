"""Threefry-2x32 keys whose random bits compile to straight-line code on CPU.

JAX lowers its Threefry-2x32 hash on CPU as a ``while`` loop of five iterations
over the whole output array (``use_rolled_loops=True`` in ``jax._src.random``),
which keeps compile times short but makes every draw pass over memory five times:
drawing ``10^5`` normals per step of a particle filter then costs about twice what
the arithmetic does. :func:`cpu_fast_key` re-wraps a Threefry key's data in a PRNG
implementation (registered through JAX's public ``jax.extend.random``) whose
``random_bits`` evaluates the same 20 rounds unrolled, so XLA fuses them into one
loop. Seeding, splitting and folding-in are JAX's own, and the bits are identical
to JAX's for every shape and width (tested), so swapping the key changes speed,
never results. ``cpu_fast_key(key, every_size=True)`` also unrolls small draws and
the key's splits and fold-ins (computed as JAX computes them, tested the same way):
NUTS draws a few numbers and splits its key at every leapfrog step, and each rolled
hash is a five-iteration loop of its own.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import define_prng_impl, threefry_prng_impl

__all__ = ["cpu_fast_key", "threefry_bits"]

# Rotation constants and key-schedule parity of Threefry-2x32 with 20 rounds
# (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"), as in JAX.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)
# Below this many elements JAX's rolled loop is used. Unrolled draws are faster at
# every size (2.4x at 512 normals, 1.9x at 1024 on a 2-core CPU), but unrolled rounds
# on tiny arrays inside the SMC loop once sent LLVM into minutes-long compiles (seen at
# 32 elements); from 512 the compile times of the SMC samplers are unchanged.
_MIN_UNROLLED = 512


def _rotate_left(x: jax.Array, r: int) -> jax.Array:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def _threefry2x32(k0, k1, x0, x1):
    """The Threefry-2x32-20 block function on uint32 arrays, rounds unrolled."""
    schedule = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0 = x0 + k0
    x1 = x1 + k1
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = _rotate_left(x1, r) ^ x0
        x0 = x0 + schedule[(block + 1) % 3]
        x1 = x1 + schedule[(block + 2) % 3] + np.uint32(block + 1)
    return x0, x1


def threefry_bits(key_data: jax.Array, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
    """Random bits from raw Threefry key data ``(2,) uint32``, identical to JAX's.

    Follows JAX's partitionable layout (the default since JAX 0.5): element ``i`` of
    the flattened output hashes the counter ``(hi, lo)`` of ``i``. Other layouts, and
    outputs below 512 or from ``2^32`` elements, are delegated to JAX's implementation.

    Example:
        >>> import jax, numpy as np
        >>> from probkit._threefry import threefry_bits
        >>> key = jax.random.key(0)
        >>> ours = threefry_bits(jax.random.key_data(key), 32, (5000,))
        >>> bool(np.all(ours == jax.random.bits(key, (5000,))))
        True
    """
    return _bits(key_data, bit_width, tuple(shape), _MIN_UNROLLED)


def _partitionable(size: int, min_unrolled: int) -> bool:
    # JAX's other layout (jax_threefry_partitionable off) and counters of 2^32 elements
    # or more (a nonzero high word) are left to JAX's implementation.
    return jax.config.jax_threefry_partitionable and min_unrolled <= size < 2**32


def _hash_flat_index(key_data: jax.Array, shape: tuple[int, ...]):
    # Counters: the flat index, whose high word is 0 below 2^32 elements.
    lo = jax.lax.iota(jnp.uint32, math.prod(shape)).reshape(shape)
    return _threefry2x32(key_data[0], key_data[1], jnp.zeros(shape, jnp.uint32), lo)


def _bits(key_data, bit_width: int, shape: tuple[int, ...], min_unrolled: int) -> jax.Array:
    if not _partitionable(math.prod(shape), min_unrolled):
        return threefry_prng_impl.random_bits(key_data, bit_width, shape)
    bits0, bits1 = _hash_flat_index(key_data, shape)
    if bit_width == 64:
        return (bits0.astype(jnp.uint64) << np.uint64(32)) | bits1.astype(jnp.uint64)
    bits = bits0 ^ bits1
    if bit_width == 32:
        return bits
    return bits.astype({8: jnp.uint8, 16: jnp.uint16}[bit_width])


def _random_bits(key_data: jax.Array, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
    return _bits(key_data, bit_width, tuple(shape), _MIN_UNROLLED)


def _random_bits_every_size(key_data, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
    return _bits(key_data, bit_width, tuple(shape), 1)


def _split_every_size(key_data: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """JAX's partitionable split: key ``i`` hashes the counter ``(hi, lo)`` of ``i``."""
    shape = tuple(shape)
    if not _partitionable(math.prod(shape), 1):
        return threefry_prng_impl.split(key_data, shape)
    return jnp.stack(_hash_flat_index(key_data, shape), axis=-1)


def _fold_in_every_size(key_data: jax.Array, data: jax.Array) -> jax.Array:
    """JAX's fold-in: the key hashes the counter pair ``(0, data)``."""
    data = jnp.asarray(data, jnp.uint32)
    bits0, bits1 = _threefry2x32(key_data[0], key_data[1], jnp.zeros((), jnp.uint32), data)
    return jnp.stack([bits0, bits1])


_UNROLLED_THREEFRY = define_prng_impl(
    key_shape=threefry_prng_impl.key_shape,
    seed=threefry_prng_impl.seed,
    split=threefry_prng_impl.split,
    random_bits=_random_bits,
    fold_in=threefry_prng_impl.fold_in,
    name="threefry2x32_unrolled",
    tag="pkfry",
)

# Splits, fold-ins and draws of every size unrolled: what a sampler that draws a few
# numbers per step and splits its key at every step (NUTS) spends its time on.
_UNROLLED_THREEFRY_EVERY_SIZE = define_prng_impl(
    key_shape=threefry_prng_impl.key_shape,
    seed=threefry_prng_impl.seed,
    split=_split_every_size,
    random_bits=_random_bits_every_size,
    fold_in=_fold_in_every_size,
    name="threefry2x32_unrolled_every_size",
    tag="pkfrye",
)


def cpu_fast_key(key: jax.Array, *, every_size: bool = False) -> jax.Array:
    """``key`` with random bits evaluated unrolled, when that is faster (on CPU).

    A typed or raw (``jax.random.PRNGKey``) Threefry key on the CPU backend is
    re-wrapped, bit for bit, in the unrolled implementation; any other key (another
    PRNG implementation, another backend) is returned unchanged. Works under
    ``jit`` and ``vmap``.

    By default only draws of 512 numbers or more are unrolled (a particle filter's
    innovations). ``every_size=True`` also unrolls small draws and the key's splits
    and fold-ins, for samplers that spend their time on those (NUTS draws a few
    numbers and splits its key at every leapfrog step); it compiles a little longer.

    Example:
        >>> import jax, numpy as np
        >>> from probkit._threefry import cpu_fast_key
        >>> key = jax.random.key(1)
        >>> a = jax.random.normal(cpu_fast_key(key), (4,))
        >>> bool(np.all(a == jax.random.normal(key, (4,))))
        True
    """
    if jax.default_backend() != "cpu":
        return key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if jax.random.key_impl(key) != jax.random.key_impl(jax.random.key(0, impl="threefry2x32")):
            return key
        data = jax.random.key_data(key)
    elif key.dtype == jnp.uint32 and key.shape[-1:] == (2,):
        # A raw key follows jax_default_prng_impl; only Threefry data is re-wrapped.
        if jax.config.jax_default_prng_impl != "threefry2x32":
            return key
        data = key
    else:
        return key
    impl = _UNROLLED_THREEFRY_EVERY_SIZE if every_size else _UNROLLED_THREEFRY
    return jax.random.wrap_key_data(data, impl=impl)
