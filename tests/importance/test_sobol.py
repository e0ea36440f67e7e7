"""Sobol' indices of the Ishigami function against their closed forms, for every method."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

from probkit.importance import sobol_indices

A, B = 7.0, 0.1
# Closed forms (Ishigami & Homma 1990; Sobol' & Levitan 1999).
VAR = A**2 / 8 + B * np.pi**4 / 5 + B**2 * np.pi**8 / 18 + 0.5
V1 = 0.5 * (1 + B * np.pi**4 / 5) ** 2
V2 = A**2 / 8
V13 = 8 * B**2 * np.pi**8 / 225
FIRST = np.array([V1, V2, 0.0]) / VAR  # 0.3139, 0.4424, 0
TOTAL = np.array([V1 + V13, V2, V13]) / VAR  # 0.5576, 0.4424, 0.2437
LAW = dist.Uniform(-jnp.pi * jnp.ones(3), jnp.pi)


def ishigami(x):
    return jnp.sin(x[:, 0]) + A * jnp.sin(x[:, 1]) ** 2 + B * x[:, 2] ** 4 * jnp.sin(x[:, 0])


def test_reference_values_are_the_issue_values():
    assert np.allclose(FIRST, [0.3139, 0.4424, 0.0], atol=1e-4)
    assert np.allclose(TOTAL, [0.5576, 0.4424, 0.2437], atol=1e-4)


def _assert_within_errors(res):
    # Four reported (delta-method) standard errors: ~6e-5 false-alarm chance per index.
    for est, se, truth in [
        (res.first_order, res.first_order_std_error, FIRST),
        (res.total, res.total_std_error, TOTAL),
    ]:
        est, se = np.asarray(est), np.asarray(se)
        assert np.all(se > 0)
        assert np.all(np.abs(est - truth) < 4 * se), (est, se, truth)
    assert abs(float(res.variance) - VAR) < 4 * float(res.variance_std_error)


@pytest.mark.parametrize(
    "method, formulas",
    [
        ("pick-freeze", "saltelli-jansen"),
        ("saltelli", "saltelli-jansen"),
        ("iscv", "saltelli-jansen"),
        ("pick-freeze", "non-centered"),
        ("iscv", "non-centered"),
    ],
)
@pytest.mark.slow
def test_ishigami_indices_within_reported_errors(method, formulas):
    budget = 5 * 2048  # 2048 design rows of d + 2 = 5 evaluations (a power of two for QMC)
    # One seed for the non-centred variants keeps the folder within its CPU budget.
    for seed in range(1 if formulas == "non-centered" else 2):
        res = sobol_indices(
            jax.random.key(seed), ishigami, LAW, budget, method=method, formulas=formulas
        )
        assert res.method == method and res.num_evaluations <= budget
        _assert_within_errors(res)


def test_second_order_indices_and_plain_numpy_function():
    # S_13 = V13 / V = 0.2437, S_12 = S_23 = 0.
    def numpy_ishigami(x):
        x = np.asarray(x)
        return np.sin(x[:, 0]) + A * np.sin(x[:, 1]) ** 2 + B * x[:, 2] ** 4 * np.sin(x[:, 0])

    res = sobol_indices(
        jax.random.key(3), numpy_ishigami, LAW, 8 * 4096, method="pick-freeze", second_order=True
    )
    assert res.num_evaluations == 8 * 4096
    truth = np.zeros((3, 3))
    truth[0, 2] = truth[2, 0] = V13 / VAR
    est, se = np.asarray(res.second_order), np.asarray(res.second_order_std_error)
    off = ~np.eye(3, dtype=bool)
    assert np.all(np.abs(est - truth)[off] < 4 * se[off]), (est, se)
    _assert_within_errors(res)


def test_iscv_sobol_uses_the_gaussian_space_of_the_product_law():
    res = sobol_indices(jax.random.key(0), ishigami, LAW, 5 * 2048, method="iscv")
    assert res.iscv.transform == "gaussian"
    assert res.iscv.estimates.shape == (7,)  # V_1..3, VT_1..3, D


def test_bad_arguments():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="method"):
        sobol_indices(key, ishigami, LAW, 10_000, method="fast")
    with pytest.raises(ValueError, match="budget"):
        sobol_indices(key, ishigami, LAW, 10)
    with pytest.raises(ValueError, match="formulas"):
        sobol_indices(key, ishigami, LAW, 10_000, formulas="homma")
    with pytest.raises(ValueError, match="second_order"):
        sobol_indices(key, ishigami, LAW, 10_000, second_order=True, formulas="non-centered")
    with pytest.raises(ValueError, match="independent"):
        sobol_indices(key, ishigami, dist.MultivariateNormal(jnp.zeros(3), jnp.eye(3)), 10_000)
    with pytest.raises(ValueError, match=r"f must map .* outputs of shape \(n,\)"):
        sobol_indices(key, lambda x: x, LAW, 10_000, method="pick-freeze")
    with pytest.raises(IndexError, match="f indexes past its input: input_dist has d=3"):
        sobol_indices(key, lambda x: x[:, 0] + x[:, 3], LAW, 10_000, method="pick-freeze")
    with pytest.raises(ValueError, match="same value"):
        sobol_indices(key, lambda x: jnp.ones(x.shape[0]), LAW, 10_000, method="pick-freeze")
