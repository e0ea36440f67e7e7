"""MA-fBM against exact fractional Brownian motion (closed-form covariances, exact samplers)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probkit.sde import (
    fbm_covariance,
    markov_fbm,
    markov_fbm_covariance,
    optimal_weights,
    ou_rates,
    sample_fbm,
    sample_markov_fbm,
)

GRID = np.linspace(0.02, 1.0, 50)


def _rms_error(hurst, num_components, kind):
    exact = fbm_covariance(hurst, GRID, GRID, kind)
    approx = np.asarray(
        markov_fbm_covariance(markov_fbm(hurst, num_components, kind=kind), GRID, GRID)
    )
    return float(np.sqrt(np.mean((approx - exact) ** 2)))


@pytest.mark.parametrize("hurst", [0.2, 0.3, 0.5, 0.7])
def test_type_one_covariance_error_falls_with_components(hurst):
    # Exact: 0.5 (t^2H + s^2H - |t - s|^2H). The default grid widens with K, so the
    # optimal L2 error, and with it the covariance error, must fall at every step.
    errors = [_rms_error(hurst, k, "I") for k in (1, 2, 4, 6, 8)]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors
    # Measured 0.0106 (H=0.2), 0.0012, 0.0004, 0.0086 (H=0.7) at K=8: an order of
    # magnitude below K=1 (ratio 0.12 at H=0.2, the hardest here) and small against
    # the variance 1 at t=1.
    assert errors[-1] < 0.15 * errors[0]
    assert errors[-1] < 0.02


@pytest.mark.parametrize("hurst", [0.3, 0.7])
def test_type_two_covariance_converges(hurst):
    # Riemann-Liouville oracle: a hypergeometric closed form (checked at s = t below).
    errors = [_rms_error(hurst, k, "II") for k in (1, 4, 8)]
    assert errors[2] < errors[1] < errors[0]
    assert errors[2] < 0.005


def test_type_two_oracle_variance_closed_form():
    h = 0.3
    t = np.array([0.5, 1.0])
    from scipy.special import gamma

    expected = t ** (2 * h) / (2 * h * gamma(h + 0.5) ** 2)
    np.testing.assert_allclose(np.diag(fbm_covariance(h, t, t, "II")), expected, rtol=1e-10)


def test_half_reduces_to_brownian_motion():
    # H = 1/2: fBM is W, Cov = min(s, t); both kinds converge to it with K.
    exact = np.minimum(GRID[:, None], GRID[None, :])
    for kind in ("I", "II"):
        approx = np.asarray(markov_fbm_covariance(markov_fbm(0.5, 8, kind=kind), GRID, GRID))
        assert np.max(np.abs(approx - exact)) < 0.005, kind


def test_weights_gradient_matches_finite_difference():
    rates = ou_rates(5)
    f = lambda h: jnp.sum(optimal_weights(h, rates) * jnp.arange(1.0, 6.0))
    grad = float(jax.grad(f)(0.3))
    fd = (float(f(0.3 + 1e-3)) - float(f(0.3 - 1e-3))) / 2e-3
    assert grad == pytest.approx(fd, rel=1e-2)


def test_weights_inside_jit_and_vmap():
    rates = ou_rates(4)
    batched = jax.jit(jax.vmap(lambda h: optimal_weights(h, rates)))(jnp.array([0.3, 0.6]))
    np.testing.assert_allclose(batched[0], optimal_weights(0.3, rates), rtol=1e-6)


@pytest.mark.parametrize("method", ["cholesky", "davies-harte"])
def test_exact_samplers_match_covariance(method):
    times = np.arange(1, 33) / 32
    n = 20000
    paths = np.asarray(sample_fbm(jax.random.key(0), 0.3, times, n, method=method))
    exact = fbm_covariance(0.3, times, times)
    # Sample covariance entries have sd <= sqrt(2) * max var / sqrt(n) = 0.01; the
    # maximum over 528 distinct entries stays within 4.5 of those.
    assert np.max(np.abs(np.cov(paths.T) - exact)) < 4.5 * np.sqrt(2 / n)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["I", "II"])
def test_markov_paths_match_their_covariance(kind):
    approx = markov_fbm(0.3, 6, kind=kind)
    n = 20000
    b, y = sample_markov_fbm(jax.random.key(1), approx, GRID, n)
    assert y.shape == (n, len(GRID), 6)
    exact = np.asarray(markov_fbm_covariance(approx, GRID, GRID))
    assert np.max(np.abs(np.cov(np.asarray(b).T) - exact)) < 4.5 * np.sqrt(2 / n) * exact.max()


def test_bad_input():
    with pytest.raises(ValueError, match="hurst"):
        markov_fbm(1.2)
    with pytest.raises(ValueError, match="kind"):
        markov_fbm(0.3, kind="III")
    with pytest.raises(ValueError, match="num_components"):
        ou_rates(0)
    with pytest.raises(ValueError, match="davies-harte"):
        sample_fbm(jax.random.key(0), 0.3, [0.1, 0.3], 2, method="davies-harte")
    with pytest.raises(ValueError, match="positive times"):
        sample_fbm(jax.random.key(0), 0.3, [0.0, 0.3], 2)
