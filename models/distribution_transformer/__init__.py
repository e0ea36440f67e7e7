"""Distribution Transformers: amortised prior-to-posterior maps on Gaussian mixtures.

A Distribution Transformer (Whittle, Ziomek, Rawling & Osborne, arXiv 2502.02463) maps a
prior given as a Gaussian mixture (:class:`probkit.GaussianMixture`), together with a
data set, to a Gaussian-mixture
approximation of the posterior in one forward pass; the prior can change between
queries without retraining, and the posterior can be fed back as the next prior
(:func:`sequential_posterior`). Shipped networks cover linear-Gaussian observations in
1-D and 2-D (whose exact posterior, :func:`linear_gaussian_posterior`, is the oracle) and
Bayesian logistic regression in 2-D; :func:`fit` fits new tasks by amortised forward KL.
``python -m probkit.models.distribution_transformer.train_tasks`` retrains the shipped ones.

Example:
    >>> import jax.numpy as jnp
    >>> import probkit.models.distribution_transformer as dt
    >>> prior = dt.gaussian_mixture(jnp.array([0.5, 0.5]), jnp.array([[-2.0], [2.0]]),
    ...                             jnp.array([[[1.0]], [[1.0]]]))
    >>> y = jnp.array([[1.5], [2.5], [2.2]])
    >>> approx = dt.posterior(prior, y, obs_matrix=jnp.eye(1), noise_std=1.0)
    >>> exact = dt.linear_gaussian_posterior(prior, y, jnp.eye(1), 1.0)
    >>> approx.num_components, exact.num_components
    (2, 2)
"""

from ._exact import linear_gaussian_log_evidence, linear_gaussian_posterior
from ._gmm import GaussianMixture, gaussian, gaussian_mixture, kl_divergence_mc
from ._inference import apply_model, posterior, prepare_query, sequential_posterior
from ._io import load, load_pretrained, save
from ._network import DistributionTransformer
from ._tasks import (
    TASKS,
    Query,
    Task,
    TaskRanges,
    linear_gaussian_task,
    logistic_regression_task,
    sample_prior,
)
from ._training import (
    FitResult,
    fit,
    forward_kl_loss,
    init_model,
    train_step,
)
from ._training import (
    TrainResult as TrainResult,  # the old names, kept for a while
)
from ._training import (
    train as train,
)

__all__ = [
    "GaussianMixture",
    "gaussian_mixture",
    "gaussian",
    "kl_divergence_mc",
    "linear_gaussian_posterior",
    "linear_gaussian_log_evidence",
    "DistributionTransformer",
    "Task",
    "TaskRanges",
    "Query",
    "TASKS",
    "sample_prior",
    "linear_gaussian_task",
    "logistic_regression_task",
    "forward_kl_loss",
    "train_step",
    "fit",
    "init_model",
    "FitResult",
    "posterior",
    "sequential_posterior",
    "prepare_query",
    "apply_model",
    "save",
    "load",
    "load_pretrained",
]
