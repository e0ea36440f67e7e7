"""The generic Feynman-Kac loop: evidence, resampling rule, ancestry, errors, results."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probkit.results as pk_results
import probkit.smc as smc
from probkit.results import SamplingWarning


def _iid_gaussian_fk(num_steps):
    # X_t ~ N(0, 1) independently, G_t(x) = exp(-x^2 / 2): Z = (1/sqrt(2))^T exactly.
    return smc.FeynmanKac(
        init=lambda key, n: jax.random.normal(key, (n,)),
        move=lambda key, t, x: jax.random.normal(key, x.shape),
        log_potential=lambda t, prev, x: -0.5 * x**2,
        num_steps=num_steps,
    )


def test_evidence_is_unbiased_on_the_natural_scale():
    num_steps, reps = 10, 400
    fk = _iid_gaussian_fk(num_steps)
    exact = -0.5 * num_steps * np.log(2.0)
    run = jax.jit(
        jax.vmap(
            lambda k: (
                smc.loop(
                    k, fk, num_particles=50, resampling_fn=smc.systematic, ess_threshold=0.5
                ).log_evidence
            )
        )
    )
    log_z = np.asarray(run(jax.random.split(jax.random.key(0), reps)), np.float64)
    ratio = np.exp(log_z - exact)
    # mean of Z_hat / Z over independent runs is 1; tolerance: 4 standard errors.
    assert abs(ratio.mean() - 1.0) < 4 * ratio.std(ddof=1) / np.sqrt(reps)
    assert ratio.std() > 0  # the estimator is random, so the check above is not vacuous


def test_resampling_rule_follows_ess_threshold():
    fk = _iid_gaussian_fk(6)
    always = smc.run(fk, num_particles=64, ess_threshold=1.0)
    never = smc.run(fk, num_particles=64, ess_threshold=0.0)
    adaptive = smc.run(fk, num_particles=64, ess_threshold=0.5, store_history=True)
    assert always.resampled.tolist() == [False] + [True] * 5
    assert not never.resampled.any()
    # adaptive: resampled at step t exactly when the ESS after step t - 1 was < N / 2
    np.testing.assert_array_equal(adaptive.resampled[1:], adaptive.ess[:-1] < 32)
    assert adaptive.ess.shape == (6,)
    # ESS after each step equals 1 / sum W^2 of the stored weights
    w = np.exp(np.asarray(adaptive.history.log_weights, np.float64))
    np.testing.assert_allclose(adaptive.ess, 1.0 / np.sum(w**2, axis=1), rtol=1e-4)


def test_history_ancestry_traces_particles_back():
    # Particles carry an identity label that moves never change, so the label of
    # particle i at step t must be the label of its ancestor at step t - 1.
    def init(key, n):
        return {"label": jnp.arange(n), "x": jax.random.normal(key, (n,))}

    def move(key, t, p):
        return {"label": p["label"], "x": p["x"] + jax.random.normal(key, p["x"].shape)}

    fk = smc.FeynmanKac(init, move, lambda t, prev, p: -0.5 * p["x"] ** 2, 8)
    result = smc.run(fk, num_particles=32, ess_threshold=0.8, store_history=True)
    hist = result.history
    assert hist.particles["x"].shape == (8, 32)
    assert hist.ancestors.shape == (8, 32)
    assert result.resampled.any()
    labels = np.asarray(hist.particles["label"])
    anc = np.asarray(hist.ancestors)
    for t in range(1, 8):
        np.testing.assert_array_equal(labels[t], labels[t - 1][anc[t]])
        if not result.resampled[t]:
            np.testing.assert_array_equal(anc[t], np.arange(32))
    np.testing.assert_array_equal(hist.particles["x"][-1], result.particles["x"])


def test_log_evidence_sum_is_compensated():
    # 4000 steps of a constant potential: the total must be the float64 sum of the
    # float32 increments to within 2 ulps (naive float32 summation drifts ~1e-3 here).
    log_c = -0.1234567
    fk = smc.FeynmanKac(
        init=lambda key, n: jnp.zeros((n,)),
        move=lambda key, t, x: x,
        log_potential=lambda t, prev, x: jnp.full(x.shape, log_c),
        num_steps=4000,
    )
    result = smc.run(fk, num_particles=4, ess_threshold=0.0)
    exact = np.sum(np.asarray(result.log_evidence_increments, np.float64))
    np.testing.assert_allclose(exact, 4000 * log_c, rtol=1e-6)
    assert abs(float(result.log_evidence) - exact) <= 2 * np.spacing(np.float32(abs(exact)))


def test_bad_input_is_reported_before_running():
    fk = _iid_gaussian_fk(3)
    with pytest.raises(ValueError, match="num_particles"):
        smc.run(fk, num_particles=0)
    with pytest.raises(ValueError, match="ess_threshold"):
        smc.run(fk, num_particles=8, ess_threshold=1.5)
    with pytest.raises(ValueError, match="resampling"):
        smc.run(fk, num_particles=8, resampling="bogus")
    with pytest.raises(TypeError, match="FeynmanKac"):
        smc.run((fk.init, fk.move), num_particles=8)
    bad_shape = fk._replace(log_potential=lambda t, prev, x: jnp.sum(x))
    with pytest.raises(ValueError, match="one value per particle"):
        smc.run(bad_shape, num_particles=8)
    dead = fk._replace(log_potential=lambda t, prev, x: jnp.where(t > 1, jnp.nan, -(x**2)))
    with pytest.raises(FloatingPointError, match="t=2"):
        smc.run(dead, num_particles=8)


def test_summary_and_arviz_use_the_weights():
    fk = smc.FeynmanKac(
        init=lambda key, n: {"mu": jax.random.normal(key, (n, 2))},
        move=lambda key, t, p: p,
        log_potential=lambda t, prev, p: -0.5 * (p["mu"][:, 0] - 1.0) ** 2,
        num_steps=1,
    )
    result = smc.run(fk, num_particles=2000, seed=3)
    w = np.asarray(result.weights, np.float64)
    mu = np.asarray(result.particles["mu"], np.float64)
    summary = result.summary()
    np.testing.assert_allclose(summary.loc["mu[0]", "mean"], np.average(mu[:, 0], weights=w))
    np.testing.assert_allclose(summary.loc["mu[0]", "ess"], 1 / np.sum((w / w.sum()) ** 2))
    idata = result.to_arviz()
    assert idata.attrs["weights"] == "resampled (systematic)"
    assert idata.posterior["mu"].shape == (1, 2000, 2)
    # systematic resampling keeps the weighted mean to within O(1/N) * range
    assert (
        abs(float(idata.posterior["mu"][0, :, 0].mean()) - np.average(mu[:, 0], weights=w)) < 0.01
    )
    recorded = result.to_arviz(weights="record")
    np.testing.assert_allclose(recorded.sample_stats["log_weight"][0], result.log_weights)


def _adaptive_fk(num_steps, done=True):
    # Parameters: the weighted sd of the particles, recomputed after every move and
    # used as the next move's step size; the potential is a fixed Gaussian.
    def update(t, x, log_w, params):
        sd = jnp.sqrt(jnp.sum(jnp.exp(log_w) * x**2))
        return {"sd": sd, "t": t}

    return smc.FeynmanKac(
        init=lambda key, n: 3.0 * jax.random.normal(key, (n,)),
        move=lambda key, t, x, p: x + 0.5 * p["sd"] * jax.random.normal(key, x.shape),
        log_potential=lambda t, prev, x, p: -0.5 * x**2,
        num_steps=num_steps,
        parameters={"sd": jnp.ones(()), "t": jnp.zeros((), jnp.int32)},
        update_parameters=update,
        done=(lambda state: state.parameters["sd"] < 0.7) if done else None,
    )


def test_parameters_are_updated_from_the_moved_particles_and_recorded():
    result = smc.run(_adaptive_fk(6, done=False), num_particles=500, store_history=True)
    params = result.info["parameters"]
    assert params["t"].tolist() == list(range(6))  # one update per step, step 0 included
    # each recorded sd is the weighted sd of that step's particles before reweighting:
    # after step t's reweighting by exp(-x^2/2) the weights are W_t, so recompute
    # from the stored particles and the weights of step t - 1 (uniform after resampling)
    x = np.asarray(result.history.particles, np.float64)
    np.testing.assert_allclose(params["sd"][0], np.sqrt(np.mean(x[0] ** 2)), rtol=1e-4)
    for t in range(1, 6):
        w = np.exp(np.asarray(result.history.log_weights[t - 1], np.float64))
        w = np.full_like(w, 1 / len(w)) if result.resampled[t] else w
        np.testing.assert_allclose(params["sd"][t], np.sqrt(np.sum(w * x[t] ** 2)), rtol=1e-4)


def test_done_stops_the_loop_and_run_trims_to_the_steps_done():
    fk = _adaptive_fk(200)
    result = smc.run(fk, num_particles=400, seed=1)
    steps = int(result.num_steps)
    sd = np.asarray(result.info["parameters"]["sd"])
    assert 1 < steps < 200 and sd.shape == (steps,) and result.ess.shape == (steps,)
    assert sd[-1] < 0.7 and np.all(sd[:-1] >= 0.7)  # stopped at the first step done
    # the pure loop returns arrays of the largest length, padded after the count
    raw = jax.jit(lambda k: smc.loop(k, fk, num_particles=400, resampling_fn=smc.systematic))(
        jax.random.key(1)
    )
    assert raw.ess.shape == (200,) and int(raw.num_steps) == steps
    assert np.all(np.isnan(np.asarray(raw.ess)[steps:]))
    # a done that never holds runs the same keys as the scan: the same numbers
    never = fk._replace(done=lambda state: False, num_steps=5)
    scan = fk._replace(done=None, num_steps=5)
    a, b = smc.run(never, num_particles=64), smc.run(scan, num_particles=64)
    np.testing.assert_array_equal(a.particles, b.particles)
    assert float(a.log_evidence) == float(b.log_evidence)


def test_num_resampled_draws_fewer_ancestors_and_the_move_makes_n():
    # Waste-free shape: M = N / 4 ancestors, each extended to 4 particles by the move.
    # Gaussian prior, potential exp(-x^2/2) at t = 0, then flat potentials: the
    # log-evidence is log E[exp(-X^2/2)] = -log(2)/2 exactly.
    n, m = 400, 100
    seen = []

    def move(key, t, x):
        seen.append(x.shape)
        return jnp.repeat(x, n // m) + 0.0 * jax.random.normal(key, (n,))

    fk = smc.FeynmanKac(
        init=lambda key, n: jax.random.normal(key, (n,)),
        move=move,
        log_potential=lambda t, prev, x: jnp.where(t == 0, -0.5 * x**2, 0.0),
        num_steps=3,
        num_resampled=m,
    )
    result = smc.run(fk, num_particles=n, ess_threshold=1.0)
    assert (m,) in seen and result.particles.shape == (n,)
    assert result.resampled.tolist() == [False, True, True]
    assert abs(float(result.log_evidence) + 0.5 * np.log(2.0)) < 0.1  # 5 sd of N = 400
    # At the default ess_threshold the loop resamples at every step all the same.
    default = smc.run(fk, num_particles=n)
    assert default.resampled.tolist() == [False, True, True]
    assert float(default.log_evidence) == float(result.log_evidence)
    with pytest.raises(ValueError, match="ess_threshold=0 asks never to"):
        smc.run(fk, num_particles=n, ess_threshold=0.0)
    with pytest.raises(ValueError, match="num_resampled"):
        smc.run(fk._replace(num_resampled=2 * n), num_particles=n, ess_threshold=1.0)


def test_nan_potentials_warn_with_what_to_do():
    fk = _iid_gaussian_fk(3)._replace(
        log_potential=lambda t, prev, x: jnp.where(x > 1.5, jnp.nan, -0.5 * x**2)
    )
    with pytest.warns(pk_results.SamplingWarning, match="NaN for .* particles at step t=0"):
        result = smc.run(fk, num_particles=1000)
    assert int(result.num_nan[0]) > 0


def _offset_model(offset: float, num_steps: int = 1) -> smc.FeynmanKac:
    return smc.FeynmanKac(
        init=lambda key, n: jax.random.normal(key, (n,)),
        move=lambda key, t, x: x,
        log_potential=lambda t, prev, x: offset + x,
        num_steps=num_steps,
    )


@pytest.mark.parametrize("offset", [1e4, 1e6, -1e6, 1e7])
def test_weights_keep_their_precision_under_a_large_common_offset(offset):
    # float32 potentials offset + x: the normalised weights must be the softmax of
    # those potentials (computed here in float64), not rounded through the log-sum's
    # ulp (1 at 1e7), which left them summing to 0.98 or 1.5.
    result = smc.run(_offset_model(offset), num_particles=1000)
    weights = np.exp(np.asarray(result.log_weights, np.float64))
    assert abs(weights.sum() - 1.0) < 1e-5
    lw = np.float32(offset) + np.asarray(result.particles, np.float32)
    exact = np.exp(lw.astype(np.float64) - lw.max())
    exact /= exact.sum()
    assert np.max(np.abs(weights / exact - 1.0)) < 1e-5
    normalised = np.exp(np.asarray(smc.normalise_log_weights(jnp.asarray(lw)), np.float64))
    assert np.max(np.abs(normalised / exact - 1.0)) < 1e-5


def test_an_overflowing_log_evidence_warns_and_is_not_nan():
    # Finite increments of -2e38 each: their float32 sum is -inf. The compensated sum
    # used to turn that into NaN (inf - inf).
    fk = smc.FeynmanKac(
        init=lambda key, n: jax.random.normal(key, (n,)),
        move=lambda key, t, x: x,
        log_potential=lambda t, prev, x: -2e38 + 0.0 * x,
        num_steps=3,
    )
    with pytest.warns(SamplingWarning, match="overflowed"):
        result = smc.run(fk, num_particles=10)
    assert float(result.log_evidence) == -np.inf


def test_an_infinite_potential_is_named_as_the_cause():
    fk = smc.FeynmanKac(
        init=lambda key, n: jax.random.normal(key, (n,)),
        move=lambda key, t, x: x,
        log_potential=lambda t, prev, x: jnp.where(x > 1.0, jnp.inf, 0.0),
        num_steps=2,
    )
    with pytest.raises(FloatingPointError, match=r"infinite weight.*\+inf"):
        smc.run(fk, num_particles=100)


def test_ess_of_all_zero_weights_is_zero():
    assert float(smc.effective_sample_size(jnp.full(3, -jnp.inf))) == 0.0
    ess = smc.effective_sample_size(jnp.array([[0.0, -jnp.inf], [0.0, -jnp.inf]]), axis=0)
    assert ess.tolist() == [2.0, 0.0]


def test_a_move_or_resampler_of_the_wrong_size_is_named():
    base = dict(
        init=lambda key, n: jax.random.normal(key, (n,)),
        log_potential=lambda t, prev, x: -0.5 * x**2,
        num_steps=3,
    )
    fk = smc.FeynmanKac(move=lambda key, t, x: x[:-1], **base)
    with pytest.raises(ValueError, match=r"fk.move must return 10 particles.*\(9,\)"):
        smc.run(fk, num_particles=10)
    good = smc.FeynmanKac(move=lambda key, t, x: x, **base)
    wrong = lambda key, log_w, n: jnp.zeros((n + 1,), jnp.int32)  # noqa: E731
    with pytest.raises(ValueError, match=r"resampling function must return 50 integer"):
        smc.run(good, num_particles=50, resampling=wrong, ess_threshold=1.0)
    floats = lambda key, log_w, n: jnp.zeros((n,))  # noqa: E731
    with pytest.raises(ValueError, match=r"resampling function must return 50 integer"):
        smc.run(good, num_particles=50, resampling=floats, ess_threshold=1.0)
