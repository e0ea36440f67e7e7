"""probkit.graph: graph construction, targets, and clear errors on bad input."""

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

import probkit.graph as pg


def test_csr_matches_networkx_and_twins_are_reverse_edges():
    g = nx.lollipop_graph(4, 3)
    graph = pg.from_networkx(g)
    indptr, indices = np.asarray(graph.indptr), np.asarray(graph.indices)
    nodes = list(g)
    for i, node in enumerate(nodes):
        row = sorted(nodes.index(v) for v in g.neighbors(node))
        assert indices[indptr[i] : indptr[i + 1]].tolist() == row
    rows = np.repeat(np.arange(graph.num_nodes), np.diff(indptr))
    reverse = np.asarray(graph.reverse)
    assert np.array_equal(rows[reverse], indices) and np.array_equal(indices[reverse], rows)
    assert np.asarray(graph.degree).tolist() == [float(d) for _, d in g.degree()]


def test_weighted_scipy_graph_and_targets():
    adjacency = sp.csr_array(np.array([[0, 2.0, 1.0], [2.0, 0, 0], [1.0, 0, 0]]))
    graph = pg.from_scipy(adjacency)
    assert not graph.is_unweighted
    np.testing.assert_allclose(pg.target_measure(graph, "degree"), [0.5, 1 / 3, 1 / 6])
    np.testing.assert_allclose(pg.target_measure(graph, [1.0, 1.0, 2.0]), [0.25, 0.25, 0.5])
    # The simple walk's transition probabilities are weight / weighted degree.
    p = pg.transition_matrix(pg.simple_random_walk(graph))
    np.testing.assert_allclose(p, [[0, 2 / 3, 1 / 3], [1, 0, 0], [1, 0, 0]], atol=1e-6)


def test_mh_transition_matrix_is_reversible_with_target():
    graph = pg.from_networkx(nx.lollipop_graph(4, 3))
    mu = np.linspace(1.0, 2.0, graph.num_nodes)
    walk = pg.metropolis_hastings_walk(graph, mu)
    p = pg.transition_matrix(walk)
    mu = mu / mu.sum()
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-12)
    flow = mu[:, None] * p
    np.testing.assert_allclose(flow, flow.T, atol=1e-6)


def test_bad_graphs_name_the_argument():
    with pytest.raises(ValueError, match="disconnected"):
        pg.from_networkx(nx.disjoint_union(nx.path_graph(3), nx.path_graph(2)))
    with pytest.raises(ValueError, match="directed"):
        pg.from_networkx(nx.DiGraph([(0, 1), (1, 0)]))
    with pytest.raises(ValueError, match="not symmetric"):
        pg.from_scipy(np.array([[0, 1.0], [0, 0]]))
    with pytest.raises(ValueError, match="square"):
        pg.from_scipy(np.ones((2, 3)))
    with pytest.raises(ValueError, match="negative"):
        pg.from_scipy(np.array([[0, -1.0], [-1.0, 0]]))
    with pytest.raises(TypeError, match="graph must be a probkit.graph.Graph"):
        pg.simple_random_walk(nx.path_graph(3))


def test_bad_targets_and_parameters_name_the_argument():
    graph = pg.from_networkx(nx.cycle_graph(5))
    with pytest.raises(ValueError, match="target must be positive"):
        pg.metropolis_hastings_walk(graph, [1.0, 0.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"target must have one weight per node, shape \(5,\)"):
        pg.metropolis_hastings_walk(graph, np.ones(4))
    with pytest.raises(ValueError, match="target='flat' is not known"):
        pg.metropolis_hastings_walk(graph, "flat")
    base = pg.metropolis_hastings_walk(graph)
    with pytest.raises(ValueError, match="alpha must be finite and >= 0"):
        pg.self_repellent_walk(base, -1.0)
    with pytest.raises(TypeError, match="base must be a reversible walk"):
        pg.self_repellent_walk(pg.non_backtracking_walk(graph), 1.0)
    with pytest.raises(ValueError, match="visit_step_size"):
        pg.self_repellent_walk(base, 1.0, visit_step_size=lambda n: 1.0)
    with pytest.raises(ValueError, match="chunk_size"):
        pg.self_repellent_walk(base, 1.0, chunk_size=0)
    weighted = pg.from_scipy(np.array([[0, 2.0, 1.0], [2.0, 0, 1.0], [1.0, 1.0, 0]]))
    with pytest.raises(ValueError, match="unweighted"):
        pg.non_backtracking_walk(weighted)
    walk = pg.self_repellent_walk(base, 1.0)
    with pytest.raises(ValueError, match=r"node must lie in \[0, 5\)"):
        walk.init(7)
    with pytest.raises(ValueError, match="visits must be positive"):
        walk.init(0, visits=np.zeros(5))


def test_bad_driver_arguments_name_the_argument():
    graph = pg.from_networkx(nx.cycle_graph(5))
    walk = pg.metropolis_hastings_walk(graph)
    with pytest.raises(ValueError, match=r"values must hold one value .* shape \(5,\)"):
        pg.sample(walk, np.ones(4), seed=0, num_steps=10)
    with pytest.raises(ValueError, match="values has non-finite"):
        pg.sample(walk, np.array([1.0, np.nan, 0, 0, 0]), seed=0, num_steps=10)
    with pytest.raises(ValueError, match="num_steps must be an integer >= 2"):
        pg.sample(walk, seed=0, num_steps=1)
    with pytest.raises(ValueError, match="num_walkers must be an integer >= 1"):
        pg.sample(walk, seed=0, num_steps=10, num_walkers=0)
    with pytest.raises(ValueError, match=r"start must be one node, or one per walker"):
        pg.sample(walk, seed=0, num_steps=10, num_walkers=3, start=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"start must lie in \[0, 5\)"):
        pg.sample(walk, seed=0, num_steps=10, start=9)
    with pytest.raises(ValueError, match="walker_method"):
        pg.sample(walk, seed=0, num_steps=10, walker_method="pmap")
    with pytest.raises(TypeError, match="walk must be a probkit.graph walk"):
        pg.sample(object(), seed=0, num_steps=10)
    token = pg.sa_srrw(walk, 1.0, lambda t, i, d: t**2)
    with pytest.raises(ValueError, match="variant must be one of"):
        pg.sa_srrw(walk, 1.0, lambda t, i, d: t**2, variant="fast")
    with pytest.raises(TypeError, match="params must be a non-empty pytree of floating"):
        pg.optimise(token, jnp.zeros(2, jnp.int32), seed=0, num_steps=10)
    with pytest.raises(ValueError, match="record_every=20 exceeds num_steps=10"):
        pg.optimise(token, jnp.zeros(()), seed=0, num_steps=10, record_every=20)


def test_walk_is_data_to_jit_not_a_constant():
    # Walks that differ only in alpha share one compiled step: alpha and the graph are
    # leaves (arguments), not constants baked into the program.
    base = pg.metropolis_hastings_walk(pg.from_networkx(nx.cycle_graph(7)))
    step = jax.jit(lambda walk, key, state: walk.step(key, state))
    for alpha in (0.0, 3.0):
        walk = pg.self_repellent_walk(base, alpha)
        step(walk, jax.random.key(0), walk.init(0))
    assert step._cache_size() == 1
