"""Acquisition functions: BoTorch's classes, chosen and configured by name.

``build_acquisition`` turns a name into a BoTorch acquisition function for a fitted
model; ``optimize_acquisition`` maximises it with ``optimize_acqf`` (continuous
inputs) or BoTorch's mixed optimisers (integer / categorical inputs). Everything is
maximisation, BoTorch's convention: the optimiser negates a minimised objective
before it gets here.

Analytic acquisitions (``LogExpectedImprovement``, ``UpperConfidenceBound``,
``LogConstrainedExpectedImprovement``) are used when they are exact: one candidate,
no pending points, a Gaussian posterior. Otherwise the Monte Carlo version
(``qLogExpectedImprovement``, ``qUpperConfidenceBound``) is used, which takes
batches, pending points (``X_pending``) and ensemble posteriors.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import torch
from botorch.acquisition import (
    AcquisitionFunction,
    FixedFeatureAcquisitionFunction,
    LogExpectedImprovement,
    PosteriorMean,
    UpperConfidenceBound,
    qKnowledgeGradient,
    qLogExpectedImprovement,
    qLogNoisyExpectedImprovement,
    qLowerBoundMaxValueEntropy,
    qMaxValueEntropy,
    qMultiFidelityKnowledgeGradient,
    qUpperConfidenceBound,
)
from botorch.acquisition.analytic import LogConstrainedExpectedImprovement
from botorch.acquisition.cost_aware import InverseCostWeightedUtility
from botorch.acquisition.joint_entropy_search import qJointEntropySearch
from botorch.acquisition.objective import GenericMCObjective
from botorch.acquisition.utils import get_optimal_samples, project_to_target_fidelity
from botorch.models.cost import AffineFidelityCostModel
from botorch.models.ensemble import EnsembleModel
from botorch.models.model import Model
from botorch.optim import optimize_acqf, optimize_acqf_mixed
from botorch.optim.optimize_mixed import (
    optimize_acqf_mixed_alternating,
    should_use_mixed_alternating_optimizer,
)
from botorch.sampling import SobolQMCNormalSampler
from torch import Tensor

from probkit._checks import check_seed
from probkit.bayesopt._data import TrainingData
from probkit.bayesopt._space import SearchSpace

__all__ = [
    "ACQUISITIONS",
    "ACQUISITION_DEFAULTS",
    "best_feasible_value",
    "build_acquisition",
    "optimize_acquisition",
]

ACQUISITIONS = ("logei", "qlognei", "ucb", "qkg", "mes", "gibbon", "jes", "mfkg")

# Acquisitions that condition or fantasise on the model: they need a GP.
_NEEDS_GP = ("qkg", "mes", "gibbon", "jes", "mfkg")
# Acquisitions that handle outcome constraints (probability of feasibility).
_CONSTRAINED = ("logei", "qlognei")
# Acquisitions whose q-batch BoTorch builds greedily (sequential=True in its tutorials).
_SEQUENTIAL = ("mes", "gibbon")

ACQUISITION_DEFAULTS: dict[str, Any] = {
    "num_restarts": 10,  # as in BoTorch's tutorials
    "raw_samples": 512,
    "batch_limit": 5,
    "maxiter": 200,
    "mc_samples": 128,  # quasi-MC base samples of the q-acquisitions
    "beta": 2.0,  # UCB: mean + sqrt(beta) * std
    "num_fantasies": 64,  # qKG / MF-KG
    "num_candidates": 1000,  # MES / GIBBON: candidate set for the max-value samples
    "num_optima": 16,  # JES: sampled optima
    "fixed_cost": 1.0,  # MF-KG: cost = fixed_cost + sum of fidelity inputs
}


def check_acquisition(
    name: str, *, surrogate: str, is_gp: bool, space: SearchSpace, num_constraints: int
) -> None:
    """Raise a clear error when ``name`` cannot run with this setup.

    Example:
        >>> from probkit.bayesopt import make_search_space
        >>> from probkit.bayesopt._acquisition import check_acquisition
        >>> check_acquisition("logei", surrogate="gp", is_gp=True,
        ...                   space=make_search_space([(0, 1)]), num_constraints=0)
    """
    if name not in ACQUISITIONS:
        raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {name!r}.")
    if name in _NEEDS_GP and not is_gp:
        raise ValueError(
            f"acquisition={name!r} conditions the surrogate on fantasy observations, which "
            f"needs a single exact GP ('gp', 'dkl', 'ibnn'); surrogate={surrogate!r} is not "
            "one. Use 'logei', 'qlognei' or 'ucb' with it, or surrogate='gp'."
        )
    if num_constraints and name not in _CONSTRAINED:
        raise ValueError(
            f"outcome constraints work with acquisition 'logei' or 'qlognei', not {name!r}."
        )
    if space.is_mixed and name not in ("logei", "qlognei", "ucb"):
        raise ValueError(
            f"integer/categorical inputs work with acquisition 'logei', 'qlognei' or 'ucb', "
            f"not {name!r}."
        )
    if space.fidelities and name != "mfkg":
        raise ValueError(
            f"fidelities were given, so pass acquisition='mfkg' (multi-fidelity knowledge "
            f"gradient), not {name!r}."
        )
    if name == "mfkg" and not space.fidelities:
        raise ValueError(
            "acquisition='mfkg' needs fidelity inputs: pass fidelities={dim: target_fidelity}."
        )
    if name == "mfkg" and surrogate != "gp":
        raise ValueError("acquisition='mfkg' needs surrogate='gp' (a multi-fidelity GP).")


def best_feasible_value(Y: Tensor) -> Tensor:
    """Best objective (column 0, maximised) among points whose constraints are ``<= 0``.

    With no feasible point, the worst objective: expected improvement then rewards
    the probability of feasibility.

    Example:
        >>> import torch
        >>> from probkit.bayesopt._acquisition import best_feasible_value
        >>> float(best_feasible_value(torch.tensor([[1.0, 0.5], [0.5, -1.0]])))
        0.5
    """
    feasible = (Y[:, 1:] <= 0).all(dim=-1)
    if feasible.any():
        return Y[feasible, 0].max()
    return Y[:, 0].min()


def _constraint_callables(num_outputs: int):
    return [lambda Z, i=i: Z[..., i] for i in range(1, num_outputs)]


def _objective_column(Z: Tensor, X: Tensor | None = None) -> Tensor:
    return Z[..., 0]


def build_acquisition(
    name: str,
    model: Model,
    data: TrainingData,
    *,
    q: int = 1,
    X_pending: Tensor | None = None,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> AcquisitionFunction:
    """The BoTorch acquisition function called ``name`` for ``model``.

    Args:
        name: one of ``ACQUISITIONS``.
        model: the fitted surrogate.
        data: its training data (``best_f``, ``X_baseline``, bounds, fidelities).
        q: number of candidates that will be selected jointly.
        X_pending: points under evaluation, ``k x d``.
        seed: seeds the quasi-MC samplers.
        options: overrides of ``ACQUISITION_DEFAULTS``.

    Example:
        >>> import torch
        >>> from probkit.bayesopt import TrainingData, build_acquisition, fit_gp, make_search_space
        >>> X = torch.linspace(0, 1, 6, dtype=torch.float64).unsqueeze(-1)
        >>> data = TrainingData(X, torch.sin(6 * X), None, make_search_space([(0, 1)]))
        >>> type(build_acquisition("logei", fit_gp(data), data)).__name__
        'LogExpectedImprovement'
    """
    seed = check_seed(seed)
    opts = {**ACQUISITION_DEFAULTS, **dict(options or {})}
    m = data.num_outputs
    constrained = m > 1
    bounds = data.space.torch_bounds().to(data.X)
    is_ensemble = isinstance(model, EnsembleModel)
    analytic = q == 1 and X_pending is None and not is_ensemble
    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([opts["mc_samples"]]), seed=seed)
    mc_objective = GenericMCObjective(_objective_column) if constrained else None
    mc_constraints = _constraint_callables(m) if constrained else None
    if is_ensemble:
        sampler = None  # BoTorch picks its IndexSampler for ensemble posteriors

    if name == "logei":
        best_f = best_feasible_value(data.Y)
        if analytic and constrained:
            return LogConstrainedExpectedImprovement(
                model,
                best_f=best_f,
                objective_index=0,
                constraints={i: (None, 0.0) for i in range(1, m)},
            )
        if analytic:
            return LogExpectedImprovement(model, best_f=best_f)
        return qLogExpectedImprovement(
            model,
            best_f=best_f,
            sampler=sampler,
            objective=mc_objective,
            constraints=mc_constraints,
            X_pending=X_pending,
        )
    if name == "qlognei":
        return qLogNoisyExpectedImprovement(
            model,
            X_baseline=data.X,
            sampler=sampler,
            objective=mc_objective,
            constraints=mc_constraints,
            X_pending=X_pending,
            prune_baseline=True,
            cache_root=not is_ensemble,
        )
    if name == "ucb":
        if analytic:
            return UpperConfidenceBound(model, beta=opts["beta"])
        return qUpperConfidenceBound(model, beta=opts["beta"], sampler=sampler, X_pending=X_pending)
    if name == "qkg":
        return qKnowledgeGradient(model, num_fantasies=opts["num_fantasies"], X_pending=X_pending)
    if name in ("mes", "gibbon"):
        generator = torch.Generator().manual_seed(seed)
        unit = torch.rand(opts["num_candidates"], bounds.shape[-1], generator=generator).to(bounds)
        candidates = bounds[0] + (bounds[1] - bounds[0]) * unit
        cls = qMaxValueEntropy if name == "mes" else qLowerBoundMaxValueEntropy
        return cls(model, candidate_set=candidates, X_pending=X_pending)
    if name == "jes":
        optimal_inputs, optimal_outputs = get_optimal_samples(
            model, bounds=bounds, num_optima=opts["num_optima"]
        )
        return qJointEntropySearch(
            model,
            optimal_inputs=optimal_inputs,
            optimal_outputs=optimal_outputs,
            estimation_type="LB",
            X_pending=X_pending,
        )
    if name == "mfkg":
        return _multi_fidelity_kg(model, data, X_pending=X_pending, options=opts)
    raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {name!r}.")


def _multi_fidelity_kg(
    model: Model, data: TrainingData, *, X_pending: Tensor | None, options: Mapping[str, Any]
) -> AcquisitionFunction:
    """Cost-aware multi-fidelity KG as in BoTorch's "Multi-fidelity BO with KG" tutorial."""
    fidelities = dict(data.space.fidelities)
    bounds = data.space.torch_bounds().to(data.X)
    d = bounds.shape[-1]
    cost_model = AffineFidelityCostModel(
        fidelity_weights={i: 1.0 for i in fidelities}, fixed_cost=float(options["fixed_cost"])
    )
    # Current value: the best posterior mean at the target fidelities.
    free = [i for i in range(d) if i not in fidelities]
    current = FixedFeatureAcquisitionFunction(
        acq_function=PosteriorMean(model),
        d=d,
        columns=list(fidelities),
        values=list(fidelities.values()),
    )
    _, current_value = optimize_acqf(
        current,
        bounds=bounds[:, free],
        q=1,
        num_restarts=options["num_restarts"],
        raw_samples=options["raw_samples"],
        options={"batch_limit": options["batch_limit"], "maxiter": options["maxiter"]},
    )

    def project(X: Tensor) -> Tensor:
        return project_to_target_fidelity(X=X, target_fidelities=fidelities, d=d)

    return qMultiFidelityKnowledgeGradient(
        model,
        num_fantasies=options["num_fantasies"],
        current_value=current_value,
        cost_aware_utility=InverseCostWeightedUtility(cost_model=cost_model),
        project=project,
        X_pending=X_pending,
    )


