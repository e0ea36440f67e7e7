"""Acquisition functions: the right BoTorch class, maximised properly, batches in bounds."""

import functools

import numpy as np
import pytest
import torch
from botorch.acquisition import (
    LogExpectedImprovement,
    qLogExpectedImprovement,
    qUpperConfidenceBound,
)
from botorch.acquisition.analytic import LogConstrainedExpectedImprovement

from probkit import bayesopt as bo

SMALL = {
    "num_restarts": 2,
    "raw_samples": 64,
    "num_fantasies": 8,
    "mc_samples": 32,
    "num_candidates": 200,
    "num_optima": 4,
}


@functools.cache
def _problem(d: int, num_outputs: int = 1):
    space = bo.make_search_space([(-1.0, 2.0)] * d)
    X = torch.as_tensor(np.random.default_rng(0).uniform(-1.0, 2.0, (8, d)))
    Y = torch.stack(
        [torch.sin(3 * X).sum(-1), X.sum(-1) - 0.5][:num_outputs], dim=-1
    )  # objective (maximised), then a constraint
    data = bo.TrainingData(X, Y, None, space)
    return data, bo.fit_gp(data)


@pytest.mark.parametrize("name", ["logei", "ucb"])
def test_optimiser_finds_at_least_the_grid_maximum(name):
    data, model = _problem(1)
    acquisition = bo.build_acquisition(name, model, data)
    candidate = bo.optimize_acquisition(acquisition, name, data.space)
    grid = torch.linspace(-1.0, 2.0, 3001, dtype=torch.float64).reshape(-1, 1, 1)
    with torch.no_grad():
        on_grid = acquisition(grid)
        at_candidate = acquisition(candidate.unsqueeze(0))
    # The grid spacing is 1e-3; L-BFGS-B from the best raw samples must do as well.
    assert float(at_candidate) >= float(on_grid.max()) - 1e-6 * (1 + abs(float(on_grid.max())))


@pytest.mark.parametrize("name", ["logei", "qlognei", "ucb", "qkg", "mes", "gibbon", "jes"])
def test_every_acquisition_proposes_a_batch_inside_the_bounds(name):
    data, model = _problem(2)
    pending = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    acquisition = bo.build_acquisition(name, model, data, q=2, X_pending=pending, options=SMALL)
    candidates = bo.optimize_acquisition(acquisition, name, data.space, q=2, options=SMALL)
    assert candidates.shape == (2, 2)
    assert torch.all(candidates >= -1.0) and torch.all(candidates <= 2.0)
    assert torch.dist(candidates[0], candidates[1]) > 1e-4  # a batch, not one point twice


def test_analytic_acquisitions_only_where_they_are_exact():
    data, model = _problem(1)
    assert type(bo.build_acquisition("logei", model, data)) is LogExpectedImprovement
    pending = torch.tensor([[0.3]], dtype=torch.float64)
    with_pending = bo.build_acquisition("logei", model, data, X_pending=pending)
    assert type(with_pending) is qLogExpectedImprovement
    assert torch.equal(with_pending.X_pending, pending)
    assert type(bo.build_acquisition("ucb", model, data, q=3)) is qUpperConfidenceBound
    ensemble = bo.fit_deep_ensemble(data, num_steps=20)
    assert type(bo.build_acquisition("logei", ensemble, data)) is qLogExpectedImprovement


def test_constrained_expected_improvement():
    data, model = _problem(1, num_outputs=2)
    acquisition = bo.build_acquisition("logei", model, data)
    assert type(acquisition) is LogConstrainedExpectedImprovement
    assert acquisition.constraints == {1: (None, 0.0)}
    # best_f is the best objective among points with constraint <= 0.
    feasible = data.Y[:, 1] <= 0
    assert float(acquisition.best_f) == float(data.Y[feasible, 0].max())
    # Deep in the infeasible region (x - 0.5 >> 0) the acquisition is far below its
    # value where the constraint is comfortably satisfied.
    with torch.no_grad():
        low, high = acquisition(torch.tensor([[[-0.8]], [[1.9]]], dtype=torch.float64))
    assert float(high) < float(low) - 3.0
