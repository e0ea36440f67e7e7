"""``minimize`` / ``maximize``: the Bayesian-optimisation loop over an :class:`Optimizer`."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from probkit._checks import check_seed
from probkit.bayesopt._optimizer import Optimizer, _check_int
from probkit.bayesopt._result import BOResult
from probkit.progress import Interrupted

__all__ = ["maximize", "minimize"]


def _evaluate(
    objective: Callable, x: np.ndarray, num_outputs: int
) -> tuple[np.ndarray, str | None]:
    """Call the objective; an exception or a non-finite value is a failed evaluation."""
    try:
        raw = objective(x.copy())
    except Exception as err:  # noqa: BLE001 - recorded as a failed evaluation, by design
        return np.full(num_outputs, np.nan), f"{type(err).__name__}: {err}"
    try:
        value = np.asarray(raw, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        return np.full(num_outputs, np.nan), f"objective returned {raw!r}, not a number"
    if value.shape != (num_outputs,):
        expected = "a number" if num_outputs == 1 else f"{num_outputs} numbers [f, c_1, ...]"
        raise ValueError(
            f"objective must return {expected}, but returned shape {np.shape(raw)} "
            f"at x={x.tolist()}."
        )
    if not np.all(np.isfinite(value)):
        return np.where(np.isfinite(value), value, np.nan), f"non-finite value {value.tolist()}"
    return value, None


def _start(
    checkpoint: str | os.PathLike | None,
    bounds: Any,
    initial_design: int,
    maximize: bool,
    optimizer_kwargs: dict[str, Any],
) -> Optimizer:
    """A fresh optimiser, or the one saved in ``checkpoint`` by an earlier run of the same call."""
    optimizer = Optimizer(
        bounds, initial_design=initial_design, maximize=maximize, **optimizer_kwargs
    )
    if checkpoint is None:
        return optimizer
    path = Path(checkpoint)
    if path.is_dir():
        raise ValueError(f"checkpoint={str(checkpoint)!r} is a folder; give a file name.")
    if not path.exists():
        optimizer.save(path)  # fails now, not after the first evaluation, if unwritable
        return optimizer
    saved = Optimizer.load(path)
    expected, found = optimizer.settings(), saved.settings()
    if found != expected:
        differing = sorted(k for k in expected if expected[k] != found.get(k))
        raise ValueError(
            f"checkpoint={str(checkpoint)!r} was written by a run with other settings "
            f"(different: {', '.join(differing)}). Use another file, or delete it to start "
            "afresh."
        )
    return saved


def _run(
    objective: Callable[[np.ndarray], Any],
    bounds: Sequence[Sequence[float]] | np.ndarray,
    *,
    maximize: bool,
    budget: int,
    initial_design: int,
    batch_size: int,
    callback: Callable[[BOResult], Any] | None,
    progress_bar: bool,
    checkpoint: str | os.PathLike | None = None,
    **optimizer_kwargs: Any,
) -> BOResult:
    if not callable(objective):
        raise TypeError(f"objective must be a function x -> value, got {type(objective).__name__}.")
    budget = _check_int("budget", budget, 1)
    initial_design = _check_int("initial_design", initial_design, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    if budget < initial_design:
        raise ValueError(
            f"budget={budget} is below initial_design={initial_design}: the budget counts "
            "every evaluation, the initial design included. Raise budget or lower "
            "initial_design."
        )
    optimizer = _start(checkpoint, bounds, initial_design, maximize, optimizer_kwargs)
    try:
        with tqdm(
            total=budget,
            initial=optimizer.num_evaluations,
            disable=not progress_bar,
            desc="bayesopt",
        ) as bar:
            while optimizer.num_evaluations < budget:
                remaining = budget - optimizer.num_evaluations
                # Points asked for before an interruption are evaluated first.
                X = optimizer.pending[:remaining]
                if not len(X):
                    first = optimizer.num_evaluations == 0
                    X = optimizer.ask(min(initial_design if first else batch_size, remaining))
                for x in X:
                    value, error = _evaluate(objective, x, optimizer.num_outputs)
                    # Told one by one: an interruption keeps every finished evaluation.
                    optimizer._tell(x[None, :], value[None, :], [error])
                    if checkpoint is not None:
                        optimizer.save(checkpoint)
                    bar.update(1)
                result = optimizer.result()
                if np.isfinite(result.y_best):
                    bar.set_postfix(best=f"{result.y_best:.6g}")
                if callback is not None and callback(result) is True:
                    break
    except KeyboardInterrupt:
        where = f"; saved to {checkpoint}, rerun to resume" if checkpoint is not None else ""
        if checkpoint is not None:
            optimizer.save(checkpoint)
        interrupted = Interrupted(
            f"interrupted after {optimizer.num_evaluations} of {budget} evaluations{where}",
            steps_done=optimizer.num_evaluations,
            carry=optimizer,
            ys=None,
        )
        interrupted.partial_result = optimizer.result()
        raise interrupted from None
    result = optimizer.result()
    if result.x_best is None:
        first_error = next((e for e in result.errors if e), "no feasible point")
        warnings.warn(
            f"no evaluation succeeded with every constraint satisfied in {result.num_evaluations} "
            f"evaluations (first failure: {first_error}); x_best is None.",
            RuntimeWarning,
            stacklevel=3,
        )
    return result


def minimize(
    objective: Callable[[np.ndarray], Any],
    bounds: Sequence[Sequence[float]] | np.ndarray,
    *,
    budget: int,
    initial_design: int = 10,
    batch_size: int = 1,
    surrogate: str = "gp",
    acquisition: str = "logei",
    noise: str | float = "infer",
    seed: int = 0,
    callback: Callable[[BOResult], Any] | None = None,
    progress_bar: bool = True,
    integer_dims: Sequence[int] = (),
    categorical_dims: Sequence[int] = (),
    num_constraints: int = 0,
    fidelities: Mapping[int, float] | None = None,
    surrogate_options: Mapping[str, Any] | None = None,
    acquisition_options: Mapping[str, Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> BOResult:
    """Minimise an expensive black-box function by Bayesian optimisation.

    ``initial_design`` scrambled-Sobol points, then batches of ``batch_size`` points
    chosen by the acquisition function on the fitted surrogate, until ``budget``
    evaluations have been made. Inputs are normalised to the unit cube and outputs
    standardised inside the surrogates. An objective that raises or returns NaN/inf
    is recorded as a failed evaluation (see ``BOResult.errors``) and left out of
    the surrogate's data.

    Args:
        objective: ``x -> value`` for ``x`` a ``(d,)`` numpy array; with
            ``num_constraints = k`` it returns ``[f, c_1, ..., c_k]``.
        bounds: one ``(lower, upper)`` pair per input, shape ``(d, 2)``.
        budget: total number of evaluations (initial design included).
        initial_design: number of quasi-random initial points.
        batch_size: points proposed (and evaluated) per iteration.
        surrogate: ``"gp"``, ``"saas"``, ``"bnn-hmc"``, ``"ensemble"``, ``"dkl"`` or
            ``"ibnn"`` (see :class:`Optimizer`).
        acquisition: an acquisition name of ``ACQUISITIONS`` (see :class:`Optimizer`).
        noise: ``"infer"`` or a known observation noise standard deviation.
        seed: seeds the initial design, the surrogate fits and the acquisition.
        integer_dims: indices of integer inputs (bounds must be integers).
        categorical_dims: indices of categorical inputs.
        num_constraints: number of outcome constraints returned after the objective.
        fidelities: ``{dim: target_fidelity}`` for multi-fidelity optimisation.
        surrogate_options: keyword arguments of the surrogate's fitting function.
        acquisition_options: overrides of ``ACQUISITION_DEFAULTS``.
        callback: called with the :class:`BOResult` so far after every batch;
            returning ``True`` stops the run.
        progress_bar: show a progress bar.
        checkpoint: a JSON file the optimiser is saved to after every evaluation
            (:meth:`Optimizer.save`). If it exists when the call starts, the run
            resumes from it (same settings required), so rerunning an interrupted
            script continues where it stopped.

    Interrupting (Ctrl-C) keeps every finished evaluation: the
    :class:`probkit.progress.Interrupted` raised carries ``partial_result`` (a
    :class:`BOResult`) and ``carry`` (the :class:`Optimizer`, which can go on with
    ``ask``/``tell``). An objective that raises is recorded as a failed evaluation.

    Returns:
        A :class:`BOResult` (``x_best``, ``y_best``, the history, the surrogate).

    Raises:
        ValueError: bad bounds, a budget below the initial design, an unknown
            surrogate or acquisition, or a combination they do not support.

    Example:
        >>> import numpy as np
        >>> from probkit.bayesopt import minimize
        >>> result = minimize(lambda x: float(np.sum((x - 0.3) ** 2)), [(-1, 1), (-1, 1)],
        ...                   budget=12, initial_design=6, progress_bar=False)
        >>> result.num_evaluations
        12
    """
    seed = check_seed(seed)
    return _run(
        objective,
        bounds,
        maximize=False,
        budget=budget,
        initial_design=initial_design,
        batch_size=batch_size,
        callback=callback,
        progress_bar=progress_bar,
        surrogate=surrogate,
        acquisition=acquisition,
        noise=noise,
        seed=seed,
        integer_dims=integer_dims,
        categorical_dims=categorical_dims,
        num_constraints=num_constraints,
        fidelities=fidelities,
        surrogate_options=surrogate_options,
        acquisition_options=acquisition_options,
        checkpoint=checkpoint,
    )


def maximize(
    objective: Callable[[np.ndarray], Any],
    bounds: Sequence[Sequence[float]] | np.ndarray,
    *,
    budget: int,
    initial_design: int = 10,
    batch_size: int = 1,
    surrogate: str = "gp",
    acquisition: str = "logei",
    noise: str | float = "infer",
    seed: int = 0,
    callback: Callable[[BOResult], Any] | None = None,
    progress_bar: bool = True,
    integer_dims: Sequence[int] = (),
    categorical_dims: Sequence[int] = (),
    num_constraints: int = 0,
    fidelities: Mapping[int, float] | None = None,
    surrogate_options: Mapping[str, Any] | None = None,
    acquisition_options: Mapping[str, Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> BOResult:
    """Maximise an expensive black-box function; the arguments are those of :func:`minimize`.

    Example:
        >>> import numpy as np
        >>> from probkit.bayesopt import maximize
        >>> result = maximize(lambda x: float(-np.sum(x**2)), [(-1, 1)], budget=8,
        ...                   initial_design=4, progress_bar=False)
        >>> result.y_best <= 0.0
        True
    """
    seed = check_seed(seed)
    return _run(
        objective,
        bounds,
        maximize=True,
        budget=budget,
        initial_design=initial_design,
        batch_size=batch_size,
        callback=callback,
        progress_bar=progress_bar,
        surrogate=surrogate,
        acquisition=acquisition,
        noise=noise,
        seed=seed,
        integer_dims=integer_dims,
        categorical_dims=categorical_dims,
        num_constraints=num_constraints,
        fidelities=fidelities,
        surrogate_options=surrogate_options,
        acquisition_options=acquisition_options,
        checkpoint=checkpoint,
    )
