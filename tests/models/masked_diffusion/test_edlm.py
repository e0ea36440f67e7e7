"""EDLM's importance-sampling correction against enumerated targets.

With proposal correction and the energy -log p of the target itself, every step draws
its clean sequence from p restricted to the revealed tokens, so the sampler is exact
whatever the denoiser and however few steps, up to the O(1/K) bias of self-normalised
importance sampling with K candidates. Without it, a step targets the factorised
proposal prod_i p(x0^i | x_t) times exp(-E(x0)): from all-mask in one step with the
exact denoiser, the product of the exact marginals tilted by exp(-E). TV tolerances:
the NumPy multinomial floor (mean + 4 sd) for K = 256; K = 1 must be far outside it.
"""

import jax.numpy as jnp
import numpy as np
import probkit.models.masked_diffusion as md
import pytest
from jax.tree_util import Partial

V, L, N = 3, 6, 6000
DIST = md.random_markov_chain(0, vocab_size=V, length=L)


def _table_energy(log_table, x0):
    index = jnp.sum(x0 * V ** jnp.arange(L - 1, -1, -1))
    return -log_table[index]


def _uniform(x):
    return jnp.zeros((x.shape[0], V)) + 0.0 * x[:, None]  # depends on x: no constant folding


def _tv(samples, dist):
    return md.total_variation(md.empirical_distribution(np.asarray(samples), dist), dist.probs)


def test_proposal_corrected_energy_makes_one_step_exact():
    # One step reveals all six tokens at once: plain sampling draws the product of the
    # exact marginals; corrected by the energy -log p it draws p itself.
    energy = Partial(_table_energy, jnp.log(jnp.asarray(DIST.probs, jnp.float32)))
    mean, sd = md.tv_noise_floor(DIST, N)
    x0 = md.initial_sequences(N, L, V)
    tvs = {}
    for k in (1, 256):
        out = md.energy_corrected_sample(
            md.exact_denoiser(DIST), energy, x0, mask_token=V, num_steps=1, num_candidates=k,
            proposal_correction=True, seed=k,
        )  # fmt: skip
        tvs[k] = _tv(out.sequences, DIST)
    assert tvs[1] > mean + 10 * sd
    assert tvs[256] < mean + 4 * sd
    assert int(out.num_network_calls) == 1 and out.ess.shape == (1, N)
    # correct_above = 1: the only step (t = 1) is left uncorrected, as K = 1 would be.
    skipped = md.energy_corrected_sample(
        md.exact_denoiser(DIST), energy, x0, mask_token=V, num_steps=1, num_candidates=256,
        proposal_correction=True, correct_above=1.0, seed=1,
    )  # fmt: skip
    assert abs(_tv(skipped.sequences, DIST) - tvs[1]) < 6 * sd
    assert np.all(np.asarray(skipped.ess) == 1.0)


@pytest.mark.slow
def test_correction_of_a_uniform_denoiser_improves_with_candidates():
    energy = Partial(_table_energy, jnp.log(jnp.asarray(DIST.probs, jnp.float32)))
    _, sd = md.tv_noise_floor(DIST, N)
    tvs = []
    for k in (1, 16, 256):
        out = md.energy_corrected_sample(
            _uniform, energy, md.initial_sequences(N, L, V), mask_token=V, num_steps=2,
            num_candidates=k, proposal_correction=True, seed=k,
        )  # fmt: skip
        tvs.append(_tv(out.sequences, DIST))
    # Self-normalised importance sampling: the bias shrinks as K grows.
    assert tvs[0] - tvs[1] > 6 * sd and tvs[1] - tvs[2] > 6 * sd


def test_residual_energy_tilts_the_factorised_proposal():
    # Without proposal correction a step targets prod_i p(x0^i | x_t) exp(-E(x0)); in one
    # step from all-mask that is the product of the exact marginals, tilted.
    beta = 0.8
    marginals = [np.bincount(DIST.sequences[:, i], DIST.probs, V) for i in range(L)]
    product = np.prod([marginals[i][DIST.sequences[:, i]] for i in range(L)], axis=0)
    tilted = product * np.exp(beta * (DIST.sequences == 0).sum(1))
    target = md.SequenceDistribution(DIST.sequences, tilted / tilted.sum(), V)
    mean, sd = md.tv_noise_floor(target, N)
    out = md.energy_corrected_sample(
        md.exact_denoiser(DIST), lambda x0: -beta * jnp.sum(x0 == 0), md.initial_sequences(N, L, V),
        mask_token=V, num_steps=1, num_candidates=256,
    )  # fmt: skip
    assert _tv(out.sequences, target) < mean + 4 * sd
    untilted = md.SequenceDistribution(DIST.sequences, product, V)
    assert _tv(out.sequences, untilted) > mean + 10 * sd


def test_energy_errors():
    x0 = md.initial_sequences(2, L, V)
    with pytest.raises(ValueError, match="energy"):
        md.energy_corrected_sample(_uniform, 3.0, x0, mask_token=V)
    with pytest.raises(FloatingPointError, match="energy"):
        md.energy_corrected_sample(_uniform, lambda x0: jnp.nan, x0, mask_token=V, num_steps=2)
