"""Learning the global NIW: recovery of a known truth as episodes grow; calibration."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import probkit.models.fewshot as fs
import pytest
from probkit.models.fewshot._niw import _log_evidence_from_statistics

D = 2
TRUTH = fs.NIW(
    jnp.array([1.0, -1.0]),
    jnp.array(0.5),
    jnp.array([[1.0, 0.3], [0.3, 0.5]]) * (7.0 - D - 1),
    jnp.array(7.0),
)


def _negative_log_evidence(flat, unravel, stats):
    prior = fs.niw_from_unconstrained(unravel(flat))
    return -jnp.sum(jax.vmap(lambda *s: _log_evidence_from_statistics(prior, *s))(*stats))


def _fit_and_standard_errors(num_episodes):
    episodes = fs.sample_episodes(
        jax.random.key(num_episodes), TRUTH, num_episodes, num_ways=5, num_shots=5, num_queries=5
    )
    fit = fs.fit_global(jax.random.key(0), episodes)  # the defaults
    stats = fs.group_statistics(episodes)
    flat, unravel = jax.flatten_util.ravel_pytree(fit.params)
    total = lambda f: _negative_log_evidence(f, unravel, stats)
    hessian = np.asarray(jax.hessian(total)(flat), np.float64)
    grad = np.asarray(jax.grad(total)(flat), np.float64)
    # the upper triangle of the Cholesky factor is unused: drop those coordinates
    keep = np.abs(np.diag(hessian)) > 0
    hessian, grad = hessian[np.ix_(keep, keep)], grad[keep]
    truth = np.asarray(jax.flatten_util.ravel_pytree(fs.niw_to_unconstrained(TRUTH))[0])[keep]
    se = np.sqrt(np.diag(np.linalg.inv(hessian)))
    newton_step = np.linalg.solve(hessian, grad)
    return np.asarray(flat)[keep], truth, se, newton_step


@pytest.mark.slow
def test_learned_global_niw_recovers_the_truth_as_episodes_grow():
    """Maximum-likelihood estimates lie within 4.5 asymptotic standard errors (inverse
    observed Fisher information) of the truth, the standard errors shrink like
    1/sqrt(episodes), and the optimiser stopped well inside the statistical error."""
    small = _fit_and_standard_errors(50)
    large = _fit_and_standard_errors(400)
    for est, truth, se, step in (small, large):
        assert np.all(np.abs(step) < 0.25 * se), (step, se)  # converged
        assert np.all(np.abs(est - truth) < 4.5 * se), (est - truth) / se
    ratio = small[2] / large[2]
    np.testing.assert_allclose(ratio, np.sqrt(8.0), rtol=0.3)  # sqrt(400 / 50)
    assert np.linalg.norm(large[0] - large[1]) < np.linalg.norm(small[0] - small[1])


def test_exact_prior_is_calibrated_and_overconfidence_is_detected():
    """Under the true global NIW the Student-t class probabilities are the exact posterior
    predictive, so the ECE is binning noise only (~sqrt(bins / n) ~ 0.01 for 9000
    queries); a plug-in prior that ignores uncertainty (huge kappa and dof) is not."""
    episodes = fs.sample_episodes(
        jax.random.key(5), TRUTH, 600, num_ways=5, num_shots=1, num_queries=3
    )
    probs = fs.predict_proba(TRUTH, episodes.support, episodes.query_x)
    ece = float(fs.expected_calibration_error(probs, episodes.query_y))
    overconfident = TRUTH._replace(
        concentration=jnp.array(1e4), dof=jnp.array(1e4), scale=TRUTH.scale / (7 - 3) * 1e4
    )
    probs_bad = fs.predict_proba(overconfident, episodes.support, episodes.query_x)
    ece_bad = float(fs.expected_calibration_error(probs_bad, episodes.query_y))
    proto = jnp.exp(fs.prototype_log_proba(episodes.support, episodes.query_x))
    ece_proto = float(fs.expected_calibration_error(proto, episodes.query_y))
    print(f"ECE exact NIW {ece:.4f}, plug-in {ece_bad:.4f}, prototype {ece_proto:.4f}")
    assert ece < 0.03
    assert ece_bad > 2 * ece + 0.03


def test_learning_with_mini_batches_improves_the_evidence():
    episodes = fs.sample_episodes(jax.random.key(7), TRUTH, 64, num_shots=3, num_queries=2)
    start = fs.episode_log_evidence(
        fs.niw_from_unconstrained(
            fs.niw_to_unconstrained(TRUTH._replace(concentration=jnp.array(20.0)))
        ),
        episodes.support,
    )
    fit = fs.fit_global(
        jax.random.key(1),
        episodes,
        num_steps=300,
        batch_size=16,
        init=TRUTH._replace(concentration=jnp.array(20.0)),
    )
    after = fs.episode_log_evidence(fit.prior, episodes.support)
    assert float(after.sum()) > float(start.sum())
    assert fit.losses.shape == (300,)
