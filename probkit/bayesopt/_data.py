"""The training data handed to a surrogate, in BoTorch's layout."""

from __future__ import annotations

from typing import NamedTuple

import torch
from botorch.models.transforms.input import Normalize
from botorch.models.transforms.outcome import Standardize
from torch import Tensor

from probkit.bayesopt._space import SearchSpace

__all__ = ["TrainingData", "fitted_transforms"]


class TrainingData(NamedTuple):
    """What every surrogate is fitted to.

    Attributes:
        X: ``n x d`` inputs in the original units (the surrogates normalise them).
        Y: ``n x m`` outputs oriented for *maximisation* (BoTorch's convention): the
            objective in column 0 (negated when minimising), then any constraint
            outputs (feasible where ``<= 0``).
        Yvar: ``n x m`` known noise variances, or ``None`` to infer the noise.
        space: the search space (bounds, integer / categorical / fidelity inputs).
    """

    X: Tensor
    Y: Tensor
    Yvar: Tensor | None
    space: SearchSpace

    @property
    def num_outputs(self) -> int:
        """Number of modelled outputs ``m``."""
        return int(self.Y.shape[-1])


def fitted_transforms(data: TrainingData) -> tuple[Normalize, Standardize, Tensor, Tensor]:
    """BoTorch's ``Normalize`` / ``Standardize`` fitted to ``data``, and the transformed data.

    For the neural surrogates, which are not GPyTorch models and so do not apply the
    transforms themselves during training: returns the transforms in eval mode plus
    the normalised inputs and standardised outputs to train on.

    Example:
        >>> import torch
        >>> from probkit.bayesopt import TrainingData, make_search_space
        >>> from probkit.bayesopt._data import fitted_transforms
        >>> X = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
        >>> Y = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
        >>> data = TrainingData(X, Y, None, make_search_space([(0, 2)]))
        >>> _, _, X01, Ystd = fitted_transforms(data)
        >>> X01.squeeze(-1).tolist(), [round(v, 4) for v in Ystd.squeeze(-1).tolist()]
        ([0.0, 1.0], [-0.7071, 0.7071])
    """
    space = data.space
    normalize = Normalize(d=space.num_dims, bounds=space.torch_bounds().to(data.X))
    standardize = Standardize(m=data.num_outputs)
    normalize.train()
    standardize.train()
    X = normalize(data.X)
    Y, _ = standardize(data.Y)
    normalize.eval()
    standardize.eval()
    return normalize, standardize, X.detach(), Y.detach()


def as_tensor(array, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """A float64 torch tensor from an array-like."""
    return torch.as_tensor(array, dtype=dtype)
