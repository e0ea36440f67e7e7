"""Bayesian optimisation on BoTorch, with GP and Bayesian-neural-network surrogates.

BoTorch and GPyTorch do the modelling and the acquisition (``fit_gpytorch_mll``,
``optimize_acqf``, their acquisition classes, ``Normalize``/``Standardize``);
probkit adds the loop (:func:`minimize`, :func:`maximize`), the ask-tell
:class:`Optimizer`, and surrogates BoTorch lacks: a BNN whose weights are sampled
by NUTS in JAX (``"bnn-hmc"``) and a deep ensemble, both exposed to BoTorch as an
``EnsembleModel`` so that every Monte Carlo acquisition works with them.

This is the only part of probkit that imports torch; ``import probkit`` does not
import it.

Example:
    >>> import numpy as np
    >>> from probkit import bayesopt
    >>> result = bayesopt.minimize(lambda x: float((x[0] - 0.2) ** 2), [(-1.0, 1.0)],
    ...                            budget=8, initial_design=4, progress_bar=False)
    >>> result.num_evaluations
    8
"""

from probkit.bayesopt._acquisition import (
    ACQUISITION_DEFAULTS as ACQUISITION_DEFAULTS,
)
from probkit.bayesopt._acquisition import (
    ACQUISITIONS,
    build_acquisition,
    optimize_acquisition,
)
from probkit.bayesopt._bnn_hmc import (
    BNNHyperparameters,
    BNNPosterior,
    bnn_log_posterior,
    bnn_predict,
    fit_bnn_hmc,
    init_bnn_params,
    sample_bnn_posterior,
    tune_bnn_hyperparameters,
)
from probkit.bayesopt._data import TrainingData
from probkit.bayesopt._deep_ensemble import fit_deep_ensemble, init_mlp_layers
from probkit.bayesopt._gp import fit_dkl, fit_gp, fit_ibnn, fit_saas, saas_available
from probkit.bayesopt._loop import maximize, minimize
from probkit.bayesopt._mlp_ensemble import MLPEnsembleModel, mlp_ensemble_forward
from probkit.bayesopt._optimizer import Optimizer
from probkit.bayesopt._result import BOResult
from probkit.bayesopt._space import SearchSpace, make_search_space
from probkit.bayesopt._surrogates import SURROGATES, fit_surrogate

# Importable, but not in __all__ (constants and internals): ACQUISITION_DEFAULTS.
__all__ = [
    "ACQUISITIONS",
    "BNNHyperparameters",
    "BNNPosterior",
    "BOResult",
    "MLPEnsembleModel",
    "Optimizer",
    "SURROGATES",
    "SearchSpace",
    "TrainingData",
    "bnn_log_posterior",
    "bnn_predict",
    "build_acquisition",
    "fit_bnn_hmc",
    "fit_deep_ensemble",
    "fit_dkl",
    "fit_gp",
    "fit_ibnn",
    "fit_saas",
    "fit_surrogate",
    "init_bnn_params",
    "init_mlp_layers",
    "make_search_space",
    "maximize",
    "minimize",
    "mlp_ensemble_forward",
    "optimize_acquisition",
    "sample_bnn_posterior",
    "saas_available",
    "tune_bnn_hyperparameters",
]
