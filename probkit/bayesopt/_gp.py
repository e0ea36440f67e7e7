"""Gaussian-process surrogates: BoTorch's models, fitted the way BoTorch fits them.

* ``gp``: ``SingleTaskGP`` (``MixedSingleTaskGP`` with categorical inputs,
  ``SingleTaskMultiFidelityGP`` with fidelity inputs), type-II maximum likelihood
  with ``fit_gpytorch_mll``.
* ``saas``: ``SaasFullyBayesianSingleTaskGP``, hyperparameters sampled by NUTS
  (BoTorch runs it in NumPyro) with ``fit_fully_bayesian_model_nuts``.
* ``ibnn``: ``SingleTaskGP`` with BoTorch's ``InfiniteWidthBNNKernel`` (the GP limit
  of an infinitely wide Bayesian MLP), kernel variances by maximum likelihood.
* ``dkl``: deep kernel learning, a Matérn kernel on the features of an MLP, network
  and kernel hyperparameters trained jointly on the marginal likelihood with Adam
  (``fit_gpytorch_mll_torch``).

Every model normalises inputs to the unit cube (``Normalize`` with the search-space
bounds) and standardises outputs (``Standardize``).
"""

from __future__ import annotations

import functools

import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import MixedSingleTaskGP, SingleTaskGP, SingleTaskMultiFidelityGP
from botorch.models.kernels import InfiniteWidthBNNKernel
from botorch.models.model import Model
from botorch.models.transforms.input import Normalize
from botorch.models.transforms.outcome import Standardize
from botorch.optim.fit import fit_gpytorch_mll_torch
from gpytorch.kernels import Kernel, MaternKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import Tensor

from probkit._checks import check_seed
from probkit.bayesopt._data import TrainingData

__all__ = ["fit_dkl", "fit_gp", "fit_ibnn", "fit_saas", "saas_available"]


def _normalize(data: TrainingData) -> Normalize:
    space = data.space
    return Normalize(d=space.num_dims, bounds=space.torch_bounds().to(data.X))


def _batch_shape(data: TrainingData) -> torch.Size:
    # SingleTaskGP models m outputs as a batch of m independent GPs.
    return torch.Size([data.num_outputs]) if data.num_outputs > 1 else torch.Size([])


def _fit_mll(model: Model) -> Model:
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return model.eval()


def fit_gp(data: TrainingData, *, seed: int = 0) -> Model:
    """Fit BoTorch's standard GP surrogate by maximising the marginal likelihood.

    ``SingleTaskGP`` (Matérn-5/2 ARD kernel, BoTorch's default priors); with
    categorical inputs ``MixedSingleTaskGP``; with fidelity inputs
    ``SingleTaskMultiFidelityGP``. Known noise (``data.Yvar``) is used as given.

    Args:
        data: the training data.
        seed: unused (maximum likelihood from BoTorch's deterministic initialisation);
            accepted so that every surrogate has the same signature.

    Example:
        >>> import torch
        >>> from probkit.bayesopt import TrainingData, fit_gp, make_search_space
        >>> X = torch.linspace(0, 1, 8, dtype=torch.float64).unsqueeze(-1)
        >>> model = fit_gp(TrainingData(X, torch.sin(6 * X), None, make_search_space([(0, 1)])))
        >>> model.posterior(X).mean.shape
        torch.Size([8, 1])
    """
    seed = check_seed(seed)
    del seed
    space = data.space
    standardize = Standardize(m=data.num_outputs)
    if space.fidelities:
        model = SingleTaskMultiFidelityGP(
            data.X,
            data.Y,
            train_Yvar=data.Yvar,
            data_fidelities=sorted(space.fidelities),
            input_transform=_normalize(data),
            outcome_transform=standardize,
        )
    elif space.categorical_dims:
        continuous = [i for i in range(space.num_dims) if i not in space.categorical_dims]
        bounds = space.torch_bounds().to(data.X)[:, continuous]
        model = MixedSingleTaskGP(
            data.X,
            data.Y,
            cat_dims=list(space.categorical_dims),
            train_Yvar=data.Yvar,
            input_transform=Normalize(d=space.num_dims, indices=continuous, bounds=bounds),
            outcome_transform=standardize,
        )
    else:
        model = SingleTaskGP(
            data.X,
            data.Y,
            train_Yvar=data.Yvar,
            input_transform=_normalize(data),
            outcome_transform=standardize,
        )
    return _fit_mll(model)


