"""Flow search on the shipped, trained 2-D score network (the checkerboard).

The reward is ``-|x - c|^2`` with ``c`` the centre of a square that carries data, so
the best reachable reward is 0 and a sample near it lies on the board. At an equal
number of velocity evaluations, SMC over the SDE and rollover budget forcing must find
rewards closer to 0 than best-of-n with the probability-flow ODE, as in Kim et al.
(2025); the comparison is over seeds, with their standard errors.
"""

import jax
import jax.numpy as jnp
import numpy as np
import probkit.models.diffusion as diffusion
import pytest

import probkit.scaling as sc
from probkit.sde import VPSDE, linear_interpolant, predictor_corrector_sample

CENTRE = jnp.array([-1.5, -1.5])
STEPS, PARTICLES, SEEDS = 10, 16, 12


def reward(x):
    return -jnp.sum((x - CENTRE) ** 2)


@pytest.fixture(scope="module")
def flow():
    sde = VPSDE()
    score = diffusion.score_fn(diffusion.load_pretrained(), sde)
    velocity_vp, vp_path = sc.velocity_from_score(score, sde)
    linear = linear_interpolant("none")
    return sde, score, sc.convert_velocity(velocity_vp, vp_path, linear), linear


def test_the_shipped_network_samples_the_checkerboard(flow):
    sde, score, _, _ = flow
    assert bool(diffusion.in_checkerboard(CENTRE))  # the target square carries data
    samples = predictor_corrector_sample(jax.random.key(0), sde, score, 2000, (2,))
    # a network that ignored the squares would put half its mass off the board
    assert float(diffusion.in_checkerboard(samples).mean()) > 0.9


@pytest.mark.slow
def test_smc_and_rbf_beat_ode_best_of_n_at_equal_budget(flow):
    _, _, velocity, linear = flow
    budget = PARTICLES * STEPS  # velocity evaluations, the same for every method
    methods = {
        "ode": lambda k: sc.flow_best_of_n(
            k, velocity, linear, reward, 2, PARTICLES, num_steps=STEPS
        ),
        "smc": lambda k: sc.flow_smc(
            k, velocity, linear, reward, 2, PARTICLES, num_steps=STEPS, temperature=0.1
        ),
        "rbf": lambda k: sc.rollover_budget_forcing(
            k, velocity, linear, reward, 2, budget, num_steps=STEPS
        ),
    }
    keys = jax.random.split(jax.random.key(7), SEEDS)
    best = {}
    for name, method in methods.items():
        out = jax.jit(jax.vmap(method))(keys)
        assert int(out.num_proposals[0]) <= budget
        best[name] = np.asarray(out.reward)
        if name != "ode":
            assert bool(jnp.all(diffusion.in_checkerboard(out.sample)))
    se = {k: v.std(ddof=1) / np.sqrt(SEEDS) for k, v in best.items()}
    for name in ("smc", "rbf"):
        gap = best[name].mean() - best["ode"].mean()
        assert gap > 2 * np.hypot(se[name], se["ode"]), (name, best, se)
