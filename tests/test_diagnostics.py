"""probkit's own R-hat and bulk/tail ESS: ArviZ's numbers, without ArviZ's import.

The reference is ArviZ itself (``az.rhat``, ``az.ess``, ``az.summary``), run on the
same arrays. Both compute the same operations in the same order except two sums
(ArviZ's numba variance, numpy's pairwise sum over a chain axis), so they agree to
about 1e-14 relative (measured); rtol=1e-10 leaves room for other NumPy/FFT builds,
far below the differences any change of definition makes (Monte Carlo-sized, ~1e-3).
"""

import json
import logging
import os
import subprocess
import sys
import time
import types
import warnings

import numpy as np
import pytest

from probkit.results import MCMCResult, SamplingWarning, convergence, ess_bulk, ess_tail, rhat

RTOL = 1e-10


def _ar1(rng, chains, draws, phi, size, dtype=np.float64):
    """AR(1) chains: autocorrelated, like MCMC draws."""
    x = np.zeros((chains, draws, size))
    noise = rng.normal(size=(chains, draws, size))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x.astype(dtype)


def _cases():
    rng = np.random.default_rng(1)
    constant = rng.normal(size=(4, 100, 3))
    constant[:, :, 1] = 2.0  # one constant element
    constant[1, :, 2] = 5.0  # one constant chain
    with_nan = rng.normal(size=(4, 100, 3))
    with_nan[2, 5, 1] = np.nan
    return {
        "iid": rng.normal(size=(4, 1000, 3)),
        "autocorrelated": _ar1(rng, 4, 1000, 0.9, 3),
        "strongly_autocorrelated": _ar1(rng, 4, 300, 0.99, 3),
        "odd_draws": _ar1(rng, 3, 101, 0.5, 3),
        "float32": _ar1(rng, 4, 200, 0.7, 3, np.float32),
        "eight_chains": _ar1(rng, 8, 50, 0.3, 3),
        "one_chain": _ar1(rng, 1, 100, 0.5, 3),
        "five_draws": rng.normal(size=(2, 5, 3)),
        "three_draws": rng.normal(size=(2, 3, 2)),
        "ties": rng.integers(0, 3, size=(4, 100, 3)).astype(float),
        "integers": rng.integers(0, 5, size=(4, 100, 3)),
        "chains_disagree": _ar1(rng, 4, 200, 0.5, 3) + np.array([0, 0, 0, 3.0])[:, None, None],
        "constant": constant,
        "nan": with_nan,
    }


CASES = _cases()


@pytest.fixture(scope="module")
def az():
    arviz = pytest.importorskip("arviz")
    logging.getLogger("arviz").setLevel(logging.ERROR)  # "Array contains NaN" etc.
    return arviz


@pytest.mark.parametrize("name", sorted(CASES))
def test_equal_to_arviz(az, name):
    draws = CASES[name]
    posterior = az.convert_to_dataset({"v": draws})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # ArviZ's 0/0 on constant chains
        expected = {
            "rhat": np.asarray(az.rhat(posterior)["v"]),
            "ess_bulk": np.asarray(az.ess(posterior, method="bulk")["v"]),
            "ess_tail": np.asarray(az.ess(posterior, method="tail")["v"]),
        }
    ours = {"rhat": rhat(draws), "ess_bulk": ess_bulk(draws), "ess_tail": ess_tail(draws)}
    for statistic, value in ours.items():
        np.testing.assert_allclose(value, expected[statistic], rtol=RTOL, err_msg=statistic)
        assert value.shape == draws.shape[2:]
    # Where ArviZ says NaN, so do we (assert_allclose treats NaN as equal to NaN).
    assert np.array_equal(np.isnan(ours["rhat"]), np.isnan(expected["rhat"]))


def test_equal_to_arviz_tail_levels_and_scalar_sites(az):
    draws = CASES["autocorrelated"][:, :, 0]  # a scalar site: (chain, draw)
    for prob in (0.1, (0.025, 0.9)):
        expected = az.ess(az.convert_to_dataset({"v": draws}), method="tail", prob=prob)["v"]
        np.testing.assert_allclose(ess_tail(draws, prob=prob), np.asarray(expected), rtol=RTOL)
    assert rhat(draws).shape == ()


def test_equal_to_arviz_summary(az):
    rng = np.random.default_rng(2)
    samples = {
        "mu": _ar1(rng, 4, 500, 0.8, 1)[:, :, 0],
        "theta": _ar1(rng, 4, 500, 0.6, 6).reshape(4, 500, 2, 3),
    }
    result = MCMCResult(samples=samples, stats={})
    table = az.summary(result.to_arviz(), round_to="none")
    ours = result.diagnostics()
    for site in samples:
        for statistic, column in (
            ("rhat", "r_hat"),
            ("ess_bulk", "ess_bulk"),
            ("ess_tail", "ess_tail"),
        ):
            rows = [i for i in table.index if i == site or i.startswith(site + "[")]
            np.testing.assert_allclose(
                ours[site][statistic].ravel(), table.loc[rows, column].to_numpy(), rtol=RTOL
            )


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="num_chains, num_draws"):
        rhat(np.zeros(10))
    with pytest.raises(ValueError, match="statistics"):
        convergence(np.zeros((2, 10)), ("rhat", "mcse"))
    with pytest.raises(ValueError, match="prob"):
        ess_tail(np.zeros((2, 10)), prob=1.5)
    result = MCMCResult(samples={"mu": np.zeros((2, 10))}, stats={})
    with pytest.raises(ValueError, match=r"sites \['nu'\].*\['mu'\]"):
        result.diagnose(sites=["nu"])


