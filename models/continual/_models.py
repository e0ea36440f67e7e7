"""Models and data for sequential Bayesian inference across tasks.

A model for :func:`sequential_posterior` is a NumPyro model ``model(x, y=None, *,
prior, ...)`` whose parameters are one flat vector drawn from ``prior`` at one site
(``"theta"`` here); the driver replaces ``prior`` task after task.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_key

__all__ = [
    "Task",
    "linear_regression_model",
    "mlp_classifier_model",
    "mlp_logits",
    "mlp_num_params",
    "mlp_predict",
    "split_gaussian_blobs",
]


class Task(NamedTuple):
    """One task: training data and held-out test data (a pytree).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.continual import Task
        >>> Task(jnp.zeros((5, 2)), jnp.zeros(5, int), jnp.zeros((3, 2)), jnp.zeros(3, int)).x.shape
        (5, 2)
    """

    x: jax.Array
    y: jax.Array
    x_test: jax.Array | None = None
    y_test: jax.Array | None = None


def linear_regression_model(x, y=None, *, prior, noise_scale: float = 1.0):
    """Bayesian linear regression with known noise: ``theta ~ prior``,
    ``y ~ Normal(x @ theta, noise_scale)``. Conjugate for a Gaussian prior.

    Example:
        >>> import jax.numpy as jnp, numpyro.distributions as dist
        >>> import probkit as pk
        >>> from probkit.models.continual import linear_regression_model
        >>> prior = dist.MultivariateNormal(jnp.zeros(2), jnp.eye(2))
        >>> t = pk.from_numpyro(linear_regression_model, jnp.ones((4, 2)), jnp.ones(4), prior=prior)
        >>> t.num_dims
        2
    """
    import numpyro
    import numpyro.distributions as dist

    theta = numpyro.sample("theta", prior)
    numpyro.sample("y", dist.Normal(x @ theta, noise_scale), obs=y)


def mlp_num_params(layer_sizes: Sequence[int]) -> int:
    """Number of weights and biases of an MLP with these layer sizes (inputs first).

    Example:
        >>> from probkit.models.continual import mlp_num_params
        >>> mlp_num_params((2, 8, 4))
        60
    """
    sizes = tuple(int(s) for s in layer_sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"layer_sizes must list >= 2 positive sizes, got {layer_sizes}.")
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def mlp_logits(theta: jax.Array, x: jax.Array, layer_sizes: Sequence[int]) -> jax.Array:
    """Logits of a tanh MLP whose weights and biases are unpacked from the flat ``theta``.

    Weights are scaled by ``1 / sqrt(fan_in)`` so that a standard-normal prior on
    ``theta`` is the usual scaled prior of Bayesian neural networks.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.continual import mlp_logits
        >>> mlp_logits(jnp.zeros(60), jnp.ones((5, 2)), (2, 8, 4)).shape
        (5, 4)
    """
    sizes = tuple(int(s) for s in layer_sizes)
    h, offset = x, 0
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        w = theta[..., offset : offset + a * b].reshape(*theta.shape[:-1], a, b)
        offset += a * b
        bias = theta[..., offset : offset + b]
        offset += b
        h = jnp.einsum("...na,...ab->...nb", h, w) / math.sqrt(a) + bias[..., None, :]
        if i < len(sizes) - 2:
            h = jnp.tanh(h)
    return h


def mlp_classifier_model(x, y=None, *, prior, layer_sizes: tuple[int, ...]):
    """A Bayesian MLP classifier: ``theta ~ prior``, ``y ~ Categorical(mlp_logits)``.

    ``layer_sizes`` (a tuple: static) ends with the number of classes of the single
    shared head (class-incremental learning).

    Example:
        >>> import jax.numpy as jnp, numpyro.distributions as dist
        >>> import probkit as pk
        >>> from probkit.models.continual import mlp_classifier_model
        >>> prior = dist.Normal(jnp.zeros(60), 1.0).to_event(1)
        >>> t = pk.from_numpyro(mlp_classifier_model, jnp.ones((4, 2)), jnp.zeros(4, int),
        ...                     prior=prior, layer_sizes=(2, 8, 4))
        >>> t.num_dims
        60
    """
    import numpyro
    import numpyro.distributions as dist

    theta = numpyro.sample("theta", prior)
    numpyro.sample("y", dist.Categorical(logits=mlp_logits(theta, x, layer_sizes)), obs=y)


def mlp_predict(layer_sizes: Sequence[int]):
    """``predict(draws, x) -> (n, C)`` class probabilities averaged over posterior draws
    (the Bayesian model average), for :func:`sequential_posterior`'s ``predict``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.continual import mlp_predict
        >>> mlp_predict((2, 8, 4))(jnp.zeros((10, 60)), jnp.ones((3, 2))).shape
        (3, 4)
    """
    sizes = tuple(int(s) for s in layer_sizes)

    @jax.jit
    def predict(draws, x):
        return jnp.mean(jax.nn.softmax(mlp_logits(draws[:, None, :], x, sizes)[:, 0], -1), 0)

    return predict


def split_gaussian_blobs(
    key: jax.Array,
    num_tasks: int = 3,
    *,
    classes_per_task: int = 2,
    num_train: int = 100,
    num_test: int = 200,
    radius: float = 3.0,
    scale: float = 0.6,
) -> list[Task]:
    """Split 2-D Gaussian blobs: ``num_tasks * classes_per_task`` isotropic blobs with
    centres evenly spaced on a circle; task ``t`` holds classes
    ``t * classes_per_task, ...`` (class-incremental: one head over all classes).

    ``num_train`` / ``num_test`` points per class.

    Example:
        >>> import jax
        >>> from probkit.models.continual import split_gaussian_blobs
        >>> tasks = split_gaussian_blobs(jax.random.key(0), 2)
        >>> len(tasks), tasks[1].x.shape, sorted(set(tasks[1].y.tolist()))
        (2, (200, 2), [2, 3])
    """
    check_key(key)
    for name, value in (
        ("num_tasks", num_tasks),
        ("classes_per_task", classes_per_task),
        ("num_train", num_train),
        ("num_test", num_test),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
    num_classes = int(num_tasks) * int(classes_per_task)
    angles = 2 * np.pi * np.arange(num_classes) / num_classes
    centres = radius * np.stack([np.cos(angles), np.sin(angles)], 1)
    tasks = []
    for t in range(int(num_tasks)):
        k_train, k_test = jax.random.split(jax.random.fold_in(key, t))
        classes = np.arange(t * classes_per_task, (t + 1) * classes_per_task)

        def draw(k, n, classes=classes):
            noise = scale * jax.random.normal(k, (len(classes), n, 2))
            x = jnp.asarray(centres[classes])[:, None, :] + noise
            y = jnp.broadcast_to(jnp.asarray(classes)[:, None], (len(classes), n))
            return x.reshape(-1, 2), y.reshape(-1)

        x, y = draw(k_train, int(num_train))
        x_test, y_test = draw(k_test, int(num_test))
        tasks.append(Task(x, y, x_test, y_test))
    return tasks
