"""ChEES and MEADS at their defaults on posteriordb posteriors, against the reference
draws; MEADS's choice of folds; multi-path Pathfinder starts.

At the defaults of the time, ChEES (identity metric, uniform starts) left kidiq's
chains where they started (every draw divergent) and MEADS (4 folds of 4 chains)
diverged on every draw of garch11."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from probkit.models import posteriordb

import probkit as pk
from probkit._diagnostics import ess_bulk, rhat
from probkit.mcmc._kernels import meads_num_folds, pathfinder_starts
from probkit.results import SamplingWarning


def _assert_matches_reference(name: str, result, max_rhat: float) -> None:
    """Every coordinate's mean within 4.5 combined standard errors of the reference
    draws' mean (the run's from its bulk ESS, the reference's from its 10,000 draws),
    and split R-hat below ``max_rhat``."""
    reference = posteriordb.load(name).reference_draws()
    for site, ref in reference.items():
        draws = np.asarray(result.samples[site], np.float64)  # (chain, draw, *shape)
        ref = np.asarray(ref, np.float64).reshape(-1, *draws.shape[2:])
        ess = np.asarray(ess_bulk(draws))
        assert np.all(ess > 100), (site, ess)
        se = draws.std(axis=(0, 1)) / np.sqrt(ess)
        ref_se = ref.std(axis=0) / np.sqrt(ref.shape[0])
        z = (draws.mean(axis=(0, 1)) - ref.mean(axis=0)) / np.hypot(se, ref_se)
        assert np.all(np.abs(z) < 4.5), (site, z)
        assert np.all(np.asarray(rhat(draws)) < max_rhat), (site, rhat(draws))


def _run(name: str, kernel: str):
    post = posteriordb.load(name)
    return pk.mcmc.sample(
        post.model, model_kwargs=post.data, kernel=kernel, num_chains=16, diagnose=False
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kidiq-kidscore_momiq", "earnings-earn_height"])
def test_chees_at_its_defaults_matches_reference(name):
    result = _run(name, "chees")
    assert int(np.sum(result.stats["diverging"])) == 0
    # bulk ESS 4,000-14,500 of 16,000 draws on these (seed 0): R-hat is tight
    _assert_matches_reference(name, result, max_rhat=1.01)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["garch-garch11", "eight_schools-eight_schools_noncentered"])
def test_meads_at_its_defaults_matches_reference(name):
    result = _run(name, "meads")
    assert int(np.sum(result.stats["diverging"])) <= 5
    # A MEADS draw is one leapfrog step: ESS ~600 of 16,000 draws here, ~20 per split
    # chain, so a converged run's split R-hat is about 1 + 1/40.
    _assert_matches_reference(name, result, max_rhat=1.06)


@pytest.mark.parametrize(
    ("num_chains", "folds"), [(16, 2), (18, 2), (24, 3), (32, 4), (40, 4), (512, 4)]
)
def test_meads_folds_are_chosen_with_at_least_8_chains_each(num_chains, folds):
    assert meads_num_folds(num_chains, None) == folds


@pytest.mark.parametrize("num_chains", [4, 8, 15, 17])
def test_meads_with_too_few_or_indivisible_chains_is_an_error_naming_num_chains(num_chains):
    with pytest.raises(ValueError, match="num_chains"):
        meads_num_folds(num_chains, None)
    with pytest.raises(ValueError, match="num_chains"):
        pk.mcmc.sample(
            pk.Target.from_logdensity(lambda x: -0.5 * x @ x, jnp.zeros(2)),
            kernel="meads",
            num_chains=num_chains,
        )


def test_meads_explicit_folds_are_kept_and_checked():
    assert meads_num_folds(16, 4) == 4
    assert meads_num_folds(16, 1) == 1
    with pytest.raises(ValueError, match="at least 4 chains per fold"):
        meads_num_folds(12, 4)


def test_meads_with_fewer_than_8_chains_per_fold_warns_before_compiling(monkeypatch):
    import probkit.mcmc._sample as sample_module

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    # The warning comes from the argument checks; stop at the first compiled step.
    monkeypatch.setattr(sample_module, "_as_target", stop)
    target = pk.Target.from_logdensity(lambda x: -0.5 * x @ x, jnp.zeros(2))
    with pytest.warns(SamplingWarning, match="chains per fold"), pytest.raises(Stop):
        pk.mcmc.sample(target, kernel="meads", num_chains=16, num_folds=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplingWarning)
        with pytest.raises(Stop):
            pk.mcmc.sample(target, kernel="meads", num_chains=16)


def test_pathfinder_starts_are_distinct_draws_near_the_posterior():
    # A narrow Gaussian far from the uniform starts: every start must land near it.
    mean, sd = jnp.array([5.0, -3.0, 8.0]), jnp.array([0.01, 0.1, 1.0])

    def logdensity(x):
        return -0.5 * jnp.sum(((x - mean) / sd) ** 2)

    x0s = jax.random.uniform(jax.random.PRNGKey(0), (16, 3), minval=-2.0, maxval=2.0)
    starts = np.asarray(pathfinder_starts(jax.random.PRNGKey(1), logdensity, x0s))
    assert starts.shape == (16, 3) and np.all(np.isfinite(starts))
    assert np.all(np.abs((starts - np.asarray(mean)) / np.asarray(sd)) < 5)
    assert len(np.unique(starts, axis=0)) == 16  # resampled without replacement


def test_pathfinder_starts_keep_a_chain_start_when_no_draw_has_a_finite_weight():
    x0s = jnp.arange(8.0).reshape(4, 2)
    starts = pathfinder_starts(jax.random.PRNGKey(0), lambda x: jnp.nan * jnp.sum(x), x0s)
    np.testing.assert_array_equal(np.asarray(starts), np.asarray(x0s))
