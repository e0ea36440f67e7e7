"""Parametric reference drifts ``f(x, theta)`` for multi-marginal bridges, and a simulator.

A :class:`DriftReference` is the drift of ``dX = f(X, theta) dt + sigma dW`` for ONE
particle plus what the refitting step needs to know: parameter names and whether ``f``
is linear in ``theta`` (then maximum likelihood on Euler increments is a least-squares
solve; otherwise it runs L-BFGS).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_key
from probkit.sde._euler_maruyama import euler_maruyama

__all__ = [
    "DriftReference",
    "lotka_volterra",
    "repressilator",
    "linear_drift",
    "as_reference",
    "simulate_snapshots",
]

ParametricDrift = Callable[[jax.Array, jax.Array], jax.Array]


@dataclass(frozen=True)
class DriftReference:
    """A parametric drift ``f(x, theta)`` for one particle.

    Attributes:
        drift: ``(x, theta) -> dx/dt``, ``x`` of shape ``(d,)``, ``theta`` of shape ``(p,)``.
        parameter_names: names of the ``p`` entries of ``theta``.
        linear_in_theta: whether ``f(x, theta) = f(x, 0) + J(x) theta`` exactly.
        name: a label for plots and tables.
    """

    drift: ParametricDrift
    parameter_names: tuple[str, ...]
    linear_in_theta: bool = False
    name: str = "custom"

    @property
    def num_parameters(self) -> int:
        """The number ``p`` of parameters."""
        return len(self.parameter_names)


def _lotka_volterra_drift(x: jax.Array, theta: jax.Array) -> jax.Array:
    alpha, beta, delta, gamma = theta
    prey, predator = x[0], x[1]
    return jnp.stack(
        [alpha * prey - beta * prey * predator, delta * prey * predator - gamma * predator]
    )


def lotka_volterra() -> DriftReference:
    """The Lotka-Volterra drift ``(a x - b x y, d x y - g y)``, ``theta = (a, b, d, g)``.

    ``x`` is the prey and ``y`` the predator; the drift is linear in ``theta``.

    Returns:
        a :class:`DriftReference` on 2-D states.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.bridges import lotka_volterra
        >>> ref = lotka_volterra()
        >>> ref.drift(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.5, 0.5, 1.0])).tolist()
        [0.0, -1.0]
    """
    return DriftReference(
        drift=_lotka_volterra_drift,
        parameter_names=("alpha", "beta", "delta", "gamma"),
        linear_in_theta=True,
        name="lotka_volterra",
    )


def _repressilator_drift(x: jax.Array, theta: jax.Array) -> jax.Array:
    production, hill, decay = theta
    repressor = jnp.roll(x, 1)  # gene i is repressed by gene i - 1 (cyclically)
    # Hill repression of a non-negative concentration; a floor keeps d/dn finite at 0.
    level = jnp.maximum(repressor, 1e-6)
    return production / (1.0 + level**hill) - decay * x


def repressilator() -> DriftReference:
    """The repressilator drift ``f_i = beta / (1 + x_{i-1}^n) - gamma x_i`` on 3 genes.

    ``theta = (beta, n, gamma)``: production rate, Hill coefficient, decay rate (Elowitz &
    Leibler 2000, protein-only form). Non-linear in ``n``.

    Returns:
        a :class:`DriftReference` on 3-D states.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.bridges import repressilator
        >>> ref = repressilator()
        >>> ref.drift(jnp.ones(3), jnp.array([2.0, 2.0, 1.0])).tolist()
        [0.0, 0.0, 0.0]
    """
    return DriftReference(
        drift=_repressilator_drift,
        parameter_names=("beta", "n", "gamma"),
        linear_in_theta=False,
        name="repressilator",
    )


def linear_drift(dim: int) -> DriftReference:
    """The linear drift ``A x + b`` with ``theta = concat(A.ravel(), b)``.

    Args:
        dim: the state dimension ``d`` (``theta`` has ``d^2 + d`` entries).

    Returns:
        a :class:`DriftReference`.

    Raises:
        ValueError: if ``dim`` is not a positive int.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.bridges import linear_drift
        >>> ref = linear_drift(1)
        >>> ref.parameter_names, ref.drift(jnp.array([2.0]), jnp.array([-1.0, 0.5])).tolist()
        (('A[0,0]', 'b[0]'), [-1.5])
    """
    if not isinstance(dim, int | np.integer) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}.")

    def drift(x, theta):
        matrix = theta[: dim * dim].reshape(dim, dim)
        return matrix @ x + theta[dim * dim :]

    names = tuple(f"A[{i},{j}]" for i in range(dim) for j in range(dim))
    names += tuple(f"b[{i}]" for i in range(dim))
    return DriftReference(drift, names, linear_in_theta=True, name="linear")


def as_reference(
    reference: DriftReference | ParametricDrift | str, num_parameters: int | None = None
) -> DriftReference:
    """Turn a reference given by name, callable or :class:`DriftReference` into the latter.

    Args:
        reference: ``"lotka_volterra"``, ``"repressilator"``, a :class:`DriftReference`,
            or a callable ``f(x, theta)`` (treated as non-linear in ``theta``).
        num_parameters: the length of ``theta`` for a callable (names ``theta[i]``).

    Returns:
        a :class:`DriftReference`.

    Raises:
        ValueError: for an unknown name or a callable without ``num_parameters``.

    Example:
        >>> from probkit.bridges import as_reference
        >>> as_reference("lotka_volterra").parameter_names
        ('alpha', 'beta', 'delta', 'gamma')
    """
    if isinstance(reference, DriftReference):
        return reference
    if isinstance(reference, str):
        named = {"lotka_volterra": lotka_volterra, "repressilator": repressilator}
        if reference not in named:
            raise ValueError(
                f"reference must be one of {sorted(named)}, a DriftReference (e.g. "
                f"linear_drift(dim)) or a callable f(x, theta); got {reference!r}."
            )
        return named[reference]()
    if callable(reference):
        if num_parameters is None:
            raise ValueError("num_parameters is needed for a callable reference.")
        names = tuple(f"theta[{i}]" for i in range(num_parameters))
        return DriftReference(reference, names, linear_in_theta=False)
    raise ValueError(
        f"reference must be a name, a DriftReference or a callable f(x, theta), got "
        f"{type(reference).__name__}."
    )


def simulate_snapshots(
    key: jax.Array,
    reference: DriftReference,
    theta: jax.Array,
    x_init: jax.Array,
    times: jax.Array,
    *,
    sigma: float,
    num_substeps: int = 100,
) -> jax.Array:
    """Simulate ``dX = f(X, theta) dt + sigma dW`` from each row of ``x_init``; record ``times``.

    The first snapshot is ``x_init`` (at ``times[0]``); between snapshots the SDE runs
    ``num_substeps`` Euler-Maruyama steps.

    Args:
        key: a ``jax.random`` key.
        reference: the drift.
        theta: its parameters, shape ``(p,)``.
        x_init: initial particles, shape ``(n, d)``.
        times: increasing snapshot times, shape ``(K,)``.
        sigma: diffusion scale.
        num_substeps: Euler-Maruyama steps per interval.

    Returns:
        snapshots, shape ``(K, n, d)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.bridges import lotka_volterra, simulate_snapshots
        >>> snaps = simulate_snapshots(jax.random.key(0), lotka_volterra(),
        ...                            jnp.array([1.0, 0.5, 0.5, 1.0]), jnp.ones((10, 2)),
        ...                            jnp.linspace(0.0, 1.0, 3), sigma=0.1)
        >>> snaps.shape
        (3, 10, 2)
    """
    check_key(key)
    times = jnp.asarray(times, dtype=float)
    fractions = jnp.linspace(0.0, 1.0, num_substeps + 1)[:-1]
    grid = (times[:-1, None] + jnp.diff(times)[:, None] * fractions[None]).ravel()
    grid = jnp.concatenate([grid, times[-1:]])
    drift = lambda x, t: reference.drift(x, theta)
    keys = jax.random.split(key, x_init.shape[0])
    paths = jax.vmap(lambda k, x: euler_maruyama(k, drift, x, grid, sigma=sigma))(keys, x_init)
    return jnp.swapaxes(paths[:, ::num_substeps], 0, 1)
