"""The self-repellent walk against exact answers: its visit measure converges to mu on
small graphs, and the asymptotic variance of ergodic averages matches the
fundamental-matrix value at alpha = 0 and Doshi et al.'s closed form for alpha > 0."""

import networkx as nx
import numpy as np
import pytest

import probkit.graph as pg

GRAPHS = {
    "odd cycle": nx.cycle_graph(9),
    "lollipop": nx.lollipop_graph(5, 4),
    "random regular": nx.random_regular_graph(3, 12, seed=7),
    "bottleneck (barbell)": nx.barbell_graph(5, 1),
}


def _visit_covariance(base, alpha):
    """Exact asymptotic covariance of sqrt(n)(x_n - mu): values = identity."""
    walk = pg.self_repellent_walk(base, alpha)
    return pg.asymptotic_variance(walk, np.eye(base.graph.num_nodes))


def test_closed_form_at_alpha_zero_is_the_fundamental_matrix_value():
    # Two independent computations: the spectral closed form (alpha = 0) and
    # 2 <f, Z f>_mu - <f, f>_mu with Z the fundamental matrix.
    graph = pg.from_networkx(GRAPHS["lollipop"])
    base = pg.metropolis_hastings_walk(graph, np.linspace(1, 2, graph.num_nodes))
    f = np.random.default_rng(0).normal(size=(graph.num_nodes, 3))
    np.testing.assert_allclose(
        pg.asymptotic_variance(pg.self_repellent_walk(base, 0.0), f),
        pg.asymptotic_variance(base, f),
        rtol=1e-8,
        atol=1e-10,
    )
    # ... and the covariance shrinks with alpha, like 1/alpha.
    traces = [np.trace(_visit_covariance(base, a)) for a in (0.0, 1.0, 10.0, 100.0)]
    assert traces[0] > traces[1] > traces[2] > traces[3]
    assert 5 < traces[2] / traces[3] < 11


@pytest.mark.slow
@pytest.mark.parametrize("name", list(GRAPHS))
def test_visit_measure_converges_to_mu(name):
    # E TV(x_n, mu) = (1/2) sum_j E|x_nj - mu_j| <= (1/2) sum_j sqrt(V_jj(alpha) / n)
    # asymptotically (Jensen), with V(alpha) the exact covariance. The CLT value is
    # sqrt(2/pi) ~ 0.8 of that bound, leaving 25% for finite-n effects; the mean TV
    # over 100 walkers has a relative standard error of a few per cent. The bound
    # shrinks like 1/sqrt(n) and is checked at two n.
    graph = pg.from_networkx(GRAPHS[name])
    base = pg.metropolis_hastings_walk(graph)  # uniform mu
    mu = np.asarray(base.target, float)
    for alpha in (0.0, 2.0, 10.0):
        walk = pg.self_repellent_walk(base, alpha)
        sd = np.sqrt(np.diag(_visit_covariance(base, alpha)))
        mean_tv = []
        for n in (500, 4000):
            result = pg.sample(walk, seed=n, num_steps=n, num_walkers=100, num_batches=2)
            x = np.asarray(result.final_state.visits, float)
            tv = 0.5 * np.abs(x - mu).sum(axis=1)
            bound = 0.5 * np.sum(sd / np.sqrt(n))
            assert tv.mean() < bound, (name, alpha, n, tv.mean(), bound)
            mean_tv.append(tv.mean())
        assert mean_tv[1] < 0.6 * mean_tv[0], (name, alpha, mean_tv)  # 1/sqrt(8) = 0.35


def test_degree_target_and_simple_base():
    # SRRW over the simple walk samples the degree-proportional law; weighted graph.
    g = nx.lollipop_graph(4, 3)
    for u, v in g.edges:
        g[u][v]["w"] = 1.0 + (u + v) % 3
    graph = pg.from_networkx(g, weight="w")
    base = pg.simple_random_walk(graph)
    walk = pg.self_repellent_walk(base, 5.0)
    mu = np.asarray(base.target, float)
    n = 4000
    result = pg.sample(walk, seed=0, num_steps=n, num_walkers=100, num_batches=2)
    x = np.asarray(result.final_state.visits, float)
    sd = np.sqrt(np.diag(_visit_covariance(base, 5.0)))
    assert (0.5 * np.abs(x - mu).sum(axis=1)).mean() < 0.5 * np.sum(sd / np.sqrt(n))


@pytest.mark.slow
def test_asymptotic_variance_matches_exact_and_decreases_with_alpha():
    # n Var(ergodic average) over W independent walkers started from mu, against the
    # exact value. Its relative standard error is sqrt(2 / (W - 1)) (walker means are
    # near-Gaussian); the finite-n bias is O(mixing time / n) ~ 1%. Tolerance: 3.5
    # standard errors. The alpha = 0 case runs through both the Metropolis-Hastings
    # kernel and the SRRW kernel with alpha = 0.
    graph = pg.from_networkx(GRAPHS["lollipop"])
    f = np.asarray(graph.degree, float)  # the degree, an unbalanced function under uniform mu
    base = pg.metropolis_hastings_walk(graph)
    exact_mh = pg.asymptotic_variance(base, f)
    num_walkers, n = 2000, 2000
    rel_se = np.sqrt(2 / (num_walkers - 1))
    estimates = {}
    for label, walk in (
        ("mh", base),
        ("srrw0", pg.self_repellent_walk(base, 0.0)),
        ("srrw1", pg.self_repellent_walk(base, 1.0)),
        ("srrw5", pg.self_repellent_walk(base, 5.0)),
    ):
        result = pg.sample(walk, f, seed=11, num_steps=n, num_walkers=num_walkers, num_batches=2)
        estimate = n * np.var(np.asarray(result.walker_means, float), ddof=1)
        exact = exact_mh if label == "mh" else pg.asymptotic_variance(walk, f)
        assert abs(estimate / exact - 1) < 3.5 * rel_se, (label, estimate, exact)
        estimates[label] = estimate
    # Decreasing in alpha, each step by more than 3 combined standard errors.
    for hi, lo in (("srrw0", "srrw1"), ("srrw1", "srrw5")):
        se = rel_se * np.hypot(estimates[hi], estimates[lo])
        assert estimates[hi] - estimates[lo] > 3 * se
