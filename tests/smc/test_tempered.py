"""Tempered and waste-free SMC samplers against exact answers and posteriordb references.

Monte Carlo errors come from R independent replicates of the whole sampler (run
under one ``vmap``): the spread of R estimates gives the standard error of their
mean. With R = 8 the error estimate has 7 degrees of freedom, so bounds use 5
standard errors (P(|t_7| > 5) ~ 0.2% per comparison).
"""

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from probkit.models import posteriordb
from scipy import stats

import probkit as pk
import probkit.smc as smc

R = 8


def _replicates(target, path=None, **options):
    path = smc.tempered_path(target) if path is None else path
    # the path (an equinox Module) carries the data as array leaves: a jit argument
    run = jax.jit(
        jax.vmap(lambda key, path: smc.tempered_loop(key, path, **options), in_axes=(0, None))
    )
    return run(jax.random.split(jax.random.key(11), R), path)


def _regression():
    rng = np.random.default_rng(0)
    n, p, sigma, tau = 100, 8, 1.0, 2.0
    X = rng.normal(size=(n, p))
    y = X @ rng.normal(size=p) + sigma * rng.normal(size=n)

    def model(X, y):
        beta = numpyro.sample("beta", dist.Normal(0.0, tau).expand([p]).to_event(1))
        numpyro.sample("y", dist.Normal(X @ beta, sigma), obs=y)

    target = pk.from_numpyro(model, X=jnp.asarray(X, jnp.float32), y=jnp.asarray(y, jnp.float32))
    log_z = stats.multivariate_normal(np.zeros(n), sigma**2 * np.eye(n) + tau**2 * X @ X.T).logpdf(
        y
    )
    cov = np.linalg.inv(X.T @ X / sigma**2 + np.eye(p) / tau**2)
    return target, log_z, cov @ X.T @ y / sigma**2, cov


def _assert_evidence(log_z_hat, exact):
    # Z_hat is unbiased, so log Z_hat is biased by about -Var/2 (delta method).
    log_z_hat = np.asarray(log_z_hat, np.float64)
    var = log_z_hat.var(ddof=1)
    se = np.sqrt(var / len(log_z_hat))
    assert abs(log_z_hat.mean() + var / 2 - exact) < 5 * se + 1e-3, (log_z_hat, exact)


@pytest.mark.slow
def test_conjugate_regression_evidence_and_posterior(capfd):
    target, log_z, mean, cov = _regression()
    # the defaults: HMC, 5 whitened steps of 2 leapfrog steps per temperature, ESS 0.5
    result = _replicates(target, num_particles=1000, progress_bar=True)
    err = capfd.readouterr().err
    assert "tempered SMC" in err and err.count("100%") == 1, err  # R replicates, one bar
    _assert_evidence(result.log_evidence, log_z)
    beta = np.asarray(result.samples["beta"], np.float64)  # (R, N, 3)
    means = beta.mean(axis=1)
    se = means.std(axis=0, ddof=1) / np.sqrt(R)
    assert np.all(np.abs(means.mean(0) - mean) < 5 * se), (means.mean(0), mean, se)
    sds = beta.std(axis=1)
    sd_se = sds.std(axis=0, ddof=1) / np.sqrt(R)
    assert np.all(np.abs(sds.mean(0) - np.sqrt(np.diag(cov))) < 5 * sd_se)
    # posterior correlation of beta[0] and beta[1], pooled over replicates
    corr = np.array([np.corrcoef(b[:, 0], b[:, 1])[0, 1] for b in beta])
    exact_corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    assert abs(corr.mean() - exact_corr) < 5 * corr.std(ddof=1) / np.sqrt(R)
    # the adaptive schedule keeps the ESS at target_ess * N after each reweighting
    steps = np.asarray(result.info["num_steps"])
    ess = np.asarray(result.ess)
    for r in range(R):
        np.testing.assert_allclose(ess[r, 1 : steps[r]], 500.0, rtol=0.01)
    # every move mixes: HMC accepts at about its target rate, and a particle travels
    # about as far as an independent draw would (2 per whitened dimension; the
    # whitening comes from the previous, wider population, so a bit less)
    acceptance = np.asarray(result.info["acceptance_rate"])
    jump = np.asarray(result.info["squared_jump"])
    for r in range(R):
        assert np.all(acceptance[r, 1 : steps[r] + 1] > 0.6), acceptance[r]
        assert np.all(jump[r, 1 : steps[r] + 1] > 1.0), jump[r]


def _mixture_target():
    # 0.3 N((-4, -4), I) + 0.7 N((4, 4), I): normalised, so log Z = 0 exactly.
    means = jnp.array([[-4.0, -4.0], [4.0, 4.0]])
    log_w = jnp.log(jnp.array([0.3, 0.7]))

    def logdensity(x):
        comp = dist.Normal(means, 1.0).to_event(1).log_prob(x)
        return jax.scipy.special.logsumexp(log_w + comp)

    return pk.Target.from_logdensity(logdensity, jnp.zeros(2))


