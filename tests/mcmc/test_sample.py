"""probkit.mcmc.sample: API, errors before compilation, chain methods, ArviZ output."""

import textwrap
import warnings

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import probkit as pk
from probkit.results import SamplingWarning

STD_NORMAL = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum(x**2), jnp.zeros(3))
SMALL = dict(num_warmup=100, num_samples=100, num_chains=2)


def regression(x, y=None):
    alpha = numpyro.sample("alpha", dist.Normal(0, 10))
    beta = numpyro.sample("beta", dist.Normal(0, 10))
    sigma = numpyro.sample("sigma", dist.HalfNormal(5))
    numpyro.deterministic("slope_times_two", 2 * beta)
    numpyro.sample("y", dist.Normal(alpha + beta * x, sigma), obs=y)


X = jnp.linspace(-1, 1, 30)
Y = 1.0 + 2.0 * X + 0.3 * jnp.sin(7 * X)


# -- errors, raised before anything is compiled -------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kernel": "nutz"}, ValueError, "Unknown kernel 'nutz'.*Did you mean 'nuts'"),
        ({"kernel": "nuts", "num_integration_steps": 3}, TypeError, "max_num_doublings"),
        ({"chain_method": "parallel"}, ValueError, "chain_method must be one of"),
        ({"mass_matrix": "full"}, ValueError, "mass_matrix must be one of"),
        ({"kernel": "rwm", "mass_matrix": "low_rank"}, ValueError, "low_rank.*'nuts' or 'hmc'"),
        ({"num_chains": 0}, ValueError, "num_chains must be an integer >= 1"),
        ({"num_samples": 2.5}, ValueError, "num_samples must be an integer"),
        ({"target_accept": 1.2}, ValueError, "target_accept must lie strictly between 0 and 1"),
        ({"kernel": "meads", "num_chains": 8}, ValueError, "at least 4 chains per fold"),
        ({"kernel": "chees", "num_chains": 1}, ValueError, "num_chains >= 2"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        pk.mcmc.sample(STD_NORMAL, **{**SMALL, **kwargs})


def test_nonfinite_initial_position_is_reported_before_sampling():
    target = pk.Target.from_logdensity(lambda x: jnp.sum(jnp.log(x)), jnp.ones(2))
    message = "not finite at the initial position of chain\\(s\\) \\[1\\]"
    with pytest.raises(ValueError, match=message):
        pk.mcmc.sample(target, init=jnp.array([[1.0, 1.0], [-1.0, 1.0]]), **SMALL)


def test_init_with_wrong_shape():
    with pytest.raises(ValueError, match="fits neither one position"):
        pk.mcmc.sample(STD_NORMAL, init=jnp.zeros(4), **SMALL)


def test_plain_function_without_sample_sites_points_to_from_logdensity():
    with pytest.raises(TypeError, match="Target.from_logdensity"):
        pk.mcmc.sample(lambda: None, **SMALL)


def test_model_args_with_a_target_is_an_error():
    with pytest.raises(TypeError, match="only for NumPyro models"):
        pk.mcmc.sample(STD_NORMAL, model_args=(1,), **SMALL)


# -- a NumPyro model end to end ------------------------------------------------------
@pytest.fixture(scope="module")
def regression_result():
    return pk.mcmc.sample(
        regression,
        model_args=(X,),
        model_kwargs={"y": Y},
        num_warmup=300,
        num_samples=300,
        num_chains=2,
        seed=3,
        thinning=2,
    )


def test_numpyro_model_result_layout(regression_result):
    r = regression_result
    assert set(r.samples) == {"alpha", "beta", "sigma", "slope_times_two"}
    assert r.samples["beta"].shape == (2, 300)
    np.testing.assert_allclose(r.samples["slope_times_two"], 2 * r.samples["beta"], rtol=1e-5)
    assert np.all(r.samples["sigma"] > 0)
    names = ("diverging", "lp", "acceptance_rate", "step_size", "n_steps", "tree_depth", "energy")
    for name in names:
        assert r.stats[name].shape == (2, 300), name
    # least squares slope of the data: the posterior is concentrated around it
    slope = np.polyfit(np.asarray(X), np.asarray(Y), 1)[0]
    assert abs(r.samples["beta"].mean() - slope) < 4 * r.samples["beta"].std()


def test_to_arviz_groups_and_netcdf_round_trip(regression_result, tmp_path):
    import arviz as az

    idata = regression_result.to_arviz()
    assert {"posterior", "sample_stats", "observed_data", "log_likelihood"} <= set(idata.groups())
    assert idata.log_likelihood["y"].shape == (2, 300, 30)
    np.testing.assert_allclose(idata.observed_data["y"], np.asarray(Y))
    assert "diverging" in idata.sample_stats and "tree_depth" in idata.sample_stats
    path = tmp_path / "result.nc"
    idata.to_netcdf(str(path))
    back = az.from_netcdf(str(path))
    for group in ("posterior", "sample_stats", "observed_data", "log_likelihood"):
        for name in getattr(idata, group).data_vars:
            np.testing.assert_array_equal(getattr(back, group)[name], getattr(idata, group)[name])
    # log_likelihood is usable by ArviZ: leave-one-out cannot beat the in-sample lppd
    loglik = idata.log_likelihood["y"].values.reshape(-1, 30)
    lppd = np.sum(np.log(np.mean(np.exp(loglik), axis=0)))
    assert np.isfinite(az.loo(idata).elpd_loo) and az.loo(idata).elpd_loo < lppd


def test_summary_is_arvizs(regression_result):
    table = regression_result.summary()
    assert {"mean", "sd", "ess_bulk", "r_hat"} <= set(table.columns)
    assert "beta" in table.index


# -- diagnostics in words ------------------------------------------------------------
def test_divergences_and_rhat_warnings():
    def centered_funnel():
        log_scale = numpyro.sample("log_scale", dist.Normal(0, 3))
        numpyro.sample("x", dist.Normal(0, jnp.exp(log_scale / 2)).expand([5]))

    # Long enough that divergences are all but certain: 2 chains x (150 + 150) had none
    # on 3 of seeds 0-9; 4 x (300 + 300) had 7-44 on every one of them.
    result = pk.mcmc.sample(centered_funnel, num_warmup=300, num_samples=300, num_chains=4, seed=0)
    with pytest.warns(SamplingWarning, match="divergence"):
        messages = result.diagnose()
    assert any("Raise target_accept" in m for m in messages)


def test_nonfinite_log_density_warning_mentions_float64():
    # A density that is NaN on part of the space: proposals there are non-finite.
    target = pk.Target.from_logdensity(
        lambda x: jnp.where(x[0] > 1.0, jnp.nan, -0.5 * jnp.sum(x**2)), jnp.zeros(2)
    )
    result = pk.mcmc.sample(
        target, kernel="hmc", num_warmup=200, num_samples=300, num_chains=2, init=jnp.zeros(2)
    )
    assert result.stats["nonfinite"].mean() > 0.01
    messages = result.diagnose(emit=False)
    assert any("float64" in m for m in messages)
    assert np.all(result.samples["x"][..., 0] <= 1.0)  # never accepted


def test_clean_run_has_no_warnings():
    result = pk.mcmc.sample(STD_NORMAL, num_warmup=300, num_samples=500, num_chains=4, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert result.diagnose() == []


# -- chain methods, determinism, progress bar ----------------------------------------
def test_same_seed_same_draws_and_sequential_matches_in_distribution():
    a = pk.mcmc.sample(STD_NORMAL, seed=5, **SMALL)
    b = pk.mcmc.sample(STD_NORMAL, seed=5, **SMALL)
    np.testing.assert_array_equal(a.samples["x"], b.samples["x"])
    # Without adaptation the per-chain arithmetic is identical in every chain method.
    fixed = dict(num_warmup=0, num_samples=200, num_chains=3, step_size=0.7, seed=2)
    v = pk.mcmc.sample(STD_NORMAL, chain_method="vectorized", **fixed)
    s = pk.mcmc.sample(STD_NORMAL, chain_method="sequential", **fixed)
    np.testing.assert_allclose(v.samples["x"], s.samples["x"], atol=1e-5)


@pytest.mark.parametrize("kernel", ["nuts", "mala"])
def test_progress_bars_for_warmup_and_sampling_are_drawn_once_under_vmap(capfd, kernel):
    pk.mcmc.sample(
        STD_NORMAL,
        kernel=kernel,
        progress_bar=True,
        num_warmup=50,
        num_samples=200,
        num_chains=4,
        diagnose=False,
    )
    err = capfd.readouterr().err
    assert "warm-up" in err and "50/50" in err
    assert "200/200" in err
    # one warm-up bar and one sampling bar for four vectorised chains
    assert err.count("100%") == 2, err


SHARDED_SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax, jax.numpy as jnp, numpy as np
    import probkit as pk
    assert len(jax.devices()) == 8
    scales = jnp.array([1.0, 3.0, 0.5])
    t = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum((x / scales) ** 2), jnp.zeros(3))
    out = {}
    fixed = dict(num_warmup=0, num_samples=200, num_chains=16, step_size=0.4, seed=4)
    for kernel in ["nuts", "hmc"]:
        v = pk.mcmc.sample(t, kernel=kernel, chain_method="vectorized", **fixed)
        s = pk.mcmc.sample(t, kernel=kernel, chain_method="sharded", **fixed)
        out[kernel + "_fixed_maxdiff"] = float(np.abs(v.samples["x"] - s.samples["x"]).max())
    adapted = dict(num_warmup=300, num_samples=500, num_chains=8, seed=4)
    s = pk.mcmc.sample(t, chain_method="sharded", **adapted)
    x = s.samples["x"]
    out["sharded_sd"] = x.reshape(-1, 3).std(0).tolist()
    out["sharded_mean"] = x.reshape(-1, 3).mean(0).tolist()
    out["chains_on_devices"] = len(jax.devices())
    try:
        pk.mcmc.sample(t, chain_method="sharded", num_chains=12, num_warmup=10, num_samples=10)
    except ValueError as err:
        out["indivisible"] = str(err)
    c = pk.mcmc.sample(t, kernel="chees", chain_method="sharded", num_chains=16,
                       num_warmup=200, num_samples=200, seed=4)
    out["chees_sd"] = c.samples["x"].reshape(-1, 3).std(0).tolist()
    print("RESULT" + json.dumps(out))
    """
)


@pytest.mark.slow
def test_sharded_on_eight_simulated_devices(run_on_eight_devices):
    out = run_on_eight_devices(SHARDED_SCRIPT)
    # Same keys per chain whatever the device count: identical draws for fixed kernels.
    assert out["nuts_fixed_maxdiff"] < 1e-5
    assert out["hmc_fixed_maxdiff"] < 1e-5
    # Adapted, sharded chains sample the right distribution (sd within ~4 MC errors:
    # 4000 draws with ESS > 1000 give a relative sd error below 0.03).
    np.testing.assert_allclose(out["sharded_sd"], [1.0, 3.0, 0.5], rtol=0.12)
    np.testing.assert_allclose(out["chees_sd"], [1.0, 3.0, 0.5], rtol=0.15)
    assert "num_chains=12 cannot be split evenly over 8 devices" in out["indivisible"]


# -- compiled samplers are reused -------------------------------------------------------
def normal_mean(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def test_second_call_with_new_data_reuses_the_compilation(backend_compile_seconds):
    compiles = backend_compile_seconds
    rng = np.random.default_rng(0)
    y_a, y_b = rng.normal(1.0, 1.0, 20), rng.normal(-3.0, 1.0, 20)
    run = dict(num_warmup=200, num_samples=300, num_chains=2, seed=3, diagnose=False)
    fresh_b = pk.mcmc.sample(normal_mean, model_args=(y_b,), **run)
    pk.mcmc.sample(normal_mean, model_args=(y_a,), **run)
    compiles.clear()
    again_b = pk.mcmc.sample(normal_mean, model_args=(y_b,), **run)
    # New data, same shapes: the set-up, the sampler, the start check and the
    # constraint map are compiled once per static structure (equinox.filter_jit).
    assert sum(compiles) < 0.5, f"{len(compiles)} compilations ({sum(compiles):.2f} s)"
    np.testing.assert_array_equal(again_b.samples["mu"], fresh_b.samples["mu"])
    # ... and the draws follow the new data: mu | y ~ N(sum(y) / (n + 1/100), 1 / (n + 1/100))
    # (conjugate). The mean is checked to 5 Monte Carlo standard errors, the standard
    # deviation to 15% (about 4 standard errors of an sd estimated from ~600 draws).
    import arviz as az

    precision = len(y_b) + 1e-2
    mcse = float(az.mcse(again_b.to_arviz(), var_names=["mu"])["mu"])
    assert abs(again_b.samples["mu"].mean() - y_b.sum() / precision) < 5 * mcse
    assert abs(again_b.samples["mu"].std() * precision**0.5 - 1.0) < 0.15
