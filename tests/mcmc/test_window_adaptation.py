"""Warm-up and sampling in one loop: the window adaptation as pieces, checked against
blackjax's own ``window_adaptation``, and the driver tracing NUTS once per run."""

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from blackjax.adaptation.metric_recipes import lookup_recipe

import probkit as pk
from probkit.mcmc import _kernels
from probkit.mcmc._adaptation import _stan_schedule, window_adaptation

COVARIANCE = jnp.array([[1.0, 0.6, 0.0], [0.6, 2.0, 0.3], [0.0, 0.3, 0.5]])


def _logdensity(x):
    return -0.5 * x @ jnp.linalg.solve(COVARIANCE, x)


@pytest.mark.parametrize("diagonal", [True, False])
@pytest.mark.parametrize("num_steps", [15, 120, 400])  # all-fast, shortened and Stan's schedule
def test_pieces_reproduce_blackjax_window_adaptation(diagonal, num_steps):
    key, x0 = jax.random.key(3), jnp.array([1.5, -1.0, 0.5])
    reference = blackjax.window_adaptation(
        blackjax.nuts,
        _logdensity,
        is_mass_matrix_diagonal=diagonal,
        initial_step_size=1.0,
        target_acceptance_rate=0.8,
        adaptation_info_fn=lambda *_: None,
    )
    (ref_state, ref_params), _ = jax.jit(reference.run, static_argnums=2)(key, x0, num_steps)

    core = lookup_recipe("welford_diag" if diagonal else "welford_dense").build_core()
    adaptation = window_adaptation(core, num_steps, 1.0, 0.8, jnp.float32)

    @jax.jit
    def run(key, x0):
        def one(carry, xs):
            state, tuning = carry
            t, step_key = xs
            nuts = blackjax.nuts(_logdensity, tuning.step_size, tuning.inverse_mass_matrix)
            state, info = nuts.step(step_key, state)
            tuning = adaptation.update(
                tuning, t, state.position, state.logdensity_grad, info.acceptance_rate
            )
            return (state, tuning), None

        start = (blackjax.nuts.init(x0, _logdensity), adaptation.init(3))
        keys = jax.random.split(key, num_steps)  # blackjax's keys, one per step
        (state, tuning), _ = jax.lax.scan(one, start, (jnp.arange(num_steps), keys))
        return state, adaptation.final(tuning)

    state, (step_size, inverse_mass_matrix) = run(key, x0)
    # The same transitions with the same parameters: equal up to XLA's rounding.
    np.testing.assert_allclose(step_size, ref_params["step_size"], rtol=1e-5)
    np.testing.assert_allclose(
        inverse_mass_matrix, ref_params["inverse_mass_matrix"], rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(state.position, ref_state.position, rtol=1e-5, atol=1e-6)
    if num_steps >= 120:  # a slow window ended: the metric was estimated, not the start
        assert not np.allclose(inverse_mass_matrix, np.ones_like(inverse_mass_matrix))


def test_default_nuts_traces_its_kernel_once_and_no_separate_warmup(monkeypatch):
    traces = []
    spec = _kernels.KERNELS["nuts"]

    def counting_algorithm(logdensity, params, options):
        algorithm = spec.algorithm(logdensity, params, options)

        def step(key, state):
            traces.append(1)  # runs once per trace, not per transition
            return algorithm.step(key, state)

        return blackjax.base.SamplingAlgorithm(algorithm.init, step)

    def no_warmup(*args, **kwargs):
        raise AssertionError("the default NUTS run must not build a separate warm-up")

    monkeypatch.setitem(_kernels.KERNELS, "nuts", spec._replace(algorithm=counting_algorithm))
    monkeypatch.setattr(blackjax, "window_adaptation", no_warmup)
    target = pk.Target.from_logdensity(_logdensity, jnp.zeros(3))
    # Settings no other test uses: nothing is compiled already.
    result = pk.mcmc.sample(target, num_warmup=117, num_samples=131, num_chains=2, diagnose=False)
    assert traces == [1]  # the buffers' shapes and the loop share one trace
    assert result.unconstrained.shape == (2, 131, 3)
    assert result.stats["step_size"].shape == (2, 131)
    # After the warm-up the step size is the tuned one, constant within each chain.
    np.testing.assert_array_equal(
        result.stats["step_size"], np.broadcast_to(result.stats["step_size"][:, :1], (2, 131))
    )
    np.testing.assert_allclose(
        result.stats["step_size"][:, 0], result.adaptation["step_size"], rtol=1e-6
    )


@pytest.mark.parametrize("num_steps", [1, 15, 120, 1000])
def test_stan_schedule_is_blackjaxs_built_once_and_read_only(num_steps):
    from blackjax.adaptation.staged_adaptation import build_schedule

    schedule = _stan_schedule(num_steps)
    np.testing.assert_array_equal(schedule, np.asarray(build_schedule(num_steps)))
    assert schedule.dtype == np.int32 and schedule.shape == (num_steps, 2)
    assert _stan_schedule(num_steps) is schedule  # every sample() call asks for it
    with pytest.raises(ValueError):
        schedule[0, 0] = 1  # shared between calls: nobody may change it
