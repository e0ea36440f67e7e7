"""MJP properties against closed forms and direct linear solves; validation errors."""

import jax.numpy as jnp
import numpy as np
import probkit.models.mjp as mjp
import pytest
import scipy.linalg


def test_invalid_generators_are_named():
    with pytest.raises(ValueError, match=r"rate_matrix\[0, 1\]"):
        mjp.MJP(jnp.array([[1.0, -1.0], [1.0, -1.0]]))
    with pytest.raises(ValueError, match="row 0 of rate_matrix sums"):
        mjp.MJP(jnp.array([[-1.0, 2.0], [1.0, -1.0]]))
    with pytest.raises(ValueError, match="square"):
        mjp.MJP(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="initial"):
        mjp.MJP(jnp.array([[-1.0, 1.0], [1.0, -1.0]]), jnp.array([0.7, 0.7]))


def test_two_state_closed_forms():
    a, b = 2.0, 0.5
    q = jnp.array([[-a, a], [b, -b]])
    np.testing.assert_allclose(mjp.stationary_distribution(q), [b / (a + b), a / (a + b)], 1e-6)
    np.testing.assert_allclose(mjp.mean_first_passage_times(q), [[0, 1 / a], [1 / b, 0]], 1e-5)
    np.testing.assert_allclose(mjp.relaxation_times(q), [1 / (a + b)], 1e-6)
    assert float(mjp.entropy_production_rate(q)) == pytest.approx(0.0, abs=1e-7)


def test_mean_first_passage_times_match_linear_solves():
    q = np.asarray(mjp.flashing_ratchet(1.3, 0.7, 2.0), float)
    m = np.asarray(mjp.mean_first_passage_times(jnp.asarray(q)))
    for j in range(6):
        keep = [i for i in range(6) if i != j]
        # m_ij solves sum_k q_ik m_kj = -1 for i != j, m_jj = 0
        direct = np.linalg.solve(q[np.ix_(keep, keep)], -np.ones(5))
        np.testing.assert_allclose(m[keep, j], direct, rtol=1e-4)


def test_relaxation_times_and_stationarity_of_the_ratchet():
    q = np.asarray(mjp.flashing_ratchet(1.0, 1.0, 1.0), float)
    pi = np.asarray(mjp.stationary_distribution(jnp.asarray(q)))
    np.testing.assert_allclose(pi @ scipy.linalg.expm(q * 3.0), pi, atol=1e-6)
    eig = np.sort(-np.linalg.eigvals(q).real)[1:]
    np.testing.assert_allclose(mjp.relaxation_times(jnp.asarray(q)), 1 / eig, rtol=1e-5)


def test_entropy_production_of_a_driven_cycle():
    kp, km = 3.0, 0.5  # a uniform 3-cycle: sigma = (k+ - k-) log(k+ / k-)
    q = jnp.array([[-kp - km, kp, km], [km, -kp - km, kp], [kp, km, -kp - km]])
    expected = (kp - km) * np.log(kp / km)
    assert float(mjp.entropy_production_rate(q)) == pytest.approx(expected, rel=1e-5)
    one_way = mjp.rate_matrix_from_rates(jnp.array([[0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]]))
    assert np.isinf(float(mjp.entropy_production_rate(one_way)))
    # the ratchet breaks detailed balance: positive entropy production
    assert float(mjp.entropy_production_rate(mjp.flashing_ratchet(1.0, 1.0, 1.0))) > 0.01


def test_ratchet_rates_and_projection():
    q = np.asarray(mjp.flashing_ratchet(1.0, 1.0, 1.0))
    # Kim et al. (2020), b = 1: from state 0, exp(-V/2), exp(-V) and r
    np.testing.assert_allclose(q[0, [1, 2, 3]], [np.exp(-0.5), np.exp(-1.0), 1.0], 1e-6)
    np.testing.assert_allclose(q[2, [0, 1]], [np.exp(1.0), np.exp(0.5)], 1e-6)
    np.testing.assert_allclose(q[3, [4, 5, 0]], [1.0, 1.0, 1.0], 1e-6)
    assert (np.abs(q.sum(1)) < 1e-5).all()
    params = mjp.flashing_ratchet_parameters(mjp.flashing_ratchet(0.4, 2.5, 0.3))
    np.testing.assert_allclose(params, [0.4, 2.5, 0.3], rtol=1e-5)


def test_degenerate_rate_matrices_give_a_clear_error_not_nan():
    zero = np.zeros((3, 3))
    with pytest.raises(ValueError, match="rate_matrix is all zero"):
        mjp.MJP(zero)
    with pytest.raises(ValueError, match="all zero.*stationary distribution"):
        mjp.stationary_distribution(jnp.asarray(zero))
    # Two closed classes, {0, 1} and {2}: the stationary distribution is not unique.
    split = jnp.array([[-1.0, 1.0, 0.0], [1.0, -1.0, 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"2 closed classes.*\[0, 1\] and \[2\]"):
        mjp.stationary_distribution(split)
    # One absorbing state: pi = (1, 0) is unique, but first-passage times to 1 are infinite.
    absorbing = jnp.array([[0.0, 0.0], [1.0, -1.0]])
    np.testing.assert_allclose(mjp.stationary_distribution(absorbing), [1.0, 0.0])
    with pytest.raises(ValueError, match=r"irreducible.*states \[1\]"):
        mjp.mean_first_passage_times(absorbing)
