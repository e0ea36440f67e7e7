"""IS, SNIS, ESS and PSIS against closed forms and against ArviZ's PSIS."""

import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

from probkit.importance import (
    effective_sample_size,
    importance_expectation,
    importance_sample,
    log_evidence,
    psis,
    psis_expectation,
    self_normalised_expectation,
)

NUM = 20_000


def test_plain_is_normalised_gaussian_moments():
    # Target N(1, 0.5^2), proposal N(0, 2^2): E[X] = 1, E[X^2] = 1.25.
    samples = importance_sample(
        jax.random.key(0), dist.Normal(1.0, 0.5).log_prob, dist.Normal(0.0, 2.0), NUM
    )
    est = importance_expectation(samples, lambda x: jnp.stack([x, x**2]))
    # Four standard errors of the estimator itself: a false alarm has probability ~6e-5.
    assert np.all(np.abs(np.asarray(est.value) - [1.0, 1.25]) < 4 * np.asarray(est.std_error))


def test_snis_and_log_evidence_of_unnormalised_target():
    # Unnormalised N(1, 0.5^2): Z = 0.5 sqrt(2 pi).
    logp = lambda x: -0.5 * ((x - 1.0) / 0.5) ** 2
    samples = importance_sample(jax.random.key(1), logp, dist.Normal(0.0, 2.0), NUM)
    est = self_normalised_expectation(samples, lambda x: x)
    assert abs(float(est.value) - 1.0) < 4 * float(est.std_error)
    w = np.exp(np.asarray(samples.log_weights, dtype=float))
    # The relative standard error of mean(w) is sd(w) / (sqrt(n) mean(w)).
    rel_se = w.std(ddof=1) / np.sqrt(NUM) / w.mean()
    z_true = 0.5 * np.sqrt(2 * np.pi)
    assert abs(float(jnp.exp(log_evidence(samples.log_weights))) / z_true - 1) < 4 * rel_se


def test_effective_sample_size_matches_closed_form():
    # p = N(0, 1), q = N(0, s^2): E_q[w^2] = s^2 / sqrt(2 s^2 - 1), so ESS / n -> sqrt(2s^2-1)/s^2.
    s = np.sqrt(2.0)
    samples = importance_sample(
        jax.random.key(2), dist.Normal(0.0, 1.0).log_prob, dist.Normal(0.0, s), NUM
    )
    ratio = float(effective_sample_size(samples.log_weights)) / NUM
    expected = np.sqrt(2 * s**2 - 1) / s**2
    # Delta-method standard error of mean(w)^2 / mean(w^2) from the draws themselves.
    w = np.exp(np.asarray(samples.log_weights, dtype=float))
    m1, m2 = w.mean(), (w**2).mean()
    grad = np.stack([2 * m1 / m2 * np.ones_like(w), -(m1**2) / m2**2 * np.ones_like(w)])
    infl = grad[0] * (w - m1) + grad[1] * (w**2 - m2)
    se = infl.std(ddof=1) / np.sqrt(NUM)
    assert abs(ratio - expected) < 4 * se


def test_pytree_positions_jit_and_vmap():
    proposal = {"a": dist.Normal(0.0, 2.0), "b": dist.Normal(jnp.zeros(2), 2.0).to_event(1)}

    def logp(pos):  # a ~ N(1, 1), b ~ N((-1, 2), I)
        return (
            dist.Normal(1.0, 1.0).log_prob(pos["a"])
            + dist.Normal(jnp.array([-1.0, 2.0]), 1.0).log_prob(pos["b"]).sum()
        )

    @jax.jit
    def run(key):
        samples = importance_sample(key, logp, proposal, 5000)
        return self_normalised_expectation(samples, lambda pos: pos)

    est = jax.vmap(run)(jax.random.split(jax.random.key(3), 4))
    assert est.value["a"].shape == (4,) and est.value["b"].shape == (4, 2)
    for value, se, truth in [
        (est.value["a"], est.std_error["a"], 1.0),
        (est.value["b"], est.std_error["b"], jnp.array([-1.0, 2.0])),
    ]:
        assert bool(jnp.all(jnp.abs(value - truth) < 4 * se))


def _narrow_proposal_log_ratios(scale, n=4000, seed=0):
    x = scale * jax.random.normal(jax.random.key(seed), (n,))
    return dist.Normal(0.0, 1.0).log_prob(x) - dist.Normal(0.0, scale).log_prob(x)


def test_psis_agrees_with_arviz():
    # q = N(0, 0.6^2) for p = N(0, 1): tail index k = 1 - 0.36 = 0.64.
    lw = _narrow_proposal_log_ratios(0.6)
    ours = psis(lw, warn=False)
    az_lw, az_k = az.psislw(np.asarray(lw, dtype=float).copy())
    # Same algorithm (Zhang-Stephens GPD fit, Vehtari et al. smoothing), two implementations:
    # they differ in small details (float32 here; even in float64 blackjax and ArviZ 0.23
    # differ by ~0.01 in k-hat on heavier tails), not by Monte Carlo error.
    assert abs(float(ours.pareto_k) - float(az_k)) < 0.02
    assert abs(float(ours.pareto_k) - 0.64) < 0.15  # the GPD fit is noisy at n = 4000
    w_ours, w_az = np.exp(np.asarray(ours.log_weights)), np.exp(az_lw)
    assert np.max(np.abs(w_ours - w_az)) < 0.01 * w_az.max()


def test_psis_warns_in_words_for_heavy_tails_even_under_jit_and_vmap():
    # q = N(0, 0.3^2) for p = N(0, 1): the weights' tail index is k = 1 - 0.3^2 = 0.91 > 0.7.
    heavy = _narrow_proposal_log_ratios(0.3)
    with pytest.warns(RuntimeWarning, match="k-hat"):
        res = psis(heavy)
        jax.block_until_ready(res)
    with pytest.warns(RuntimeWarning, match="k-hat"):
        jax.block_until_ready(jax.jit(psis)(heavy))
    with pytest.warns(RuntimeWarning, match="k-hat"):
        batch = jnp.stack([heavy, _narrow_proposal_log_ratios(0.3, seed=1)])
        jax.block_until_ready(jax.vmap(psis)(batch))
    # q = N(0, 2^2) is wider than p: bounded weights (k < 0.5) and no warning.
    light = _narrow_proposal_log_ratios(2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = psis(light)
        jax.block_until_ready(res)
    assert float(res.pareto_k) < 0.5


def test_psis_expectation_close_to_truth_for_light_tails():
    samples = importance_sample(
        jax.random.key(4), lambda x: -0.5 * (x - 1.0) ** 2, dist.Normal(0.0, 2.0), NUM
    )
    est = psis_expectation(samples, lambda x: x)
    assert float(est.pareto_k) < 0.7
    assert abs(float(est.value) - 1.0) < 4 * float(est.std_error)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="num_samples"):
        importance_sample(jax.random.key(0), lambda x: x, dist.Normal(0.0, 1.0), 0)
    with pytest.raises(TypeError, match="proposal"):
        importance_sample(jax.random.key(0), lambda x: x, "normal", 10)
    with pytest.raises(ValueError, match="shape"):
        psis(jnp.zeros((2, 10)))
