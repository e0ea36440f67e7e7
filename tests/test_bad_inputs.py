"""Bad inputs across the public API: each gives an error (or a warning) that names the
argument at fault, before anything is compiled.

Every case is one wrong value for one argument of a public entry point, with tiny
inputs otherwise, so that the whole file runs in well under a minute. A case marked
``xfail(strict=True)`` is a known unclear message in a package owned elsewhere: it turns
into a failure (and must be unmarked) once that message is fixed.
"""

from __future__ import annotations

import os
import re
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from probkit.models import continual, fewshot, gflownet, mjp
from probkit.models import distribution_transformer as dt
from probkit.models import masked_diffusion as md

import probkit
import probkit.bridges as br
import probkit.fkc as fkc
import probkit.graph as graph
import probkit.importance as imp
import probkit.mcmc as mcmc
import probkit.scaling as scaling
import probkit.sde as sde
import probkit.smc as smc
from probkit.results import SamplingWarning

# --------------------------------------------------------------------------- fixtures
# Tiny, shared by every case (built once, at import of this module).

KEY = jax.random.key(0)


def _normal_model(y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def _logdensity(x):
    return -0.5 * jnp.sum(x**2)


TARGET = probkit.from_numpyro(_normal_model, y=jnp.zeros(3))
SSM = smc.StateSpaceModel(
    initial=dist.Normal(0.0, 1.0),
    transition=lambda t, x: dist.Normal(0.9 * x, 1.0),
    observation=lambda t, x: dist.Normal(x, 0.5),
)
OBS = jnp.zeros(4)
FK = smc.FeynmanKac(
    init=lambda key, n: jax.random.normal(key, (n,)),
    move=lambda key, t, x: x + jax.random.normal(key, x.shape),
    log_potential=lambda t, prev, x: -0.5 * x**2,
    num_steps=3,
)
NORMAL2 = dist.Normal(jnp.zeros(2), 1.0)
VP = sde.VPSDE()
SCORE = lambda x, t: -x  # noqa: E731
COST = jnp.ones((3, 4))
X0 = jnp.zeros((5, 1))
X1 = jnp.ones((5, 1))
GRID = gflownet.HyperGrid(ndim=2, height=3)
POLICY = gflownet.Policy(GRID, key=KEY, width=4, depth=1)
Q2 = jnp.array([[-1.0, 1.0], [2.0, -2.0]])
PROCESS = mjp.MJP(Q2)
PRIOR2 = dt.gaussian(jnp.zeros(2), jnp.eye(2))
GRAPH = graph.from_scipy(np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]))
WALK = graph.simple_random_walk(GRAPH)
NIW = fewshot.NIW(jnp.zeros(2), 1.0, jnp.eye(2), 4.0)
DRAWS = np.random.default_rng(0).normal(size=(50, 2))
CHAIN = md.markov_chain(np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.1, 0.9]]), 3)
EXACT_DENOISER = md.exact_denoiser(CHAIN)
X_INIT = np.full((2, 3), 2)  # all masked (vocabulary {0, 1}, mask token 2)


MODEL_FILE = os.path.join(tempfile.mkdtemp(prefix="probkit-bad-inputs-"), "model.py")
with open(MODEL_FILE, "w") as _file:
    _file.write(
        "import numpyro, numpyro.distributions as dist\n"
        "def model(y=None):\n"
        "    mu = numpyro.sample('mu', dist.Normal(0.0, 1.0))\n"
        "    numpyro.sample('y', dist.Normal(mu, 1.0), obs=y)\n"
    )

DATA_FILE = os.path.join(os.path.dirname(MODEL_FILE), "data.json")
with open(DATA_FILE, "w") as _file:
    _file.write('{"y": "abc"}')


def _cli(*argv):
    from probkit import cli

    return cli.main(list(argv))


def _bo():
    import probkit.bayesopt

    return probkit.bayesopt


def _quadratic(x):
    return float(np.sum(np.asarray(x) ** 2))


def _xfail(reason):
    return pytest.mark.xfail(strict=True, reason=reason)


