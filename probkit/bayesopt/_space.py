"""The search space: box bounds, integer and categorical inputs, fidelity inputs.

Everything here is checked before any model is built, so that a wrong ``bounds``
array fails with a message naming the argument instead of deep inside BoTorch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch

__all__ = ["SearchSpace", "make_search_space"]

# BoTorch works best in double precision (its tutorials and docs recommend it).
DTYPE = torch.float64


class SearchSpace(NamedTuple):
    """A box with optional integer, categorical and fidelity inputs.

    Attributes:
        lower: ``(d,)`` lower bounds.
        upper: ``(d,)`` upper bounds.
        integer_dims: indices of ordinal integer inputs (values ``lower..upper``).
        categorical_dims: indices of categorical inputs, encoded as the integers
            ``lower..upper`` (one per category, unordered).
        fidelities: ``{dim: target_fidelity}`` for multi-fidelity problems (empty otherwise).
    """

    lower: np.ndarray
    upper: np.ndarray
    integer_dims: tuple[int, ...] = ()
    categorical_dims: tuple[int, ...] = ()
    fidelities: Mapping[int, float] = {}

    @property
    def num_dims(self) -> int:
        """Number of inputs ``d``."""
        return int(self.lower.shape[0])

    @property
    def is_mixed(self) -> bool:
        """Whether any input is integer or categorical."""
        return bool(self.integer_dims or self.categorical_dims)

    def torch_bounds(self) -> torch.Tensor:
        """``2 x d`` bounds tensor, BoTorch's layout."""
        return torch.tensor(np.stack([self.lower, self.upper]), dtype=DTYPE)

    def discrete_values(self) -> tuple[dict[int, list[float]], dict[int, list[float]]]:
        """``(integer_dims, categorical_dims)`` as ``{dim: allowed values}`` for BoTorch."""
        integers = {
            i: [float(v) for v in range(int(self.lower[i]), int(self.upper[i]) + 1)]
            for i in self.integer_dims
        }
        categories = {
            i: [float(v) for v in range(int(self.lower[i]), int(self.upper[i]) + 1)]
            for i in self.categorical_dims
        }
        return integers, categories

    def from_unit_cube(self, unit: np.ndarray) -> np.ndarray:
        """Map ``n x d`` points of the unit cube into the box (integer inputs rounded).

        Integer and categorical inputs are stretched to ``[lower - 0.5, upper + 0.5)``
        before rounding, so that the end values are as likely as the inner ones.

        Example:
            >>> import numpy as np
            >>> from probkit.bayesopt import make_search_space
            >>> make_search_space([(0, 4)], integer_dims=[0]).from_unit_cube(np.array([[0.99]]))
            array([[4.]])
        """
        lower, upper = self.lower.copy(), self.upper.copy()
        for i in (*self.integer_dims, *self.categorical_dims):
            lower[i] -= 0.5 - 1e-9
            upper[i] += 0.5 - 1e-9
        return self.round(lower + np.asarray(unit) * (upper - lower))

    def round(self, X: np.ndarray) -> np.ndarray:
        """Round integer and categorical columns of ``X`` (``n x d``) and clip to the box."""
        X = np.clip(np.asarray(X, dtype=float), self.lower, self.upper)
        for i in (*self.integer_dims, *self.categorical_dims):
            X[:, i] = np.round(X[:, i])
        return X


def _as_index_tuple(dims: Sequence[int], num_dims: int, name: str) -> tuple[int, ...]:
    try:
        out = tuple(int(i) for i in dims)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of input indices, got {dims!r}.") from None
    for i in out:
        if not 0 <= i < num_dims:
            raise ValueError(
                f"{name} contains index {i}, but bounds describe {num_dims} inputs "
                f"(valid indices are 0..{num_dims - 1})."
            )
    if len(set(out)) != len(out):
        raise ValueError(f"{name} lists an index twice: {out}.")
    return out


def make_search_space(
    bounds: Sequence[Sequence[float]] | np.ndarray,
    *,
    integer_dims: Sequence[int] = (),
    categorical_dims: Sequence[int] = (),
    fidelities: Mapping[int, float] | None = None,
) -> SearchSpace:
    """Check ``bounds`` and the special inputs and build a :class:`SearchSpace`.

    Args:
        bounds: one ``(lower, upper)`` pair per input, shape ``(d, 2)`` as in
            ``scipy.optimize.minimize``.
        integer_dims: indices of integer inputs; their bounds must be integers.
        categorical_dims: indices of categorical inputs, encoded as the integers
            ``lower..upper``.
        fidelities: ``{dim: target_fidelity}`` for multi-fidelity optimisation.

    Raises:
        ValueError: bounds of the wrong shape, non-finite, or with ``lower >= upper``;
            an index out of range or used twice; non-integer bounds on an integer or
            categorical input; a target fidelity outside its bounds.

    Example:
        >>> from probkit.bayesopt import make_search_space
        >>> space = make_search_space([(-5.0, 10.0), (0.0, 15.0)])
        >>> space.num_dims
        2
    """
    try:
        array = np.asarray(bounds, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(
            "bounds must be numbers, one (lower, upper) pair per input, e.g. "
            f"[(-5, 10), (0, 15)]; got {bounds!r}."
        ) from None
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] < 1:
        hint = (
            " (it looks transposed: pass one row per input)"
            if array.ndim == 2 and array.shape[0] == 2
            else ""
        )
        raise ValueError(
            f"bounds must have shape (d, 2), one (lower, upper) pair per input, got shape "
            f"{array.shape}{hint}. Example: bounds=[(-5, 10), (0, 15)]."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"bounds must be finite, got {array.tolist()}.")
    lower, upper = array[:, 0].copy(), array[:, 1].copy()
    bad = np.flatnonzero(lower >= upper)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"bounds[{i}] = ({lower[i]}, {upper[i]}) has lower >= upper: every input needs "
            "lower < upper. Fix the pair or drop the input if it is constant."
        )
    d = lower.shape[0]
    integer = _as_index_tuple(integer_dims, d, "integer_dims")
    categorical = _as_index_tuple(categorical_dims, d, "categorical_dims")
    both = set(integer) & set(categorical)
    if both:
        raise ValueError(f"inputs {sorted(both)} are in both integer_dims and categorical_dims.")
    for name, dims in (("integer_dims", integer), ("categorical_dims", categorical)):
        for i in dims:
            if lower[i] != np.round(lower[i]) or upper[i] != np.round(upper[i]):
                raise ValueError(
                    f"input {i} is in {name}, so its bounds must be integers, got "
                    f"({lower[i]}, {upper[i]})."
                )
    fidelity_map: dict[int, float] = {}
    for i, target in dict(fidelities or {}).items():
        (i,) = _as_index_tuple([i], d, "fidelities")
        if i in integer or i in categorical:
            raise ValueError(f"input {i} cannot be both a fidelity and integer/categorical.")
        if not lower[i] <= float(target) <= upper[i]:
            raise ValueError(
                f"target fidelity {target} of input {i} lies outside its bounds "
                f"({lower[i]}, {upper[i]})."
            )
        fidelity_map[i] = float(target)
    return SearchSpace(lower, upper, integer, categorical, fidelity_map)
