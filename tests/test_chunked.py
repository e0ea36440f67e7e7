"""probkit._chunked.write_row: a loop's per-step write, batched without a scatter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probkit._chunked import write_row


def _reference(buffer, value, index):
    return jax.lax.dynamic_update_index_in_dim(buffer, value, index, 0)


@pytest.mark.parametrize("in_axes", [(0, 0, None), (None, 0, None), (0, None, None), (0, 0, 0)])
@pytest.mark.parametrize("row", [3, 7, -2])  # out of range is clamped, as JAX's rule does
def test_write_row_under_vmap_equals_jaxs_update(in_axes, row):
    buffer = jnp.arange(4 * 5 * 3, dtype=jnp.float32).reshape(4, 5, 3)
    value = -jnp.arange(4 * 3, dtype=jnp.float32).reshape(4, 3)
    index = jnp.array([1, 4, 0, row], jnp.int32)
    args = (
        buffer if in_axes[0] == 0 else buffer[0],
        value if in_axes[1] == 0 else value[0],
        index if in_axes[2] == 0 else jnp.int32(row),
    )
    got = jax.jit(jax.vmap(write_row, in_axes=in_axes))(*args)
    want = jax.vmap(_reference, in_axes=in_axes)(*args)
    np.testing.assert_array_equal(got, want)


def test_write_row_unbatched_and_nested_vmap():
    buffer = jnp.zeros((2, 3, 6, 2))
    value = jnp.ones((2, 3, 2))
    got = jax.vmap(jax.vmap(write_row, in_axes=(0, 0, None)), in_axes=(0, 0, None))(
        buffer, value, 5
    )
    np.testing.assert_array_equal(got[:, :, 5], 1.0)
    np.testing.assert_array_equal(got[:, :, :5], 0.0)
    np.testing.assert_array_equal(write_row(buffer[0, 0], value[0, 0], 2)[2], 1.0)


def test_write_row_in_a_vmapped_loop_compiles_without_scatter():
    """The reason it exists: JAX batches dynamic_update_slice as a scatter, which XLA
    compiles to a bounds check and a select per buffer per step."""

    def chains(buffers, values):
        def body(i, buffers):
            return write_row(buffers, values + i, i)

        return jax.lax.fori_loop(0, buffers.shape[0], body, buffers)

    run = jax.jit(jax.vmap(chains))
    buffers, values = jnp.zeros((4, 10, 3)), jnp.ones((4, 3))
    hlo = run.lower(buffers, values).as_text()
    assert "scatter" not in hlo
    expected = jnp.broadcast_to(1.0 + jnp.arange(10.0)[:, None], (4, 10, 3))
    np.testing.assert_array_equal(run(buffers, values), expected)
