"""probkit._donation: loop chunks donate their large buffers and copy the small ones."""

import jax
import jax.numpy as jnp
import numpy as np

from probkit._donation import DONATE_MIN_BYTES, donating_jit


def _step(scale, state):
    big, small, count = state
    return big * scale, small + 1.0, count + 1


def test_large_leaves_are_donated_and_small_ones_stay_usable():
    step = donating_jit(_step)
    big = jnp.ones(DONATE_MIN_BYTES // 4, jnp.float32)  # exactly the threshold
    small = jnp.zeros(3)
    count = jnp.zeros((), jnp.int32)
    new_big, new_small, new_count = step(jnp.float32(2.0), (big, small, count))
    assert big.is_deleted()  # updated in place: the caller's buffer is gone
    assert not small.is_deleted() and not count.is_deleted()
    np.testing.assert_array_equal(np.asarray(small), 0.0)  # still readable
    assert float(new_big[0]) == 2.0 and new_small.tolist() == [1.0] * 3
    assert int(new_count) == 1


def test_the_first_argument_is_never_donated():
    step = donating_jit(_step)
    scale = jnp.full(DONATE_MIN_BYTES // 4, 3.0, jnp.float32)
    state = (jnp.ones_like(scale), jnp.zeros(3), jnp.zeros((), jnp.int32))
    out = step(scale, state)
    assert not scale.is_deleted()
    assert float(out[0][0]) == 3.0


def test_same_shapes_compile_once_and_give_jits_results():
    traces = []

    def traced(scale, state):
        traces.append(None)
        return _step(scale, state)

    step = donating_jit(traced)
    for k in range(3):
        big = jnp.full(DONATE_MIN_BYTES // 4, float(k), jnp.float32)
        small = jnp.arange(3.0) + k
        state = (big, small, jnp.asarray(k, jnp.int32))
        expected = jax.jit(_step)(jnp.float32(0.5), state)
        got = step(jnp.float32(0.5), state)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert len(traces) == 1
