"""Dynamic IPF for the Schrödinger bridge with random-feature drift regression.

Iterative proportional fitting on path space (De Bortoli, Thornton, Heng & Doucet,
"Diffusion Schrödinger bridge", NeurIPS 2021; Vargas, Thodoroff, Lamacraft & Lawrence,
"Solving Schrödinger bridges via maximum likelihood", Entropy 2021) alternates

1. simulate forward paths from ``x0`` with the current forward drift and fit the
   backward drift by regressing ``(X_k - X_{k+1}) / h`` on ``(X_{k+1}, t_{k+1})``;
2. simulate backward paths from ``x1`` with that backward drift and fit the forward
   drift by regressing ``(Y_{k+1} - Y_k) / h`` on ``(Y_k, t_k)``.

The first forward drift is the reference's. Drifts are the reference drift (forward) or
its negative (backward) plus a linear model on random Fourier features of the
standardised ``(x, t)`` (Rahimi & Recht 2007, a finite-rank Gaussian-process regressor as
in Vargas et al.), fitted by ridge regression in closed form: cheap and deterministic
given the paths, so each half-iteration is one linear solve.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from probkit._checks import check_key
from probkit.sde._euler_maruyama import euler_maruyama_step

__all__ = [
    "RandomFeatures",
    "random_features",
    "feature_map",
    "ridge_fit",
    "ipf_fit",
    "ipf_iteration",
]

DriftFn = Callable[[jax.Array, jax.Array], jax.Array]


class RandomFeatures(NamedTuple):
    """Random Fourier features of ``z = ((x - center) / scale, t / duration)``.

    Attributes:
        frequencies: shape ``(num_features, d + 1)``.
        phases: shape ``(num_features,)``.
        center: shape ``(d,)``.
        scale: shape ``(d,)``.
        duration: the time horizon used to scale ``t``.
    """

    frequencies: jax.Array
    phases: jax.Array
    center: jax.Array
    scale: jax.Array
    duration: jax.Array


def random_features(
    key: jax.Array,
    points: jax.Array,
    duration: float,
    *,
    num_features: int = 128,
    lengthscale: float = 1.0,
) -> RandomFeatures:
    """Draw random Fourier features (squared-exponential kernel) standardised to ``points``.

    Args:
        key: a ``jax.random`` key.
        points: data used to centre and scale ``x``, shape ``(n, d)``.
        duration: time horizon; ``t / duration`` is the time input.
        num_features: number of cosine features.
        lengthscale: kernel lengthscale in standardised units.

    Returns:
        a :class:`RandomFeatures`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.bridges import random_features
        >>> rf = random_features(jax.random.key(0), jnp.ones((5, 2)), 1.0, num_features=8)
        >>> rf.frequencies.shape
        (8, 3)
    """
    check_key(key)
    d = points.shape[1]
    key_w, key_b = jax.random.split(key)
    frequencies = jax.random.normal(key_w, (num_features, d + 1)) / lengthscale
    phases = jax.random.uniform(key_b, (num_features,), maxval=2 * jnp.pi)
    center = jnp.mean(points, axis=0)
    scale = jnp.maximum(jnp.std(points, axis=0), 1e-6)
    return RandomFeatures(frequencies, phases, center, scale, jnp.asarray(duration, float))


def feature_map(features: RandomFeatures, x: jax.Array, t: jax.Array) -> jax.Array:
    """Features ``[sqrt(2/p) cos(W z + b), 1, z]`` of one point ``x`` at time ``t``.

    Args:
        features: a :class:`RandomFeatures`.
        x: one point, shape ``(d,)``.
        t: a scalar time.

    Returns:
        the feature vector, shape ``(num_features + d + 2,)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.bridges import feature_map, random_features
        >>> rf = random_features(jax.random.key(0), jnp.ones((5, 2)), 1.0, num_features=8)
        >>> feature_map(rf, jnp.ones(2), 0.5).shape
        (12,)
    """
    z = jnp.concatenate(
        [(x - features.center) / features.scale, jnp.atleast_1d(t) / features.duration]
    )
    num = features.phases.shape[0]
    cosines = jnp.sqrt(2.0 / num) * jnp.cos(features.frequencies @ z + features.phases)
    return jnp.concatenate([cosines, jnp.ones(1, z.dtype), z])


def ridge_fit(design: jax.Array, targets: jax.Array, ridge: float) -> jax.Array:
    """Ridge regression weights ``(X^T X + ridge n I)^{-1} X^T Y``.

    Args:
        design: features, shape ``(n, q)``.
        targets: responses, shape ``(n, d)``.
        ridge: penalty per observation (scaled by ``n``).

    Returns:
        weights, shape ``(q, d)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.bridges import ridge_fit
        >>> x = jnp.stack([jnp.ones(4), jnp.arange(4.0)], axis=1)
        >>> ridge_fit(x, 2 * x[:, 1:], 0.0).round(3).tolist()
        [[0.0], [2.0]]
    """
    n, q = design.shape
    gram = design.T @ design + ridge * n * jnp.eye(q, dtype=design.dtype)
    return jax.scipy.linalg.solve(gram, design.T @ targets, assume_a="pos")


def _learned_drift(features: RandomFeatures, weights: jax.Array, base: DriftFn) -> DriftFn:
    def drift(x, t):
        return base(x, t) + feature_map(features, x, t) @ weights

    return drift


def _simulate(key, drift, starts, times, sigma):
    """Euler-Maruyama paths of a batch on ``times`` (increasing or decreasing)."""
    steps = jnp.diff(times)
    noise = jax.random.normal(key, (steps.shape[0],) + starts.shape, starts.dtype)
    batch_drift = jax.vmap(drift, in_axes=(0, None))

    def body(x, inputs):
        t, h, z = inputs
        x_next = euler_maruyama_step(
            x, batch_drift(x, t), jnp.abs(h), sigma * jnp.sqrt(jnp.abs(h)), z
        )
        return x_next, x_next

    _, path = jax.lax.scan(body, starts, (times[:-1], steps, noise))
    return jnp.concatenate([starts[None], path], axis=0)  # (m + 1, n, d)


def _fit_drift(features, base, inputs, times, targets, ridge):
    """Regress ``targets - base(inputs, times)`` on the features of ``(inputs, times)``."""
    m, n, d = inputs.shape
    flat_x = inputs.reshape(m * n, d)
    flat_t = jnp.repeat(times, n)
    design = jax.vmap(feature_map, in_axes=(None, 0, 0))(features, flat_x, flat_t)
    offset = jax.vmap(base)(flat_x, flat_t)
    return ridge_fit(design, targets.reshape(m * n, d) - offset, ridge)


def ipf_fit(
    key: jax.Array,
    x0: jax.Array,
    x1: jax.Array,
    reference_drift: DriftFn,
    times: jax.Array,
    features: RandomFeatures,
    *,
    sigma: float,
    num_iterations: int,
    ridge: float = 1e-4,
) -> tuple[jax.Array, jax.Array]:
    """Run ``num_iterations`` IPF iterations; return the forward and backward weights.

    The forward drift is ``reference_drift(x, t) + feature_map(features, x, t) @ w_f`` and
    the backward drift (for stepping from ``t`` to ``t - h``) is
    ``-reference_drift(x, t) + feature_map(features, x, t) @ w_b``. One path starts at
    each row of ``x0`` (forward) and ``x1`` (backward).

    Args:
        key: a ``jax.random`` key.
        x0: samples of the initial law, shape ``(n0, d)``.
        x1: samples of the final law, shape ``(n1, d)``.
        reference_drift: the reference's drift ``(x, t) -> dx/dt`` for one particle.
        times: increasing time grid, shape ``(m + 1,)``.
        features: the regression features (:func:`random_features`).
        sigma: diffusion scale of the reference.
        num_iterations: IPF iterations (each fits the backward, then the forward drift).
        ridge: ridge penalty per observation.

    Returns:
        ``(forward_weights, backward_weights)``, each of shape ``(q, d)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.bridges import ipf_fit, random_features
        >>> x0 = jax.random.normal(jax.random.key(0), (64, 1))
        >>> rf = random_features(jax.random.key(1), x0, 1.0, num_features=16)
        >>> w_f, w_b = ipf_fit(jax.random.key(2), x0, x0 + 2.0, lambda x, t: 0.0 * x,
        ...                    jnp.linspace(0.0, 1.0, 11), rf, sigma=1.0, num_iterations=2)
        >>> w_f.shape
        (19, 1)
    """
    check_key(key)
    body, init = ipf_iteration(x0, x1, reference_drift, times, features, sigma=sigma, ridge=ridge)
    weights_f, weights_b = jax.lax.scan(body, init, jax.random.split(key, num_iterations))
    return weights_f, weights_b[-1]


def _one_iteration(settings, x0, x1, times, features, weights_f, key):
    reference_drift, sigma, ridge = settings
    backward_base = lambda x, t: -reference_drift(x, t)
    reversed_times = times[::-1]
    h = jnp.diff(times)[:, None, None]
    key_f, key_b = jax.random.split(key)
    forward = _learned_drift(features, weights_f, reference_drift)
    paths = _simulate(key_f, forward, x0, times, sigma)  # (m + 1, n0, d)
    weights_b = _fit_drift(
        features, backward_base, paths[1:], times[1:], (paths[:-1] - paths[1:]) / h, ridge
    )
    backward = _learned_drift(features, weights_b, backward_base)
    back_paths = _simulate(key_b, backward, x1, reversed_times, sigma)[::-1]
    weights_f = _fit_drift(
        features,
        reference_drift,
        back_paths[:-1],
        times[:-1],
        (back_paths[1:] - back_paths[:-1]) / h,
        ridge,
    )
    return weights_f, weights_b


def ipf_iteration(x0, x1, reference_drift, times, features, *, sigma, ridge=1e-4):
    """One IPF iteration as a scan body ``(forward_weights, key) -> (forward_weights,
    backward_weights)``, and the initial (zero) forward weights.

    :func:`ipf_fit` scans it; a driver can run it in interruptible chunks
    (:func:`probkit.progress.interruptible_scan`). The samples, times and features are
    array leaves of the body (a :class:`jax.tree_util.Partial`), not constants.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.bridges import ipf_iteration, random_features
        >>> x0 = jax.random.normal(jax.random.key(0), (64, 1))
        >>> rf = random_features(jax.random.key(1), x0, 1.0, num_features=16)
        >>> body, w0 = ipf_iteration(x0, x0 + 2.0, lambda x, t: 0.0 * x,
        ...                          jnp.linspace(0.0, 1.0, 11), rf, sigma=1.0)
        >>> w_f, w_b = body(w0, jax.random.key(2))
        >>> w_f.shape == w_b.shape == w0.shape
        True
    """
    q = features.phases.shape[0] + x0.shape[1] + 2
    body = jax.tree_util.Partial(
        _one_iteration, (reference_drift, sigma, ridge), x0, x1, times, features
    )
    return body, jnp.zeros((q, x0.shape[1]), x0.dtype)