def test_waste_free_mixture_recovers_mode_weights():
    target = _mixture_target()
    reference = dist.Normal(jnp.zeros(2), 6.0).to_event(1)
    weights, log_z = [], []
    for seed in range(R):  # the driver, compiled once and reused across seeds
        result = smc.tempered(
            target,
            num_particles=2000,
            kernel="rwm",
            num_mcmc_steps=20,
            waste_free=True,
            reference=reference,
            seed=seed,
        )
        x = np.asarray(result.samples["x"])
        weights.append(np.mean(x.sum(axis=1) > 0))
        log_z.append(float(result.log_evidence))
    weights = np.array(weights)
    assert result.info["temperature"][-1] == 1.0
    assert len(result.ess) == result.info["num_steps"] + 1
    assert abs(weights.mean() - 0.7) < 5 * weights.std(ddof=1) / np.sqrt(R), weights
    assert np.all(weights > 0.55) and np.all(weights < 0.85)  # no run lost a mode
    _assert_evidence(log_z, 0.0)


def _compare_with_reference(name, result):
    post = posteriordb.load(name)
    reference = post.reference_draws()
    for site in post.site_shapes:
        draws = np.asarray(result.samples[site], np.float64)  # (R, N, *shape)
        means = draws.mean(axis=1)
        se = means.std(axis=0, ddof=1) / np.sqrt(R)
        ref = reference[site].reshape(-1, *reference[site].shape[2:])
        # reference MCSE from its 10,000 draws (ESS ~ 10,000 per reference_info.json)
        ref_se = ref.std(axis=0) / np.sqrt(ref.shape[0])
        z = (means.mean(0) - ref.mean(0)) / np.sqrt(se**2 + ref_se**2)
        assert np.all(np.abs(z) < 5), (site, z)
        sds = draws.std(axis=1)
        sd_se = sds.std(axis=0, ddof=1) / np.sqrt(R)
        ref_sd_se = ref.std(axis=0) / np.sqrt(2 * ref.shape[0])
        z_sd = (sds.mean(0) - ref.std(axis=0)) / np.sqrt(sd_se**2 + ref_sd_se**2)
        assert np.all(np.abs(z_sd) < 5), (site, z_sd)


@pytest.mark.slow
def test_eight_schools_noncentered_matches_reference_draws():
    post = posteriordb.load("eight_schools-eight_schools_noncentered")
    target = pk.from_numpyro(post.model, **post.data)
    result = _replicates(target, num_particles=1000)  # the defaults (HMC)
    _compare_with_reference(post.name, result)


@pytest.mark.slow
def test_ark_matches_reference_draws():
    post = posteriordb.load("arK-arK")
    target = pk.from_numpyro(post.model, **post.data)
    result = _replicates(target, num_particles=1000, kernel="mala", num_mcmc_steps=5)
    _compare_with_reference(post.name, result)


def test_fixed_schedule_progress_bar_and_bad_input(capfd):
    target, log_z, _, _ = _regression()
    schedule = np.linspace(0.0, 1.0, 6) ** 3
    for seed in range(2):  # one compiled sampler, one progress bar per run
        result = smc.tempered(
            target, num_particles=500, kernel="rwm", schedule=schedule, progress_bar=True, seed=seed
        )
    err = capfd.readouterr().err
    assert err.count("100%") == 2 and err.count("temperature 1/1 [") == 2, err
    assert "temperature 0.008/1" in err and "step 5]" in err, err  # 0.2^3 at step 1 of 5
    np.testing.assert_allclose(result.info["temperature"], schedule, rtol=1e-6)
    assert result.samples["beta"].shape == (500, 8)
    with pytest.raises(ValueError, match="kernel"):
        smc.tempered(target, kernel="nuts")
    with pytest.raises(ValueError, match="schedule"):
        smc.tempered(target, schedule=[0.5, 0.2, 1.0])
    with pytest.raises(ValueError, match="multiple of"):
        smc.tempered(target, num_particles=1000, num_mcmc_steps=7, waste_free=True)
    with pytest.raises(ValueError, match="reference"):
        smc.tempered(_mixture_target())
    with pytest.raises(ValueError, match="event shape"):
        smc.tempered(_mixture_target(), reference=dist.Normal(0.0, 1.0))
    kidiq = posteriordb.load("kidiq-kidscore_momiq")  # flat prior on beta
    with pytest.raises(ValueError, match=r"\['beta'\] is improper"):
        smc.tempered(pk.from_numpyro(kidiq.model, **kidiq.data))