def saas_available() -> bool:
    """Whether BoTorch's fully Bayesian SAAS GP can run (it needs JAX and NumPyro).

    Example:
        >>> from probkit.bayesopt import saas_available
        >>> isinstance(saas_available(), bool)
        True
    """
    try:
        from botorch.models import fully_bayesian

        return bool(getattr(fully_bayesian, "_HAS_JAX", False))
    except ImportError:  # pragma: no cover - depends on the installed BoTorch
        return False


def fit_saas(
    data: TrainingData,
    *,
    seed: int = 0,
    warmup_steps: int = 256,
    num_samples: int = 128,
    thinning: int = 16,
    max_tree_depth: int = 6,
) -> Model:
    """Fit BoTorch's SAAS fully Bayesian GP (Eriksson & Jankowiak, 2021) with NUTS.

    The hyperparameter posterior is sampled by BoTorch's NumPyro NUTS;
    ``num_samples / thinning`` draws make a batched GP (a Gaussian mixture posterior).
    Only single-output, continuous problems with inferred noise.

    Example:
        >>> import torch
        >>> from probkit.bayesopt import TrainingData, fit_saas, make_search_space
        >>> X = torch.linspace(0, 1, 6, dtype=torch.float64).unsqueeze(-1)
        >>> data = TrainingData(X, torch.sin(6 * X), None, make_search_space([(0, 1)]))
        >>> model = fit_saas(data, warmup_steps=16, num_samples=16, thinning=8)  # doctest: +SKIP
    """
    seed = check_seed(seed)
    if not saas_available():
        raise ImportError(
            "surrogate='saas' needs BoTorch's optional JAX/NumPyro support, which did not "
            "import. Install numpyro (pip install numpyro) or use surrogate='gp'."
        )
    from botorch.fit import fit_fully_bayesian_model_nuts
    from botorch.models.fully_bayesian import SaasFullyBayesianSingleTaskGP

    model = SaasFullyBayesianSingleTaskGP(
        data.X,
        data.Y,
        train_Yvar=data.Yvar,
        input_transform=_normalize(data),
        outcome_transform=Standardize(m=data.num_outputs),
    )
    fit_fully_bayesian_model_nuts(
        model,
        max_tree_depth=max_tree_depth,
        warmup_steps=warmup_steps,
        num_samples=num_samples,
        thinning=thinning,
        disable_progbar=True,
        seed=seed,
    )
    return model.eval()


def fit_ibnn(
    data: TrainingData,
    *,
    seed: int = 0,
    depth: int = 3,
    weight_var: float = 10.0,
    bias_var: float = 5.0,
) -> Model:
    """Fit a GP with BoTorch's infinite-width BNN kernel (I-BNN; Lee et al., 2018).

    The kernel of an infinitely wide ``depth``-layer ReLU network; its weight and
    bias variances (started at ``weight_var``, ``bias_var``, the values of BoTorch's
    I-BNN tutorial) and the noise are fitted by maximum likelihood.

    Example:
        >>> import torch
        >>> from probkit.bayesopt import TrainingData, fit_ibnn, make_search_space
        >>> X = torch.linspace(0, 1, 8, dtype=torch.float64).unsqueeze(-1)
        >>> model = fit_ibnn(TrainingData(X, torch.sin(6 * X), None, make_search_space([(0, 1)])))
        >>> model.posterior(X).variance.shape
        torch.Size([8, 1])
    """
    seed = check_seed(seed)
    del seed
    kernel = InfiniteWidthBNNKernel(depth=depth, batch_shape=_batch_shape(data))
    # Start where BoTorch's I-BNN tutorial starts: from GPyTorch's default values the
    # marginal likelihood climbs to a degenerate optimum (weight and bias variances
    # -> 0, a constant mean, all signal explained as noise).
    kernel.weight_var = weight_var
    kernel.bias_var = bias_var
    model = SingleTaskGP(
        data.X,
        data.Y,
        train_Yvar=data.Yvar,
        covar_module=kernel,
        input_transform=_normalize(data),
        outcome_transform=Standardize(m=data.num_outputs),
    )
    return _fit_mll(model)


