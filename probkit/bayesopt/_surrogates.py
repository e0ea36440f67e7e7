"""The surrogate registry: a name -> a function fitting a BoTorch model to data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botorch.models.model import Model

from probkit._checks import check_seed
from probkit.bayesopt._bnn_hmc import fit_bnn_hmc
from probkit.bayesopt._data import TrainingData
from probkit.bayesopt._deep_ensemble import fit_deep_ensemble
from probkit.bayesopt._gp import fit_dkl, fit_gp, fit_ibnn, fit_saas, saas_available
from probkit.bayesopt._space import SearchSpace

__all__ = ["SURROGATES", "check_surrogate", "fit_surrogate"]

SURROGATES: dict[str, Callable[..., Model]] = {
    "gp": fit_gp,
    "saas": fit_saas,
    "bnn-hmc": fit_bnn_hmc,
    "ensemble": fit_deep_ensemble,
    "dkl": fit_dkl,
    "ibnn": fit_ibnn,
}

# Surrogates that are exact GPs (condition_on_observations, fantasize, Matheron paths).
GP_SURROGATES = ("gp", "dkl", "ibnn")
# BNN-HMC re-runs its validation grid search every this many fits by default.
DEFAULT_RETUNE_EVERY = 5


def check_surrogate(
    name: str, *, space: SearchSpace, num_constraints: int, noise_is_fixed: bool
) -> None:
    """Raise a clear error when surrogate ``name`` cannot model this problem.

    Example:
        >>> from probkit.bayesopt import make_search_space
        >>> from probkit.bayesopt._surrogates import check_surrogate
        >>> check_surrogate("gp", space=make_search_space([(0, 1)]), num_constraints=0,
        ...                 noise_is_fixed=False)
    """
    if name not in SURROGATES:
        raise ValueError(f"surrogate must be one of {tuple(SURROGATES)}, got {name!r}.")
    if space.categorical_dims and name != "gp":
        raise ValueError(
            f"categorical inputs need surrogate='gp' (BoTorch's MixedSingleTaskGP), not {name!r}."
        )
    if space.fidelities and name != "gp":
        raise ValueError(f"fidelity inputs need surrogate='gp', not {name!r}.")
    if name == "saas" and not saas_available():
        raise ImportError(
            "surrogate='saas' needs BoTorch's optional JAX/NumPyro support, which did not "
            "import. Install numpyro (pip install numpyro) or use surrogate='gp'."
        )
    if name == "saas" and num_constraints:
        raise ValueError("surrogate='saas' models one output: outcome constraints need 'gp'.")
    if noise_is_fixed and name in ("bnn-hmc", "ensemble"):
        raise ValueError(
            f"a fixed noise level is used by the GP surrogates only; surrogate={name!r} "
            "chooses its own (pass noise='infer')."
        )


def fit_surrogate(
    name: str,
    data: TrainingData,
    *,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    previous: Model | None = None,
    num_previous_fits: int = 0,
) -> Model:
    """Fit surrogate ``name`` to ``data`` and return the BoTorch model.

    Args:
        name: one of ``SURROGATES``.
        data: the training data.
        seed: seeds the fit (network initialisation, MCMC).
        options: keyword arguments of the fitting function (e.g. ``hidden``).
        previous: the model of the previous fit, if any.
        num_previous_fits: how many fits came before this one. BNN-HMC reuses the
            previous fit's ``(prior_scale, noise_scale)`` except every
            ``options["retune_every"]`` fits (default 5), when it re-runs the search.

    Example:
        >>> import torch
        >>> from probkit.bayesopt import TrainingData, fit_surrogate, make_search_space
        >>> X = torch.linspace(0, 1, 6, dtype=torch.float64).unsqueeze(-1)
        >>> data = TrainingData(X, torch.cos(4 * X), None, make_search_space([(0, 1)]))
        >>> type(fit_surrogate("gp", data)).__name__
        'SingleTaskGP'
    """
    seed = check_seed(seed)
    if name not in SURROGATES:
        raise ValueError(f"surrogate must be one of {tuple(SURROGATES)}, got {name!r}.")
    opts = dict(options or {})
    if name == "bnn-hmc":
        retune_every = int(opts.pop("retune_every", DEFAULT_RETUNE_EVERY))
        reuse = (
            previous is not None
            and hasattr(previous, "hyperparameters")
            and num_previous_fits % max(retune_every, 1) != 0
        )
        if reuse:
            opts.setdefault("prior_scale", previous.hyperparameters.prior_scale)
            opts.setdefault("noise_scale", previous.hyperparameters.noise_scale)
    return SURROGATES[name](data, seed=seed, **opts)
