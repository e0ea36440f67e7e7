"""The sequential driver: tasks in order, each posterior sampled with probkit's MCMC on
the previous task's propagated posterior, with accuracy matrices and the joint reference."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_seed
from probkit._repr import summary_repr

from ._metrics import continual_metrics
from ._models import Task
from ._propagate import propagate

__all__ = ["SequentialResult", "accuracy", "sequential_posterior"]


class SequentialResult(NamedTuple):
    """What :func:`sequential_posterior` returns.

    Attributes:
        draws: per task, the ``(chains * draws, D)`` posterior draws of the site after
            learning tasks ``0..t``.
        priors: per task, the prior it was fitted with (``priors[0]`` is the initial one;
            ``priors[t]`` was propagated from ``draws[t - 1]``).
        accuracy: ``(T, T)``: accuracy on task ``i`` after learning tasks ``0..j`` (NaN
            without ``predict``).
        prior_accuracy: ``(T,)`` accuracy of the initial prior's predictive.
        metrics: :func:`continual_metrics` of ``accuracy``.
        joint_draws: draws of the joint posterior on all tasks (when ``joint``).
        joint_accuracy: ``(T,)`` accuracy of the joint posterior on each task.
        results: the :class:`probkit.MCMCResult` of every task (diagnostics, ArviZ).
        joint_result: the joint run's :class:`probkit.MCMCResult`, or None.
    """

    draws: list
    priors: list
    accuracy: np.ndarray
    prior_accuracy: np.ndarray
    metrics: dict
    joint_draws: np.ndarray | None
    joint_accuracy: np.ndarray | None
    results: list
    joint_result: Any

    def __repr__(self) -> str:
        return summary_repr(self)


def accuracy(predict: Callable, draws: jax.Array, x: jax.Array, y: jax.Array) -> float:
    """Top-1 accuracy of ``predict(draws, x)`` (class probabilities ``(n, C)``) against ``y``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.continual import accuracy
        >>> predict = lambda draws, x: jnp.stack([x[:, 0] < 0, x[:, 0] >= 0], 1) * 1.0
        >>> accuracy(predict, None, jnp.array([[-1.0], [2.0]]), jnp.array([0, 0]))
        0.5
    """
    probs = predict(draws, x)
    return float(jnp.mean(jnp.argmax(probs, -1) == jnp.asarray(y)))


def _check_tasks(tasks: Sequence[Task], need_test: bool) -> list[Task]:
    tasks = list(tasks)
    if not tasks:
        raise ValueError("tasks is empty: pass a list of Task(x, y, x_test, y_test).")
    for t, task in enumerate(tasks):
        if not isinstance(task, Task):
            raise TypeError(f"tasks[{t}] must be a Task(x, y, x_test, y_test), got {type(task)}.")
        if jnp.shape(task.x)[0] != jnp.shape(task.y)[0]:
            raise ValueError(f"tasks[{t}]: x and y have different numbers of rows.")
        if need_test and (task.x_test is None or task.y_test is None):
            raise ValueError(
                f"tasks[{t}] has no test data: give x_test and y_test, or predict=None."
            )
    return tasks


def _run(model, x, y, prior, model_kwargs, site, seed, mcmc_options):
    import probkit as pk

    target = pk.from_numpyro(model, x, y, prior=prior, **model_kwargs)
    result = pk.mcmc.sample(target, seed=seed, **mcmc_options)
    values = np.asarray(result.samples[site])
    if values.ndim != 3:
        raise ValueError(
            f"site {site!r} must be one vector per draw (shape (chains, draws, D)), got "
            f"{values.shape}."
        )
    return result, values.reshape(-1, values.shape[-1])


def sequential_posterior(
    model: Callable,
    tasks: Sequence[Task],
    initial_prior: Any,
    *,
    propagator: str | Callable = "gaussian",
    predict: Callable | None = None,
    joint: bool = False,
    site: str = "theta",
    model_kwargs: Mapping[str, Any] | None = None,
    propagator_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    kernel: str = "nuts",
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 500,
    **mcmc_options: Any,
) -> SequentialResult:
    """Sequential Bayesian inference over tasks (Kessler et al., 2023).

    Task ``t``'s posterior is sampled with :func:`probkit.mcmc.sample` on
    ``model(x_t, y_t, prior=prior_t, **model_kwargs)``, where ``prior_0`` is
    ``initial_prior`` and ``prior_{t+1}`` is the density estimator ``propagator``
    (:func:`propagate`) fitted to task ``t``'s draws. With an exact propagator this is
    the joint posterior on tasks ``0..t``; the gap measures what the propagator loses.

    Args:
        model: a NumPyro model ``model(x, y, *, prior, **model_kwargs)`` whose parameters
            are one vector drawn at ``site`` from ``prior``.
        tasks: :class:`Task` s in order.
        initial_prior: the first task's prior (a NumPyro distribution over vectors).
        propagator: ``"gaussian"``, ``"diagonal"``, ``"mixture"``, ``"flow"`` or a
            function ``(key, draws, **options) -> distribution``.
        predict: ``(draws, x) -> (n, C)`` class probabilities (e.g. :func:`mlp_predict`);
            fills the accuracy matrix from each task's test data. None skips it.
        joint: also sample the joint posterior on all tasks' data from ``initial_prior``
            (the reference sequential inference should reproduce).
        site: the name of the parameter vector's sample site.
        model_kwargs: static keyword arguments of the model (e.g. ``layer_sizes``).
        propagator_options: passed to the propagator (e.g. ``num_components``).
        seed: task ``t`` samples with seed ``seed + t``; the propagator after task ``t``
            uses ``fold_in(PRNGKey(seed), t)``; the joint run ``seed + T``; the initial
            prior's draws ``fold_in(PRNGKey(seed), T)``.
        kernel: the MCMC kernel, passed to :func:`probkit.mcmc.sample`.
        num_chains: chains per task.
        num_warmup: warm-up iterations per chain.
        num_samples: draws per chain.
        **mcmc_options: further keyword arguments of :func:`probkit.mcmc.sample`.

    Returns:
        :class:`SequentialResult`.

    Example:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist
        >>> from probkit.models.continual import Task, linear_regression_model, sequential_posterior
        >>> x = jax.random.normal(jax.random.key(0), (40, 2))
        >>> y = x @ jnp.array([1.0, -2.0])
        >>> tasks = [Task(x[:20], y[:20]), Task(x[20:], y[20:])]
        >>> out = sequential_posterior(linear_regression_model, tasks,
        ...     dist.MultivariateNormal(jnp.zeros(2), jnp.eye(2)),
        ...     num_chains=2, num_warmup=200, num_samples=200)
        >>> out.draws[-1].shape
        (400, 2)
    """
    seed = check_seed(seed)
    import numpyro.distributions as dist

    tasks = _check_tasks(tasks, predict is not None)
    if not isinstance(initial_prior, dist.Distribution) or len(initial_prior.event_shape) != 1:
        raise TypeError(
            "initial_prior must be a NumPyro distribution over vectors (event_shape (D,))."
        )
    if isinstance(propagator, str):
        from ._propagate import PROPAGATORS

        if propagator not in PROPAGATORS:
            raise ValueError(
                f"propagator must be one of {sorted(PROPAGATORS)} or a function, "
                f"got {propagator!r}."
            )
    if predict is not None and not callable(predict):
        raise TypeError("predict must be a function (draws, x) -> class probabilities.")
    model_kwargs = dict(model_kwargs or {})
    propagator_options = dict(propagator_options or {})
    mcmc_options = dict(
        kernel=kernel,
        num_chains=num_chains,
        num_warmup=num_warmup,
        num_samples=num_samples,
        **mcmc_options,
    )
    num_tasks = len(tasks)
    base_key = jax.random.PRNGKey(seed)
    prior = initial_prior
    priors, draws_per_task, results = [], [], []
    acc = np.full((num_tasks, num_tasks), np.nan)
    for t, task in enumerate(tasks):
        priors.append(prior)
        result, draws = _run(
            model, task.x, task.y, prior, model_kwargs, site, seed + t, mcmc_options
        )
        results.append(result)
        draws_per_task.append(draws)
        if predict is not None:
            for i, other in enumerate(tasks):
                acc[i, t] = accuracy(predict, draws, other.x_test, other.y_test)
        if t + 1 < num_tasks:
            prior = propagate(
                draws, propagator, key=jax.random.fold_in(base_key, t), **propagator_options
            )
    prior_accuracy = np.full(num_tasks, np.nan)
    if predict is not None:
        prior_draws = initial_prior.sample(
            jax.random.fold_in(base_key, num_tasks), (draws_per_task[0].shape[0],)
        )
        prior_accuracy = np.array(
            [accuracy(predict, prior_draws, task.x_test, task.y_test) for task in tasks]
        )
    joint_draws = joint_accuracy = joint_result = None
    if joint:
        x_all = jnp.concatenate([jnp.asarray(task.x) for task in tasks])
        y_all = jnp.concatenate([jnp.asarray(task.y) for task in tasks])
        joint_result, joint_draws = _run(
            model, x_all, y_all, initial_prior, model_kwargs, site, seed + num_tasks, mcmc_options
        )
        if predict is not None:
            joint_accuracy = np.array(
                [accuracy(predict, joint_draws, task.x_test, task.y_test) for task in tasks]
            )
    metrics = continual_metrics(acc, prior_accuracy) if predict is not None else {}
    return SequentialResult(
        draws_per_task,
        priors,
        acc,
        prior_accuracy,
        metrics,
        joint_draws,
        joint_accuracy,
        results,
        joint_result,
    )
