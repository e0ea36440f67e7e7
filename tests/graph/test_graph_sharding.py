"""Walkers and tokens sharded over 8 simulated CPU devices give the unsharded results."""

import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json
    import jax, jax.numpy as jnp, networkx as nx, numpy as np
    import probkit.graph as pg
    assert len(jax.devices()) == 8
    graph = pg.from_networkx(nx.lollipop_graph(5, 4))
    walk = pg.self_repellent_walk(pg.metropolis_hastings_walk(graph), 3.0)
    f = np.arange(graph.num_nodes, dtype=float)
    kw = dict(seed=5, num_steps=200, num_walkers=16, keep_trace=True)
    plain = pg.sample(walk, f, **kw)
    sharded = pg.sample(walk, f, walker_method="sharded", **kw)
    token = pg.sa_srrw(pg.metropolis_hastings_walk(graph), 3.0,
                       lambda t, i, d: 0.5 * (t - d[i]) ** 2, jnp.asarray(f))
    okw = dict(seed=2, num_steps=300, num_tokens=8, record_every=100)
    opt_plain = pg.optimise(token, jnp.zeros(()), **okw)
    opt_sharded = pg.optimise(token, jnp.zeros(()), walker_method="sharded", **okw)
    out = {
        "same_trace": bool(jnp.all(plain.trace == sharded.trace)),
        "mean_diff": float(jnp.abs(plain.mean - sharded.mean)),
        "freq_diff": float(jnp.max(jnp.abs(plain.visit_frequency - sharded.visit_frequency))),
        "opt_diff": float(jnp.max(jnp.abs(opt_plain.trace - opt_sharded.trace))),
    }
    try:
        pg.sample(walk, seed=0, num_steps=10, num_walkers=12, walker_method="sharded")
    except ValueError as err:
        out["indivisible"] = str(err)
    print("RESULT" + json.dumps(out))
    """
)


@pytest.mark.slow
def test_walkers_sharded_over_eight_devices(run_on_eight_devices):
    out = run_on_eight_devices(SCRIPT)
    # Walker w uses fold_in(key, w) on any number of devices: the same walks.
    assert out["same_trace"], out
    assert out["mean_diff"] < 1e-5 and out["freq_diff"] < 1e-7
    assert out["opt_diff"] < 1e-5
    assert "num_walkers=12" in out["indivisible"] and "multiple of 8" in out["indivisible"]
