"""Result objects print a short summary (class, fields, array shapes), not their arrays."""

import dataclasses
import warnings
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

from probkit._repr import summary_repr

LIMIT = 400


def check(result, shape: str) -> str:
    text = repr(result)
    assert len(text) < LIMIT, text
    assert text.startswith(type(result).__name__ + "("), text
    assert shape in text, text
    assert "Array(" not in text and "array(" not in text, text  # no array contents
    return text


# --- summary_repr itself ---------------------------------------------------------------


class Pair(NamedTuple):
    draws: jax.Array
    scale: jax.Array
    name: str
    extra: object = None


@dataclasses.dataclass
class Record:
    values: np.ndarray
    count: int
    stats: dict
    hidden: np.ndarray = dataclasses.field(default=None, repr=False)


class Net(eqx.Module):
    layers: list
    bias: jax.Array


class Wrapper(eqx.Module):
    weights: jax.Array
    rate: float


def test_namedtuple_fields_arrays_and_scalars():
    text = summary_repr(Pair(jnp.zeros((1000, 2)), jnp.asarray(1.23456789), "nuts"))
    assert text == "Pair(draws=f32[1000,2], scale=1.235, name='nuts', extra=None)"


def test_dataclass_dict_and_hidden_field():
    stats = {f"site{i}": np.zeros((4, 1000)) for i in range(12)}
    record = Record(np.zeros(1000, np.int32), 7, stats, hidden=np.zeros(5))
    text = summary_repr(record)
    assert text.startswith("Record(values=i32[1000], count=7, stats={site0: f64[4,1000], ")
    assert "(+" in text and "site11" not in text  # the first entries, then a count
    assert "hidden" not in text
    assert len(text) < LIMIT


def test_equinox_module_and_network():
    module = Wrapper(jnp.ones((3, 4)), 0.5)
    assert summary_repr(module) == "Wrapper(weights=f32[3,4], rate=0.5)"
    mlp = eqx.nn.MLP(2, 3, 16, 2, key=jax.random.key(0))
    params = sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(mlp, eqx.is_array)))
    text = summary_repr(Pair(jnp.zeros(3), jnp.zeros(()), "x", mlp))
    assert f"extra=MLP({params:,} params)" in text
    net = Net([mlp, mlp], jnp.zeros(2))
    assert summary_repr(Pair(jnp.zeros(3), 0.0, "x", net)).endswith(
        f"extra=Net({2 * params + 2:,} params))"
    )


def test_scalars_sequences_and_odd_values():
    value = Pair(
        [jnp.zeros(2)] * 10,
        (jnp.zeros(3, bool), jnp.arange(4)),
        "x" * 100,
        [jax.random.key(0), np.float32(2.0), 3, True, float("nan")],
    )
    text = summary_repr(value)
    assert "draws=[len=10]" in text
    assert "scale=(bool[3], i32[4])" in text
    assert len(text) < 150
    assert "extra=[len=5]" in text
    assert summary_repr(Pair(jnp.asarray(2.0), jnp.asarray(3), "", [1.0, np.nan])) == (
        "Pair(draws=2.0, scale=3, name='', extra=[1.0, nan])"
    )
    assert "key<fry>[]" in summary_repr(Pair(jax.random.key(0), 0, ""))


def test_never_raises_and_works_under_jit():
    class Broken:
        @property
        def shape(self):
            raise RuntimeError("no shape")

        dtype = None

    assert summary_repr(Pair(Broken(), 1, "a")).startswith("Pair(draws=Broken, scale=1")
    assert summary_repr(42) == "int"

    seen = []

    @jax.jit
    def f(x):
        seen.append(summary_repr(Pair(x, x.sum(), "traced")))
        return x

    f(jnp.zeros(3))
    assert seen == ["Pair(draws=f32[3], scale=f32[], name='traced', extra=None)"]


def test_nested_results_stay_short():
    inner = Record(np.zeros((2, 100)), 1, {k: np.zeros((2, 100)) for k in "abcdefghij"})
    outer = Pair(jnp.zeros(1000), jnp.zeros(()), "x", [inner] * 3)
    assert "extra=[3 x Record]" in summary_repr(outer)
    text = summary_repr(Pair(jnp.zeros(1000), jnp.zeros(()), "x", inner))
    assert len(text) < LIMIT and "Record(values=f64[2,100]" in text


# --- the results of probkit -------------------------------------------------------------


def test_importance_results():
    from probkit.importance import importance_expectation, importance_sample, psis

    samples = importance_sample(
        jax.random.key(0), lambda x: -0.5 * x**2, dist.Normal(0.0, 2.0), 1000
    )
    check(samples, "log_weights=f32[1000]")
    check(psis(samples.log_weights), "log_weights=f32[1000]")
    assert repr(importance_expectation(samples, lambda x: x)).startswith("Estimate(value=")


def test_sobol_result():
    from probkit.importance import sobol_indices

    res = sobol_indices(
        jax.random.key(0),
        lambda x: x[:, 0] + 2.0 * x[:, 1],
        dist.Normal(jnp.zeros(2), 1.0),
        1000,
        method="pick-freeze",
    )
    check(res, "first_order=f32[2]")


