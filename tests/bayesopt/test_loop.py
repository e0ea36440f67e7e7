"""The BO loop: Branin, ask-tell == minimize, failures, direction, constraints, inputs."""

import warnings

import numpy as np
import pytest
import torch
from botorch.test_functions import Branin
from botorch.test_functions.multi_fidelity import AugmentedBranin

from probkit import bayesopt as bo

BRANIN_BOUNDS = [(-5.0, 10.0), (0.0, 15.0)]
BRANIN_MINIMUM = 0.397887  # Branin's global minimum (Dixon & Szegő 1978; BoTorch's _optimal_value)
# Fewer restarts than BoTorch's tutorial default (10 x 512) keep these tests lean.
LEAN = {"num_restarts": 5, "raw_samples": 256}


def branin(x: np.ndarray) -> float:
    return float(Branin()(torch.as_tensor(x)))


@pytest.mark.slow
def test_gp_logei_finds_branin_minimum_for_four_of_five_seeds():
    # Branin is deterministic, so the GP is told so (noise=0.0). The run stops as soon
    # as the best value is within 1e-2 of the minimum; that must happen within 40
    # evaluations (10 Sobol' + 30 LogEI) for at least 4 of 5 seeds.
    assert np.isclose(Branin().optimal_value, BRANIN_MINIMUM, atol=1e-6)
    reached = []
    for seed in range(5):
        result = bo.minimize(
            branin,
            BRANIN_BOUNDS,
            budget=40,
            initial_design=10,
            noise=0.0,
            seed=seed,
            acquisition_options=LEAN,
            progress_bar=False,
            callback=lambda r: r.y_best <= BRANIN_MINIMUM + 1e-2,
        )
        reached.append(result.y_best <= BRANIN_MINIMUM + 1e-2)
        assert result.y_best >= BRANIN_MINIMUM - 1e-6  # nothing below the true minimum
    assert sum(reached) >= 4, reached


def test_ask_tell_gives_the_same_trajectory_as_minimize():
    kwargs = dict(initial_design=6, seed=3, acquisition_options=LEAN)
    result = bo.minimize(
        branin, BRANIN_BOUNDS, budget=10, batch_size=2, progress_bar=False, **kwargs
    )
    opt = bo.Optimizer(BRANIN_BOUNDS, **kwargs)
    X = opt.ask(6)
    opt.tell(X, [branin(x) for x in X])
    while opt.num_evaluations < 10:
        X = opt.ask(2)
        opt.tell(X, [branin(x) for x in X])
    np.testing.assert_array_equal(opt.result().X, result.X)
    np.testing.assert_array_equal(opt.result().y, result.y)
    assert opt.result().y_best == result.y_best


def test_maximize_is_minimize_of_the_negation():
    # Both turn into the same BoTorch problem (maximise -branin), so the proposals are
    # identical and the best values are negatives of each other.
    kwargs = dict(budget=8, initial_design=6, seed=1, acquisition_options=LEAN, progress_bar=False)
    low = bo.minimize(branin, BRANIN_BOUNDS, **kwargs)
    high = bo.maximize(lambda x: -branin(x), BRANIN_BOUNDS, **kwargs)
    np.testing.assert_array_equal(low.X, high.X)
    assert high.y_best == -low.y_best
    assert low.y_best == np.min(low.y) and high.y_best == np.max(high.y)
    np.testing.assert_array_equal(low.best_so_far, np.minimum.accumulate(low.y))


def test_failed_evaluations_are_recorded_and_left_out_of_the_fit():
    def fragile(x):
        if x[0] > 0.5:
            raise ZeroDivisionError("simulator crashed")
        if x[1] > 0.6:
            return float("nan")
        return float(np.sum((x - 0.2) ** 2))

    result = bo.minimize(
        fragile,
        [(0, 1), (0, 1)],
        budget=12,
        initial_design=8,
        seed=0,
        acquisition_options=LEAN,
        progress_bar=False,
    )
    crashed = result.X[:, 0] > 0.5
    nan = ~crashed & (result.X[:, 1] > 0.6)
    np.testing.assert_array_equal(result.failed, crashed | nan)
    assert crashed.any() and nan.any()  # both kinds occurred in the Sobol' design
    assert all(
        "ZeroDivisionError: simulator crashed" == result.errors[i] for i in np.flatnonzero(crashed)
    )
    assert all("non-finite" in result.errors[i] for i in np.flatnonzero(nan))
    assert all(result.errors[i] is None for i in np.flatnonzero(~result.failed))
    # The surrogate was fitted to successful evaluations only.
    train_X = result.surrogate.train_inputs[0].detach().numpy()
    assert np.all(train_X[:, 0] <= 0.5) and np.all(train_X[:, 1] <= 0.6)
    assert not result.failed[np.argmin(np.where(result.failed, np.inf, result.y))]
    assert np.isfinite(result.y_best) and result.y_best == np.nanmin(result.y)


def test_every_evaluation_failing_warns_and_returns_no_best():
    def broken(x):
        raise RuntimeError("no licence")

    with pytest.warns(RuntimeWarning, match="no licence"):
        result = bo.minimize(broken, [(0, 1)], budget=4, initial_design=2, progress_bar=False)
    assert result.x_best is None and np.isnan(result.y_best)
    assert result.failed.all() and result.num_evaluations == 4


def test_pending_points_steer_the_next_proposal_away():
    opt = bo.Optimizer(BRANIN_BOUNDS, initial_design=8, seed=0, acquisition_options=LEAN)
    X = opt.ask(8)
    opt.tell(X, [branin(x) for x in X])
    first = opt.ask(1)
    second = opt.ask(1)  # `first` is still pending: BoTorch gets it as X_pending
    assert len(opt.pending) == 2
    scale = np.array([15.0, 15.0])
    assert np.max(np.abs(first - second) / scale) > 1e-3
    opt.tell(np.vstack([second, first]), [branin(second[0]), branin(first[0])])
    assert len(opt.pending) == 0