def fidelity_cost(space: SearchSpace, X: Tensor, fixed_cost: float) -> Tensor:
    """Cost of evaluating ``X`` under MF-KG's affine cost model (``n`` values)."""
    cost = torch.full(X.shape[:-1], float(fixed_cost), dtype=X.dtype)
    for i in space.fidelities:
        cost = cost + X[..., i]
    return cost


def optimize_acquisition(
    acquisition: AcquisitionFunction,
    name: str,
    space: SearchSpace,
    *,
    q: int = 1,
    options: Mapping[str, Any] | None = None,
) -> Tensor:
    """Maximise ``acquisition`` over the search space; return the ``q x d`` candidates.

    Continuous spaces use ``optimize_acqf`` (greedy ``sequential=True`` batches for
    MES/GIBBON, joint otherwise; one-shot for KG). Spaces with integer or
    categorical inputs use ``optimize_acqf_mixed`` (enumerating the discrete
    combinations) or ``optimize_acqf_mixed_alternating`` when there are too many,
    as BoTorch's ``should_use_mixed_alternating_optimizer`` decides.

    Example:
        >>> import torch
        >>> from probkit.bayesopt import (TrainingData, build_acquisition, fit_gp,
        ...                               make_search_space, optimize_acquisition)
        >>> space = make_search_space([(0, 1)])
        >>> X = torch.linspace(0, 1, 6, dtype=torch.float64).unsqueeze(-1)
        >>> data = TrainingData(X, torch.sin(6 * X), None, space)
        >>> acqf = build_acquisition("ucb", fit_gp(data), data)
        >>> optimize_acquisition(acqf, "ucb", space).shape
        torch.Size([1, 1])
    """
    opts = {**ACQUISITION_DEFAULTS, **dict(options or {})}
    bounds = space.torch_bounds()
    common = {"num_restarts": opts["num_restarts"], "raw_samples": opts["raw_samples"]}
    optimizer_options = {"batch_limit": opts["batch_limit"], "maxiter": opts["maxiter"]}
    if space.is_mixed:
        integers, categories = space.discrete_values()
        if should_use_mixed_alternating_optimizer(integers, categories):
            candidates, _ = optimize_acqf_mixed_alternating(
                acquisition,
                bounds,
                discrete_dims=integers or None,
                cat_dims=categories or None,
                q=q,
                options={"batch_limit": opts["batch_limit"]},
                **common,
            )
        else:
            discrete = {**integers, **categories}
            dims = sorted(discrete)
            fixed_features_list = [
                dict(zip(dims, combo, strict=True))
                for combo in itertools.product(*(discrete[i] for i in dims))
            ]
            candidates, _ = optimize_acqf_mixed(
                acquisition,
                bounds,
                q=q,
                fixed_features_list=fixed_features_list,
                options=optimizer_options,
                **common,
            )
    else:
        candidates, _ = optimize_acqf(
            acquisition,
            bounds=bounds,
            q=q,
            sequential=name in _SEQUENTIAL,
            options=optimizer_options,
            **common,
        )
    return candidates.detach()