# Each case: (id, thunk, exception type, regex the message must match).
CASES = [
    # ---- probkit.from_numpyro / Target
    ("from_numpyro-model-not-callable", lambda: probkit.from_numpyro(3), TypeError, "model"),
    (
        "from_numpyro-unknown-init-site",
        lambda: probkit.from_numpyro(_normal_model, init={"nope": 0.0}),
        ValueError,
        "nope",
    ),
    (
        "from_numpyro-bad-init-strategy",
        lambda: probkit.from_numpyro(_normal_model, init="best"),
        ValueError,
        "init",
    ),
    # ---- probkit.mcmc.sample
    (
        "mcmc-target-logdensity-function",
        lambda: mcmc.sample(lambda x: -0.5 * jnp.sum(x**2)),
        TypeError,
        "Target.from_logdensity",
    ),
    (
        "mcmc-target-no-sample-site",
        lambda: mcmc.sample(lambda y: y + 1.0, model_args=(jnp.ones(2),)),
        TypeError,
        "no numpyro.sample site",
    ),
    (
        "mcmc-target-every-site-observed",
        lambda: mcmc.sample(
            lambda y: numpyro.sample("y", dist.Normal(0.0, 1.0), obs=y),
            model_args=(jnp.ones(2),),
        ),
        ValueError,
        "no latent sample site",
    ),
    ("mcmc-kernel-unknown", lambda: mcmc.sample(TARGET, kernel="gibbs"), ValueError, "kernel"),
    ("mcmc-num_chains-0", lambda: mcmc.sample(TARGET, num_chains=0), ValueError, "num_chains"),
    (
        "mcmc-num_chains-float",
        lambda: mcmc.sample(TARGET, num_chains=2.5),
        ValueError,
        "num_chains",
    ),
    ("mcmc-num_samples-0", lambda: mcmc.sample(TARGET, num_samples=0), ValueError, "num_samples"),
    ("mcmc-num_warmup-neg", lambda: mcmc.sample(TARGET, num_warmup=-1), ValueError, "num_warmup"),
    ("mcmc-thinning-0", lambda: mcmc.sample(TARGET, thinning=0), ValueError, "thinning"),
    ("mcmc-seed-float", lambda: mcmc.sample(TARGET, seed=1.5), (ValueError, TypeError), "seed"),
    (
        "mcmc-chain_method",
        lambda: mcmc.sample(TARGET, chain_method="threads"),
        ValueError,
        "chain_method",
    ),
    (
        "mcmc-mass_matrix",
        lambda: mcmc.sample(TARGET, mass_matrix="full"),
        ValueError,
        "mass_matrix",
    ),
    (
        "mcmc-target_accept-1.5",
        lambda: mcmc.sample(TARGET, target_accept=1.5),
        ValueError,
        "target_accept",
    ),
    ("mcmc-step_size-0", lambda: mcmc.sample(TARGET, step_size=0.0), ValueError, "step_size"),
    (
        "mcmc-max_num_doublings-0",
        lambda: mcmc.sample(TARGET, max_num_doublings=0),
        ValueError,
        "max_num_doublings",
    ),
    (
        "mcmc-unknown-kernel-option",
        lambda: mcmc.sample(TARGET, num_leapfrog=3),
        (ValueError, TypeError),
        "num_leapfrog",
    ),
    ("mcmc-target-not-callable", lambda: mcmc.sample(42), TypeError, "target"),
    (
        "mcmc-init-unknown-site",
        lambda: mcmc.sample(_normal_model, init={"sigma": 1.0}, model_kwargs={"y": OBS}),
        ValueError,
        "sigma",
    ),
    # ---- probkit.smc
    ("smc.run-num_particles-0", lambda: smc.run(FK, num_particles=0), ValueError, "num_particles"),
    (
        "smc.run-resampling-unknown",
        lambda: smc.run(FK, num_particles=4, resampling="best"),
        ValueError,
        "resampling",
    ),
    (
        "smc.run-ess_threshold-2",
        lambda: smc.run(FK, num_particles=4, ess_threshold=2.0),
        ValueError,
        "ess_threshold",
    ),
    ("smc.run-fk-not-fk", lambda: smc.run(3, num_particles=4), TypeError, "fk"),
    ("smc.run-seed-float", lambda: smc.run(FK, num_particles=4, seed=1.5), TypeError, "seed"),
    ("mcmc.loop-key-int", lambda: probkit.mcmc.loop(0, None, None, 10), TypeError, "key"),
    (
        "smc.particle_filter-seed-float",
        lambda: smc.particle_filter(SSM, OBS, num_particles=4, seed=2.0),
        TypeError,
        "seed",
    ),
    (
        "smc.tempered-seed-float",
        lambda: smc.tempered(TARGET, num_particles=8, seed=0.5),
        TypeError,
        "seed",
    ),
    (
        "smc.loop-key-int",
        lambda: smc.loop(0, FK, num_particles=4, resampling_fn=smc.systematic),
        TypeError,
        "key",
    ),
    (
        "smc.systematic-key-float",
        lambda: smc.systematic(1.0, jnp.zeros(4), 4),
        TypeError,
        r"key must be a jax.random key",
    ),
    (
        "smc.particle_filter-num_particles-0",
        lambda: smc.particle_filter(SSM, OBS, num_particles=0),
        ValueError,
        "num_particles",
    ),
    (
        "smc.particle_filter-proposal",
        lambda: smc.particle_filter(SSM, OBS, num_particles=4, proposal="oracle"),
        ValueError,
        "proposal",
    ),
    (
        "smc.particle_filter-ssm-not-ssm",
        lambda: smc.particle_filter(3, OBS, num_particles=4),
        TypeError,
        "ssm",
    ),
    (
        "smc.tempered-num_particles-1",
        lambda: smc.tempered(TARGET, num_particles=1),
        ValueError,
        "num_particles",
    ),
    (
        "smc.tempered-kernel",
        lambda: smc.tempered(TARGET, num_particles=8, kernel="gibbs"),
        ValueError,
        "kernel",
    ),
    (
        "smc.tempered-target_ess",
        lambda: smc.tempered(TARGET, num_particles=8, target_ess=1.5),
        ValueError,
        "target_ess",
    ),
    (
        "smc.tempered-num_mcmc_steps-0",
        lambda: smc.tempered(TARGET, num_particles=8, num_mcmc_steps=0),
        ValueError,
        "num_mcmc_steps",
    ),
    (
        "smc.tempered-schedule-decreasing",
        lambda: smc.tempered(TARGET, num_particles=8, schedule=[0.0, 0.7, 0.3, 1.0]),
        ValueError,
        "schedule",
    ),
    ("smc.tempered-target-int", lambda: smc.tempered(5, num_particles=8), TypeError, "target"),
    (
        "smc.systematic-key-int",
        lambda: smc.systematic(0, jnp.zeros(4), 4),
        TypeError,
        "key",
    ),
    # ---- probkit.importance
    (
        "importance_sample-num_samples-0",
        lambda: imp.importance_sample(KEY, _logdensity, dist.Normal(0.0, 1.0), 0),
        ValueError,
        "num_samples",
    ),
    (
        "importance_sample-num_samples-float",
        lambda: imp.importance_sample(KEY, _logdensity, dist.Normal(0.0, 1.0), 10.0),
        ValueError,
        "num_samples",
    ),
    (
        "importance_sample-key-int",
        lambda: imp.importance_sample(0, _logdensity, dist.Normal(0.0, 1.0), 10),
        TypeError,
        r"key.*jax\.random\.key\(seed\)",
    ),
    (
        "importance_sample-proposal-not-dist",
        lambda: imp.importance_sample(KEY, _logdensity, "normal", 10),
        TypeError,
        "proposal",
    ),
    (
        "importance_sample-logdensity-not-callable",
        lambda: imp.importance_sample(KEY, 1.0, dist.Normal(0.0, 1.0), 10),
        TypeError,
        "logdensity_fn",
    ),
    (
        "importance_sample-vector-logdensity",
        lambda: imp.importance_sample(KEY, lambda x: -0.5 * x**2, NORMAL2, 10),
        ValueError,
        r"logdensity_fn must return a scalar.*got shape \(2,\)",
    ),
    ("psis-2d", lambda: imp.psis(jnp.zeros((3, 4))), ValueError, "log_weights"),
    ("psis-all-minus-inf", lambda: imp.psis(jnp.full(10, -jnp.inf)), ValueError, "log_weights"),
    ("psis-nan", lambda: imp.psis(jnp.array([0.0, jnp.nan, 1.0])), ValueError, "log_weights.*NaN"),
    ("psis-r_eff-0", lambda: imp.psis(jnp.zeros(10), r_eff=0.0), ValueError, "r_eff"),
    (
        "sobol-method",
        lambda: imp.sobol_indices(KEY, lambda x: x[:, 0], NORMAL2, 1000, method="fast"),
        ValueError,
        "method",
    ),
    (
        "sobol-budget-small",
        lambda: imp.sobol_indices(KEY, lambda x: x[:, 0], NORMAL2, 10),
        ValueError,
        "budget",
    ),
    (
        "sobol-formulas",
        lambda: imp.sobol_indices(KEY, lambda x: x[:, 0], NORMAL2, 1000, formulas="x"),
        ValueError,
        "formulas",
    ),
    (
        "sobol-f-not-callable",
        lambda: imp.sobol_indices(KEY, 3.0, NORMAL2, 1000),
        TypeError,
        "f must be a callable",
    ),
    (
        "sobol-key-int",
        lambda: imp.sobol_indices(0, lambda x: x[:, 0], NORMAL2, 1000),
        TypeError,
        "key",
    ),
    (
        "sobol-f-indexes-past-d",
        lambda: imp.sobol_indices(KEY, lambda x: x[:, 0] + x[:, 2], NORMAL2, 1000),
        IndexError,
        "f indexes past its input: input_dist has d=2",
    ),
    (
        "sobol-f-wrong-output-shape",
        lambda: imp.sobol_indices(KEY, lambda x: x, NORMAL2, 1000),
        ValueError,
        r"f must map .*\(n, 2\).*\(n,\)",
    ),
    (
        "sobol-f-constant",
        lambda: imp.sobol_indices(
            KEY, lambda x: jnp.ones(x.shape[0]), NORMAL2, 1000, method="pick-freeze"
        ),
        ValueError,
        "same value",
    ),
    (
        "sobol-dependent-inputs",
        lambda: imp.sobol_indices(
            KEY, lambda x: x[:, 0], dist.MultivariateNormal(jnp.zeros(2), jnp.eye(2)), 1000
        ),
        ValueError,
        "independent",
    ),
    (
        "sobol-input_dist-not-dist",
        lambda: imp.sobol_indices(KEY, lambda x: x[:, 0], "uniform", 1000),
        TypeError,
        "input_dist",
    ),
    (
        "multiple_expectations-key-int",
        lambda: imp.multiple_expectations(0, lambda x: x, NORMAL2, 100),
        TypeError,
        "key",
    ),
    # ---- probkit.bridges
    ("sinkhorn-cost-1d", lambda: br.sinkhorn(jnp.ones(3), epsilon=0.1), ValueError, "cost_matrix"),
    ("sinkhorn-epsilon-0", lambda: br.sinkhorn(COST, epsilon=0.0), ValueError, "epsilon"),
    ("sinkhorn-epsilon-neg", lambda: br.sinkhorn(COST, epsilon=-1.0), ValueError, "epsilon"),
    (
        "sinkhorn-a-shape",
        lambda: br.sinkhorn(COST, jnp.ones(4) / 4, epsilon=0.1),
        ValueError,
        "a must have shape",
    ),
    (
        "sinkhorn-b-sum",
        lambda: br.sinkhorn(COST, None, jnp.ones(4), epsilon=0.1),
        ValueError,
        "b must sum to 1",
    ),
    (
        "sinkhorn-a-negative",
        lambda: br.sinkhorn(COST, jnp.array([1.5, -0.5, 0.0]), epsilon=0.1),
        ValueError,
        r"a must be non-negative; entries \[1\] are negative",
    ),
    (
        "sinkhorn-a-nan",
        lambda: br.sinkhorn(COST, jnp.array([0.5, jnp.nan, 0.5]), epsilon=0.1),
        ValueError,
        r"a must be finite; entries \[1\]",
    ),
    (
        "sinkhorn-max_iterations-5",
        lambda: br.sinkhorn(COST, epsilon=0.1, max_iterations=5),
        ValueError,
        "max_iterations",
    ),
    (
        "sinkhorn-threshold-0",
        lambda: br.sinkhorn(COST, epsilon=0.1, threshold=0.0),
        ValueError,
        "threshold",
    ),
    (
        "squared_distances-dims",
        lambda: br.squared_distances(jnp.ones((2, 3)), jnp.ones((2, 2))),
        ValueError,
        "x and y",
    ),
    (
        "schrodinger_bridge-sigma-0",
        lambda: br.schrodinger_bridge(X0, X1, sigma=0.0),
        ValueError,
        "sigma",
    ),
    (
        "schrodinger_bridge-method",
        lambda: br.schrodinger_bridge(X0, X1, sigma=1.0, method="dsb"),
        ValueError,
        "method",
    ),
    (
        "schrodinger_bridge-num_steps-0",
        lambda: br.schrodinger_bridge(X0, X1, sigma=1.0, num_steps=0),
        ValueError,
        "num_steps",
    ),
    (
        "schrodinger_bridge-dims",
        lambda: br.schrodinger_bridge(X0, jnp.ones((5, 2)), sigma=1.0),
        ValueError,
        "x0 and x1",
    ),
    (
        "schrodinger_bridge-x0-nan",
        lambda: br.schrodinger_bridge(X0.at[0].set(jnp.nan), X1, sigma=1.0),
        ValueError,
        "x0",
    ),
    (
        "brownian_bridge-key-int",
        lambda: br.brownian_bridge(0, X0, X1, jnp.linspace(0, 1, 3), sigma=1.0),
        TypeError,
        "key",
    ),
    ("linear_drift-dim-0", lambda: br.linear_drift(0), ValueError, "dim"),
    ("as_reference-unknown", lambda: br.as_reference("lorenz"), ValueError, "reference"),
    # ---- probkit.fkc
    (
        "fkc.product-one-score",
        lambda: fkc.product([SCORE], VP, event_shape=(1,)),
        ValueError,
        "scores",
    ),
    (
        "fkc.product-num_steps-0",
        lambda: fkc.product([SCORE, SCORE], VP, event_shape=(1,), num_steps=0),
        ValueError,
        "num_steps",
    ),
    (
        "fkc.product-event_shape",
        lambda: fkc.product([SCORE, SCORE], VP, event_shape=(0,)),
        ValueError,
        "event_shape",
    ),
    (
        "fkc.anneal-beta-0",
        lambda: fkc.anneal(SCORE, VP, 0.0, event_shape=(1,)),
        ValueError,
        "beta",
    ),
    (
        "fkc.anneal-variant",
        lambda: fkc.anneal(SCORE, VP, 2.0, event_shape=(1,), variant="x"),
        ValueError,
        "variant",
    ),
    (
        "fkc.guidance-sde",
        lambda: fkc.guidance(SCORE, SCORE, "vp", 2.0, event_shape=(1,)),
        TypeError,
        "sde",
    ),
    (
        "fkc.geometric_mixture-exponents",
        lambda: fkc.geometric_mixture([SCORE, SCORE], [0.5], VP, event_shape=(1,)),
        ValueError,
        "exponents",
    ),
    (
        "fkc.release_schedule-resample_every-0",
        lambda: fkc.release_schedule(10, resample_every=0),
        ValueError,
        "resample_every",
    ),
    (
        "fkc.mmd-bandwidth-0",
        lambda: fkc.mmd(jnp.zeros((3, 1)), jnp.zeros((3, 1)), bandwidth=0.0),
        ValueError,
        "bandwidth",
    ),
    (
        "fkc.energy_distance-dims",
        lambda: fkc.energy_distance(jnp.zeros((3, 1)), jnp.zeros((3, 2))),
        ValueError,
        "x and y|dimension",
    ),
    # ---- probkit.sde
    ("sde.VPSDE-beta", lambda: sde.VPSDE(beta_min=-1.0), ValueError, "beta_min"),
    ("sde.VESDE-sigma", lambda: sde.VESDE(sigma_min=2.0, sigma_max=1.0), ValueError, "sigma"),
    ("sde.time_grid-num_steps-0", lambda: sde.time_grid(VP, 0), ValueError, "num_steps"),
    (
        "sde.predictor_corrector_sample-key-int",
        lambda: sde.predictor_corrector_sample(0, VP, SCORE, 4, (1,)),
        TypeError,
        "key",
    ),
    (
        "sde.predictor_corrector_sample-num_samples-0",
        lambda: sde.predictor_corrector_sample(KEY, VP, SCORE, 0, (1,)),
        ValueError,
        "num_samples",
    ),
    (
        "sde.predictor_corrector_sample-predictor",
        lambda: sde.predictor_corrector_sample(KEY, VP, SCORE, 4, (1,), predictor="heun"),
        ValueError,
        "predictor",
    ),
    (
        "sde.probability_flow_sample-num_samples-0",
        lambda: sde.probability_flow_sample(KEY, VP, SCORE, 0, (1,)),
        ValueError,
        "num_samples",
    ),
    (
        "sde.log_likelihood-method",
        lambda: sde.log_likelihood(VP, SCORE, jnp.zeros((2, 1)), method="exactish"),
        ValueError,
        "method",
    ),
    (
        "sde.log_likelihood-hutchinson-without-key",
        lambda: sde.log_likelihood(VP, SCORE, jnp.zeros((2, 1)), method="hutchinson"),
        ValueError,
        "key",
    ),
    (
        "sde.sample_fbm-hurst-1.5",
        lambda: sde.sample_fbm(KEY, 1.5, jnp.linspace(0.1, 1, 3), 2),
        ValueError,
        "hurst",
    ),
    (
        "sde.sample_fbm-num_paths-0",
        lambda: sde.sample_fbm(KEY, 0.5, jnp.linspace(0.1, 1, 3), 0),
        ValueError,
        "num_paths",
    ),
    (
        "sde.sample_fbm-key-int",
        lambda: sde.sample_fbm(0, 0.5, jnp.linspace(0.1, 1, 3), 2),
        TypeError,
        "key",
    ),
    (
        "sde.markov_fbm-num_components-0",
        lambda: sde.markov_fbm(0.3, 0),
        ValueError,
        "num_components",
    ),
    ("sde.latent_sde-dim-0", lambda: sde.latent_sde(KEY, 0, 1.0), ValueError, "dim"),
    (
        "sde.gaussian_mixture-weights",
        lambda: sde.gaussian_mixture(jnp.array([0.5, -0.2]), jnp.zeros((2, 1)), 1.0),
        ValueError,
        "weights",
    ),
    (
        "sde.linear_interpolant-gamma",
        lambda: sde.linear_interpolant(gamma="cubic"),
        ValueError,
        "gamma",
    ),
    (
        "sde.interpolant_sample-num_steps-0",
        lambda: sde.interpolant_sample(KEY, lambda x, t: x, None, jnp.zeros((2, 1)), num_steps=0),
        ValueError,
        "num_steps",
    ),
    # ---- probkit.graph
    (
        "graph.from_scipy-not-square",
        lambda: graph.from_scipy(np.ones((2, 3))),
        ValueError,
        "adjacency",
    ),
    (
        "graph.from_scipy-negative",
        lambda: graph.from_scipy(np.array([[0, -1], [-1, 0]])),
        ValueError,
        "adjacency|weight",
    ),
    ("graph.from_networkx-not-graph", lambda: graph.from_networkx([1, 2]), TypeError, "graph"),
    (
        "graph.metropolis_hastings_walk-target",
        lambda: graph.metropolis_hastings_walk(GRAPH, target="peaked"),
        ValueError,
        "target",
    ),
    (
        "graph.self_repellent_walk-alpha-neg",
        lambda: graph.self_repellent_walk(graph.metropolis_hastings_walk(GRAPH), -1.0),
        ValueError,
        "alpha",
    ),
    (
        "graph.sample-num_steps-0",
        lambda: graph.sample(WALK, seed=0, num_steps=0),
        ValueError,
        "num_steps",
    ),
    (
        "graph.sample-num_walkers-0",
        lambda: graph.sample(WALK, seed=0, num_steps=5, num_walkers=0),
        ValueError,
        "num_walkers",
    ),
    (
        "graph.sample-start-out-of-range",
        lambda: graph.sample(WALK, seed=0, num_steps=5, start=7),
        ValueError,
        "start",
    ),
    (
        "graph.sample-walker_method",
        lambda: graph.sample(WALK, seed=0, num_steps=5, walker_method="threads"),
        ValueError,
        "walker_method",
    ),
    (
        "graph.sample-values-wrong-length",
        lambda: graph.sample(WALK, np.ones(5), seed=0, num_steps=5),
        ValueError,
        "values",
    ),
    (
        "graph.sample-seed-float",
        lambda: graph.sample(WALK, seed=0.5, num_steps=5),
        ValueError,
        "seed",
    ),
    # ---- probkit.scaling
    (
        "scaling.get_potential-unknown",
        lambda: scaling.get_potential("cubic"),
        ValueError,
        "potential",
    ),
    (
        "scaling.softmax_reward-temperature-0",
        lambda: scaling.softmax_reward(0.0),
        ValueError,
        "temperature",
    ),
    ("scaling.top_k_resampling-0", lambda: scaling.top_k_resampling(0), ValueError, "num_beams"),
    (
        "scaling.flow_smc-num_particles-0",
        lambda: scaling.flow_smc(
            KEY, lambda x, t: x, sde.linear_interpolant(), lambda x: x[..., 0], 1, 0
        ),
        ValueError,
        "num_particles",
    ),
    (
        "scaling.flow_smc-dim-0",
        lambda: scaling.flow_smc(
            KEY, lambda x, t: x, sde.linear_interpolant(), lambda x: x[..., 0], 0, 4
        ),
        ValueError,
        "dim",
    ),
    (
        "scaling.flow_best_of_n-key-int",
        lambda: scaling.flow_best_of_n(
            0, lambda x, t: x, sde.linear_interpolant(), lambda x: x[..., 0], 1, 4
        ),
        TypeError,
        "key",
    ),
    (
        "scaling.diffusion_schedule-epsilon-neg",
        lambda: scaling.diffusion_schedule(sde.linear_interpolant(), -1.0),
        ValueError,
        "epsilon",
    ),
    # ---- models.gflownet
    ("gflownet.HyperGrid-ndim-0", lambda: gflownet.HyperGrid(ndim=0, height=4), ValueError, "ndim"),
    ("gflownet.HyperGrid-height-1", lambda: gflownet.HyperGrid(2, 1), ValueError, "height"),
    ("gflownet.HyperGrid-height-float", lambda: gflownet.HyperGrid(2, 4.0), ValueError, "height"),
    ("gflownet.HyperGrid-R0-0", lambda: gflownet.HyperGrid(2, 4, R0=0.0), ValueError, "R0"),
    ("gflownet.HyperGrid-R1-neg", lambda: gflownet.HyperGrid(2, 4, R1=-1.0), ValueError, "R1"),
    ("gflownet.HyperGrid-R0-str", lambda: gflownet.HyperGrid(2, 4, R0="1"), TypeError, "R0"),
    (
        "gflownet.fit-loss",
        lambda: gflownet.fit(GRID, loss="kl", num_trajectories=8),
        ValueError,
        "loss",
    ),
    (
        "gflownet.fit-num_trajectories-0",
        lambda: gflownet.fit(GRID, num_trajectories=0),
        ValueError,
        "num_trajectories",
    ),
    (
        "gflownet.fit-batch_size-too-big",
        lambda: gflownet.fit(GRID, num_trajectories=8, batch_size=16),
        ValueError,
        "batch_size",
    ),
    (
        "gflownet.fit-epsilon",
        lambda: gflownet.fit(GRID, num_trajectories=8, batch_size=8, epsilon=2.0),
        ValueError,
        "epsilon",
    ),
    (
        "gflownet.fit-temperature",
        lambda: gflownet.fit(GRID, num_trajectories=8, batch_size=8, temperature=0.0),
        ValueError,
        "temperature",
    ),
    (
        "gflownet.fit-backward_policy",
        lambda: gflownet.fit(GRID, num_trajectories=8, batch_size=8, backward_policy="x"),
        ValueError,
        "backward_policy",
    ),
    (
        "gflownet.fit-width-0",
        lambda: gflownet.fit(GRID, num_trajectories=8, batch_size=8, width=0),
        ValueError,
        "width",
    ),
    (
        "gflownet.fit-seed-float",
        lambda: gflownet.fit(GRID, num_trajectories=8, batch_size=8, seed=0.5),
        ValueError,
        "seed",
    ),
    (
        "gflownet.fit-env-not-env",
        lambda: gflownet.fit("grid", num_trajectories=8, batch_size=8),
        TypeError,
        "env",
    ),
    (
        "gflownet.fit-trajectory_length-with-tb",
        lambda: gflownet.fit(GRID, num_trajectories=8, batch_size=8, trajectory_length=2),
        ValueError,
        "trajectory_length",
    ),
    (
        "gflownet.Policy-key-int",
        lambda: gflownet.Policy(GRID, key=0, width=4),
        TypeError,
        "key",
    ),
    (
        "gflownet.sample_trajectories-num_trajectories-0",
        lambda: gflownet.sample_trajectories(KEY, POLICY, GRID, 0),
        ValueError,
        "num_trajectories",
    ),
    (
        "gflownet.importance_samples-key-int",
        lambda: gflownet.importance_samples(7, POLICY, GRID, 4),
        TypeError,
        "key",
    ),
    (
        "gflownet.exact-evaluation-too-large",
        lambda: gflownet.exact_target(gflownet.HyperGrid(ndim=12, height=16)),
        ValueError,
        "exact evaluation",
    ),
    # ---- models.mjp
    ("mjp.MJP-all-zero", lambda: mjp.MJP(np.zeros((3, 3))), ValueError, "rate_matrix is all zero"),
    ("mjp.MJP-not-square", lambda: mjp.MJP(np.zeros((2, 3))), ValueError, "rate_matrix"),
    (
        "mjp.MJP-negative-rate",
        lambda: mjp.MJP([[-1.0, -1.0], [1.0, -1.0]]),
        ValueError,
        "rate_matrix",
    ),
    (
        "mjp.MJP-row-sum",
        lambda: mjp.MJP([[-1.0, 2.0], [1.0, -1.0]]),
        ValueError,
        "row 0 of rate_matrix",
    ),
    ("mjp.MJP-initial", lambda: mjp.MJP(Q2, [0.5, 0.6]), ValueError, "initial"),
    (
        "mjp.stationary_distribution-all-zero",
        lambda: mjp.stationary_distribution(jnp.zeros((2, 2))),
        ValueError,
        "rate_matrix is all zero",
    ),
    (
        "mjp.simulate_paths-num_paths-0",
        lambda: mjp.simulate_paths(KEY, PROCESS, 0, 1.0),
        ValueError,
        "num_paths",
    ),
    (
        "mjp.simulate_paths-key-int",
        lambda: mjp.simulate_paths(0, PROCESS, 2, 1.0),
        TypeError,
        "key",
    ),
    (
        "mjp.simulate-max_jumps-0",
        lambda: mjp.simulate(KEY, PROCESS, 2, jnp.linspace(0, 1, 3), max_jumps=0),
        ValueError,
        "max_jumps",
    ),
    (
        "mjp.posterior-num_states-1",
        lambda: mjp.posterior(jnp.linspace(0, 1, 3), jnp.zeros((2, 3), int), 1),
        ValueError,
        "num_states",
    ),
    (
        "mjp.posterior-method",
        lambda: mjp.posterior(jnp.linspace(0, 1, 3), jnp.zeros((2, 3), int), 2, method="vi"),
        ValueError,
        "method",
    ),
    (
        "mjp.posterior-observations-float",
        lambda: mjp.posterior(jnp.linspace(0, 1, 3), jnp.full((2, 3), 0.5), 2),
        ValueError,
        "observations",
    ),
    (
        "mjp.posterior-observations-out-of-range",
        lambda: mjp.posterior(jnp.linspace(0, 1, 3), jnp.full((2, 3), 5), 2),
        ValueError,
        "observations",
    ),
    # ---- models.distribution_transformer
    (
        "dt.posterior-scalar-observation",
        lambda: dt.posterior(PRIOR2, 1.0, obs_matrix=jnp.eye(2), noise_std=0.5),
        ValueError,
        r"observations must have shape \(n, m\)",
    ),
    (
        "dt.posterior-1d-observation",
        lambda: dt.posterior(PRIOR2, jnp.ones(2), obs_matrix=jnp.eye(2), noise_std=0.5),
        ValueError,
        r"observations.*observations\[None, :\]",
    ),
    (
        "dt.posterior-nan-observation",
        lambda: dt.posterior(
            PRIOR2, jnp.full((1, 2), jnp.nan), obs_matrix=jnp.eye(2), noise_std=0.5
        ),
        ValueError,
        "observations must be finite",
    ),
    (
        "dt.posterior-task",
        lambda: dt.posterior(PRIOR2, jnp.ones((1, 2)), task="poisson"),
        ValueError,
        "task",
    ),
    (
        "dt.posterior-missing-obs_matrix",
        lambda: dt.posterior(PRIOR2, jnp.ones((1, 2))),
        ValueError,
        "obs_matrix",
    ),
    (
        "dt.posterior-obs_matrix-shape",
        lambda: dt.posterior(PRIOR2, jnp.ones((1, 2)), obs_matrix=jnp.eye(3), noise_std=0.5),
        ValueError,
        "obs_matrix",
    ),
    (
        "dt.posterior-noise_std-0",
        lambda: dt.posterior(PRIOR2, jnp.ones((1, 2)), obs_matrix=jnp.eye(2), noise_std=0.0),
        ValueError,
        "noise_std",
    ),
    (
        "dt.posterior-prior-not-gmm",
        lambda: dt.posterior("gaussian", jnp.ones((1, 2)), obs_matrix=jnp.eye(2), noise_std=0.5),
        TypeError,
        "prior",
    ),
    (
        "dt.posterior-logistic-labels",
        lambda: dt.posterior(
            PRIOR2, jnp.full(3, 0.5), task="logistic_regression", inputs=jnp.ones((3, 2))
        ),
        ValueError,
        "labels",
    ),
    (
        "dt.posterior-logistic-inputs",
        lambda: dt.posterior(
            PRIOR2, jnp.ones(3), task="logistic_regression", inputs=jnp.ones((2, 2))
        ),
        ValueError,
        "inputs",
    ),
    (
        "dt.gaussian-covariance-shape",
        lambda: dt.gaussian(jnp.zeros(2), jnp.eye(3)),
        ValueError,
        "covariance",
    ),
    (
        "dt.gaussian_mixture-weights",
        lambda: dt.gaussian_mixture(jnp.array([0.5, -0.2]), jnp.zeros((2, 1)), jnp.ones((2, 1, 1))),
        ValueError,
        "weights",
    ),
    ("dt.fit-task", lambda: dt.fit("poisson_2d", num_steps=1), ValueError, "task"),
    (
        "dt.fit-num_steps-0",
        lambda: dt.fit("linear_gaussian_1d", num_steps=0),
        ValueError,
        "num_steps",
    ),
    (
        "dt.kl_divergence_mc-key-int",
        lambda: dt.kl_divergence_mc(0, PRIOR2, PRIOR2, 10),
        TypeError,
        "key",
    ),
    # ---- models.masked_diffusion
    (
        "md.sample-method",
        lambda: md.sample(EXACT_DENOISER, X_INIT, mask_token=2, method="greedy"),
        ValueError,
        "method",
    ),
    (
        "md.sample-num_steps-0",
        lambda: md.sample(EXACT_DENOISER, X_INIT, mask_token=2, method="stepwise", num_steps=0),
        ValueError,
        "num_steps",
    ),
    (
        "md.sample-schedule",
        lambda: md.sample(EXACT_DENOISER, X_INIT, mask_token=2, method="stepwise", schedule="x"),
        ValueError,
        "schedule",
    ),
    (
        "md.sample-precision",
        lambda: md.sample(EXACT_DENOISER, X_INIT, mask_token=2, precision="float16"),
        ValueError,
        "precision",
    ),
    (
        "md.sample-x_init-float",
        lambda: md.sample(EXACT_DENOISER, np.full((2, 3), 0.5), mask_token=2),
        ValueError,
        "x_init",
    ),
    (
        "md.sample-tokens_per_call-0",
        lambda: md.sample(EXACT_DENOISER, X_INIT, mask_token=2, tokens_per_call=0),
        ValueError,
        "tokens_per_call",
    ),
    ("md.get_schedule-unknown", lambda: md.get_schedule("exp"), ValueError, "schedule"),
    (
        "md.markov_chain-transition-rows",
        lambda: md.markov_chain(np.array([0.5, 0.5]), np.array([[0.5, 0.6], [0.5, 0.5]]), 3),
        ValueError,
        "transition",
    ),
    (
        "md.markov_chain-length-0",
        lambda: md.markov_chain(np.array([0.5, 0.5]), np.eye(2), 0),
        ValueError,
        "length",
    ),
    (
        "md.initial_sequences-num_samples-0",
        lambda: md.initial_sequences(0, 3, 2),
        ValueError,
        "num_samples",
    ),
    (
        "md.Denoiser-vocab_size-0",
        lambda: md.Denoiser(0, 3, key=KEY),
        ValueError,
        "vocab_size",
    ),
    ("md.Denoiser-key-int", lambda: md.Denoiser(2, 3, key=0), TypeError, "key"),
    (
        "md.categorical-key-int",
        lambda: md.categorical(0, jnp.zeros((2, 3))),
        TypeError,
        "key",
    ),
    (
        "md.sample_sequences-num_samples-0",
        lambda: md.sample_sequences(KEY, CHAIN, 0),
        ValueError,
        "num_samples",
    ),
    # ---- models.continual
    ("continual.propagate-method", lambda: continual.propagate(DRAWS, "kde"), ValueError, "method"),
    (
        "continual.propagate-samples-1d-few",
        lambda: continual.propagate(np.ones((1, 2))),
        ValueError,
        "samples",
    ),
    (
        "continual.propagate-samples-nan",
        lambda: continual.propagate(np.full((10, 2), np.nan)),
        ValueError,
        "samples",
    ),
    (
        "continual.propagate-key-int",
        lambda: continual.propagate(DRAWS, "mixture", key=3),
        TypeError,
        r"key.*jax\.random\.key",
    ),
    (
        "continual.fit_gaussian_mixture-num_components-0",
        lambda: continual.fit_gaussian_mixture(KEY, DRAWS, 0),
        ValueError,
        "num_components",
    ),
    (
        "continual.split_gaussian_blobs-num_tasks-0",
        lambda: continual.split_gaussian_blobs(KEY, 0),
        ValueError,
        "num_tasks",
    ),
    (
        "continual.split_gaussian_blobs-key-int",
        lambda: continual.split_gaussian_blobs(0),
        TypeError,
        "key",
    ),
    (
        "continual.continual_metrics-shape",
        lambda: continual.continual_metrics(np.ones(3)),
        ValueError,
        "accuracy",
    ),
    # ---- models.fewshot
    (
        "fewshot.check_niw-dof",
        lambda: fewshot.check_niw(fewshot.NIW(jnp.zeros(2), 1.0, jnp.eye(2), 0.5)),
        ValueError,
        "dof",
    ),
    (
        "fewshot.check_niw-concentration",
        lambda: fewshot.check_niw(fewshot.NIW(jnp.zeros(2), -1.0, jnp.eye(2), 4.0)),
        ValueError,
        "concentration",
    ),
    (
        "fewshot.niw_posterior-dims",
        lambda: fewshot.niw_posterior(NIW, jnp.ones((3, 3))),
        ValueError,
        "x",
    ),
    (
        "fewshot.sample_episodes-num_episodes-0",
        lambda: fewshot.sample_episodes(KEY, NIW, 0),
        ValueError,
        "num_episodes",
    ),
    (
        "fewshot.sample_episodes-num_ways-1",
        lambda: fewshot.sample_episodes(KEY, NIW, 2, num_ways=0),
        ValueError,
        "num_ways",
    ),
    (
        "fewshot.sample_episodes-key-int",
        lambda: fewshot.sample_episodes(0, NIW, 2),
        TypeError,
        "key",
    ),
    (
        "fewshot.fit_global-num_steps-0",
        lambda: fewshot.fit_global(KEY, jnp.ones((2, 3, 4, 2)), num_steps=0),
        ValueError,
        "num_steps",
    ),
    (
        "fewshot.expected_calibration_error-num_bins-0",
        lambda: fewshot.expected_calibration_error(jnp.ones((2, 2)) / 2, jnp.zeros(2, int), 0),
        ValueError,
        "num_bins",
    ),
    (
        "fewshot.prototype_log_proba-temperature-0",
        lambda: fewshot.prototype_log_proba(jnp.ones((2, 3, 2)), jnp.ones((4, 2)), 0.0),
        ValueError,
        "temperature",
    ),
    # ---- probkit.bayesopt (imported inside the thunks: torch only when these run)
    (
        "bayesopt.minimize-bounds-reversed",
        lambda: _bo().minimize(_quadratic, [[1.0, 0.0]], budget=3, initial_design=2),
        ValueError,
        "bounds",
    ),
    (
        "bayesopt.minimize-bounds-shape",
        lambda: _bo().minimize(_quadratic, [0.0, 1.0, 2.0], budget=3, initial_design=2),
        ValueError,
        "bounds",
    ),
    (
        "bayesopt.minimize-budget-0",
        lambda: _bo().minimize(_quadratic, [[0.0, 1.0]], budget=0),
        ValueError,
        "budget",
    ),
    (
        "bayesopt.minimize-initial_design-0",
        lambda: _bo().minimize(_quadratic, [[0.0, 1.0]], budget=3, initial_design=0),
        ValueError,
        "initial_design",
    ),
    (
        "bayesopt.minimize-surrogate",
        lambda: _bo().minimize(
            _quadratic, [[0.0, 1.0]], budget=3, initial_design=2, surrogate="forest"
        ),
        ValueError,
        "surrogate",
    ),
    (
        "bayesopt.minimize-acquisition",
        lambda: _bo().minimize(
            _quadratic, [[0.0, 1.0]], budget=3, initial_design=2, acquisition="pi2"
        ),
        ValueError,
        "acquisition",
    ),
    (
        "bayesopt.minimize-noise-neg",
        lambda: _bo().minimize(_quadratic, [[0.0, 1.0]], budget=3, initial_design=2, noise=-1.0),
        ValueError,
        "noise",
    ),
    (
        "bayesopt.minimize-batch_size-0",
        lambda: _bo().minimize(_quadratic, [[0.0, 1.0]], budget=3, batch_size=0),
        ValueError,
        "batch_size",
    ),
    (
        "bayesopt.minimize-objective-not-callable",
        lambda: _bo().minimize("f", [[0.0, 1.0]], budget=3),
        TypeError,
        "objective",
    ),
    (
        "bayesopt.minimize-integer_dims-out-of-range",
        lambda: _bo().minimize(
            _quadratic, [[0.0, 1.0]], budget=3, initial_design=2, integer_dims=[3]
        ),
        ValueError,
        "integer_dims",
    ),
    (
        "bayesopt.Optimizer-surrogate",
        lambda: _bo().Optimizer([[0.0, 1.0]], surrogate="forest"),
        ValueError,
        "surrogate",
    ),
    # ---- the CLI, through main(argv)
    ("cli-chains-0", lambda: _cli("demo", "--chains", "0"), SystemExit, "--chains"),
    ("cli-draws-neg", lambda: _cli("demo", "--draws", "-5"), SystemExit, "--draws"),
    ("cli-warmup-word", lambda: _cli("demo", "--warmup", "many"), SystemExit, "--warmup"),
    ("cli-seed-float", lambda: _cli("demo", "--seed", "1.5"), SystemExit, "--seed"),
    (
        "cli-sample-kernel",
        lambda: _cli("sample", "model.py:model", "--kernel", "gibbs"),
        SystemExit,
        "--kernel",
    ),
    (
        "cli-sample-mass-matrix",
        lambda: _cli("sample", "model.py:model", "--mass-matrix", "full"),
        SystemExit,
        "--mass-matrix",
    ),
    (
        "cli-sample-target-accept",
        lambda: _cli("sample", "model.py:model", "--target-accept", "1.5"),
        SystemExit,
        "--target-accept",
    ),
    ("cli-unknown-command", lambda: _cli("fit"), SystemExit, "fit|command"),
    (
        "cli-sample-missing-file",
        lambda: _cli("sample", "/nonexistent/model.py:model", "--no-progress"),
        SystemExit,
        "model",
    ),
    (
        "cli-sample-data-not-json",
        lambda: _cli("sample", f"{MODEL_FILE}:model", "--data", "{oops", "--no-progress"),
        SystemExit,
        "data file",
    ),
    (
        "cli-sample-data-string-value",
        lambda: _cli("sample", f"{MODEL_FILE}:model", "--data", DATA_FILE, "--no-progress"),
        SystemExit,
        "'y'|\"y\"",
    ),
    (
        "cli-sample-unknown-function",
        lambda: _cli("sample", f"{MODEL_FILE}:nope", "--no-progress"),
        SystemExit,
        "nope",
    ),
    (
        "cli-sample-out-missing-folder",
        lambda: _cli("sample", f"{MODEL_FILE}:model", "--out", "/nonexistent/dir/r.nc"),
        SystemExit,
        "--out|/nonexistent",
    ),
]