def test_smc_results():
    import probkit.smc as smc

    lg = smc.LinearGaussian.scalar(0.9, 1.0, 1.0)
    check(smc.kalman_filter(lg, np.ones((1000, 1))), "filtered_means=f64[1000")
    ssm = smc.StateSpaceModel(
        dist.Normal(0.0, 1.0),
        lambda t, x: dist.Normal(0.9 * x, 1.0),
        lambda t, x: dist.Normal(x, 1.0),
    )
    pf = smc.particle_filter(ssm, jnp.zeros(20), num_particles=1000)
    check(pf, "particles=f32[1000]")


def test_sinkhorn_result():
    from probkit.bridges import sinkhorn, squared_distances

    x = jax.random.normal(jax.random.key(0), (1000, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = sinkhorn(squared_distances(x[:50], x[:40] + 1.0), epsilon=0.5)
    check(out, "plan=f32[50,40]")


def test_graph_and_scaling_results():
    import networkx as nx

    import probkit.graph as pg
    from probkit.scaling import StepModel, particle_filter

    graph = pg.from_networkx(nx.lollipop_graph(4, 3))
    walk = pg.metropolis_hastings_walk(graph)
    check(pg.sample(walk, np.arange(7.0), seed=0, num_steps=100, num_walkers=1000), "[1000")

    coin = StepModel(
        lambda k, n: jnp.zeros(n, jnp.int32),
        lambda k, t, x: x + jax.random.bernoulli(k, 0.5, x.shape),
        lambda t, x: jnp.where(x == t + 1, 0.9, 0.1),
        lambda x: jnp.zeros(x.shape, bool),
        lambda x: x,
        3,
    )
    check(particle_filter(jax.random.key(0), coin, 1000), "answers=i32[1000]")


def test_latent_sde_fit():
    from probkit.sde import fit_latent_sde, latent_sde

    model = latent_sde(jax.random.key(0), 1, 1.0, hurst=None)
    times = jnp.linspace(0.0, 1.0, 11)
    fit = fit_latent_sde(jax.random.key(1), model, times, jnp.ones((11, 1)), num_steps=5)
    text = check(fit, "elbo=f64[5]")
    assert "model=LatentSDE(" in text and " params)" in text


def test_model_fit_results_show_networks_as_parameter_counts():
    from probkit.models.diffusion import ScoreNetwork
    from probkit.models.diffusion import fit as fit_diffusion
    from probkit.models.masked_diffusion import Denoiser
    from probkit.models.masked_diffusion import fit as fit_masked

    from probkit.sde import VPSDE

    net = ScoreNetwork((2,), key=jax.random.key(1), width=16, depth=1)
    data = jax.random.normal(jax.random.key(0), (256, 2))
    text = check(fit_diffusion(net, VPSDE(), data, num_steps=3, batch_size=32), "losses=f32[3]")
    assert "model=ScoreNetwork(" in text and " params)" in text

    den = Denoiser(3, 4, key=jax.random.key(0), width=16, depth=1, num_heads=2)
    text = check(fit_masked(den, jnp.zeros((64, 4), int), num_steps=3, batch_size=8), "f32[3]")
    assert "model=Denoiser(" in text


def test_gflownet():
    from probkit.models.gflownet import HyperGrid, fit

    gfn = fit(HyperGrid(ndim=2, height=4), num_trajectories=64, batch_size=32, width=16)
    text = check(gfn, "loss=f32[2]")
    assert "policy=Policy(" in text and " params)" in text
    check(gfn.history, "log_z=f32[2]")
    from probkit.models.gflownet import evaluate_policy

    metrics = evaluate_policy(gfn.policy, gfn.env, gfn.history.log_z[-1])
    assert "Array(" not in repr(metrics) and repr(metrics).startswith("Metrics(")


def test_masked_diffusion_sample_result():
    from probkit.models.masked_diffusion import sample

    result = sample(
        lambda x: jnp.zeros((*x.shape, 3)), jnp.full((1000, 6), 3), mask_token=3, seed=0
    )
    check(result, "sequences=i32[1000,6]")


def test_fewshot_global_fit():
    from probkit.models.fewshot import NIW, fit_global, sample_episodes

    truth = NIW(jnp.zeros(2), jnp.array(0.5), jnp.eye(2), jnp.array(6.0))
    fit = fit_global(jax.random.key(1), sample_episodes(jax.random.key(0), truth, 50), num_steps=5)
    check(fit, "losses=f32[5]")


@pytest.mark.parametrize("method", ["nuts"])
def test_mjp_posterior(method):
    from probkit.models.mjp import MJP, posterior, simulate

    process = MJP(jnp.array([[-1.0, 1.0], [2.0, -2.0]]))
    times = jnp.linspace(0.0, 5.0, 10)
    y = simulate(jax.random.key(0), process, 20, times, max_jumps=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = posterior(times, y, 2, num_warmup=20, num_samples=20, method=method)
    check(post, "rate_matrix=f32[")