def test_integer_and_categorical_inputs_use_the_mixed_optimiser():
    offsets = np.array([0.6, 0.0, 0.3])  # category 1 is best

    def objective(x):
        return float((x[0] - 0.2) ** 2 + 0.1 * (x[1] - 2) ** 2 + offsets[int(x[2])])

    # 4 integer values x 3 categories = 12 combinations: more than BoTorch's threshold
    # (10) for enumerating them, so optimize_acqf_mixed_alternating runs.
    result = bo.minimize(
        objective,
        [(-1, 1), (0, 3), (0, 2)],
        integer_dims=[1],
        categorical_dims=[2],
        budget=11,
        initial_design=8,
        seed=0,
        acquisition_options=LEAN,
        progress_bar=False,
    )
    np.testing.assert_array_equal(result.X[:, 1:], np.round(result.X[:, 1:]))
    assert set(np.unique(result.X[:, 2])) <= {0.0, 1.0, 2.0}
    assert type(result.surrogate).__name__ == "MixedSingleTaskGP"
    # The exact minimiser is (0.2, 2, 1) with value 0; the BO steps improve on the
    # Sobol' design and land in the best category.
    assert result.y_best < np.min(result.y[:8])
    assert result.x_best[2] == 1.0 and result.x_best[1] == 2.0


def test_outcome_constraint_is_respected():
    # minimise |x|^2 subject to x_0 >= 0.5: the constrained optimum is 0.25 at (0.5, 0).
    def objective(x):
        return [float(np.sum(x**2)), float(0.5 - x[0])]

    for acquisition in ("logei", "qlognei"):
        result = bo.minimize(
            objective,
            [(-1, 1), (-1, 1)],
            num_constraints=1,
            acquisition=acquisition,
            budget=12,
            initial_design=8,
            seed=0,
            acquisition_options=LEAN,
            progress_bar=False,
        )
        assert result.constraints.shape == (12, 1)
        assert (
            result.x_best[0] >= 0.5
            and result.feasible[np.argmin(np.where(result.feasible, result.y, np.inf))]
        )
        assert 0.25 <= result.y_best <= 0.30, (acquisition, result)


def test_multi_fidelity_kg_runs_and_counts_cost():
    problem = AugmentedBranin()  # inputs (x1, x2, s), fidelity s in [0, 1], target 1

    def objective(x):
        return float(problem(torch.as_tensor(x)))

    bounds = [(-5.0, 10.0), (0.0, 15.0), (0.0, 1.0)]
    options = {"num_restarts": 2, "raw_samples": 64, "num_fantasies": 8, "fixed_cost": 2.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BoTorch's optimiser restarts, numerical notes
        result = bo.minimize(
            objective,
            bounds,
            fidelities={2: 1.0},
            acquisition="mfkg",
            budget=7,
            initial_design=6,
            seed=0,
            acquisition_options=options,
            progress_bar=False,
        )
    assert type(result.surrogate).__name__ == "SingleTaskMultiFidelityGP"
    np.testing.assert_allclose(result.total_cost, np.sum(2.0 + result.X[:, 2]))
    assert np.all((result.X[:, 2] >= 0.0) & (result.X[:, 2] <= 1.0))


def test_checkpoint_resumes_an_interrupted_run_with_every_evaluation_kept(tmp_path):
    from probkit.progress import Interrupted

    kwargs = dict(initial_design=5, seed=4, acquisition_options=LEAN, progress_bar=False)
    full = bo.minimize(branin, BRANIN_BOUNDS, budget=8, **kwargs)
    calls = {"n": 0}

    def interrupted_at_the_seventh_call(x):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return branin(x)

    path = tmp_path / "bo.json"
    with pytest.raises(Interrupted, match="6 of 8 evaluations") as info:
        bo.minimize(
            interrupted_at_the_seventh_call, BRANIN_BOUNDS, budget=8, checkpoint=path, **kwargs
        )
    assert info.value.partial_result.num_evaluations == 6
    np.testing.assert_array_equal(info.value.partial_result.X, full.X[:6])
    resumed = bo.minimize(branin, BRANIN_BOUNDS, budget=8, checkpoint=path, **kwargs)
    assert resumed.num_evaluations == 8
    np.testing.assert_array_equal(resumed.X[:6], full.X[:6])
    # The resumed run's first surrogate fit starts afresh (no warm start from the
    # interrupted one), so its proposals match to optimiser precision, not bits.
    np.testing.assert_allclose(resumed.X[6:], full.X[6:], atol=1e-3)
    with pytest.raises(ValueError, match="other settings.*seed"):
        bo.minimize(branin, BRANIN_BOUNDS, budget=8, checkpoint=path, **{**kwargs, "seed": 5})


def test_save_and_load_round_trip(tmp_path):
    opt = bo.Optimizer(BRANIN_BOUNDS, initial_design=4, seed=2, num_constraints=0)
    X = opt.ask(3)
    opt.tell(X[:2], [branin(X[0]), float("nan")])
    path = opt.save(tmp_path / "o.json")
    loaded = bo.Optimizer.load(path)
    np.testing.assert_array_equal(loaded.result().X, opt.result().X)
    np.testing.assert_array_equal(loaded.pending, opt.pending)
    assert loaded.result().errors == opt.result().errors
    np.testing.assert_array_equal(loaded.ask(1), opt.ask(1))  # the Sobol' position is kept
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a file written by"):
        bo.Optimizer.load(tmp_path / "bad.json")
