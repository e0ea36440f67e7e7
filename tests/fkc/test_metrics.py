"""Sample distances against SciPy (energy distance, weighted too) and 1-D optimal transport."""

import jax.numpy as jnp
import numpy as np
from scipy.stats import energy_distance as scipy_energy_distance

import probkit.fkc as fkc


def test_energy_distance_matches_scipy_weighted_and_unweighted():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=300), rng.normal(0.5, 1.2, size=200)
    wx = rng.uniform(0.1, 1.0, size=300)
    # scipy returns the square root of the (V-statistic) squared energy distance.
    expected = scipy_energy_distance(x, y) ** 2
    got = fkc.energy_distance(jnp.asarray(x)[:, None], jnp.asarray(y)[:, None], block=64)
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    expected = scipy_energy_distance(x, y, u_weights=wx) ** 2
    got = fkc.energy_distance(
        jnp.asarray(x)[:, None], jnp.asarray(y)[:, None], x_log_weights=jnp.log(jnp.asarray(wx))
    )
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_mmd_matches_direct_sum_and_w2_matches_sorting_in_1d():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(150, 2)), rng.normal(size=(100, 2)) + 0.3
    k = lambda a, b: np.exp(-np.sum((a[:, None] - b[None]) ** 2, -1) / (2 * 0.7**2))
    expected = k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()
    np.testing.assert_allclose(fkc.mmd(x, y, bandwidth=0.7, block=32), expected, rtol=1e-4)
    u, v = rng.normal(size=400), rng.exponential(size=400)
    # in 1-D the optimal coupling pairs order statistics
    expected = np.sqrt(np.mean((np.sort(u) - np.sort(v)) ** 2))
    np.testing.assert_allclose(fkc.wasserstein2(u[:, None], v[:, None]), expected, rtol=1e-10)
