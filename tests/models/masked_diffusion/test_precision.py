"""Categorical sampling precision: the float32 Gumbel truncation (Zheng et al. 2024).

Case: one dominant class (logit 0) and 7 tail classes at logit -17, as a masked token's
"stay masked" class dominates its token classes in a step-wise sampler with many steps.
The exact tail probability is 7 e^-17 = 2.90e-7. JAX's float32 Gumbel is -log(-log u)
with u on the grid k 2^-23, so it never exceeds 15.94; the law of float32 Gumbel-max on
this case is computed here exactly by enumerating all 2^23 grid values (NumPy, float32
arithmetic): tail probability 0.48e-7, 83% below the truth. Counts of tail draws are
Poisson; the tests use exact Poisson tail probabilities (scipy) at the 1e-3 level:
float32 draws (5.2e7 rows) follow the float32 law and not the exact one, float64 draws
(1.05e8 rows) the exact law and not the float32 one.
"""

import jax
import jax.numpy as jnp
import numpy as np
import probkit.models.masked_diffusion as md
import pytest
from scipy import stats

from probkit._threefry import cpu_fast_key

GAP, TAIL = 17.0, 7
ROWS, CHUNKS = 2**19, 100  # 100 chunks of 2^19 rows of 8 classes: 4.2e8 Gumbel draws


def _float32_gumbel_grid():
    k = np.arange(2**23, dtype=np.float64)
    tiny = np.finfo(np.float32).tiny
    u = np.maximum(tiny, (k * 2.0**-23 * (1.0 - tiny) + tiny).astype(np.float32))
    return -np.log(-np.log(u)).astype(np.float32)


def _float32_tail_probability():
    values, counts = np.unique(_float32_gumbel_grid(), return_counts=True)
    cdf = np.cumsum(counts / 2.0**23)
    # P(max of TAIL tail Gumbels = values[i]) times P(dominant Gumbel < values[i] - GAP).
    max_pmf = np.diff(np.concatenate([[0.0], cdf**TAIL]))
    shifted = (values - np.float32(GAP)).astype(np.float32)
    below = np.concatenate([[0.0], cdf])[np.searchsorted(values, shifted, side="left")]
    return float(np.sum(max_pmf * below))


def _count_tail(precision, chunks):
    logits = jnp.concatenate([jnp.zeros(1), jnp.full(TAIL, -GAP)])

    @jax.jit
    def run(key):
        def body(total, key):
            draws = md.categorical(key, jnp.broadcast_to(logits, (ROWS, TAIL + 1)), precision)
            return total + jnp.sum(draws != 0, dtype=jnp.int32), None

        return jax.lax.scan(body, jnp.zeros((), jnp.int32), jax.random.split(key, chunks))[0]

    return int(run(cpu_fast_key(jax.random.key(11))))


def test_float64_needs_x64_scope_and_errors_clearly():
    with pytest.raises(ValueError, match="enable_x64"):
        md.categorical(jax.random.key(0), jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="precision"):
        md.categorical(jax.random.key(0), jnp.zeros((2, 3)), "bfloat16")


def test_float64_path_uses_float64_gumbel_noise():
    # The draws are exactly the argmax of float64 logits plus JAX's float64 Gumbel noise
    # for the same key (not a float32 draw silently widened).
    logits = jnp.log(jnp.array([0.2, 0.3, 0.5]))
    key = jax.random.key(3)
    with jax.enable_x64(True):
        draws = md.categorical(key, jnp.broadcast_to(logits, (50_000, 3)))
        noise = jax.random.gumbel(key, (50_000, 3), jnp.float64)
        assert noise.dtype == jnp.float64 and float(noise.max()) > 10.0
        np.testing.assert_array_equal(draws, jnp.argmax(logits + noise, axis=-1))
    freq = np.bincount(np.asarray(draws), minlength=3) / 50_000
    assert np.all(np.abs(freq - [0.2, 0.3, 0.5]) < 4 * np.sqrt(0.25 / 50_000))


def test_float32_noise_is_capped_and_float32_law_is_truncated():
    grid_max = float(_float32_gumbel_grid().max())
    assert abs(grid_max - 15.942) < 1e-3
    noise = jax.random.gumbel(jax.random.key(0), (2**22,), jnp.float32)
    assert float(noise.max()) <= grid_max
    assert _float32_tail_probability() < 0.2 * TAIL * np.exp(-GAP)


def test_driver_scopes_float64_to_sampling_and_network_stays_float32():
    seen = []

    def denoiser(x):
        logits = jnp.zeros((x.shape[0], 3)) + jnp.sin(x[:, None].astype(jnp.float32))
        seen.append(logits.dtype)
        return logits

    md.sample(denoiser, md.initial_sequences(4, 5, 3), mask_token=3)
    assert seen and all(d == jnp.float32 for d in seen)
    assert jnp.zeros(1).dtype == jnp.float32  # x64 is off again after the call


def test_nan_logits_raise():
    nan = lambda x: jnp.full((x.shape[0], 3), jnp.nan)  # noqa: E731
    with pytest.raises(FloatingPointError, match="NaN"):
        md.sample(nan, md.initial_sequences(2, 4, 3), mask_token=3)


@pytest.mark.slow
def test_float32_sampling_draws_too_few_tail_tokens():
    rows = ROWS * CHUNKS
    exact = TAIL * np.exp(-GAP) / (1.0 + TAIL * np.exp(-GAP))
    truncated = _float32_tail_probability()
    count = _count_tail("float32", CHUNKS)
    # Far too few for the exact law (expected 15.2), as the float32 law predicts (2.5).
    assert stats.poisson.cdf(count, rows * exact) < 1e-3
    assert stats.poisson.cdf(count, rows * truncated) > 1e-3
    assert stats.poisson.sf(count - 1, rows * truncated) > 1e-3


@pytest.mark.slow
def test_float64_sampling_draws_the_exact_tail():
    rows = ROWS * 2 * CHUNKS
    exact = TAIL * np.exp(-GAP) / (1.0 + TAIL * np.exp(-GAP))
    with jax.enable_x64(True):
        count = _count_tail("float64", 2 * CHUNKS)
    # Consistent with the exact law (expected 30.4) and not with the float32 one (5.0).
    assert stats.poisson.cdf(count, rows * exact) > 1e-3
    assert stats.poisson.sf(count - 1, rows * exact) > 1e-3
    assert stats.poisson.sf(count - 1, rows * _float32_tail_probability()) < 1e-3
