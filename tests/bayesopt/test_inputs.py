"""Bad input fails early with an error naming the argument; the search space is honoured."""

import subprocess
import sys

import numpy as np
import pytest

from probkit import bayesopt as bo


def _quadratic(x):
    return float(np.sum((x - 0.3) ** 2))


def test_import_probkit_does_not_import_torch():
    code = (
        "import sys, probkit; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'probkit.bayesopt' not in sys.modules, 'bayesopt imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("bounds", "match"),
    [
        ([(1.0, 0.0)], r"bounds\[0\] = \(1.0, 0.0\) has lower >= upper"),
        ([(0.0, 1.0), (2.0, 2.0)], r"bounds\[1\].*lower >= upper"),
        ([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], "shape \\(d, 2\\).*transposed"),
        ([0.0, 1.0], "shape \\(d, 2\\)"),
        ([(0.0, np.inf)], "finite"),
    ],
)
def test_bad_bounds(bounds, match):
    with pytest.raises(ValueError, match=match):
        bo.minimize(_quadratic, bounds, budget=5, initial_design=2, progress_bar=False)


def test_budget_below_initial_design():
    with pytest.raises(ValueError, match="budget=5 is below initial_design=10"):
        bo.minimize(_quadratic, [(0, 1)], budget=5, progress_bar=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"surrogate": "rf"}, "surrogate must be one of"),
        ({"acquisition": "ei"}, "acquisition must be one of"),
        ({"surrogate": "ensemble", "acquisition": "qkg"}, "needs a single exact GP"),
        ({"num_constraints": 1, "acquisition": "ucb"}, "outcome constraints"),
        ({"noise": -1.0}, "noise must be"),
        ({"noise": 0.1, "surrogate": "bnn-hmc"}, "noise='infer'"),
        ({"integer_dims": [3]}, "integer_dims contains index 3"),
        ({"acquisition": "mfkg"}, "needs fidelity inputs"),
        ({"fidelities": {0: 1.0}}, "acquisition='mfkg'"),
        ({"acquisition_options": {"num_restart": 3}}, "unknown acquisition_options"),
        ({"initial_design": 0}, "initial_design must be an integer >= 1"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bo.Optimizer([(0.0, 1.0)], **kwargs)


def test_integer_bounds_must_be_integers():
    with pytest.raises(ValueError, match="bounds must be integers"):
        bo.make_search_space([(0.0, 2.5)], integer_dims=[0])


def test_tell_checks_shapes_and_bounds():
    opt = bo.Optimizer([(0.0, 1.0), (0.0, 1.0)])
    with pytest.raises(ValueError, match=r"X must have shape \(n, 2\)"):
        opt.tell([[0.1, 0.2, 0.3]], [1.0])
    with pytest.raises(ValueError, match=r"y must have shape \(2,\)"):
        opt.tell([[0.1, 0.2], [0.3, 0.4]], [1.0])
    with pytest.raises(ValueError, match="outside the bounds"):
        opt.tell([[0.1, 1.5]], [1.0])
    opt = bo.Optimizer([(0.0, 1.0)], num_constraints=2)
    with pytest.raises(ValueError, match="the objective then 2 constraints"):
        opt.tell([[0.1]], [1.0])


def test_objective_with_wrong_output_shape_is_an_error():
    with pytest.raises(ValueError, match="objective must return a number"):
        bo.minimize(lambda x: x, [(0, 1), (0, 1)], budget=3, initial_design=3, progress_bar=False)


def test_initial_design_respects_integer_and_categorical_inputs():
    opt = bo.Optimizer([(0.0, 1.0), (-2, 3), (0, 2)], integer_dims=[1], categorical_dims=[2])
    X = opt.ask(64)
    np.testing.assert_array_equal(X[:, 1:], np.round(X[:, 1:]))
    # Every integer value and every category appears among 64 Sobol' points.
    assert set(X[:, 1]) == {-2.0, -1.0, 0.0, 1.0, 2.0, 3.0}
    assert set(X[:, 2]) == {0.0, 1.0, 2.0}
