"""Ask-tell Bayesian optimisation: ``Optimizer.ask(q)`` / ``Optimizer.tell(X, y)``.

The optimiser keeps the history, turns it into BoTorch training data (outputs
negated when minimising, failed evaluations left out), fits the surrogate, builds
the acquisition with the points still under evaluation as ``X_pending``, and
maximises it. Each ask runs under its own torch seed, derived from ``seed`` and the
number of asks, inside ``torch.random.fork_rng`` so that the caller's global torch
RNG is untouched and a run is reproducible call for call.
"""

from __future__ import annotations

import json
import numbers
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import qmc

from probkit._checks import key_hint
from probkit.bayesopt._acquisition import (
    ACQUISITION_DEFAULTS,
    build_acquisition,
    check_acquisition,
    fidelity_cost,
    optimize_acquisition,
)
from probkit.bayesopt._data import TrainingData, as_tensor
from probkit.bayesopt._result import BOResult
from probkit.bayesopt._space import make_search_space
from probkit.bayesopt._surrogates import GP_SURROGATES, check_surrogate, fit_surrogate

__all__ = ["Optimizer"]

# Smallest number of successful evaluations a surrogate is fitted to; below it the
# optimiser keeps proposing quasi-random (Sobol) points.
MIN_POINTS_TO_FIT = 2


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {key_hint(value, name)}.")
    return int(value)