@pytest.mark.parametrize(
    "thunk, error, match",
    [pytest.param(t, e, m, id=i) for i, t, e, m in CASES],
)
def test_bad_input_names_the_argument(thunk, error, match, capsys):
    with pytest.raises(error) as caught:
        thunk()
    message = str(caught.value)
    if isinstance(caught.value, SystemExit):  # argparse prints to stderr; the CLI exits with it
        message = f"{caught.value.code}\n{capsys.readouterr().err}"
    assert re.search(match, message, flags=re.S), message


# Non-finite values and non-converged solvers that used to pass silently: a warning in
# words (SamplingWarning) that says what happened and what to change.
WARNING_CASES = [
    (
        "importance_sample-nan-target",
        lambda: imp.importance_sample(KEY, lambda x: jnp.log(x), dist.Normal(0.0, 1.0), 20),
        r"NaN for \d+ of 20 draws.*logdensity_fn",
    ),
    (
        "importance_sample-nan-target-under-jit",
        lambda: jax.jit(
            lambda k: imp.importance_sample(k, lambda x: jnp.nan * x, dist.Normal(0.0, 1.0), 8)
        )(KEY),
        "NaN for 8 of 8 draws",
    ),
    (
        "importance_sample-zero-density-everywhere",
        lambda: imp.importance_sample(
            KEY, lambda x: jnp.where(x > 100.0, 0.0, -jnp.inf), dist.Normal(0.0, 1.0), 8
        ),
        "every one of the 8 log-weights is -inf",
    ),
    (
        "psis-all-minus-inf-under-jit",
        lambda: jax.jit(imp.psis)(jnp.full(8, -jnp.inf)),
        "every one of the 8 log-weights is -inf",
    ),
]


@pytest.mark.parametrize("thunk, match", [pytest.param(t, m, id=i) for i, t, m in WARNING_CASES])
def test_silent_failures_warn_with_the_fix(thunk, match):
    with pytest.warns(SamplingWarning, match=match):
        jax.block_until_ready(thunk())
        jax.effects_barrier()


def test_numpy_integers_are_accepted_where_ints_are():
    n = np.int64(8)
    samples = imp.importance_sample(KEY, _logdensity, dist.Normal(0.0, 1.0), n)
    assert samples.log_weights.shape == (8,)
    assert gflownet.HyperGrid(np.int64(2), np.int32(3)).num_states == 9
    assert md.initial_sequences(np.int64(2), np.int64(3), 2).shape == (2, 3)
    assert sde.time_grid(VP, np.int64(4)).shape == (5,)
    # (Sinkhorn's non-convergence warning and np.int64 iteration caps: tests/bridges.)


def test_enough_cases():
    assert len(CASES) + len(WARNING_CASES) >= 150
    assert len({case[0] for case in CASES}) == len(CASES)  # ids are unique