def _numpyro_result(big_size=3000, chains=4, draws=1000):
    """A result of a NumPyro model with a big deterministic site (draws made up: only
    which sites are diagnosed, and at what cost, is under test)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    import probkit as pk

    def model(y):
        mu = numpyro.sample("mu", dist.Normal(0, 5))
        theta = numpyro.sample("theta", dist.Normal(mu, 1).expand([2]))
        numpyro.deterministic("logits", jnp.tile(theta, big_size // 2))
        numpyro.sample("y", dist.Normal(theta, 1), obs=y)

    rng = np.random.default_rng(3)
    samples = {
        "mu": rng.normal(size=(chains, draws)),
        "theta": rng.normal(size=(chains, draws, 2)),
        "logits": rng.normal(size=(chains, draws, big_size)).astype(np.float32),
    }
    target = pk.from_numpyro(model, jnp.array([0.3, -0.2]))
    return MCMCResult(samples=samples, stats={}, target=target)


def test_latent_sites_by_default_deterministic_on_request():
    result = _numpyro_result(big_size=10, draws=100)
    assert result.latent_sites == ["mu", "theta"]
    assert list(result.diagnostics()) == ["mu", "theta"]
    assert list(result.diagnostics(include_deterministic=True)) == ["mu", "theta", "logits"]
    assert list(result.diagnostics(sites="logits")) == ["logits"]
    # A log density's position is all latent.
    plain = MCMCResult(samples={"x": np.zeros((2, 10, 3))}, stats={}, target=None)
    assert plain.latent_sites == ["x"]
    as_dict = MCMCResult(
        samples={"a": np.zeros((2, 10))},
        stats={},
        target=types.SimpleNamespace(example_position={"a": 0.0}),
    )
    assert as_dict.latent_sites == ["a"]


def test_big_deterministic_site_costs_little():
    # With ArviZ, diagnose() on a 3,000-element deterministic site of 4 x 1000 draws
    # took 17 s (~13 s of CPU in ArviZ's per-element loop, measured here on 300
    # elements x 10). By default that site is not diagnosed at all; on request it is
    # vectorised: 2.3-2.9 s of CPU measured on a loaded 2-core machine, bound at 8 s,
    # which the per-element loop would not meet.
    result = _numpyro_result()
    start = time.process_time()
    assert result.diagnose(emit=False) == []
    assert time.process_time() - start < 1.0
    start = time.process_time()
    stats = result.diagnostics(include_deterministic=True, statistics=("rhat", "ess_bulk"))
    assert time.process_time() - start < 8.0
    assert stats["logits"]["rhat"].shape == (3000,)
    assert np.all(stats["logits"]["rhat"] < 1.01)  # independent draws


def test_diagnose_messages():
    rng = np.random.default_rng(4)
    good = MCMCResult(samples={"x": rng.normal(size=(4, 500, 2))}, stats={})
    assert good.diagnose() == []

    shifted = rng.normal(size=(4, 500)) + np.array([0, 0, 0, 2.0])[:, None]
    stuck = _ar1(rng, 4, 500, 0.995, 1)[:, :, 0]
    with_nan = rng.normal(size=(4, 500))
    with_nan[0, 3] = np.nan
    bad = MCMCResult(samples={"shifted": shifted, "stuck": stuck, "with_nan": with_nan}, stats={})
    with pytest.warns(SamplingWarning):
        messages = bad.diagnose()
    text = " ".join(messages)
    assert "R-hat above 1.01 for shifted" in text
    assert "Bulk effective sample size below 400" in text and "stuck" in text
    assert "Draws of with_nan contain NaN" in text
    assert bad.diagnose(sites=["shifted"], emit=False)[0].startswith("R-hat above")


def test_sample_and_diagnose_do_not_import_arviz(tmp_path):
    script = r"""
import json, sys
import jax.numpy as jnp, numpyro, numpyro.distributions as dist
import probkit as pk
def model(y):
    mu = numpyro.sample("mu", dist.Normal(0, 5))
    numpyro.sample("y", dist.Normal(mu, 1), obs=y)
result = pk.mcmc.sample(pk.from_numpyro(model, jnp.array([0.3, -0.2])), num_chains=2,
                        num_warmup=100, num_samples=100)
messages = result.diagnose(emit=False)
print("RESULT" + json.dumps({m: m in sys.modules for m in ("arviz", "xarray", "scipy.stats")}))
"""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PROBKIT_COMPILATION_CACHE": "off"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert imported == {"arviz": False, "xarray": False, "scipy.stats": False}
