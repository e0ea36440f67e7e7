"""Samplers against a known distribution enumerated exactly (no probkit code in the truth).

The target is a 3-token Markov chain of length 6 (729 sequences); its exact denoiser
takes every conditional from the enumeration. Tolerances: the TV between N sampler draws
and the enumerated law is compared with the TV of N exact multinomial draws (NumPy,
200 replicates): "within MC error" means below mean + 4 standard deviations of that
floor; "biased" means above it by more than 6 standard deviations.
"""

import jax
import jax.numpy as jnp
import numpy as np
import probkit.models.masked_diffusion as md
import pytest

N = 10_000
DIST = md.random_markov_chain(0, vocab_size=3, length=6)
V, L = 3, 6


@pytest.fixture(scope="module")
def floor():
    mean, sd = md.tv_noise_floor(DIST, N, replicates=200, seed=1)
    return mean, sd


def _tv(samples, dist=DIST):
    return md.total_variation(md.empirical_distribution(np.asarray(samples), dist), dist.probs)


@pytest.fixture(scope="module")
def denoiser():
    return md.exact_denoiser(DIST)


def test_first_hitting_defaults_sample_the_target_exactly(denoiser, floor):
    out = md.sample(denoiser, md.initial_sequences(N, L, V), mask_token=V)
    assert int(out.num_network_calls) == L and np.all(np.asarray(out.calls_per_chain) == L)
    assert _tv(out.sequences) < floor[0] + 4 * floor[1]


def test_parallel_unmasking_is_biased_by_dependence(denoiser, floor):
    out = md.sample(denoiser, md.initial_sequences(N, L, V), mask_token=V, tokens_per_call=3)
    assert int(out.num_network_calls) == 2
    assert _tv(out.sequences) > floor[0] + 6 * floor[1]


def test_stepwise_error_shrinks_with_steps_and_cache_changes_nothing(denoiser, floor):
    x0 = md.initial_sequences(N, L, V)
    tvs = []
    for steps in (1, 3, 9):
        out = md.sample(
            denoiser, x0, mask_token=V, method="stepwise", num_steps=steps, precision="float32"
        )
        tvs.append(_tv(out.sequences))
    # One step draws every token from its marginal: the product of marginals, whose TV
    # to the target is computed exactly here by enumeration.
    marginals = [np.bincount(DIST.sequences[:, i], DIST.probs, V) for i in range(L)]
    product = np.prod([marginals[i][DIST.sequences[:, i]] for i in range(L)], axis=0)
    assert abs(tvs[0] - md.total_variation(product, DIST.probs)) < 4 * floor[0]
    assert tvs[0] - tvs[1] > 6 * floor[1] and tvs[1] - tvs[2] > 6 * floor[1]

    small = md.initial_sequences(64, L, V)
    cached = md.sample(denoiser, small[:1], mask_token=V, method="stepwise", num_steps=200)
    plain = md.sample(
        denoiser, small[:1], mask_token=V, method="stepwise", num_steps=200, cache=False
    )
    np.testing.assert_array_equal(cached.sequences, plain.sequences)
    assert int(plain.num_network_calls) == 200 and int(cached.num_network_calls) <= L


@pytest.mark.slow
def test_cached_stepwise_many_steps_matches_target(denoiser, floor):
    out = md.sample(
        denoiser, md.initial_sequences(N, L, V), mask_token=V, method="stepwise", num_steps=400,
        schedule="cosine",
    )  # fmt: skip
    # 400 steps: two of six tokens share a step with probability < 6 * 5 / 2 / 400 per
    # pair ordering, so the residual bias is far below the floor.
    assert _tv(out.sequences) < floor[0] + 4 * floor[1]
    assert float(np.mean(out.calls_per_chain)) <= L


def test_infilling_samples_the_exact_conditional(denoiser):
    prompt, positions = np.array([2, 0]), np.array([1, 4])
    x0 = md.initial_sequences(N, L, V, prompt=prompt, prompt_positions=positions)
    out = md.sample(denoiser, x0, mask_token=V)
    seqs = np.asarray(out.sequences)
    assert np.all(seqs[:, positions] == prompt)
    keep = np.all(DIST.sequences[:, positions] == prompt, axis=1)
    conditional = md.SequenceDistribution(
        DIST.sequences, DIST.probs * keep / (DIST.probs * keep).sum(), V
    )
    mean, sd = md.tv_noise_floor(conditional, N, seed=2)
    assert _tv(seqs, conditional) < mean + 4 * sd
    assert int(out.num_network_calls) == L - 2


def test_guidance_scale_zero_is_plain_and_positive_follows_its_formula():
    dist = md.random_markov_chain(5, vocab_size=3, length=2)
    den = md.exact_denoiser(dist)
    prompt_mask = jnp.array([True, False])
    x0 = md.initial_sequences(N, 2, 3, prompt=[1])
    plain = md.sample(den, x0, mask_token=3, seed=3)
    zero = md.sample(md.classifier_free_guidance(den, prompt_mask, 0.0, mask_token=3), x0,
                     mask_token=3, seed=3)  # fmt: skip
    np.testing.assert_array_equal(plain.sequences, zero.sequences)
    w = 2.0
    guided = md.sample(md.classifier_free_guidance(den, prompt_mask, w, mask_token=3), x0,
                       mask_token=3, seed=4)  # fmt: skip
    joint = dist.probs.reshape(3, 3)
    cond, marg = joint[1] / joint[1].sum(), joint.sum(0)
    expected = cond ** (1 + w) * marg ** (-w)
    expected /= expected.sum()
    freq = np.bincount(np.asarray(guided.sequences)[:, 1], minlength=3) / N
    # binomial standard errors of the three frequencies
    assert np.all(np.abs(freq - expected) < 4 * np.sqrt(expected * (1 - expected) / N) + 1e-9)
    assert np.abs(expected - cond).max() > 0.05  # guidance visibly changes the law here


def test_first_hitting_times_law():
    # linear schedule: tau_1 = u**(1/n), so E[tau_1] = n / (n + 1) (sd of the mean < 0.002)
    taus = jax.vmap(lambda k: md.first_hitting_times(k, 5))(
        jax.random.split(jax.random.key(0), 4000)
    )
    assert abs(float(taus[:, 0].mean()) - 5 / 6) < 4 * 0.14 / np.sqrt(4000)
    assert bool(jnp.all(taus[:, 1:] < taus[:, :-1]))


def test_bad_input_errors(denoiser):
    with pytest.raises(ValueError, match="method"):
        md.sample(denoiser, md.initial_sequences(2, L, V), mask_token=V, method="ddim")
    with pytest.raises(ValueError, match="x_init"):
        md.sample(denoiser, np.full((2, L), 7), mask_token=V)
    with pytest.raises(ValueError, match="precision"):
        md.sample(denoiser, md.initial_sequences(2, L, V), mask_token=V, precision="float16")
    with pytest.raises(ValueError, match="tokens_per_call"):
        md.sample(denoiser, md.initial_sequences(2, L, V), mask_token=V, tokens_per_call=0)
    with pytest.raises(ValueError, match="prompt_positions"):
        md.initial_sequences(2, L, V, prompt=[1], prompt_positions=[9])
    with pytest.raises(ValueError, match="mask_token must be >= 1: it is the vocabulary size"):
        md.sample(denoiser, np.zeros((2, L), np.int32), mask_token=0)
    with pytest.raises(ValueError, match="mask_token must be an int"):
        md.sample(denoiser, md.initial_sequences(2, L, V), mask_token=float(V))
