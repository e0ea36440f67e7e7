"""The layers of probkit.mcmc: the pure loop, user kernels, continuing a run, HMC's
jittered trajectories against resonant targets, option checks, the result's repr."""

from typing import NamedTuple

import arviz as az
import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import probkit as pk

STD_NORMAL = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum(x**2), jnp.zeros(2))


def _second_moment_error(draws: np.ndarray, variance: float) -> tuple[float, float]:
    """(error of the mean of x^2, its Monte Carlo standard error from ArviZ's ESS)."""
    squares = np.asarray(draws) ** 2
    mcse = float(np.asarray(az.mcse(squares)).squeeze())
    return float(squares.mean()) - variance, mcse


# -- the pure loop inside the user's own jit / vmap ----------------------------------
def test_loop_under_jit_and_vmap_with_data_per_chain():
    means = jnp.array([-3.0, 0.0, 5.0])

    def run(key, mean):
        nuts = blackjax.nuts(
            lambda x: -0.5 * jnp.sum((x - mean) ** 2),
            step_size=0.8,
            inverse_mass_matrix=jnp.ones(1),
        )
        _, (draws, info) = pk.mcmc.loop(key, nuts, nuts.init(jnp.full(1, mean)), 2000)
        return draws, info.acceptance_rate

    keys = jax.random.split(jax.random.key(0), 3)
    draws, acceptance = jax.jit(jax.vmap(run))(keys, means)
    assert draws.shape == (3, 2000, 1)
    # Each chain samples N(mean_c, 1): 2000 NUTS draws have an ESS > 500, so the mean's
    # standard error is below 0.045; 0.2 is more than 4 of them.
    np.testing.assert_allclose(draws.mean(axis=(1, 2)), means, atol=0.2)
    assert np.all(acceptance.mean(axis=1) > 0.5)


@pytest.mark.parametrize("kernel", ["nuts", "hmc"])
def test_warmup_per_chain_with_data_of_its_own_under_jit_and_vmap(kernel):
    # Each chain's posterior N(mean_c, sd_c^2) has its own scale, 100x apart: one step
    # size for all would fail; each chain's own warm-up tunes its own.
    means, sds = jnp.array([-3.0, 0.0, 5.0]), jnp.array([0.1, 1.0, 10.0])

    def run(key, mean, sd):
        warm_key, sample_key = jax.random.split(key)
        logdensity = lambda x: -0.5 * jnp.sum(((x - mean) / sd) ** 2)  # noqa: E731
        tuned = pk.mcmc.warmup(warm_key, logdensity, jnp.zeros(2), 400, kernel=kernel)
        _, (draws, stats) = pk.mcmc.loop(
            sample_key, tuned.algorithm, tuned.state, 2000, statistics=tuned.statistics
        )
        return draws, stats["acceptance_rate"], tuned.params["inverse_mass_matrix"]

    keys = jax.random.split(jax.random.key(1), 3)
    draws, accept, inverse_mass = jax.jit(jax.vmap(run))(keys, means, sds)
    assert draws.shape == (3, 2000, 2)
    # Each chain's metric follows its own scale (the window estimate of sd_c^2).
    ratio = np.asarray(inverse_mass) / np.asarray(sds)[:, None] ** 2
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
    for c in range(3):
        z = (np.asarray(draws[c]) - float(means[c])) / float(sds[c])
        for j in range(2):
            mcse = float(np.asarray(az.mcse(z[None, :, j])).squeeze())
            assert abs(z[:, j].mean()) < 5 * mcse, (c, j, z[:, j].mean(), mcse)
            error, mcse2 = _second_moment_error(z[None, :, j], 1.0)
            assert abs(error) < 5 * mcse2, (c, j, error, mcse2)
    assert np.all(np.asarray(accept).mean(axis=1) > 0.6)


def test_warmup_checks_its_input():
    logdensity = STD_NORMAL.logdensity
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="'nuts' or 'hmc', not 'mala'"):
        pk.mcmc.warmup(key, logdensity, jnp.zeros(2), kernel="mala")
    with pytest.raises(ValueError, match="flat 1-D array"):
        pk.mcmc.warmup(key, logdensity, jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="num_warmup must be an int >= 1"):
        pk.mcmc.warmup(key, logdensity, jnp.zeros(2), 0)
    with pytest.raises(TypeError, match="Unknown option"):
        pk.mcmc.warmup(key, logdensity, jnp.zeros(2), max_doublings=3)
    with pytest.raises(TypeError, match="key must be a jax.random key"):
        pk.mcmc.warmup(0, logdensity, jnp.zeros(2))


