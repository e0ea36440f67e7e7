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


def test_transition_counts_give_the_exact_likelihood():
    # exact labels: sum n_ij log P_ij + sum n_i log p_i equals enumeration over hidden paths,
    # on a shared grid and on per-path irregular grids
    initial = np.array([0.2, 0.5, 0.3])
    y = np.array([[0, 1, 1, 2], [2, 2, 0, 1], [1, 0, 0, 0]])
    grids = [
        np.array([0.0, 0.3, 1.1, 1.5]),
        np.array([[0.0, 0.3, 1.1, 1.5], [0.0, 0.7, 1.1, 1.8], [0.0, 0.3, 0.6, 0.9]]),
    ]
    for times in grids:
        per_path = np.broadcast_to(times, y.shape)
        expected = sum(
            brute_force_log_likelihood(Q3, initial, per_path[n], y[n : n + 1], 0.0)
            for n in range(len(y))
        )
        intervals, index = mjp.unique_intervals(times)
        counts = mjp.transition_counts(index, y, 3, len(intervals))
        assert counts.transitions.sum() == y.size - len(y) and counts.initial.sum() == len(y)
        transitions = jax.vmap(lambda dt: jax.scipy.linalg.expm(jnp.asarray(Q3) * dt))(
            jnp.asarray(intervals, jnp.float32)
        )
        got = mjp.counts_log_likelihood(transitions, jnp.asarray(initial), counts)
        assert float(got) == pytest.approx(expected, rel=1e-5)


def test_unique_intervals_merge_rounding_noise_only():
    # a float32 linspace has intervals that differ in the last bits: one distinct interval
    dts, index = mjp.unique_intervals(jnp.linspace(0.0, 10.0, 50))
    assert dts.shape == (1,) and np.all(index == 0)
    assert dts[0] == pytest.approx(10.0 / 49, rel=1e-6)
    # genuinely different intervals stay apart, and unique_dts[index] rebuilds them
    times = np.array([[0.0, 0.5, 1.0, 1.3], [0.0, 0.3, 0.8, 1.3]])
    dts, index = mjp.unique_intervals(times)
    assert dts.shape == (2,)
    np.testing.assert_allclose(dts[index], np.diff(times, axis=-1), atol=1e-12)
