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


@pytest.mark.parametrize("num", [1000, 4096])
def test_systematic_gives_the_last_offspring_an_ancestor_when_round_off_shortens_the_cdf(
    monkeypatch, num
):
    # Round-off can leave the CDF of the last particle of positive weight below that
    # of a later particle of weight zero (here by half an offspring, an extreme the
    # real sums only approach): the last offspring must still get an ancestor of
    # positive weight, never the zero-weight particle (once a NaN particle).
    from probkit.smc import _resampling

    log_w = jax.random.normal(jax.random.key(0), (num,)).at[-1].set(-jnp.inf)
    if num < _resampling._BLOCKED_FROM:
        exact = _resampling._cumsum

        def longer(x):
            cdf = exact(x)
            return cdf.at[-1].add(0.5 / num * cdf[-1]) if cdf.dtype == jnp.float32 else cdf

        monkeypatch.setattr(_resampling, "_cumsum", longer)
    else:  # the last particle is the last rank of the blocked order (num = 8 m)
        exact = _resampling._blocked_scan

        def longer(x, *args, **kwargs):
            cdf = exact(x, *args, **kwargs)
            if cdf.dtype != jnp.float32:
                return cdf
            return cdf.at[-1, -1].add(0.5 / num * cdf[-1, -1])

        monkeypatch.setattr(_resampling, "_blocked_scan", longer)
    draw = jax.jit(smc.systematic, static_argnums=2)
    for seed in range(20):  # the fallback is needed for the ~half with U > 1/2
        idx = np.asarray(draw(jax.random.key(seed), log_w, num))
        assert idx.min() >= 0 and idx.max() <= num - 2
        assert np.bincount(idx, minlength=num).sum() == num
        if num < _resampling._BLOCKED_FROM:
            assert np.all(np.diff(idx) >= 0)


@pytest.mark.parametrize("name", sorted(smc.RESAMPLING_SCHEMES))
@pytest.mark.parametrize("num", [1000, 100_000])
def test_no_scheme_draws_a_particle_of_weight_zero(name, num):
    # Half the particles have weight zero and the rest a wide range. Before, float32
    # round-off in the cumulative sums gave particles of weight zero a few offspring
    # at N = 10^5 (80-99 in 30 draws of every inverse-CDF scheme and of systematic).
    draw = jax.jit(smc.RESAMPLING_SCHEMES[name], static_argnums=2)
    for seed in range(4):
        k1, k2 = jax.random.split(jax.random.key(seed))
        log_w = 5.0 * jax.random.normal(k1, (num,))
        log_w = jnp.where(jax.random.uniform(k2, (num,)) < 0.5, -jnp.inf, log_w)
        idx = np.asarray(draw(jax.random.key(seed + 100), log_w, num))
        counts = np.bincount(idx, minlength=num)
        assert counts.sum() == num
        assert counts[np.isneginf(np.asarray(log_w))].sum() == 0


def _systematic_reference(key, log_w, n):
    """The documented scheme in float64 NumPy: the blocked order from 4096 particles
    (particle (p % 8) m + p // 8 at rank p) and, from 4096 offspring, offspring k in
    slot (j % 8) ceil(n / 8) + j // 8 with j = 8 ceil(n / 8) - 1 - k."""
    u = float(jax.random.uniform(key, ()))
    lw = np.asarray(log_w, np.float64)
    w = np.exp(lw - lw.max())
    num = len(w)
    if num >= 4096:
        m = -(-num // 8)
        rank = np.arange(8 * m)
        particle = (rank % 8) * m + rank // 8
        w = np.concatenate([w, np.zeros(8 * m - num)])[particle]
    else:
        particle = np.arange(num)
    cdf = np.cumsum(w) / w.sum()
    ancestors = particle[np.searchsorted(cdf, (np.arange(n) + u) / n, side="right")]
    if n < 4096:
        return ancestors
    columns = -(-n // 8)
    j = 8 * columns - 1 - np.arange(n)
    return ancestors[np.argsort((j % 8) * columns + j // 8)]


@pytest.mark.parametrize(
    ("num", "n"), [(100, 5000), (4096, 100), (5000, 4099), (12_345, 6000), (100_003, 100_003)]
)
def test_systematic_follows_its_documented_order(num, n):
    # Float32 against float64 sums move an offspring to a neighbouring particle where
    # a point lies within round-off of a CDF step: ~0.5% of them at N = 10^5 (the
    # natural order's float32 sums do the same). Any other order agrees on ~1/N.
    log_w = 2.0 * jax.random.normal(jax.random.key(num), (num,))
    key = jax.random.key(n)
    got = np.asarray(jax.jit(smc.systematic, static_argnums=2)(key, log_w, n))
    expected = _systematic_reference(key, log_w, n)
    assert got.shape == (n,)
    assert np.mean(got == expected) > 0.99
    moved = np.abs(np.bincount(got, minlength=num) - np.bincount(expected, minlength=num))
    assert moved.sum() <= 0.02 * n


def test_systematic_in_blocked_order_is_unbiased():
    # From 4096 particles the order of the strata changes, not the law of the counts:
    # floor(n W) or floor(n W) + 1, the latter with probability frac(n W).
    num = 4104
    log_w = jnp.log(jax.random.uniform(jax.random.key(3), (num,), minval=0.2, maxval=2.0))
    keys = jax.random.split(jax.random.key(4), 1000)
    idx = jax.jit(jax.vmap(lambda k: smc.systematic(k, log_w, num)))(keys)
    counts = np.asarray(jax.vmap(lambda i: jnp.bincount(i, length=num))(idx), np.float64)
    w = np.exp(np.asarray(log_w, np.float64))
    scaled = num * w / w.sum()
    low = np.floor(scaled)
    assert np.all((counts == low) | (counts == low + 1))
    watched = np.arange(0, num, 200)  # 21 particles, across rows and columns
    _assert_mean(counts[:, watched], scaled[watched])
    # vmap turns the conditionals that place the scans into selects: same draws.
    np.testing.assert_array_equal(idx[1], smc.systematic(keys[1], log_w, num))


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
