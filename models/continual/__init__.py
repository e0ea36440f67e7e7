"""Sequential Bayesian inference for continual learning (after Kessler et al., 2023).

Learn tasks one after another, each posterior becoming the next task's prior:

* propagators (:func:`propagate`): density estimators that turn posterior draws into
  a NumPyro prior: a full or diagonal Gaussian (:func:`fit_gaussian`,
  :func:`fit_diagonal_gaussian`), a Gaussian mixture by EM (:func:`fit_gaussian_mixture`,
  ott-jax), a masked autoregressive flow (:func:`fit_flow`, flowjax);
* the driver (:func:`sequential_posterior`): each task sampled with
  :func:`probkit.mcmc.sample` on the propagated prior; the accuracy matrix, forgetting and
  transfer (:func:`continual_metrics`); the joint posterior on all tasks as reference;
* the prototype baseline (:func:`prototype_baseline`): class-conditional Gaussians with
  exact conjugate updates;
* models and data: :func:`linear_regression_model`, :func:`mlp_classifier_model`,
  :func:`split_gaussian_blobs`.

Example:
    >>> import jax, jax.numpy as jnp, numpyro.distributions as dist
    >>> import probkit.models.continual as cl
    >>> draws = jax.random.normal(jax.random.key(0), (1000, 3))
    >>> prior = cl.propagate(draws, "gaussian")
    >>> prior.event_shape
    (3,)
"""

from ._metrics import continual_metrics
from ._models import (
    Task,
    linear_regression_model,
    mlp_classifier_model,
    mlp_logits,
    mlp_num_params,
    mlp_predict,
    split_gaussian_blobs,
)
from ._propagate import (
    PROPAGATORS as PROPAGATORS,
)
from ._propagate import (
    FlowDistribution,
    fit_diagonal_gaussian,
    fit_flow,
    fit_gaussian,
    fit_gaussian_mixture,
    propagate,
)
from ._prototype import PrototypeResult, prototype_baseline, prototype_log_proba_classes
from ._sequential import SequentialResult, accuracy, sequential_posterior

# Importable, but not in __all__ (constants and internals): PROPAGATORS.
__all__ = [
    "propagate",
    "fit_gaussian",
    "fit_diagonal_gaussian",
    "fit_gaussian_mixture",
    "fit_flow",
    "FlowDistribution",
    "sequential_posterior",
    "SequentialResult",
    "accuracy",
    "continual_metrics",
    "prototype_baseline",
    "prototype_log_proba_classes",
    "PrototypeResult",
    "Task",
    "linear_regression_model",
    "mlp_classifier_model",
    "mlp_logits",
    "mlp_num_params",
    "mlp_predict",
    "split_gaussian_blobs",
]
