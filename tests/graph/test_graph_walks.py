"""Base walks against exact answers: one-step laws, stationary laws, the driver's
standard errors against the exact asymptotic variance."""

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

import probkit.graph as pg


@jax.jit
def _draw_next(walk, state, keys):
    return jax.vmap(lambda k: walk.step(k, state)[0].node)(keys)


def _one_step_frequencies(walk, node, num_draws, seed=0):
    keys = jax.random.split(jax.random.key(seed), num_draws)
    nodes = _draw_next(walk, walk.init(node), keys)
    return np.bincount(np.asarray(nodes), minlength=walk.graph.num_nodes) / num_draws


def test_one_step_laws_match_the_transition_matrix():
    # Weighted graph: the bisection inverse-CDF path; lollipop: the uniform path and
    # MH rejections. Tolerance: 5 binomial standard errors per entry.
    weighted = pg.from_scipy(
        sp.csr_array(
            np.array([[0, 3.0, 1.0, 0.5], [3.0, 0, 2.0, 0], [1.0, 2.0, 0, 1], [0.5, 0, 1, 0]])
        )
    )
    lollipop = pg.from_networkx(nx.lollipop_graph(4, 3))
    num = 40_000
    for walk in (
        pg.simple_random_walk(weighted),
        pg.metropolis_hastings_walk(weighted, [1.0, 2.0, 3.0, 4.0]),
        pg.metropolis_hastings_walk(lollipop),
    ):
        p = pg.transition_matrix(walk)
        for node in range(walk.graph.num_nodes):
            freq = _one_step_frequencies(walk, node, num, seed=node)
            se = np.sqrt(p[node] * (1 - p[node]) / num) + 1e-12
            assert np.all(np.abs(freq - p[node]) <= 5 * se + 1e-9), (node, freq, p[node])


def test_srrw_one_step_law_matches_the_kernel_formula():
    # K_ij[x] proportional to P_ij (x_j / mu_j)^(-alpha), including the self-transition,
    # computed here densely from the base P; chunk sizes 1, 2 and one pass must agree.
    graph = pg.from_networkx(nx.lollipop_graph(4, 3))
    base = pg.metropolis_hastings_walk(graph, np.linspace(1.0, 3.0, 7))
    p = pg.transition_matrix(base)
    mu = np.asarray(base.target, float)
    visits = np.random.default_rng(0).dirichlet(np.ones(7))
    alpha = 2.0
    num = 20_000
    for chunk_size in (1, 2, None):
        walk = pg.self_repellent_walk(base, alpha, chunk_size=chunk_size)
        keys = jax.random.split(jax.random.key(1), num)
        for node in (0, 3, 6):
            nodes = _draw_next(walk, walk.init(node, visits=visits), keys)
            freq = np.bincount(np.asarray(nodes), minlength=7) / num
            k = p[node] * (visits / mu) ** (-alpha)
            k /= k.sum()
            se = np.sqrt(k * (1 - k) / num) + 1e-12
            assert np.all(np.abs(freq - k) <= 5 * se + 1e-9), (chunk_size, node, freq, k)


def test_srrw_visit_measure_update():
    # x_{n+1} = x_n + gamma_{n+1} (delta - x_n): with gamma_n = (n+1)^-0.7 from x_0.
    base = pg.metropolis_hastings_walk(pg.from_networkx(nx.cycle_graph(5)))
    walk = pg.self_repellent_walk(base, 1.0, visit_step_size=pg.PolynomialStepSize(0.7))
    state = walk.init(2)
    step = jax.jit(lambda walk, key, state: walk.step(key, state)[0])
    x = np.full(5, 0.2)
    for n in range(1, 300):
        state = step(walk, jax.random.key(n), state)
        gamma = (n + 1) ** -0.7
        x = x + gamma * (np.eye(5)[int(state.node)] - x)
    np.testing.assert_allclose(np.asarray(state.visits), x, rtol=2e-4)


def test_non_backtracking_walk_never_steps_back_and_samples_degree():
    g = nx.lollipop_graph(5, 4)  # the path ends in a node of degree 1: forced back
    graph = pg.from_networkx(g)
    walk = pg.non_backtracking_walk(graph)
    result = pg.sample(walk, seed=0, num_steps=4000, num_walkers=64, keep_trace=True)
    trace = np.asarray(result.trace)
    degree = np.asarray(graph.degree)
    back = trace[:, 2:] == trace[:, :-2]
    assert np.all(degree[trace[:, 1:-1][back]] == 1)
    mu = degree / degree.sum()
    # TV of 256k steps pooled over 64 walkers; the mixing time here is ~10 steps, so
    # the per-node standard error is ~sqrt(10 mu / 256k) < 1e-3; 0.01 is 10 of them.
    assert 0.5 * np.abs(np.asarray(result.visit_frequency) - mu).sum() < 0.01


@pytest.mark.slow
def test_batch_means_mcse_matches_exact_variance_for_mh_walk():
    # The default MH walk (uniform target) on a random regular graph, where it is the
    # simple walk: the pooled batch-means asymptotic variance against the exact one
    # from the fundamental matrix. Batch means with 100 batches of 100 steps carry a
    # relative bias of order (relaxation time / batch size) ~ 2%, and the pooled
    # estimate over 400 walkers has relative SE sqrt(2 / (99 * 400)) ~ 0.7%; 8% allows
    # for both.
    graph = pg.from_networkx(nx.random_regular_graph(3, 16, seed=3))
    walk = pg.metropolis_hastings_walk(graph)
    f = np.arange(16.0) % 4
    exact = pg.asymptotic_variance(walk, f)
    result = pg.sample(walk, f, seed=1, num_steps=10_000, num_walkers=400)
    assert abs(float(result.asymptotic_variance) / exact - 1) < 0.08
    mu_f = f.mean()
    assert abs(float(result.mean) - mu_f) < 4 * np.sqrt(exact / (400 * 10_000))
    # The two standard errors agree for a Markov walk (walker_mcse: relative SE ~3.5%).
    assert abs(float(result.walker_mcse) / float(result.mcse) - 1) < 0.15


def test_callable_values_and_vector_values():
    graph = pg.from_networkx(nx.cycle_graph(6))
    walk = pg.simple_random_walk(graph)
    table = np.stack([np.arange(6.0), np.arange(6.0) ** 2], axis=1)
    a = pg.sample(walk, table, seed=0, num_steps=100, num_walkers=4)
    b = pg.sample(
        walk, lambda i: jnp.stack([i * 1.0, i * i * 1.0]), seed=0, num_steps=100, num_walkers=4
    )
    assert a.mean.shape == (2,) and a.walker_means.shape == (4, 2)
    np.testing.assert_allclose(np.asarray(a.mean), np.asarray(b.mean))
