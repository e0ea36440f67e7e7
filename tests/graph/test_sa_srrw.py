"""SA-SRRW on a distributed least-squares problem with a known minimiser: it converges,
and its error covariance shrinks with alpha below the base walk's (Hu, Doshi & Eun,
ICLR 2024)."""

import jax.numpy as jnp
import networkx as nx
import numpy as np
import optax
import pytest

import probkit.graph as pg

NUM_NODES, DIM = 20, 2


def _problem():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(NUM_NODES, DIM))
    responses = rng.normal(size=NUM_NODES)
    # Uniform mu: F(theta) = mean_i 0.5 (a_i . theta - b_i)^2, minimised by least squares.
    theta_star = np.linalg.lstsq(features, responses, rcond=None)[0]
    graph = pg.from_networkx(nx.random_regular_graph(4, NUM_NODES, seed=1))
    data = (jnp.asarray(features, jnp.float32), jnp.asarray(responses, jnp.float32))
    return graph, data, theta_star


def loss(theta, node, data):
    features, responses = data
    return 0.5 * (features[node] @ theta - responses[node]) ** 2


def test_converges_to_the_least_squares_minimiser():
    graph, data, theta_star = _problem()
    token = pg.sa_srrw(pg.metropolis_hastings_walk(graph), 5.0, loss, data)
    result = pg.optimise(
        token, jnp.zeros(DIM), seed=0, num_steps=20_000, num_tokens=64, record_every=2000
    )
    errors = np.linalg.norm(np.asarray(result.trace) - theta_star, axis=-1)  # (tokens, records)
    rms = np.sqrt(np.mean(errors**2, axis=0))
    assert rms[-1] < 0.02 * np.linalg.norm(theta_star)
    assert rms[-1] < 0.5 * rms[0]
    final = np.asarray(result.params)
    se = final.std(axis=0, ddof=1) / np.sqrt(final.shape[0])
    assert np.all(np.abs(final.mean(axis=0) - theta_star) < 4 * se + 1e-6)


def _scaled_error_covariance_trace(graph, data, theta_star, alpha, variant, num_steps=5000):
    # Runs start at theta* so that the error is the fluctuation the CLT describes, not
    # the transient from a distant start; scaled by beta_n as in the paper's CLT.
    token = pg.sa_srrw(pg.metropolis_hastings_walk(graph), alpha, loss, data, variant=variant)
    result = pg.optimise(
        token,
        jnp.asarray(theta_star, jnp.float32),
        seed=1,
        num_steps=num_steps,
        num_tokens=400,
        record_every=num_steps,
    )
    beta = (num_steps + 1) ** -pg.SA_SRRW_VARIANTS[variant][1]
    errors = (np.asarray(result.params, float) - theta_star) / np.sqrt(beta)
    centred = errors - errors.mean(axis=0)
    squares = np.sum(centred**2, axis=1)
    # The trace of the covariance is the mean centred squared norm; its SE from the
    # spread of the squared norms over the 400 independent runs.
    return squares.mean(), squares.std(ddof=1) / np.sqrt(squares.size)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["faster_walk", "same_rate"])
def test_error_covariance_decreases_with_alpha(variant):
    graph, data, theta_star = _problem()
    traces = [
        _scaled_error_covariance_trace(graph, data, theta_star, alpha, variant)
        for alpha in (0.0, 1.0, 5.0)
    ]
    for (hi, se_hi), (lo, se_lo) in zip(traces, traces[1:], strict=False):
        assert hi - lo > 3 * np.hypot(se_hi, se_lo), traces


def test_optax_sgd_with_the_same_schedule_is_the_plain_update():
    graph, data, theta_star = _problem()
    walk = pg.self_repellent_walk(pg.metropolis_hastings_walk(graph), 2.0)
    beta = pg.PolynomialStepSize(0.9)
    plain = pg.token_optimisation(walk, loss, data, param_step_size=beta)
    # optax counts from 0; the plain update uses beta_{n+1} at step n.
    sgd = pg.token_optimisation(walk, loss, data, optimizer=optax.sgd(lambda c: beta(c + 1)))
    kw = dict(seed=3, num_steps=500, num_tokens=4, record_every=100)
    a = pg.optimise(plain, jnp.zeros(DIM), **kw)
    b = pg.optimise(sgd, jnp.zeros(DIM), **kw)
    np.testing.assert_allclose(np.asarray(a.trace), np.asarray(b.trace), rtol=1e-5, atol=1e-6)
    assert a.trace.shape == (4, 5, DIM) and a.steps.tolist() == [100, 200, 300, 400, 500]
