"""The posteriordb models against posteriordb's reference draws (long Stan NUTS runs).

Two kinds of checks:

* fast ones on the loader and on pieces of the models that have closed forms computed
  by scipy (the AR(5) likelihood, the GARCH flat prior on a dependent bound, the
  diamonds half-t prior);
* one NUTS run per posterior with ``probkit.mcmc.sample`` compared with the reference
  draws: for every scalar parameter, the difference of means within 4 combined Monte
  Carlo standard errors, and the standard deviation within 10% of the reference's.

Tolerances. The difference of two independent Monte Carlo means has standard error
``sqrt(MCSE_probkit^2 + MCSE_ref^2)`` (each from ArviZ's ESS-based ``mcse``), so
``|z| <= 4`` fails a correct sampler with probability ~6e-5 per parameter, ~3e-3 over
the 53 parameters. The relative error of a standard deviation estimated from an
effective sample size ESS is about ``sqrt((kurtosis - 1) / (4 ESS))``: ~1.6% for a
Gaussian parameter at the ESS ~1000-4000 these runs reach, ~3% for the heavy-tailed
``tau`` of eight schools; 10% is more than 3 of those errors away.
"""

from __future__ import annotations

import inspect

import arviz as az
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from numpyro import handlers
from numpyro.infer.util import log_density
from probkit.models import posteriordb

import probkit as pk

EXPECTED = {
    "eight_schools-eight_schools_noncentered": {"theta": (8,), "mu": (), "tau": ()},
    "arK-arK": {"alpha": (), "beta": (5,), "sigma": ()},
    "garch-garch11": {"mu": (), "alpha0": (), "alpha1": (), "beta1": ()},
    "kidiq-kidscore_momiq": {"beta": (2,), "sigma": ()},
    "earnings-earn_height": {"beta": (2,), "sigma": ()},
    "diamonds-diamonds": {"b": (24,), "Intercept": (), "sigma": ()},
}


# ------------------------------------------------------------------------------------
# Loader
# ------------------------------------------------------------------------------------


def test_names_lists_the_six_posteriors():
    assert sorted(posteriordb.names()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_gives_data_for_the_model_and_reference_draws_by_site(name):
    posterior = posteriordb.load(name)
    assert posterior.name == name
    accepted = inspect.signature(posterior.model).parameters
    assert set(posterior.data) <= set(accepted)

    draws = posterior.reference_draws()
    assert {site: d.shape[2:] for site, d in draws.items()} == EXPECTED[name]
    assert all(d.shape[:2] == (10, 1000) and d.dtype == np.float64 for d in draws.values())
    # The site-shaped draws flatten back to posteriordb's columns, names and order.
    flat = posteriordb.to_posteriordb_names(draws)
    assert list(flat) == posterior.reference_names()
    assert posterior.reference_info()["diagnostics"]["ndraws"] == 10_000
    summary = posterior.reference_summary()
    assert list(summary.index) == posterior.reference_names()
    # ArviZ's bulk ESS of the loaded draws is posteriordb's own (computed in R by the
    # posterior package): chains and draws are laid out as they were sampled.
    diagnostics = posterior.reference_info()["diagnostics"]
    published = dict(
        zip(
            diagnostics["diagnostic_information"]["names"],
            diagnostics["effective_sample_size_bulk"],
            strict=True,
        )
    )
    expected_ess = [published[k] for k in summary.index]
    np.testing.assert_allclose(summary["ess_bulk"], expected_ess, rtol=1e-6)


def test_reference_draws_keep_posteriordb_columns():
    posterior = posteriordb.load("diamonds-diamonds")
    raw_first_chain_b7 = posterior.reference_draws()["b"][0, :, 6]
    column = posteriordb.to_posteriordb_names(posterior.reference_draws())["b[7]"][0]
    np.testing.assert_array_equal(raw_first_chain_b7, column)
    assert posterior.reference_names()[6] == "b[7]"


def test_to_posteriordb_names_splits_vectors_and_matrices_one_based():
    samples = {
        "s": np.zeros((2, 3)),
        "v": np.arange(12.0).reshape(2, 3, 2),
        "m": np.ones((2, 3, 2, 2)),
    }
    flat = posteriordb.to_posteriordb_names(samples)
    assert list(flat) == ["s", "v[1]", "v[2]", "m[1,1]", "m[1,2]", "m[2,1]", "m[2,2]"]
    np.testing.assert_array_equal(flat["v[2]"], samples["v"][..., 1])
    with pytest.raises(ValueError, match="chains, draws"):
        posteriordb.to_posteriordb_names({"x": np.zeros(5)})


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="diamonds-diamonds"):
        posteriordb.load("diamonds")


# ------------------------------------------------------------------------------------
# Model pieces against closed forms (scipy)
# ------------------------------------------------------------------------------------


def _reference_point(posterior, draw: int = 123) -> dict:
    """One reference draw as constrained sample-site values of the NumPyro model."""
    draws = posterior.reference_draws()
    return {site: jnp.asarray(values[0, draw]) for site, values in draws.items()}