# -- a kernel of the user's own --------------------------------------------------------
def test_blackjax_algorithm_as_kernel_equals_the_named_kernel_without_warmup():
    nuts = blackjax.nuts(STD_NORMAL.logdensity, step_size=0.5, inverse_mass_matrix=jnp.ones(2))
    run = dict(num_warmup=0, num_samples=100, num_chains=2, seed=4, diagnose=False)
    mine = pk.mcmc.sample(STD_NORMAL, kernel=nuts, **run)
    named = pk.mcmc.sample(STD_NORMAL, kernel="nuts", step_size=0.5, **run)
    np.testing.assert_allclose(mine.samples["x"], named.samples["x"], atol=1e-6)
    assert {"lp", "acceptance_rate", "diverging", "n_steps", "tree_depth"} <= set(mine.stats)
    pair = pk.mcmc.sample(STD_NORMAL, kernel=(nuts.init, nuts.step), **run)
    np.testing.assert_allclose(pair.samples["x"], mine.samples["x"], atol=1e-6)


# -- continuing a run ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kernel", "num_warmup"),
    [
        ("nuts", 0),
        pytest.param("nuts", 150, marks=pytest.mark.slow),
        pytest.param("mala", 150, marks=pytest.mark.slow),
    ],
)
def test_continuing_equals_one_longer_run(kernel, num_warmup):
    run = dict(kernel=kernel, num_chains=2, seed=7, diagnose=False)
    if num_warmup == 0:
        run["step_size"] = 0.5
    whole = pk.mcmc.sample(STD_NORMAL, num_warmup=num_warmup, num_samples=200, **run)
    first = pk.mcmc.sample(STD_NORMAL, num_warmup=num_warmup, num_samples=120, **run)
    rest = pk.mcmc.sample(STD_NORMAL, num_samples=80, init_state=first.last_state, **run)
    joined = np.concatenate([first.samples["x"], rest.samples["x"]], axis=1)
    # Same tuned parameters, transition keys indexed by the transition's number: the
    # continued run makes the draws of the longer one (up to XLA's rounding).
    np.testing.assert_allclose(joined, whole.samples["x"], atol=1e-5)
    np.testing.assert_array_equal(rest.last_state.num_transitions, [200, 200])
    # The run donates its buffers, not the caller's: the same state continues again,
    # to the same draws.
    again = pk.mcmc.sample(STD_NORMAL, num_samples=80, init_state=first.last_state, **run)
    np.testing.assert_array_equal(again.samples["x"], rest.samples["x"])


def test_continuing_checks_its_input():
    first = pk.mcmc.sample(STD_NORMAL, num_warmup=50, num_samples=10, num_chains=2, diagnose=False)
    with pytest.raises(ValueError, match="holds 2 chains but num_chains=4"):
        pk.mcmc.sample(STD_NORMAL, num_chains=4, init_state=first.last_state)
    with pytest.raises(ValueError, match="not both"):
        pk.mcmc.sample(STD_NORMAL, num_chains=2, init=jnp.zeros(2), init_state=first.last_state)
    with pytest.raises(TypeError, match="last_state"):
        pk.mcmc.sample(STD_NORMAL, num_chains=2, init_state={"x": 1})


def test_continuing_refuses_another_kernel_target_or_warmup_settings():
    # Each of these would have run something else than the run init_state came from
    # (HMC with NUTS's state) or failed deep inside blackjax (MALA's missing "scale").
    first = pk.mcmc.sample(STD_NORMAL, num_warmup=50, num_samples=10, num_chains=2, diagnose=False)
    state = first.last_state
    assert (state.kernel, state.layout, state.mass_matrix) == ("nuts", (("x", (2,)),), "diag")
    assert "kernel='nuts'" in repr(state) and len(repr(state)) < 200
    for kernel in ["hmc", "mala", "rwm"]:
        with pytest.raises(ValueError, match=rf"run of kernel='nuts'.*asks for kernel='{kernel}'"):
            pk.mcmc.sample(STD_NORMAL, kernel=kernel, num_chains=2, init_state=state)
    wider = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum(x**2), jnp.zeros(3))
    with pytest.raises(ValueError, match=r"sites \[x \(2,\)\].*not this target's \[x \(3,\)\]"):
        pk.mcmc.sample(wider, num_chains=2, init_state=state)
    with pytest.raises(ValueError, match="step_size=0.01 differs from the step size"):
        pk.mcmc.sample(STD_NORMAL, num_chains=2, init_state=state, step_size=0.01)
    # Warm-up settings have nothing to set up: a warning (the options of the run
    # continued, passed again from one dict, are common). The step size passed again
    # is accepted: test_continuing_equals_one_longer_run.
    with pytest.warns(pk.SamplingWarning, match="target_accept set.* up the warm-up"):
        again = pk.mcmc.sample(
            STD_NORMAL, num_chains=2, num_samples=5, init_state=state, target_accept=0.95
        )
    assert again.last_state.num_transitions.tolist() == [15, 15]
    with pytest.raises(ValueError, match="tuned with mass_matrix='diag'"):
        pk.mcmc.sample(STD_NORMAL, num_chains=2, init_state=state, mass_matrix="dense")
    # What the step reads is still honoured.
    more = pk.mcmc.sample(
        STD_NORMAL, num_chains=2, num_samples=5, init_state=state, max_num_doublings=3
    )
    assert int(np.max(more.stats["tree_depth"])) <= 3


