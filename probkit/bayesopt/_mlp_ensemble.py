"""A batch of multilayer perceptrons exposed to BoTorch as an ``EnsembleModel``.

Both neural surrogates end here: the deep ensemble (members trained by Adam) and
the HMC-sampled BNN (members are posterior draws made in JAX). Each member is one
MLP; the whole batch is evaluated in one batched matmul per layer, in torch, so
that acquisition functions get gradients with respect to the candidate inputs.

BoTorch's ``EnsembleModel.posterior`` applies ``input_transform`` before
``forward`` and ``outcome_transform.untransform`` after it, so members work on
normalised inputs and standardised outputs exactly like the GP surrogates.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from botorch.models.ensemble import EnsembleModel
from botorch.models.transforms.input import InputTransform
from botorch.models.transforms.outcome import OutcomeTransform
from torch import Tensor

__all__ = ["ACTIVATIONS", "MLPEnsembleModel", "mlp_ensemble_forward"]

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


def mlp_ensemble_forward(
    layers: Sequence[tuple[Tensor, Tensor]], X: Tensor, activation: str
) -> Tensor:
    """Evaluate ``s`` MLPs at once.

    Args:
        layers: ``(weight, bias)`` per layer, ``weight`` of shape ``s x fan_in x fan_out``
            and ``bias`` of shape ``s x fan_out``.
        X: ``batch_shape x n x d`` inputs (already normalised).
        activation: ``"tanh"`` or ``"relu"``, applied after every layer but the last.

    Returns:
        ``batch_shape x s x n x m`` outputs.

    Example:
        >>> import torch
        >>> from probkit.bayesopt import mlp_ensemble_forward
        >>> layers = [(torch.randn(4, 2, 8), torch.zeros(4, 8)),
        ...           (torch.randn(4, 8, 1), torch.zeros(4, 1))]
        >>> mlp_ensemble_forward(layers, torch.rand(3, 5, 2), "tanh").shape
        torch.Size([3, 4, 5, 1])
    """
    act = ACTIVATIONS[activation]
    h = X.unsqueeze(-3)  # batch x 1 x n x d, broadcast against the member axis
    for i, (weight, bias) in enumerate(layers):
        h = h @ weight + bias.unsqueeze(-2)
        if i < len(layers) - 1:
            h = act(h)
    return h


class MLPEnsembleModel(EnsembleModel):
    """``s`` fixed MLPs as a BoTorch ensemble (one posterior draw per member).

    ``posterior(X)`` returns an ``EnsemblePosterior`` with values of shape
    ``batch_shape x s x q x m``; its ``rsample`` draws members, so every Monte Carlo
    acquisition function of BoTorch works with it.

    Example:
        >>> import torch
        >>> from probkit.bayesopt import MLPEnsembleModel
        >>> layers = [(torch.randn(4, 2, 8), torch.zeros(4, 8)),
        ...           (torch.randn(4, 8, 1), torch.zeros(4, 1))]
        >>> model = MLPEnsembleModel(layers, activation="tanh")
        >>> model.posterior(torch.rand(5, 2)).rsample(torch.Size([3])).shape
        torch.Size([3, 5, 1])
    """

    def __init__(
        self,
        layers: Sequence[tuple[Tensor, Tensor]],
        *,
        activation: str = "tanh",
        train_X: Tensor | None = None,
        input_transform: InputTransform | None = None,
        outcome_transform: OutcomeTransform | None = None,
    ) -> None:
        super().__init__()
        if train_X is not None:
            # Kept like a GP's ``train_inputs``: BoTorch's ``Model.eval`` swaps in the
            # transformed inputs, and callers can see what the model was fitted to.
            self.train_inputs = (train_X.detach(),)
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}."
            )
        self.activation = activation
        self.layers = [(w.detach(), b.detach()) for w, b in layers]
        self._num_outputs = int(self.layers[-1][0].shape[-1])
        if input_transform is not None:
            self.input_transform = input_transform
        if outcome_transform is not None:
            self.outcome_transform = outcome_transform

    def set_train_data(self, inputs: Tensor | None = None, targets=None, strict: bool = False):
        """Replace the stored training inputs (BoTorch calls this around ``eval``)."""
        del targets, strict
        if inputs is not None:
            self.train_inputs = (inputs,)

    @property
    def num_members(self) -> int:
        """Number of MLPs ``s`` in the ensemble."""
        return int(self.layers[0][0].shape[0])

    def forward(self, X: Tensor) -> Tensor:
        """``batch_shape x s x n x m`` member outputs at normalised inputs ``X``."""
        layers = [(w.to(X), b.to(X)) for w, b in self.layers]
        return mlp_ensemble_forward(layers, X, self.activation)