class Optimizer:
    """Bayesian optimisation one batch at a time, for objectives evaluated elsewhere.

    Args:
        bounds: one ``(lower, upper)`` pair per input, shape ``(d, 2)``.
        initial_design: number of scrambled-Sobol points proposed before the
            surrogate takes over.
        surrogate: ``"gp"``, ``"saas"``, ``"bnn-hmc"``, ``"ensemble"``, ``"dkl"`` or
            ``"ibnn"``.
        acquisition: ``"logei"``, ``"qlognei"``, ``"ucb"``, ``"qkg"``, ``"mes"``,
            ``"gibbon"``, ``"jes"`` or ``"mfkg"``.
        noise: ``"infer"`` (a learned Gaussian noise level) or a known observation
            noise standard deviation ``>= 0`` (GP surrogates; 0 is modelled as a
            variance of ``1e-5`` times the outputs' variance, for a stable Cholesky).
        seed: seeds the initial design, the surrogate fits and the acquisition.
        maximize: maximise instead of minimise.
        integer_dims: indices of integer inputs (bounds must be integers).
        categorical_dims: indices of categorical inputs, encoded as the integers in
            their bounds (needs ``surrogate="gp"``).
        num_constraints: number of outcome constraints ``k``: the objective then
            returns ``[f, c_1, ..., c_k]`` and a point is feasible when every
            ``c_i <= 0`` (probability of feasibility enters the acquisition).
        fidelities: ``{dim: target_fidelity}``: multi-fidelity optimisation with
            ``acquisition="mfkg"`` and the cost ``fixed_cost + sum of fidelity inputs``.
        surrogate_options: keyword arguments of the surrogate's fitting function.
        acquisition_options: overrides of ``ACQUISITION_DEFAULTS``.

    Example:
        >>> from probkit.bayesopt import Optimizer
        >>> opt = Optimizer([(-2.0, 2.0)], initial_design=4, seed=0)
        >>> for _ in range(3):
        ...     X = opt.ask(2)
        ...     opt.tell(X, (X[:, 0] - 0.5) ** 2)
        >>> opt.result().num_evaluations
        6
    """

    def __init__(
        self,
        bounds: Sequence[Sequence[float]] | np.ndarray,
        *,
        initial_design: int = 10,
        surrogate: str = "gp",
        acquisition: str = "logei",
        noise: str | float = "infer",
        seed: int = 0,
        maximize: bool = False,
        integer_dims: Sequence[int] = (),
        categorical_dims: Sequence[int] = (),
        num_constraints: int = 0,
        fidelities: Mapping[int, float] | None = None,
        surrogate_options: Mapping[str, Any] | None = None,
        acquisition_options: Mapping[str, Any] | None = None,
    ) -> None:
        # What save() writes and load() rebuilds the optimiser from.
        self._config = {
            "bounds": np.asarray(bounds, dtype=float).tolist(),
            "initial_design": initial_design,
            "surrogate": surrogate,
            "acquisition": acquisition,
            "noise": noise,
            "seed": seed,
            "maximize": bool(maximize),
            "integer_dims": [int(i) for i in integer_dims],
            "categorical_dims": [int(i) for i in categorical_dims],
            "num_constraints": num_constraints,
            "fidelities": None
            if fidelities is None
            else [[int(k), float(v)] for k, v in dict(fidelities).items()],
            "surrogate_options": dict(surrogate_options or {}),
            "acquisition_options": dict(acquisition_options or {}),
        }
        self.space = make_search_space(
            bounds,
            integer_dims=integer_dims,
            categorical_dims=categorical_dims,
            fidelities=fidelities,
        )
        self.initial_design = _check_int("initial_design", initial_design, 1)
        self.seed = _check_int("seed", seed, 0)
        self.num_constraints = _check_int("num_constraints", num_constraints, 0)
        if isinstance(noise, str):
            if noise != "infer":
                raise ValueError(
                    f"noise must be 'infer' or a standard deviation >= 0, got {noise!r}."
                )
        elif not isinstance(noise, numbers.Real) or not np.isfinite(noise) or noise < 0:
            raise ValueError(f"noise must be 'infer' or a standard deviation >= 0, got {noise!r}.")
        self.noise = noise
        self.maximize = bool(maximize)
        self.surrogate_name = surrogate
        self.acquisition_name = acquisition
        check_surrogate(
            surrogate,
            space=self.space,
            num_constraints=self.num_constraints,
            noise_is_fixed=noise != "infer",
        )
        check_acquisition(
            acquisition,
            surrogate=surrogate,
            is_gp=surrogate in GP_SURROGATES,
            space=self.space,
            num_constraints=self.num_constraints,
        )
        self.surrogate_options = dict(surrogate_options or {})
        self.acquisition_options = dict(acquisition_options or {})
        unknown = set(self.acquisition_options) - set(ACQUISITION_DEFAULTS)
        if unknown:
            raise ValueError(
                f"unknown acquisition_options {sorted(unknown)}; known: "
                f"{sorted(ACQUISITION_DEFAULTS)}."
            )
        self._sobol = qmc.Sobol(d=self.space.num_dims, scramble=True, seed=self.seed)
        self._num_quasi_random = 0
        self._X: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._errors: list[str | None] = []
        self._pending: list[np.ndarray] = []
        self._num_asks = 0
        self._model = None
        self._model_num_points = -1
        self._num_fits = 0

    # -- bookkeeping ----------------------------------------------------------------
    @property
    def num_outputs(self) -> int:
        """Values per evaluation: the objective plus ``num_constraints``."""
        return 1 + self.num_constraints

    @property
    def num_evaluations(self) -> int:
        """Number of told evaluations, failed ones included."""
        return len(self._X)

    @property
    def pending(self) -> np.ndarray:
        """``k x d`` points asked for but not told yet."""
        return np.array(self._pending).reshape(-1, self.space.num_dims)

    @property
    def surrogate(self):
        """The last fitted BoTorch model (``None`` before the first fit)."""
        return self._model

    def _succeeded(self) -> np.ndarray:
        values = np.array(self._values).reshape(-1, self.num_outputs)
        return np.isfinite(values).all(axis=1)

    def training_data(self) -> TrainingData:
        """The successful evaluations as BoTorch training data (maximisation).

        Example:
            >>> from probkit.bayesopt import Optimizer
            >>> opt = Optimizer([(0.0, 1.0)], initial_design=2)
            >>> opt.tell([[0.2], [0.8]], [1.0, float("nan")])
            >>> opt.training_data().Y.tolist()
            [[-1.0]]
        """
        ok = self._succeeded()
        X = np.array(self._X).reshape(-1, self.space.num_dims)[ok]
        Y = np.array(self._values).reshape(-1, self.num_outputs)[ok].copy()
        if not self.maximize:
            Y[:, 0] = -Y[:, 0]
        Yvar = None
        if self.noise != "infer":
            # GPyTorch rounds standardised noise variances below 1e-6 up (with a
            # warning); 1e-5 of the outputs' variance keeps a noiseless fit stable.
            floor = 1e-5 * (np.var(Y, axis=0) if Y.shape[0] > 1 else np.ones(Y.shape[1]))
            floor = np.where(floor > 0, floor, 1e-5)
            Yvar = as_tensor(np.tile(np.maximum(float(self.noise) ** 2, floor), (Y.shape[0], 1)))
        return TrainingData(as_tensor(X), as_tensor(Y), Yvar, self.space)

    # -- ask --------------------------------------------------------------------------
    def _quasi_random(self, q: int) -> np.ndarray:
        with warnings.catch_warnings():
            # Sobol' balance needs powers of two; a prefix of the sequence is still
            # a better initial design than i.i.d. uniform points.
            warnings.filterwarnings("ignore", message=".*balance properties.*")
            unit = self._sobol.random(q)
        self._num_quasi_random += q
        return self.space.from_unit_cube(unit)

    def _fit(self, data: TrainingData, step_seed: int):
        num_points = int(data.X.shape[0])
        if self._model is None or num_points != self._model_num_points:
            self._model = fit_surrogate(
                self.surrogate_name,
                data,
                seed=step_seed,
                options=self.surrogate_options,
                previous=self._model,
                num_previous_fits=self._num_fits,
            )
            self._model_num_points = num_points
            self._num_fits += 1
        return self._model

    def ask(self, q: int = 1) -> np.ndarray:
        """Propose ``q`` points to evaluate next (``q x d``).

        While fewer than ``initial_design`` points have been asked for (or fewer
        than two evaluations succeeded), the points come from a scrambled Sobol'
        sequence; afterwards from the acquisition function, with every asked but
        untold point passed to BoTorch as ``X_pending``.

        Example:
            >>> from probkit.bayesopt import Optimizer
            >>> Optimizer([(0.0, 1.0), (0.0, 2.0)], initial_design=3).ask(3).shape
            (3, 2)
        """
        q = _check_int("q", q, 1)
        num_asked = len(self._X) + len(self._pending)
        step_seed = int(np.random.SeedSequence([self.seed, self._num_asks]).generate_state(1)[0])
        self._num_asks += 1
        if num_asked < self.initial_design or self._succeeded().sum() < MIN_POINTS_TO_FIT:
            X = self._quasi_random(q)
        else:
            data = self.training_data()
            pending = self.pending
            with torch.random.fork_rng():
                torch.manual_seed(step_seed)
                model = self._fit(data, step_seed)
                acquisition = build_acquisition(
                    self.acquisition_name,
                    model,
                    data,
                    q=q,
                    X_pending=as_tensor(pending) if len(pending) else None,
                    seed=step_seed,
                    options=self.acquisition_options,
                )
                candidates = optimize_acquisition(
                    acquisition,
                    self.acquisition_name,
                    self.space,
                    q=q,
                    options=self.acquisition_options,
                )
            X = self.space.round(candidates.cpu().numpy().reshape(q, -1))
        self._pending.extend(row.copy() for row in X)
        return X.copy()

    # -- tell -------------------------------------------------------------------------
    def tell(self, X: Any, y: Any) -> None:
        """Record evaluations: ``X`` (``n x d`` or one point ``d``) and their values.

        ``y`` is ``n`` objective values, or ``n x (1 + num_constraints)`` with
        constraint outputs. A NaN or infinite value marks a failed evaluation: it is
        kept in the history and left out of the surrogate's data. Told points that
        were asked for stop being pending.

        Raises:
            ValueError: ``X`` or ``y`` of the wrong shape, or ``X`` outside the bounds.

        Example:
            >>> from probkit.bayesopt import Optimizer
            >>> opt = Optimizer([(0.0, 1.0)])
            >>> opt.tell([0.5], 2.0)
            >>> opt.num_evaluations
            1
        """
        self._tell(X, y, errors=None)

    def _tell(self, X: Any, y: Any, errors: Sequence[str | None] | None) -> None:
        d = self.space.num_dims
        X = np.asarray(X, dtype=float)
        if X.ndim == 1 and X.shape[0] == d:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != d:
            raise ValueError(
                f"X must have shape (n, {d}) (or ({d},) for one point), got {X.shape}."
            )
        n = X.shape[0]
        values = np.asarray(y, dtype=float)
        m = self.num_outputs
        if values.shape in ((n,), (n, 1)) and m == 1:
            values = values.reshape(n, 1)
        elif values.shape == () and n == 1 and m == 1:
            values = values.reshape(1, 1)
        elif values.shape == (m,) and n == 1:
            values = values.reshape(1, m)
        if values.shape != (n, m):
            expected = (
                f"({n},)" if m == 1 else f"({n}, {m}): the objective then {m - 1} constraints"
            )
            raise ValueError(f"y must have shape {expected}, got {np.shape(y)}.")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or inf: tell the points that were evaluated.")
        tolerance = 1e-9 * (self.space.upper - self.space.lower)
        outside = (X < self.space.lower - tolerance) | (X > self.space.upper + tolerance)
        if outside.any():
            row = int(np.flatnonzero(outside.any(axis=1))[0])
            raise ValueError(f"X[{row}] = {X[row].tolist()} lies outside the bounds.")
        errors = list(errors) if errors is not None else [None] * n
        for i in range(n):
            failed = not np.all(np.isfinite(values[i]))
            self._X.append(X[i].copy())
            self._values.append(np.where(np.isfinite(values[i]), values[i], np.nan))
            message = errors[i]
            if failed and message is None:
                message = f"non-finite value {values[i].tolist()}"
            self._errors.append(message if failed else None)
            self._remove_pending(X[i])

    def _remove_pending(self, x: np.ndarray) -> None:
        scale = self.space.upper - self.space.lower
        for j, p in enumerate(self._pending):
            if np.all(np.abs(p - x) <= 1e-9 * scale):
                del self._pending[j]
                return

    # -- result -----------------------------------------------------------------------
    # -- save / load ----------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the optimiser's settings and history to a JSON file (atomically).

        :meth:`load` rebuilds an optimiser that asks what this one would have asked:
        the same history, pending points, Sobol' position and per-ask seeds. (Its
        first surrogate fit starts from scratch rather than from the last fit's
        hyperparameters, so later proposals can differ in the last digits.)

        Example:
            >>> import tempfile, os
            >>> from probkit.bayesopt import Optimizer
            >>> opt = Optimizer([(0.0, 1.0)], initial_design=3, seed=1)
            >>> opt.tell(opt.ask(2), [0.3, 0.1])
            >>> path = opt.save(os.path.join(tempfile.mkdtemp(), "bo.json"))
            >>> Optimizer.load(path).num_evaluations
            2
        """
        try:
            config = json.loads(json.dumps(self._config))
        except TypeError as err:
            raise ValueError(
                "the optimiser's surrogate_options or acquisition_options hold values that "
                f"JSON cannot store ({err}); save() needs plain numbers, strings and lists."
            ) from None
        state = {
            "format": "probkit.bayesopt.Optimizer/1",
            "config": config,
            "X": np.asarray(self._X).reshape(-1, self.space.num_dims).tolist(),
            "values": [
                [None if not np.isfinite(v) else float(v) for v in row] for row in self._values
            ],
            "errors": list(self._errors),
            "pending": self.pending.tolist(),
            "num_asks": self._num_asks,
            "num_quasi_random": self._num_quasi_random,
        }
        path = Path(path)
        folder = path.parent if str(path.parent) else Path(".")
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as f:
            json.dump(state, f)
        os.replace(f.name, path)  # a crash mid-write never leaves half a file
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Optimizer:
        """Rebuild an optimiser written by :meth:`save` (see there).

        Example:
            >>> from probkit.bayesopt import Optimizer
            >>> Optimizer.load  # doctest: +ELLIPSIS
            <bound method Optimizer.load of ...>
        """
        try:
            state = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"path={str(path)!r}: no such optimiser file.") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"path={str(path)!r} is not an optimiser file ({err}).") from None
        if not isinstance(state, dict) or state.get("format") != "probkit.bayesopt.Optimizer/1":
            raise ValueError(
                f"path={str(path)!r} is not a file written by probkit.bayesopt.Optimizer.save."
            )
        config = dict(state["config"])
        if config["fidelities"] is not None:
            config["fidelities"] = {int(k): float(v) for k, v in config["fidelities"]}
        optimizer = cls(**config)
        values = [
            np.array([np.nan if v is None else v for v in row], dtype=float)
            for row in state["values"]
        ]
        optimizer._X = [np.asarray(x, dtype=float) for x in state["X"]]
        optimizer._values = values
        optimizer._errors = list(state["errors"])
        optimizer._pending = [np.asarray(x, dtype=float) for x in state["pending"]]
        optimizer._num_asks = int(state["num_asks"])
        if state["num_quasi_random"]:
            optimizer._sobol.fast_forward(int(state["num_quasi_random"]))
        optimizer._num_quasi_random = int(state["num_quasi_random"])
        return optimizer

    def settings(self) -> dict[str, Any]:
        """The constructor arguments this optimiser was made with (as :meth:`save` stores them)."""
        return json.loads(json.dumps(self._config, default=str))

    def result(self) -> BOResult:
        """The history so far and the best feasible evaluation.

        With fidelity inputs, the best is taken over evaluations at the target
        fidelities (over all evaluations while there is none).

        Example:
            >>> from probkit.bayesopt import Optimizer
            >>> opt = Optimizer([(0.0, 1.0)])
            >>> opt.tell([[0.2], [0.7]], [3.0, 1.0])
            >>> opt.result().y_best
            1.0
        """
        d, m = self.space.num_dims, self.num_outputs
        X = np.array(self._X).reshape(-1, d)
        values = np.array(self._values).reshape(-1, m)
        failed = ~np.isfinite(values).all(axis=1)
        constraints = values[:, 1:]
        eligible = ~failed & np.all(np.nan_to_num(constraints, nan=1.0) <= 0, axis=1)
        total_cost = None
        if self.space.fidelities:
            dims = list(self.space.fidelities)
            target = np.array(list(self.space.fidelities.values()))
            at_target = np.all(np.abs(X[:, dims] - target) <= 1e-9, axis=1)
            if (eligible & at_target).any():
                eligible &= at_target
            cost = self.acquisition_options.get("fixed_cost", ACQUISITION_DEFAULTS["fixed_cost"])
            total_cost = (
                float(fidelity_cost(self.space, as_tensor(X), cost).sum()) if len(X) else 0.0
            )
        sign = -1.0 if self.maximize else 1.0
        score = np.where(eligible, sign * values[:, 0], np.inf)
        running = np.minimum.accumulate(score) if len(score) else score
        best_so_far = np.where(np.isfinite(running), sign * running, np.nan)
        if eligible.any():
            i = int(np.argmin(score))
            x_best, y_best = X[i].copy(), float(values[i, 0])
        else:
            x_best, y_best = None, float("nan")
        return BOResult(
            x_best=x_best,
            y_best=y_best,
            X=X,
            y=values[:, 0].copy(),
            constraints=constraints,
            failed=failed,
            errors=tuple(self._errors),
            best_so_far=best_so_far,
            surrogate=self._model,
            maximize=self.maximize,
            total_cost=total_cost,
        )

    def __repr__(self) -> str:
        return (
            f"Optimizer(d={self.space.num_dims}, surrogate={self.surrogate_name!r}, "
            f"acquisition={self.acquisition_name!r}, evaluations={self.num_evaluations}, "
            f"pending={len(self._pending)})"
        )
