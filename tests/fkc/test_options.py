"""FKC plumbing: the weight formulas of the issue, the resampling schedule, input errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probkit.fkc as fkc
import probkit.smc as smc
from probkit.fkc._correctors import weight_rate
from probkit.sde import VESDE, VPSDE


def _random_scores(n_experts, seed=0):
    keys = jax.random.split(jax.random.key(seed), n_experts)
    return [jax.random.normal(k, (5, 3)) for k in keys]


def test_weight_rate_reduces_to_the_paper_formulas():
    g, div_f = 1.7, -0.4
    s1, s2, s3 = _random_scores(3)
    norm2 = lambda a: np.sum(np.asarray(a) ** 2, axis=-1)
    dot = lambda a, b: np.sum(np.asarray(a) * np.asarray(b), axis=-1)
    # annealing: (beta - 1) div f + g^2 / 2 beta (beta - 1) |s|^2
    beta = 3.0
    expected = (beta - 1) * div_f + 0.5 * g**2 * beta * (beta - 1) * norm2(s1)
    np.testing.assert_allclose(weight_rate([s1], [beta], g, div_f), expected, rtol=1e-5)
    # product of two experts: div f + g^2 <s1, s2>
    expected = div_f + g**2 * dot(s1, s2)
    np.testing.assert_allclose(weight_rate([s1, s2], [1, 1], g, div_f), expected, rtol=1e-5)
    # three experts: 2 div f + g^2 sum_{i<j} <s_i, s_j>
    expected = 2 * div_f + g**2 * (dot(s1, s2) + dot(s1, s3) + dot(s2, s3))
    got = weight_rate([s1, s2, s3], [1, 1, 1], g, div_f)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # guidance (exponents 1 - w, w on s_u, s_c): g^2 / 2 w (w - 1) |s_c - s_u|^2
    w = 2.5
    expected = 0.5 * g**2 * w * (w - 1) * norm2(np.asarray(s2) - np.asarray(s1))
    got = weight_rate([s1, s2], [1 - w, w], g, div_f)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_release_schedule():
    assert fkc.release_schedule(4).all()
    sched = fkc.release_schedule(10, resample_every=3, resample_from=2)
    assert np.flatnonzero(sched).tolist() == [0, 2, 5, 8, 10]


def test_held_weights_reach_the_loop_only_on_schedule():
    # Between hand-overs the loop sees equal weights (so it never resamples there);
    # at a hand-over it sees the sum of the increments held since the last one.
    sde = VPSDE()
    fk = fkc.product(
        [lambda x, t: -x + 1.0, lambda x, t: -x - 1.0],
        sde,
        event_shape=(2,),
        num_steps=6,
        resample_every=3,
        resample_from=1,
    )
    res = smc.run(fk, num_particles=32, ess_threshold=0.5, store_history=True)
    ess = np.asarray(res.ess)
    release = fkc.release_schedule(6, 3, 1)
    assert res.particles.x.shape == (32, 2)
    np.testing.assert_allclose(ess[~release], 32.0, rtol=1e-4)
    assert np.all(ess[1:][release[1:]] < 32.0 - 1e-3)
    assert not res.resampled[1:][~release[:-1]].any()


def test_bad_input_is_named():
    sde = VPSDE()
    score = lambda x, t: -x
    with pytest.raises(ValueError, match="variant"):
        fkc.anneal(score, sde, 2.0, event_shape=(1,), variant="hot")
    with pytest.raises(ValueError, match="beta"):
        fkc.anneal(score, sde, -1.0, event_shape=(1,))
    with pytest.raises(ValueError, match="at least two"):
        fkc.product([score], sde, event_shape=(1,))
    with pytest.raises(ValueError, match="one entry per score"):
        fkc.geometric_mixture([score, score], [1.0], sde, event_shape=(1,))
    with pytest.raises(ValueError, match="positive sum"):
        fkc.geometric_mixture([score, score], [1.0, -2.0], sde, event_shape=(1,))
    with pytest.raises(ValueError, match="w must be"):
        fkc.guidance(score, score, sde, 1.0, event_shape=(1,))
    with pytest.raises(TypeError, match="LinearSDE"):
        fkc.product([score, score], "vp", event_shape=(1,))
    with pytest.raises(ValueError, match="event_shape"):
        fkc.product([score, score], sde, event_shape=2)
    with pytest.raises(ValueError, match="num_steps"):
        fkc.product([score, score], sde, event_shape=(2,), num_steps=0)
    with pytest.raises(ValueError, match="resample_every"):
        fkc.product([score, score], VESDE(), event_shape=(2,), resample_every=0)
    with pytest.raises(ValueError, match="log_weights"):
        fkc.energy_distance(jnp.zeros((3, 2)), jnp.zeros((3, 2)), x_log_weights=jnp.zeros(2))