def test_ark_log_density_is_the_conditional_ar5_likelihood_plus_priors():
    posterior = posteriordb.load("arK-arK")
    params = _reference_point(posterior)
    lp, _ = log_density(posterior.model, (), posterior.data, params)
    y = np.asarray(posterior.raw_data()["y"])
    alpha, beta, sigma = (np.asarray(params[k], np.float64) for k in ("alpha", "beta", "sigma"))
    expected = scipy.stats.norm(0, 10).logpdf(alpha) + scipy.stats.norm(0, 10).logpdf(beta).sum()
    expected += scipy.stats.halfcauchy(scale=2.5).logpdf(sigma)
    for t in range(5, 200):  # Stan's t = K+1..T, 0-based
        mean = alpha + sum(beta[k] * y[t - k - 1] for k in range(5))
        expected += scipy.stats.norm(mean, sigma).logpdf(y[t])
    # float32 model against float64 scipy: a few ulps of float32 per term.
    np.testing.assert_allclose(float(lp), expected, rtol=1e-5)


def test_garch_prior_is_flat_on_alpha1_beta1_with_the_dependent_bound():
    # Density on (alpha1, beta1_unit) minus log |d beta1 / d beta1_unit| must be constant:
    # Stan's flat prior on alpha1 in (0, 1), beta1 in (0, 1 - alpha1).
    posterior = posteriordb.load("garch-garch11")
    prior = handlers.block(posterior.model, hide=["y"])
    values = []
    for alpha1, unit in [(0.1, 0.2), (0.5, 0.9), (0.95, 0.5), (0.3, 0.01)]:
        params = {"mu": 1.0, "alpha0": 2.0, "alpha1": alpha1, "beta1_unit": unit}
        lp, trace = log_density(prior, (), posterior.data, params)
        assert float(trace["beta1"]["value"]) == pytest.approx((1 - alpha1) * unit)
        values.append(float(lp) - np.log1p(-alpha1))
    np.testing.assert_allclose(values, values[0], atol=1e-5)


def test_diamonds_priors_are_brms_student_t_and_half_t():
    posterior = posteriordb.load("diamonds-diamonds")
    data = {**posterior.data, "prior_only": 1}
    params = {"b": jnp.linspace(-1, 1, 24), "Intercept": 7.5, "sigma": 1.7}
    lp, _ = log_density(posterior.model, (), data, params)
    expected = (
        scipy.stats.norm.logpdf(np.linspace(-1, 1, 24)).sum()
        + scipy.stats.t(3, 8, 10).logpdf(7.5)
        + scipy.stats.t(3, 0, 10).logpdf(1.7)
        - scipy.stats.t(3, 0, 10).logsf(0.0)
    )
    np.testing.assert_allclose(float(lp), expected, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_log_density_is_finite_at_a_reference_draw(name):
    posterior = posteriordb.load(name)
    point = _reference_point(posterior)
    # Map reference (Stan) parameters onto the model's sample sites where they differ.
    if name.startswith("eight_schools"):
        point["theta_trans"] = (point.pop("theta") - point["mu"]) / point["tau"]
    if name.startswith("garch"):
        point["beta1_unit"] = point.pop("beta1") / (1 - point["alpha1"])
    lp, _ = log_density(posterior.model, (), posterior.data, point)
    assert np.isfinite(float(lp))


# ------------------------------------------------------------------------------------
# NUTS against the reference draws
# ------------------------------------------------------------------------------------

# Settings per posterior: posteriordb's reference runs used adapt_delta 0.95 on eight
# schools (its funnel) and a dense metric is what makes diamonds tractable.
SETTINGS = {
    "eight_schools-eight_schools_noncentered": {"target_accept": 0.95},
    "arK-arK": {},
    "garch-garch11": {},
    "kidiq-kidscore_momiq": {},
    "earnings-earn_height": {},
    "diamonds-diamonds": {"mass_matrix": "dense"},
}


def _mcse_mean(values: np.ndarray) -> float:
    return float(np.squeeze(az.mcse(np.asarray(values, dtype=np.float64), method="mean")))


def agreement(samples: dict, reference: dict) -> dict[str, tuple[float, float]]:
    """posteriordb name -> (z of the mean difference, relative error of the sd)."""
    ours = posteriordb.to_posteriordb_names({site: samples[site] for site in reference})
    theirs = posteriordb.to_posteriordb_names(reference)
    result = {}
    for column, ref in theirs.items():
        draws = np.asarray(ours[column], dtype=np.float64)
        combined_mcse = np.hypot(_mcse_mean(draws), _mcse_mean(ref))
        z = (draws.mean() - ref.mean()) / combined_mcse
        sd_error = draws.std() / ref.std() - 1.0
        result[column] = (float(z), float(sd_error))
    return result


@pytest.mark.slow  # each: one compile of warm-up + NUTS (~10 s CPU) and 8000 iterations
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_nuts_agrees_with_the_reference_draws(name):
    posterior = posteriordb.load(name)
    result = pk.mcmc.sample(
        posterior.model,
        model_kwargs=posterior.data,
        kernel="nuts",
        num_chains=4,
        num_warmup=1000,
        num_samples=1000,
        seed=1,
        **SETTINGS[name],
    )
    numbers = agreement(result.samples, posterior.reference_draws())
    report = ", ".join(f"{k}: z={z:+.2f} sd{s:+.1%}" for k, (z, s) in numbers.items())
    bad_means = [k for k, (z, _) in numbers.items() if abs(z) > 4.0]
    bad_sds = [k for k, (_, s) in numbers.items() if abs(s) > 0.10]
    assert not bad_means, f"means off by > 4 combined MCSE at {bad_means}; {report}"
    assert not bad_sds, f"standard deviations off by > 10% at {bad_sds}; {report}"
