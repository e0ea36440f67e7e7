"""Gillespie paths against expm(Qt) and the stationary distribution; MLE consistency."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import probkit.models.mjp as mjp
import pytest
import scipy.linalg
import scipy.stats

Q3 = np.array([[-1.5, 1.0, 0.5], [0.3, -0.8, 0.5], [1.2, 0.8, -2.0]])

# one compiled simulator for every test (the library leaves jit to its callers)
simulate = jax.jit(mjp.simulate, static_argnums=2, static_argnames="max_jumps")
simulate_paths = jax.jit(mjp.simulate_paths, static_argnums=2, static_argnames="max_jumps")


def _frequencies(observations, k):
    return np.stack([(np.asarray(observations) == s).mean(0) for s in range(k)], -1)


def _max_binomial_z(freq, prob, n):
    # each frequency is a binomial proportion: sd sqrt(p (1 - p) / n)
    return np.max(np.abs(freq - prob) / np.sqrt(prob * (1 - prob) / n))


def test_snapshots_follow_the_transient_and_stationary_laws():
    n = 4000
    initial = np.array([1.0, 0.0, 0.0])
    process = mjp.MJP(jnp.asarray(Q3), jnp.asarray(initial))
    times = jnp.array([0.0, 0.4, 1.0, 2.5, 30.0])
    y = simulate(jax.random.key(0), process, n, times, max_jumps=100)
    exact = np.stack([initial @ scipy.linalg.expm(Q3 * t) for t in np.asarray(times)[1:]])
    freq = _frequencies(y, 3)[1:]
    # 12 binomial proportions: |z| < 4 fails with probability < 1e-3 under the null
    assert _max_binomial_z(freq, exact, n) < 4.0
    pi = np.asarray(mjp.stationary_distribution(jnp.asarray(Q3)))
    assert _max_binomial_z(freq[-1], pi, n) < 4.0
    # the exact skeleton sampler has the same law
    y2 = mjp.sample_snapshots(jax.random.key(1), process, n, times)
    assert _max_binomial_z(_frequencies(y2, 3)[1:], exact, n) < 4.0


def test_irregular_per_path_grids_and_label_noise():
    n, eps = 3000, 0.2
    process = mjp.MJP(jnp.asarray(Q3), jnp.array([0.0, 0.0, 1.0]))
    times = jnp.sort(jax.random.uniform(jax.random.key(3), (n, 4), maxval=2.0), axis=1)
    y = simulate(jax.random.key(4), process, n, times, label_noise=eps, max_jumps=100)
    # P(y = j) at each path's own last time, averaged over paths, with the noise channel
    emission = np.asarray(mjp.emission_matrix(3, eps))
    # expm(Q t) = V exp(L t) V^-1 from numpy's eigendecomposition, for all paths at once
    eigenvalues, vectors = np.linalg.eig(Q3)
    last = np.asarray(times[:, -1], float)
    expm = np.einsum(
        "ik,nk,kj->nij", vectors, np.exp(np.outer(last, eigenvalues)), np.linalg.inv(vectors)
    ).real
    laws = expm[:, 2, :] @ emission
    freq = np.stack([(np.asarray(y[:, -1]) == s).mean() for s in range(3)])
    prob = laws.mean(0)
    assert _max_binomial_z(freq, prob, n) < 4.0


def test_exceeding_max_jumps_is_an_error_not_a_wrong_path():
    process = mjp.MJP(jnp.asarray(Q3))
    # under jax.jit equinox reports through a JaxRuntimeError carrying the same message
    with pytest.raises((eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError), match="max_jumps"):
        jax.block_until_ready(
            simulate(jax.random.key(0), process, 5, jnp.array([0.0, 50.0]), max_jumps=5)
        )
    paths = simulate_paths(jax.random.key(0), process, 5, 50.0, max_jumps=5)
    assert bool(paths.truncated.all())
    with pytest.raises(ValueError, match="truncated"):
        mjp.maximum_likelihood(paths, 3)
    # (the shapes of the MLE test below: its compiled simulator is reused)
    complete = simulate_paths(jax.random.key(0), process, 1600, 5.0, max_jumps=60)
    # 1600 paths of length 5: sd of each rate <= sqrt(1.2 / 1280) < 0.031; 0.16 is 5 sd
    np.testing.assert_allclose(mjp.maximum_likelihood(complete, 3), Q3, atol=0.16)


def test_bad_grids_are_rejected_before_compiling():
    process = mjp.MJP(jnp.asarray(Q3))
    with pytest.raises(ValueError, match="non-decreasing"):
        mjp.simulate(jax.random.key(0), process, 2, jnp.array([0.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="label_noise"):
        mjp.simulate(jax.random.key(0), process, 2, jnp.array([0.0, 1.0]), label_noise=1.5)


def test_maximum_likelihood_error_shrinks_like_one_over_sqrt_n():
    process = mjp.MJP(jnp.asarray(Q3))
    off = ~np.eye(3, dtype=bool)
    statistics = jax.jit(mjp.jump_statistics, static_argnums=1)
    chi2 = []
    for n, seeds in ((100, range(4)), (1600, range(4))):
        stats_n = []
        for seed in seeds:
            paths = simulate_paths(jax.random.key(seed), process, n, 5.0, max_jumps=60)
            assert not bool(paths.truncated.any())
            counts, holding = (np.asarray(s) for s in statistics(paths, 3))
            q_hat = counts / holding[:, None]  # = maximum_likelihood(paths, 3) off the diagonal
            # asymptotic sd of q_ij-hat is sqrt(q_ij / T_i) (inverse Fisher information)
            z = (q_hat - Q3) / np.sqrt(np.abs(Q3) / holding[:, None])
            stats_n.append(np.sum(z[off] ** 2))
        chi2.append(np.sum(stats_n))
    df = 6 * 4
    lo, hi = scipy.stats.chi2.ppf([0.0005, 0.9995], df)
    # at both sizes the standardised error is chi2(24): the raw error scales as 1/sqrt(n)
    assert lo < chi2[0] < hi and lo < chi2[1] < hi
