"""Resampling schemes: unbiasedness, exact offspring variances and their ordering.

Every check compares Monte Carlo averages over R independent resampling draws with
closed forms; tolerances are multiples of the Monte Carlo standard error of those
averages, estimated from the same draws.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probkit.smc as smc

R = 20_000  # replicates of each resampling draw
Z = 4.5  # |z| bound; P(|N(0,1)| > 4.5) = 7e-6 per comparison, ~100 comparisons here
WEIGHTS = np.array([0.02, 0.31, 0.07, 0.15, 0.005, 0.195, 0.11, 0.14])


@functools.cache
def _offspring_of(name, n):
    return _offspring(smc.RESAMPLING_SCHEMES[name], WEIGHTS, n)


def _offspring(scheme, weights, n):
    log_w = jnp.log(jnp.asarray(weights, dtype=jnp.float32))
    keys = jax.random.split(jax.random.key(123), R)

    @jax.jit
    def counts(keys):
        idx = jax.vmap(lambda k: scheme(k, log_w, n))(keys)
        return jax.vmap(lambda i: jnp.bincount(i, length=len(weights)))(idx)

    out = np.asarray(counts(keys), dtype=np.float64)
    assert out.shape == (R, len(weights))
    assert np.all(out.sum(axis=1) == n), "every draw must produce exactly n indices"
    return out


def _assert_mean(counts, expected):
    mean = counts.mean(axis=0)
    se = counts.std(axis=0, ddof=1) / np.sqrt(counts.shape[0])
    exact = se == 0
    np.testing.assert_allclose(mean[exact], expected[exact], rtol=1e-6)
    z = (mean[~exact] - expected[~exact]) / se[~exact]
    assert np.all(np.abs(z) < Z), f"offspring means off: z = {z}"


def _assert_var(counts, expected):
    # sd of the sample variance: sqrt((m4 - var^2) / R), m4 the 4th central moment.
    centred = counts - counts.mean(axis=0)
    var = np.mean(centred**2, axis=0)
    se = np.sqrt(np.maximum(np.mean(centred**4, axis=0) - var**2, 1e-12) / counts.shape[0])
    z = (var - expected) / se
    assert np.all(np.abs(z) < Z), f"offspring variances off: z = {z}, var = {var}"


@pytest.mark.parametrize("name", sorted(smc.RESAMPLING_SCHEMES))
@pytest.mark.parametrize("n", [8, 13])
def test_unbiased_offspring(name, n):
    if name == "killing" and n != len(WEIGHTS):
        with pytest.raises(ValueError, match="killing"):
            smc.killing(jax.random.key(0), jnp.log(jnp.asarray(WEIGHTS)), n)
        return
    counts = _offspring_of(name, n)
    _assert_mean(counts, n * WEIGHTS)


def test_multinomial_and_residual_variances_match_closed_forms():
    n = 8
    scaled = n * WEIGHTS
    _assert_var(_offspring_of("multinomial", n), n * WEIGHTS * (1 - WEIGHTS))
    remainder = n - np.floor(scaled).sum()
    q = (scaled - np.floor(scaled)) / remainder
    _assert_var(_offspring_of("residual", n), remainder * q * (1 - q))


@pytest.mark.parametrize("name", ["systematic", "ssp"])
def test_minimal_variance_schemes_give_floor_or_ceil(name):
    n = 13
    counts = _offspring_of(name, n)
    low = np.floor(n * WEIGHTS)
    assert np.all((counts == low) | (counts == low + 1))
    frac = n * WEIGHTS - low
    _assert_var(counts, frac * (1 - frac))


def test_variance_ordering():
    # Known ordering of the total offspring variance (Douc, Cappe & Moulines 2005;
    # Gerber, Chopin & Whiteley 2019): multinomial > residual, multinomial >
    # stratified > systematic = ssp = sum frac (1 - frac), the minimum.
    n = 8
    total = {name: _offspring_of(name, n).var(axis=0).sum() for name in smc.RESAMPLING_SCHEMES}
    frac = n * WEIGHTS - np.floor(n * WEIGHTS)
    minimum = np.sum(frac * (1 - frac))
    assert total["multinomial"] > total["residual"]
    assert total["multinomial"] > total["stratified"] > 1.05 * minimum
    for name in ("systematic", "ssp"):
        np.testing.assert_allclose(total[name], minimum, rtol=0.05)


def test_ssp_and_systematic_at_large_n():
    # 10^5 weights with a huge dynamic range: counts stay floor or floor + 1
    # (the float32 cumulative sum is renormalised) and sum to n.
    n = 100_000
    log_w = 5.0 * jax.random.normal(jax.random.key(1), (n,))
    w = np.exp(np.asarray(log_w, np.float64) - np.max(np.asarray(log_w, np.float64)))
    w /= w.sum()
    for scheme in (smc.systematic, smc.ssp):
        idx = jax.jit(scheme, static_argnums=2)(jax.random.key(2), log_w, n)
        counts = np.bincount(np.asarray(idx), minlength=n)
        assert counts.sum() == n
        low = np.floor(n * w)
        off = ~((counts == low) | (counts == low + 1))
        # Only particles whose n*W lies within float32 round-off of an integer may differ.
        dist_to_int = np.abs(n * w - np.round(n * w))
        assert np.all(dist_to_int[off] < 1e-2)


def test_unknown_scheme_is_named_in_the_error():
    with pytest.raises(ValueError, match="systematic"):
        smc.get_resampling("sytematic")


def test_systematic_stays_in_range_when_the_cdf_ends_below_one(monkeypatch):
    # Compiled code may leave the normalised CDF an ulp below 1 at its end; the last
    # offspring must still have an ancestor in range (it was index n: a NaN particle).
    from probkit.smc import _resampling

    n = 1000
    log_w = jax.random.normal(jax.random.key(0), (n,))
    exact = _resampling._cdf

    # Half an offspring short at the end: the last count rounds down for about half
    # the uniforms (an ulp short at N = 10^5 did it for 0.6% of them).
    short = jnp.float32(1 - 0.5 / n)
    monkeypatch.setattr(_resampling, "_cdf", lambda lw: exact(lw) * short)
    for seed in range(20):
        idx = np.asarray(smc.systematic(jax.random.key(seed), log_w, n))
        assert idx.min() >= 0 and idx.max() <= n - 1
        assert np.all(np.diff(idx) >= 0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.int32])
def test_large_prefix_sums_run_apart_with_the_same_result(dtype):
    # From 4096 entries the schemes' prefix sums run inside a conditional on CPU (a
    # fusion boundary); the sums must be those of the plain scan bit for bit, also
    # under vmap, where the conditional becomes a select of two equal results.
    from probkit.smc import _resampling

    n = 3 * _resampling._APART_FROM + 5
    x = jax.random.uniform(jax.random.key(0), (2, n), minval=0.0, maxval=3.0).astype(dtype)
    plain = jax.jit(jax.vmap(_resampling._prefix_sum))(x)
    np.testing.assert_array_equal(jax.jit(_resampling._cumsum)(x[0]), plain[0])
    np.testing.assert_array_equal(jax.jit(jax.vmap(_resampling._cumsum))(x), plain)
    if dtype == jnp.float32:
        np.testing.assert_allclose(plain[0], np.cumsum(np.asarray(x[0], np.float64)), rtol=1e-5)
    else:
        np.testing.assert_array_equal(plain[0], np.cumsum(np.asarray(x[0])))
    if jax.default_backend() == "cpu":
        hlo = jax.jit(_resampling._cumsum).lower(x[0]).as_text()
        assert "stablehlo.case" in hlo
