"""Deep-ensemble surrogate (Lakshminarayanan et al., 2017), trained in torch.

``num_members`` MLPs with independent random initialisations are trained on the
same (normalised, standardised) data by full-batch Adam on the mean squared error
with weight decay. They are trained together as one batched network: the loss is a
sum over members, so each member's gradient is its own. The spread of the members
is the epistemic uncertainty BoTorch's Monte Carlo acquisitions see.
"""

from __future__ import annotations

import math

import torch

from probkit._checks import check_seed
from probkit.bayesopt._data import TrainingData, fitted_transforms
from probkit.bayesopt._mlp_ensemble import MLPEnsembleModel, mlp_ensemble_forward

__all__ = ["fit_deep_ensemble", "init_mlp_layers"]


def init_mlp_layers(
    generator: torch.Generator,
    num_members: int,
    widths: tuple[int, ...],
    *,
    dtype: torch.dtype = torch.float64,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Glorot-uniform weights and zero biases for ``num_members`` MLPs.

    Args:
        generator: torch generator (explicit randomness).
        num_members: ensemble size ``s``.
        widths: layer widths ``(d, h_1, ..., m)``.

    Example:
        >>> import torch
        >>> from probkit.bayesopt import init_mlp_layers
        >>> layers = init_mlp_layers(torch.Generator().manual_seed(0), 3, (2, 8, 1))
        >>> [tuple(w.shape) for w, _ in layers]
        [(3, 2, 8), (3, 8, 1)]
    """
    layers = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        weight = torch.rand(num_members, fan_in, fan_out, generator=generator, dtype=dtype) * 2 - 1
        layers.append((weight * limit, torch.zeros(num_members, fan_out, dtype=dtype)))
    return layers


def fit_deep_ensemble(
    data: TrainingData,
    *,
    seed: int = 0,
    num_members: int = 5,
    hidden: tuple[int, ...] = (64, 64),
    activation: str = "tanh",
    num_steps: int = 1000,
    learning_rate: float = 0.01,
    weight_decay: float = 1e-4,
) -> MLPEnsembleModel:
    """Train a deep ensemble and return it as a BoTorch ``EnsembleModel``.

    Args:
        data: the training data.
        seed: seeds the members' initial weights.
        num_members: ensemble size.
        hidden: hidden-layer widths.
        activation: ``"tanh"`` or ``"relu"``.
        num_steps: full-batch Adam steps.
        learning_rate: Adam's learning rate.
        weight_decay: L2 penalty (decoupled, AdamW).

    Example:
        >>> import torch
        >>> from probkit.bayesopt import TrainingData, fit_deep_ensemble, make_search_space
        >>> X = torch.linspace(0, 1, 8, dtype=torch.float64).unsqueeze(-1)
        >>> data = TrainingData(X, torch.sin(6 * X), None, make_search_space([(0, 1)]))
        >>> fit_deep_ensemble(data, num_steps=50).posterior(X).values.shape
        torch.Size([5, 8, 1])
    """
    seed = check_seed(seed)
    normalize, standardize, X, Y = fitted_transforms(data)
    generator = torch.Generator().manual_seed(seed)
    widths = (data.space.num_dims, *hidden, data.num_outputs)
    layers = init_mlp_layers(generator, num_members, widths, dtype=X.dtype)
    parameters = [p.requires_grad_() for layer in layers for p in layer]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay)
    for _ in range(num_steps):
        optimizer.zero_grad()
        prediction = mlp_ensemble_forward(layers, X, activation)  # s x n x m
        # Sum over members (independent gradients), mean over data points.
        loss = ((prediction - Y) ** 2).mean(dim=(-2, -1)).sum()
        loss.backward()
        optimizer.step()
    return MLPEnsembleModel(
        layers,
        activation=activation,
        train_X=data.X,
        input_transform=normalize,
        outcome_transform=standardize,
    )