class FeatureKernel(Kernel):
    """A base kernel applied to the outputs of a feature extractor (deep kernel).

    Example:
        >>> import torch
        >>> from gpytorch.kernels import RBFKernel
        >>> from probkit.bayesopt._gp import FeatureKernel
        >>> kernel = FeatureKernel(torch.nn.Linear(3, 2), RBFKernel())
        >>> kernel(torch.rand(4, 3)).to_dense().shape
        torch.Size([4, 4])
    """

    def __init__(self, feature_extractor: torch.nn.Module, base_kernel: Kernel) -> None:
        super().__init__()
        self.feature_extractor = feature_extractor
        self.base_kernel = base_kernel

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:
        z1 = self.feature_extractor(x1)
        z2 = z1 if x2 is x1 else self.feature_extractor(x2)
        return self.base_kernel.forward(z1, z2, diag=diag, **params)


def _feature_extractor(
    num_inputs: int, hidden: tuple[int, ...], num_features: int
) -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    width = num_inputs
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.Tanh()]
        width = h
    layers.append(torch.nn.Linear(width, num_features))
    return torch.nn.Sequential(*layers).to(torch.float64)


def fit_dkl(
    data: TrainingData,
    *,
    seed: int = 0,
    hidden: tuple[int, ...] = (32, 32),
    num_features: int | None = None,
    num_steps: int = 300,
    learning_rate: float = 0.01,
) -> Model:
    """Fit a deep-kernel-learning GP (Wilson et al., 2016).

    A Matérn-5/2 ARD kernel on the ``num_features`` outputs of a tanh MLP (default
    ``min(d, 4)`` features); network weights, kernel hyperparameters and noise are
    trained jointly on the exact marginal likelihood with Adam, through BoTorch's
    ``fit_gpytorch_mll(..., optimizer=fit_gpytorch_mll_torch)``.

    Args:
        data: the training data.
        seed: seeds the network's initial weights.
        hidden: hidden-layer widths.
        num_features: feature dimension (default ``min(d, 4)``).
        num_steps: Adam steps.
        learning_rate: Adam's learning rate.

    Example:
        >>> import torch
        >>> from probkit.bayesopt import TrainingData, fit_dkl, make_search_space
        >>> X = torch.linspace(0, 1, 8, dtype=torch.float64).unsqueeze(-1)
        >>> data = TrainingData(X, torch.sin(6 * X), None, make_search_space([(0, 1)]))
        >>> fit_dkl(data, num_steps=20).posterior(X).mean.shape
        torch.Size([8, 1])
    """
    seed = check_seed(seed)
    d = data.space.num_dims
    num_features = num_features or min(d, 4)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    extractor = _feature_extractor(d, tuple(hidden), num_features)
    torch.random.set_rng_state(generator_state)
    batch_shape = _batch_shape(data)
    kernel = FeatureKernel(
        extractor,
        ScaleKernel(
            MaternKernel(nu=2.5, ard_num_dims=num_features, batch_shape=batch_shape),
            batch_shape=batch_shape,
        ),
    )
    model = SingleTaskGP(
        data.X,
        data.Y,
        train_Yvar=data.Yvar,
        covar_module=kernel,
        input_transform=_normalize(data),
        outcome_transform=Standardize(m=data.num_outputs),
    )
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    fit_gpytorch_mll(
        mll,
        optimizer=fit_gpytorch_mll_torch,
        optimizer_kwargs={
            "step_limit": num_steps,
            "optimizer": functools.partial(torch.optim.Adam, lr=learning_rate),
        },
    )
    return model.eval()