def test_a_kernel_of_your_own_that_breaks_the_pair_contract_is_named():
    logdensity = STD_NORMAL.logdensity
    mala = blackjax.mala(logdensity, 0.5)
    run = dict(num_chains=2, num_warmup=10, num_samples=10)
    broken = {
        "must have a .position field": (lambda x: (x, logdensity(x)), mala.step),
        "must be step\\(key, state\\)": (mala.init, lambda state: (state, None)),
        "must return a pair": (mala.init, lambda key, state: state),
    }
    for message, kernel in broken.items():
        with pytest.raises(TypeError, match=message):
            pk.mcmc.sample(STD_NORMAL, kernel=kernel, **run)
    result = pk.mcmc.sample(STD_NORMAL, kernel=mala, diagnose=False, **run)
    assert result.kernel == "blackjax.mcmc.mala"


@pytest.mark.parametrize("mass_matrix", ["dense", "low_rank"])
def test_cross_chain_kernels_refuse_a_metric_they_do_not_adapt(mass_matrix):
    with pytest.raises(ValueError, match=f"kernel='chees' adapts a diagonal.*'{mass_matrix}'"):
        pk.mcmc.sample(STD_NORMAL, kernel="chees", num_chains=4, mass_matrix=mass_matrix)


# -- HMC against resonant targets -----------------------------------------------------
@pytest.mark.parametrize(
    "sd",
    [
        0.5,  # half a period in 16 x 0.1: a fixed trajectory maps x to about -x
        1.6 / (2 * np.pi),  # a whole period: a fixed trajectory returns to x
    ],
)
def test_hmc_default_is_not_fooled_by_a_resonant_period(sd):
    target = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum((x / sd) ** 2), jnp.zeros(1))
    run = dict(kernel="hmc", num_warmup=0, step_size=0.1, num_chains=4, num_samples=1000, seed=0)
    result = pk.mcmc.sample(target, diagnose=False, **run)
    error, mcse = _second_moment_error(result.samples["x"][..., 0], sd**2)
    # E[x^2] = sd^2 within 4.5 MCSE (a correct sampler fails with probability < 1e-5),
    # and the MCSE itself small (a stuck chain can make it large).
    assert abs(error) < 4.5 * mcse and mcse < 0.1 * sd**2, (error, mcse)
    # The same trajectory without jitter is the failure the default avoids.
    fixed = pk.mcmc.sample(target, diagnose=False, jitter=False, **run)
    error, mcse = _second_moment_error(fixed.samples["x"][..., 0], sd**2)
    assert abs(error) > 4.5 * mcse or mcse > 0.1 * sd**2


def test_hmc_trajectory_length_sets_the_number_of_steps():
    result = pk.mcmc.sample(
        STD_NORMAL,
        kernel="hmc",
        trajectory_length=2.0,
        num_warmup=0,
        step_size=0.25,
        num_samples=400,
        num_chains=2,
        diagnose=False,
    )
    steps = result.stats["n_steps"]
    # L = 2.0 / 0.25 = 8 steps on average, drawn uniformly from 1 .. 15
    assert steps.min() >= 1 and steps.max() <= 15
    assert abs(steps.mean() - 8.0) < 0.5  # sd of the mean of 800 draws: 0.15


# -- options checked before compilation ---------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"step_size": 0.0}, "step_size must be a positive number"),
        ({"step_size": -0.1}, "step_size must be a positive number"),
        ({"max_num_doublings": 0}, "max_num_doublings must be an integer >= 1"),
        ({"kernel": "hmc", "num_integration_steps": 0}, "num_integration_steps must be"),
        ({"kernel": "hmc", "trajectory_length": -1.0}, "trajectory_length must be a positive"),
        ({"kernel": "hmc", "num_integration_steps": 4, "trajectory_length": 1.0}, "not both"),
    ],
)
def test_bad_option_values_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pk.mcmc.sample(STD_NORMAL, num_warmup=10, num_samples=10, num_chains=2, **kwargs)