SHARDED_SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax, jax.numpy as jnp, numpy as np, numpyro, numpyro.distributions as dist
    import probkit as pk, probkit.smc as smc
    from probkit.distributed import chain_mesh
    assert len(jax.devices()) == 8
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3)).astype(np.float32)
    y = (X @ np.array([1.0, -0.5, 0.3]) + rng.normal(size=30)).astype(np.float32)
    def model(X, y):
        beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([3]).to_event(1))
        numpyro.sample("y", dist.Normal(X @ beta, 1.0), obs=y)
    target = pk.from_numpyro(model, X=jnp.asarray(X), y=jnp.asarray(y))
    mesh = chain_mesh()
    kw = dict(num_particles=256, seed=3)
    plain = smc.tempered(target, **kw)
    sharded = smc.tempered(target, mesh=mesh, **kw)
    out = {
        "devices": len(sharded.particles.sharding.device_set),
        "log_z": [float(plain.log_evidence), float(sharded.log_evidence)],
        "temperatures": [plain.info["temperature"].tolist(), sharded.info["temperature"].tolist()],
        "max_particle_diff": float(jnp.max(jnp.abs(plain.particles - sharded.particles))),
    }
    try:
        smc.tempered(target, num_particles=100, mesh=mesh)
    except ValueError as err:
        out["indivisible"] = str(err)
    print("RESULT" + json.dumps(out))
    """
)


@pytest.mark.slow
def test_particle_axis_sharded_over_eight_devices_gives_the_unsharded_run(run_on_eight_devices):
    out = run_on_eight_devices(SHARDED_SCRIPT)
    assert out["devices"] == 8
    # Same keys (one per particle), same arithmetic: only the summation order of the
    # reductions over particles (log-sum-exp, covariance) differs across shards, so
    # results agree to float32 rounding, not bit for bit.
    np.testing.assert_allclose(*out["temperatures"], rtol=1e-5, atol=1e-7)
    assert abs(out["log_z"][0] - out["log_z"][1]) < 1e-5 * abs(out["log_z"][0]), out
    assert out["max_particle_diff"] < 1e-4, out
    assert "multiple of 8" in out["indivisible"]


def _normal_mean(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def test_new_data_of_the_same_shapes_reuse_the_compiled_sampler(backend_compile_seconds):
    compiles = backend_compile_seconds
    rng = np.random.default_rng(1)
    y_a, y_b = rng.normal(1.0, 1.0, 10), rng.normal(-2.0, 1.0, 10)
    run = dict(num_particles=200, seed=5)
    fresh_b = smc.tempered(pk.from_numpyro(_normal_mean, y_b), **run)
    result_a = smc.tempered(pk.from_numpyro(_normal_mean, y_a), **run)
    compiles.clear()
    again_b = smc.tempered(pk.from_numpyro(_normal_mean, y_b), **run)
    # new Target objects, new data, same shapes: nothing is compiled again, and the
    # data are arguments of the compiled sampler (the y_b run is reproduced exactly)
    assert sum(compiles) < 0.5, f"{len(compiles)} compilations ({sum(compiles):.2f} s)"
    np.testing.assert_array_equal(again_b.samples["mu"], fresh_b.samples["mu"])
    assert float(again_b.log_evidence) == float(fresh_b.log_evidence)
    # ... and each run follows its own data: the conjugate posterior mean
    # sum(y) / (n + 1/100), to 5 standard errors of a mean of 200 equally weighted
    # particles (posterior sd 1/sqrt(n + 1/100); the ESS is about N after resampling
    # and MCMC moves, so 5 sd/sqrt(N/2) is generous)
    for result, y in ((result_a, y_a), (again_b, y_b)):
        precision = len(y) + 1e-2
        tol = 5 / np.sqrt(precision) / np.sqrt(run["num_particles"] / 2)
        assert abs(float(result.samples["mu"].mean()) - y.sum() / precision) < tol


def _half_nan_likelihood():
    # No arguments: tempered() takes the model function itself. The likelihood is NaN
    # for x < 0, about half of the prior's mass.
    x = numpyro.sample("x", dist.Normal(0.0, 1.0))
    numpyro.factor("likelihood", jnp.where(x > 0, -0.5 * (x - 1.0) ** 2, jnp.nan))


def test_nan_likelihood_warns_and_model_functions_are_accepted_or_advised():
    with pytest.warns(pk.results.SamplingWarning, match="log-likelihood was NaN for"):
        result = smc.tempered(_half_nan_likelihood, num_particles=200, kernel="rwm")
    assert int(result.num_nan[1]) > 50  # the prior draws with x < 0, at lambda_1
    assert np.all(result.samples["x"] > 0)
    with pytest.raises(TypeError, match=r"pk.from_numpyro\(model, \*args, \*\*kwargs\)"):
        smc.tempered(_normal_mean)
    with pytest.raises(TypeError, match="must be a probkit.Target"):
        smc.tempered("model")
