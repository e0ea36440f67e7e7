"""The step-wise Feynman-Kac model, its baselines and the host loop, against exact answers.

The toy: a solution is a run of coin flips (heads with probability ``P_HEADS``) that
ends at the first tails or after ``T`` flips. Its answer is the number of heads, its
reward a function of that number. Every target below is computed by enumerating the
``T + 1`` possible solutions, not by the code under test.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probkit.smc as smc
from probkit.scaling import (
    StepModel,
    beam_search,
    best_of_n,
    host_particle_filter,
    majority_vote,
    particle_filter,
    self_consistency,
    step_feynman_kac,
    weighted_majority_vote,
)

T = 4
P_HEADS = 0.6


def _coin_model(reward_fn, *, host=False):
    xp = np if host else jnp

    def init(key, n):
        return {
            "heads": xp.zeros(n, np.int32),
            "ended": xp.zeros(n, bool),
            "steps": xp.zeros(n, np.int32),
        }

    def propose(key, t, s):
        if host:
            rng = np.random.default_rng(np.asarray(jax.random.key_data(key)))
            flip = rng.random(len(s["heads"])) < P_HEADS
        else:
            flip = jax.random.bernoulli(key, P_HEADS, s["heads"].shape)
        live = ~s["ended"]
        return {
            "heads": s["heads"] + (flip & live),
            "ended": s["ended"] | ~flip,
            "steps": s["steps"] + live,
        }

    return StepModel(
        init=init,
        propose=propose,
        score=lambda t, s: reward_fn(s["heads"]),
        is_done=lambda s: s["ended"] | (s["steps"] >= T),
        answer=lambda s: s["heads"],
        max_steps=T,
    )


def _exact_law():
    """P(number of heads = k) for k = 0..T (stop at the first tails or after T flips)."""
    law = np.array([P_HEADS**k * (1 - P_HEADS) for k in range(T)] + [P_HEADS**T])
    assert np.isclose(law.sum(), 1.0)
    return law


@pytest.mark.slow
def test_particle_filter_with_difference_potential_targets_the_tilted_law():
    # With log G_t = r_t - r_{t-1} the potentials telescope: the particles target
    # p(k) exp(r(k)), whatever the resampling schedule (here adaptive, ESS < N/2).
    reward = lambda k: 0.7 * k  # noqa: E731
    law = _exact_law()
    ks = np.arange(T + 1)
    tilted = law * np.exp(0.7 * ks)
    tilted /= tilted.sum()
    exact_mean = float(tilted @ ks)

    fk = step_feynman_kac(_coin_model(reward), "difference")

    def estimate(key):
        r = smc.loop(key, fk, num_particles=256, resampling_fn=smc.systematic, ess_threshold=0.5)
        return jnp.sum(jnp.exp(r.log_weights) * r.particles.state["heads"])

    estimates = np.asarray(jax.jit(jax.vmap(estimate))(jax.random.split(jax.random.key(0), 200)))
    # 200 independent runs: their mean is within 4 standard errors of the exact mean
    # (SMC's O(1/N) bias at N = 256 is far below that).
    se = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean() - exact_mean) < 4 * se + 1e-3, (estimates.mean(), exact_mean, se)


def test_budget_counts_proposals_to_live_particles_only():
    model = _coin_model(lambda k: 1.0 * k)
    n = 64
    for ess_threshold in (0.0, 1.0):
        r = particle_filter(
            jax.random.key(1), model, n, potential="softmax", ess_threshold=ess_threshold
        )
        if ess_threshold == 0.0:
            # Without resampling each particle's own step count is its share.
            assert int(r.num_proposals) == int(r.states["steps"].sum())
        assert n <= int(r.num_proposals) <= n * T
        # Finished particles stayed finished: no particle flipped after a tails.
        assert bool(jnp.all(r.states["steps"] <= T))
        assert int(r.num_steps) <= T


@pytest.mark.slow
def test_best_of_n_with_exact_verifier_matches_closed_form():
    # Verifier: 1 when all T flips are heads. P(best-of-N finds it) = 1 - (1 - q)^N.
    q = P_HEADS**T
    model = _coin_model(lambda k: (k == T).astype(float))
    n, reps = 4, 400
    answers = jax.jit(jax.vmap(lambda k: best_of_n(k, model, n).answer))(
        jax.random.split(jax.random.key(2), reps)
    )
    freq = float(np.mean(np.asarray(answers) == T))
    p = 1 - (1 - q) ** n
    assert abs(freq - p) < 4 * np.sqrt(p * (1 - p) / reps), (freq, p)


@pytest.mark.slow
def test_self_consistency_matches_enumerated_vote_probability():
    # N = 3 votes over the answer law: the majority answer (ties to the first drawn)
    # is 0 with a probability computed by enumerating all 5^3 outcomes.
    law = _exact_law()
    n, reps = 3, 600
    p0 = 0.0
    for combo in itertools.product(range(T + 1), repeat=n):
        counts = np.bincount(combo, minlength=T + 1)
        best = max(combo, key=lambda a: (counts[a], -combo.index(a)))
        p0 += np.prod(law[list(combo)]) * (best == 0)
    model = _coin_model(lambda k: jnp.zeros(k.shape))
    answers = jax.jit(jax.vmap(lambda k: self_consistency(k, model, n).answer))(
        jax.random.split(jax.random.key(3), reps)
    )
    freq = float(np.mean(np.asarray(answers) == 0))
    assert abs(freq - p0) < 4 * np.sqrt(p0 * (1 - p0) / reps), (freq, p0)


def test_beam_search_keeps_the_best_partial_solutions():
    # Reward = heads so far: with 4 beams x 4 expansions and P(heads) = 0.6 every step
    # keeps a head-only beam unless all 16 expansions of the kept beams fail.
    model = _coin_model(lambda k: k.astype(float))
    r = beam_search(jax.random.key(4), model, 16, expansions=4, potential="softmax")
    assert int(r.answer) == T
    with pytest.raises(ValueError, match="multiple of expansions"):
        beam_search(jax.random.key(4), model, 10, expansions=4)


@pytest.mark.slow
def test_host_loop_targets_the_same_law_as_the_jitted_loop():
    reward = lambda k: 0.7 * k  # noqa: E731
    law = _exact_law()
    ks = np.arange(T + 1)
    tilted = law * np.exp(0.7 * ks)
    tilted /= tilted.sum()
    model = _coin_model(reward, host=True)
    estimates = []
    for k in jax.random.split(jax.random.key(5), 40):
        r = host_particle_filter(k, model, 128, potential="difference", ess_threshold=0.5)
        estimates.append(float(jnp.sum(jnp.exp(r.log_weights) * r.answers)))
    estimates = np.array(estimates)
    se = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean() - tilted @ ks) < 4 * se + 2e-3


def test_votes_and_bad_arguments():
    assert int(majority_vote(jnp.array([-1, -1]))) == -1
    log_w = jnp.log(jnp.array([0.6, 0.2, 0.2]))
    assert int(weighted_majority_vote(jnp.array([1, 2, 2]), log_w)) == 1
    model = _coin_model(lambda k: 1.0 * k)
    with pytest.raises(ValueError, match="num_particles"):
        particle_filter(jax.random.key(0), model, 0)
    with pytest.raises(ValueError, match="selection"):
        particle_filter(jax.random.key(0), model, 4, selection="best")
    with pytest.raises(ValueError, match="potential"):
        particle_filter(jax.random.key(0), model, 4, potential="exp")
    with pytest.raises(ValueError, match="temperature"):
        particle_filter(jax.random.key(0), model, 4, potential="softmax", temperature=0.0)
    with pytest.raises(TypeError, match="StepModel"):
        particle_filter(jax.random.key(0), object(), 4)