def test_user_kernel_takes_no_named_options():
    nuts = blackjax.nuts(STD_NORMAL.logdensity, step_size=0.5, inverse_mass_matrix=jnp.ones(2))
    with pytest.raises(TypeError, match="carries its own parameters"):
        pk.mcmc.sample(STD_NORMAL, kernel=nuts, max_num_doublings=3)


def test_unknown_init_site_is_named_with_the_valid_ones():
    def model(y):
        mu = numpyro.sample("mu", dist.Normal(0, 1))
        sigma = numpyro.sample("sigma", dist.HalfNormal(1))
        numpyro.sample("y", dist.Normal(mu, sigma), obs=y)

    with pytest.raises(ValueError, match=r"\['muu'\].*latent sites are \['mu', 'sigma'\]"):
        pk.from_numpyro(model, jnp.ones(3), init={"muu": 1.0})


def test_repr_is_a_short_summary():
    result = pk.mcmc.sample(
        STD_NORMAL, num_warmup=50, num_samples=500, num_chains=2, diagnose=False
    )
    text = repr(result)
    assert len(text) < 300, text
    assert "num_chains=2" in text and "num_samples=500" in text and "nuts" in text
    assert "divergences=" in text and "x: (2,)" in text


def test_repr_stays_short_with_many_sites_and_nan_in_a_deterministic_site_is_reported():
    def model():
        for i in range(30):
            numpyro.sample(f"site_{i}", dist.Normal(0.0, 1.0))
        numpyro.deterministic("bad", jnp.log(-jnp.abs(numpyro.sample("z", dist.Normal()))))

    run = dict(num_warmup=50, num_samples=50, num_chains=2, diagnose=False)
    result = pk.mcmc.sample(model, **run)
    text = repr(result)
    assert len(text) < 400 and "(24 more sites)" in text, text
    problems = result.diagnose(emit=False)
    assert any("Draws of bad contain NaN" in p for p in problems), problems


def test_a_failed_run_says_so_in_its_repr_and_summary():
    """Chains stuck apart (no warm-up, a step far too small) must not look fine."""
    with pytest.warns(pk.SamplingWarning):
        stuck = pk.mcmc.sample(
            STD_NORMAL,
            kernel="rwm",
            num_warmup=0,
            num_samples=200,
            num_chains=4,
            step_size=1e-4,
            init=jnp.array([[-3.0, 0.0], [3.0, 0.0], [0.0, -3.0], [0.0, 3.0]]),
        )
    assert "PROBLEMS=" in repr(stuck)
    with pytest.warns(pk.SamplingWarning, match=r"\[summary\] R-hat"):
        table = stuck.summary()
    assert any("R-hat" in message for message in table.attrs["problems"])


# -- keys ------------------------------------------------------------------------------
def test_named_kernels_draw_with_unrolled_keys_and_the_same_draws(monkeypatch):
    # NUTS's keys hash unrolled on CPU (probkit._threefry): the same keys and random
    # numbers as JAX's, so the same draws as with JAX's own keys.
    from probkit.mcmc import _sample

    wrapped = []
    real = _sample.cpu_fast_key
    monkeypatch.setattr(
        _sample, "cpu_fast_key", lambda k, **kw: wrapped.append(kw) or real(k, **kw)
    )
    run = dict(num_warmup=150, num_samples=100, num_chains=2, seed=11, diagnose=False)
    fast = pk.mcmc.sample(STD_NORMAL, kernel="nuts", **run)
    assert wrapped and all(kw == {"every_size": True} for kw in wrapped)
    monkeypatch.setattr(_sample, "_UNROLLED_KEY_KERNELS", frozenset())
    plain = pk.mcmc.sample(STD_NORMAL, kernel="nuts", **run)
    np.testing.assert_array_equal(fast.samples["x"], plain.samples["x"])
    np.testing.assert_array_equal(fast.stats["n_steps"], plain.stats["n_steps"])


class _Position(NamedTuple):
    position: jax.Array


def test_a_user_kernel_keeps_jax_keys_for_poisson_and_gamma():
    # jax.random.poisson refuses keys of other implementations: a user's kernel gets
    # JAX's own keys, whatever the named kernels use.
    def step(key, state):
        k1, k2 = jax.random.split(key)
        x = jax.random.gamma(k1, 3.0, (2,)) + jax.random.poisson(k2, 2.0, (2,))
        return _Position(x.astype(state.position.dtype)), ()

    result = pk.mcmc.sample(
        STD_NORMAL,
        kernel=(_Position, step),
        num_warmup=0,
        num_samples=2000,
        num_chains=2,
        diagnose=False,
    )
    # Gamma(3) + Poisson(2): mean 5, sd 2.2; the mean of 8000 numbers has sd 0.025.
    assert abs(float(result.samples["x"].mean()) - 5.0) < 0.2
