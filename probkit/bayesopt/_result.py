"""The result of a Bayesian-optimisation run."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["BOResult"]


@dataclasses.dataclass(frozen=True)
class BOResult:
    """Everything a BO run evaluated, and the best point found.

    Attributes:
        x_best: the best feasible evaluated input (``d``), ``None`` when no evaluation
            succeeded (and was feasible).
        y_best: its objective value (in the user's sign); NaN exactly when
            ``x_best`` is ``None``.
        X: ``n x d`` every evaluated input, in evaluation order.
        y: ``n`` objective values; NaN where the evaluation failed.
        constraints: ``n x k`` constraint values (feasible where ``<= 0``); ``k = 0``
            without outcome constraints.
        failed: ``n`` booleans, True where the objective raised or returned NaN/inf.
        errors: per evaluation, the exception message of a failure (else ``None``).
        best_so_far: ``n`` running best feasible value; NaN before the first one.
        surrogate: the last fitted BoTorch model (``None`` if none was fitted).
        maximize: whether the objective was maximised.
        total_cost: multi-fidelity runs: the summed evaluation cost; else ``None``.

    Example:
        >>> import numpy as np
        >>> from probkit.bayesopt import BOResult
        >>> r = BOResult(np.array([0.0]), 1.0, np.zeros((1, 1)), np.ones(1), np.zeros((1, 0)),
        ...              np.zeros(1, bool), (None,), np.ones(1), None, False, None)
        >>> r.num_evaluations
        1
    """

    x_best: np.ndarray | None
    y_best: float
    X: np.ndarray
    y: np.ndarray
    constraints: np.ndarray
    failed: np.ndarray
    errors: tuple[str | None, ...]
    best_so_far: np.ndarray
    surrogate: Any
    maximize: bool
    total_cost: float | None = None

    @property
    def num_evaluations(self) -> int:
        """Number of evaluations, failed ones included."""
        return int(self.X.shape[0])

    @property
    def feasible(self) -> np.ndarray:
        """``n`` booleans: succeeded and every constraint ``<= 0``."""
        return ~self.failed & np.all(self.constraints <= 0, axis=1)

    def __repr__(self) -> str:
        direction = "max" if self.maximize else "min"
        x = None if self.x_best is None else np.array2string(self.x_best, precision=4)
        return (
            f"BOResult({direction}: y_best={self.y_best:.6g} at x_best={x}; "
            f"{self.num_evaluations} evaluations, {int(self.failed.sum())} failed)"
        )
