"""The amortised network: its closed-form moment features against expm, and the shipped
network's rates, uncertainties and initial distribution against the truth on simulated
data. (The flashing-ratchet check against NUTS on the same data is in test_posterior.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import probkit.models.mjp as mjp
import pytest
import scipy.linalg

Q3 = np.array([[-1.5, 1.0, 0.5], [0.3, -0.8, 0.5], [1.2, 0.8, -2.0]])
INITIAL = np.array([0.6, 0.3, 0.1])
NUM_PATHS = 300
# one compiled estimator for the test (the library leaves jit to its callers)
moment_generators = jax.jit(mjp.moment_generators, static_argnames="pseudo_count")


def test_moment_generators_invert_expm_with_and_without_label_noise():
    dt = 0.3
    # expected pair counts of 10^6 pairs: C = diag(p0) expm(Q dt), observed E^T C E
    counts = 1e6 * INITIAL[:, None] * scipy.linalg.expm(Q3 * dt)
    for noise in (0.0, 0.08):
        emission = (1 - noise) * np.eye(3) + noise / 2 * (1 - np.eye(3))
        padded = np.zeros((5, 5))  # two padding states
        padded[:3, :3] = emission.T @ counts @ emission
        est = np.asarray(moment_generators(jnp.asarray(padded), dt, 3, noise, pseudo_count=0.0))
        # float32 counts and eigendecomposition: relative error ~1e-6 x condition number
        np.testing.assert_allclose(est[:3, :3], Q3, atol=2e-3)
        assert np.all(est[3:] == 0) and np.all(est[:, 3:] == 0)
    # the wrong noise level gives a different generator (the network's noise signal)
    wrong = np.asarray(moment_generators(jnp.asarray(padded), dt, 3, 0.0, pseudo_count=0.0))
    assert np.abs(wrong[:3, :3] - Q3).max() > 0.2
    # pair counts and mean lag on a tiny example, lag 2
    times = jnp.array([[0.0, 1.0, 3.0, 4.0], [0.0, 2.0, 2.5, 9.0]])
    y = jnp.array([[0, 1, 1, 2], [2, 2, 0, 0]])
    counts2, mean_lag = mjp.pair_counts(times, y, jnp.array([True, False]), 3, 2)
    assert np.asarray(counts2).tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert float(mean_lag) == pytest.approx(3.0)


def _snapshots(label_noise, seed):
    """300 paths x 50 snapshots on [0, 10], drawn in numpy from scipy's expm(Q dt): an
    independent simulator (and no compilation)."""
    rng = np.random.default_rng(seed)
    times = np.linspace(0.0, 10.0, 50)
    cumulative = np.cumsum(scipy.linalg.expm(Q3 * (times[1] - times[0])), axis=1)
    states = [rng.choice(3, NUM_PATHS, p=INITIAL)]
    for _ in times[1:]:
        u = rng.uniform(size=NUM_PATHS)[:, None]
        states.append(np.minimum((u > cumulative[states[-1]]).sum(1), 2))
    y = np.stack(states, 1)
    flip = rng.uniform(size=y.shape) < label_noise
    y = np.where(flip, (y + rng.integers(1, 3, y.shape)) % 3, y)  # uniformly to another
    return times, y


@pytest.mark.parametrize("label_noise", [0.0, 0.08])
def test_shipped_network_infers_rates_and_initial_distribution(label_noise):
    times, y = _snapshots(label_noise, seed=7)
    est = mjp.amortized_posterior(times, y, 3)
    # Initial distribution: no estimator beats the binomial error of 300 first labels,
    # sd sqrt(p (1 - p) / 300) <= 0.029; mislabelling at 0.08 inflates it by at most
    # 1 / (1 - 1.5 x 0.08) = 1.14 when undone. Allow 4 such sd (the shipped network's
    # held-out RMSE of initial probabilities is 0.03, see train_amortized's metrics).
    sd_best = np.sqrt(INITIAL * (1 - INITIAL) / NUM_PATHS) / (1 - 1.5 * label_noise)
    assert np.all(np.abs(est.initial - INITIAL) < 4 * sd_best), est.initial
    assert est.initial.sum() == pytest.approx(1.0)
    # its Dirichlet is calibrated: the truth within 4 of its own sd, which is not wider
    # than twice the best possible
    assert np.all(np.abs(est.initial - INITIAL) < 4 * est.initial_sd), est.initial_sd
    assert np.all(est.initial_sd < 2 * sd_best)
    draws = np.asarray(est.sample_initial(jax.random.key(0), 4000))
    np.testing.assert_allclose(draws.std(0), est.initial_sd, rtol=0.1)  # 4000 draws: ~1 %
    # Rates: 6 log-rates, each within 4 of the network's sd (fails with prob. < 4e-4 for
    # a calibrated Gaussian), and the rate RMSE below 0.15. Reason: on 300 x 50 snapshots
    # of this process the classical estimator that is told the noise level (scipy's logm
    # of the noise-corrected empirical transition matrix) scores an RMSE of 0.03-0.08
    # over seeds, and the rates' posterior sd is ~0.05-0.15; the issue's target for the
    # network is 2x the RMSE of NUTS.
    off = ~np.eye(3, dtype=bool)
    z = (est.log_rate_mean - np.log(np.where(off, Q3, 1.0)))[off] / est.log_rate_sd[off]
    assert np.all(np.abs(z) < 4.0), z
    rmse = np.sqrt(np.mean((est.rate_matrix - Q3)[off] ** 2))
    assert rmse < 0.15, rmse
