"""probkit._threefry: the unrolled Threefry keys draw JAX's own bits, only faster."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probkit._threefry import cpu_fast_key, threefry_bits

SHAPES = [(), (3,), (2, 3, 4), (511,), (512,), (10, 100), (64, 65), (100_003,)]


@functools.partial(jax.jit, static_argnums=1)
def _draws(key, shape):
    return {
        "bits32": jax.random.bits(key, shape),
        "bits16": jax.random.bits(key, shape, jnp.uint16),
        "bits8": jax.random.bits(key, shape, jnp.uint8),
        "normal": jax.random.normal(key, shape),
        "uniform": jax.random.uniform(key, shape),
        "randint": jax.random.randint(key, shape, -5, 17),
    }


@pytest.mark.parametrize("shape", SHAPES)
def test_same_bits_as_jax(shape):
    # The oracle is JAX's own Threefry implementation: every draw must match bit for bit.
    key = jax.random.key(20261127)
    fast = cpu_fast_key(key)
    assert jax.random.key_impl(fast) != jax.random.key_impl(key)
    ours, theirs = _draws(fast, shape), _draws(key, shape)
    for name in theirs:
        assert ours[name].dtype == theirs[name].dtype, name
        np.testing.assert_array_equal(np.asarray(ours[name]), np.asarray(theirs[name]), name)


def test_split_fold_in_and_raw_keys_agree():
    key = jax.random.key(7)
    fast = cpu_fast_key(key)
    np.testing.assert_array_equal(
        jax.random.key_data(jax.random.split(fast, 5)),
        jax.random.key_data(jax.random.split(key, 5)),
    )
    np.testing.assert_array_equal(
        jax.random.normal(jax.random.fold_in(fast, 3), (5000,)),
        jax.random.normal(jax.random.fold_in(key, 3), (5000,)),
    )
    raw = jax.random.PRNGKey(7)  # legacy uint32 key data
    np.testing.assert_array_equal(
        jax.random.normal(cpu_fast_key(raw), (5000,)), jax.random.normal(raw, (5000,))
    )


def test_under_jit_and_vmap():
    keys = jax.random.split(jax.random.key(1), 4)
    draw = jax.jit(jax.vmap(lambda k: jax.random.normal(cpu_fast_key(k), (4100,))))
    expected = jax.vmap(lambda k: jax.random.normal(k, (4100,)))(keys)
    np.testing.assert_array_equal(draw(keys), expected)


def test_64_bit_draws_agree():
    with jax.enable_x64(True):
        key = jax.random.key(11)
        np.testing.assert_array_equal(
            jax.random.bits(cpu_fast_key(key), (5000,), jnp.uint64),
            jax.random.bits(key, (5000,), jnp.uint64),
        )
        np.testing.assert_array_equal(
            jax.random.normal(cpu_fast_key(key), (5000,), jnp.float64),
            jax.random.normal(key, (5000,), jnp.float64),
        )


def test_other_implementations_pass_through():
    rbg = jax.random.key(0, impl="rbg")
    assert cpu_fast_key(rbg) is rbg
    fast = cpu_fast_key(jax.random.key(0))
    assert cpu_fast_key(fast) is fast
    data = threefry_bits(jax.random.key_data(jax.random.key(0)), 32, (4097,))
    np.testing.assert_array_equal(data, jax.random.bits(jax.random.key(0), (4097,)))


@pytest.mark.parametrize("shape", SHAPES)
def test_every_size_keys_draw_split_and_fold_in_as_jax(shape):
    # The every-size implementation computes splits and fold-ins itself: the oracle is
    # again JAX's Threefry, for draws, split keys and folded keys of every shape.
    key = jax.random.key(20261206)
    fast = cpu_fast_key(key, every_size=True)
    assert jax.random.key_impl(fast) not in (
        jax.random.key_impl(key),
        jax.random.key_impl(cpu_fast_key(key)),
    )
    ours, theirs = _draws(fast, shape), _draws(key, shape)
    for name in theirs:
        np.testing.assert_array_equal(np.asarray(ours[name]), np.asarray(theirs[name]), name)
    split = jax.jit(jax.random.split, static_argnums=1)
    np.testing.assert_array_equal(
        jax.random.key_data(split(fast, shape)), jax.random.key_data(split(key, shape))
    )
    for data in map(np.uint32, (0, 1, 3, 2**31 + 5, 2**32 - 1)):
        np.testing.assert_array_equal(
            jax.random.key_data(jax.jit(jax.random.fold_in)(fast, data)),
            jax.random.key_data(jax.random.fold_in(key, data)),
        )


def test_every_size_keys_under_vmap_chain_as_jax():
    # NUTS-like use: per-transition fold-ins, splits and small draws, batched over chains.
    def run(key):
        def body(carry, t):
            k = jax.random.fold_in(key, t)
            k1, k2 = jax.random.split(k)
            return carry + jax.random.normal(k1, (3,)).sum() + jax.random.uniform(k2), None

        return jax.lax.scan(body, 0.0, jnp.arange(20))[0]

    keys = jax.random.split(jax.random.key(3), 4)
    fast = jax.vmap(lambda k: cpu_fast_key(k, every_size=True))(keys)
    np.testing.assert_array_equal(jax.jit(jax.vmap(run))(fast), jax.jit(jax.vmap(run))(keys))
