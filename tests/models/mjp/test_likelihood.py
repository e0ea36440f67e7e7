"""Forward algorithm against exact enumeration of the hidden paths."""

import jax
import jax.numpy as jnp
import numpy as np
import probkit.models.mjp as mjp
import pytest
from mjp_helpers import brute_force_log_likelihood

Q3 = np.array([[-1.5, 1.0, 0.5], [0.3, -0.8, 0.5], [1.2, 0.8, -2.0]])


@pytest.mark.parametrize("label_noise", [0.0, 0.15])
def test_forward_algorithm_matches_enumeration(label_noise):
    initial = np.array([0.2, 0.5, 0.3])
    times = np.array([0.0, 0.3, 1.1, 1.5])
    y = np.array([[0, 1, 1, 2], [2, 2, 0, 1], [1, 0, 0, 0]])
    expected = brute_force_log_likelihood(Q3, initial, times, y, label_noise)
    got = mjp.log_likelihood(
        jnp.asarray(Q3), jnp.asarray(initial), jnp.asarray(times), jnp.asarray(y), label_noise
    )
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # per-path grids (here all equal) give the same answer
    per_path = jnp.broadcast_to(jnp.asarray(times), y.shape)
    got2 = mjp.log_likelihood(
        jnp.asarray(Q3), jnp.asarray(initial), per_path, jnp.asarray(y), label_noise
    )
    assert float(got2) == pytest.approx(expected, rel=1e-5)


def test_long_series_stay_finite():
    # 2000 exact snapshots: without normalisation the likelihood underflows (~1e-900)
    process = mjp.MJP(jnp.asarray(Q3))
    times = jnp.linspace(0.0, 1000.0, 2000)
    y = mjp.sample_snapshots(jax.random.key(0), process, 1, times, label_noise=0.1)
    value = mjp.log_likelihood(process.rate_matrix, process.initial, times, y, 0.1)
    assert np.isfinite(float(value)) and float(value) < -1000.0
