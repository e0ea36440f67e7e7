"""Two-marginal Schrödinger bridges between sample sets: static (entropic OT) and IPF.

With the reference ``dX = f(X, t) dt + sigma dW`` on ``[0, T]``:

- ``method="static"`` solves the static bridge as entropic OT with the cost
  ``|y - eta_T(x)|^2 / 2`` and ``epsilon = sigma^2 T``, where ``eta`` is the reference's
  Euler flow (``eta_T(x) = x`` for the Brownian reference, for which this IS the static
  Schrödinger bridge; for a drift it treats the transition as Gaussian around the flow),
  and draws paths as (residual) Brownian bridges between coupled end points.
- ``method="ipf"`` runs dynamic IPF with random-feature drifts (:mod:`._ipf`): the fitted
  forward drift transports any new starting point, not only the given samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_key, check_seed
from probkit.bridges._ipf import RandomFeatures, feature_map, ipf_iteration, random_features
from probkit.bridges._paths import reference_flow, residual_bridge
from probkit.bridges._sinkhorn import sinkhorn, squared_distances, warn_not_converged
from probkit.progress import interruptible_scan
from probkit.sde._euler_maruyama import euler_maruyama

__all__ = ["Bridge", "schrodinger_bridge", "brownian_drift"]

DriftFn = Callable[[jax.Array, jax.Array], jax.Array]
METHODS = ("static", "ipf")


def brownian_drift(x: jax.Array, t: jax.Array) -> jax.Array:
    """The zero drift of the Brownian reference.

    Args:
        x: one point, shape ``(d,)``.
        t: the time (unused).

    Returns:
        zeros like ``x``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.bridges import brownian_drift
        >>> brownian_drift(jnp.ones(2), 0.0).tolist()
        [0.0, 0.0]
    """
    return jnp.zeros_like(x)


class Bridge(eqx.Module):
    """A fitted Schrödinger bridge between two sample sets.

    Attributes:
        x0: initial samples, shape ``(n0, d)``.
        x1: final samples, shape ``(n1, d)``.
        times: the path grid, shape ``(num_steps + 1,)`` from 0 to ``duration``.
        sigma: the reference's diffusion scale.
        plan: the entropic OT plan (static method), shape ``(n0, n1)``, else ``None``.
        features: the IPF drift features (ipf method), else ``None``.
        forward_weights: the IPF forward-drift weights (ipf method), else ``None``.
        converged: whether Sinkhorn converged (static method; ``True`` for IPF).
        reference_drift: the reference's drift ``(x, t) -> dx/dt``.
        method: ``"static"`` or ``"ipf"``.
    """

    x0: jax.Array
    x1: jax.Array
    times: jax.Array
    sigma: float
    plan: jax.Array | None
    features: RandomFeatures | None
    forward_weights: jax.Array | None
    converged: jax.Array
    reference_drift: DriftFn = eqx.field(static=True)
    method: str = eqx.field(static=True)

    def forward_drift(self, x: jax.Array, t: jax.Array) -> jax.Array:
        """The bridge's forward drift at one point (ipf) or the reference drift (static).

        Args:
            x: one point, shape ``(d,)``.
            t: the time.

        Returns:
            the drift, shape ``(d,)``.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> from probkit.bridges import schrodinger_bridge
            >>> x = jax.random.normal(jax.random.key(0), (16, 1))
            >>> b = schrodinger_bridge(x, x + 1.0, sigma=0.5, num_steps=8)
            >>> b.forward_drift(jnp.zeros(1), 0.5).tolist()
            [0.0]
        """
        drift = self.reference_drift(x, t)
        if self.method == "ipf":
            drift = drift + feature_map(self.features, x, t) @ self.forward_weights
        return drift

    def coupling(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        """Draw ``n`` pairs ``(X_0, X_T)`` from the bridge's coupling.

        Static: index pairs drawn from the OT plan. IPF: ``X_0`` resampled from ``x0``,
        ``X_T`` the end of a forward simulation with the fitted drift.

        Args:
            key: a ``jax.random`` key.
            n: number of pairs.

        Returns:
            ``(starts, ends)``, each of shape ``(n, d)``.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> from probkit.bridges import schrodinger_bridge
            >>> x = jax.random.normal(jax.random.key(0), (16, 1))
            >>> starts, ends = schrodinger_bridge(x, x + 1.0, sigma=0.1).coupling(
            ...     jax.random.key(1), 5)
            >>> ends.shape
            (5, 1)
        """
        check_key(key)
        if self.method == "static":
            # inverse-CDF sampling: categorical(shape=(n,)) would draw n * n0 * n1 Gumbels
            cdf = jnp.cumsum(self.plan.ravel())
            u = jax.random.uniform(key, (n,), cdf.dtype) * cdf[-1]
            flat = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, cdf.shape[0] - 1)
            i, j = jnp.divmod(flat, self.plan.shape[1])
            return self.x0[i], self.x1[j]
        paths = self.sample_paths(key, n)
        return paths[:, 0], paths[:, -1]

    def sample_paths(self, key: jax.Array, n: int) -> jax.Array:
        """Draw ``n`` bridge paths on ``self.times``.

        Args:
            key: a ``jax.random`` key.
            n: number of paths.

        Returns:
            paths, shape ``(n, num_steps + 1, d)``.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> from probkit.bridges import schrodinger_bridge
            >>> x = jax.random.normal(jax.random.key(0), (16, 2))
            >>> b = schrodinger_bridge(x, x + 1.0, sigma=0.1, num_steps=10)
            >>> b.sample_paths(jax.random.key(1), 3).shape
            (3, 11, 2)
        """
        check_key(key)
        key_pick, key_paths = jax.random.split(key)
        if self.method == "static":
            starts, ends = self.coupling(key_pick, n)
            flows = jax.vmap(reference_flow, in_axes=(None, 0, None))(
                self.reference_drift, starts, self.times
            )
            keys = jax.random.split(key_paths, n)
            return jax.vmap(
                lambda k, flow, end: residual_bridge(k, flow, end, self.times, sigma=self.sigma)
            )(keys, flows, ends)
        idx = jax.random.randint(key_pick, (n,), 0, self.x0.shape[0])
        return self.transport(key_paths, self.x0[idx])

    def transport(self, key: jax.Array, x_start: jax.Array) -> jax.Array:
        """Simulate the bridge's forward SDE from new starting points.

        For the static method this simulates the reference (it has no learned drift);
        fit ``method="ipf"`` to transport points that are not in ``x0``.

        Args:
            key: a ``jax.random`` key.
            x_start: starting points, shape ``(n, d)``.

        Returns:
            paths, shape ``(n, num_steps + 1, d)``.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> from probkit.bridges import schrodinger_bridge
            >>> x = jax.random.normal(jax.random.key(0), (32, 1))
            >>> b = schrodinger_bridge(x, x + 2.0, sigma=0.5, method="ipf", num_steps=10,
            ...                        num_iterations=2, num_features=16)
            >>> b.transport(jax.random.key(1), jnp.zeros((4, 1))).shape
            (4, 11, 1)
        """
        check_key(key)
        keys = jax.random.split(key, x_start.shape[0])
        return jax.vmap(
            lambda k, x: euler_maruyama(k, self.forward_drift, x, self.times, sigma=self.sigma)
        )(keys, x_start)


def _as_points(name: str, x) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(
            f"{name} must be an array of samples of shape (n, d) with n >= 2, got {x.shape}."
        )
    if not isinstance(x, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} contains non-finite values.")
    return x


def schrodinger_bridge(
    x0: jax.Array,
    x1: jax.Array,
    *,
    sigma: float,
    reference: DriftFn | None = None,
    method: Literal["static", "ipf"] = "static",
    num_steps: int = 50,
    seed: int = 0,
    duration: float = 1.0,
    sinkhorn_threshold: float = 1e-3,
    sinkhorn_max_iterations: int = 5000,
    num_iterations: int = 10,
    num_features: int = 128,
    lengthscale: float = 1.0,
    ridge: float = 1e-4,
    progress_bar: bool = False,
) -> Bridge:
    """Fit the Schrödinger bridge between the samples ``x0`` (time 0) and ``x1`` (time T).

    The reference is ``dX = reference(X, t) dt + sigma dW`` (Brownian when ``reference``
    is ``None``). ``method="static"`` is exact for the Brownian reference up to the
    empirical measures and Sinkhorn's tolerance; ``method="ipf"`` approximates the bridge
    by dynamic IPF with random-feature drifts and can transport new points.

    Args:
        x0: samples at time 0, shape ``(n0, d)`` (or ``(n0,)`` for 1-D).
        x1: samples at time ``duration``, shape ``(n1, d)``.
        sigma: diffusion scale of the reference (> 0).
        reference: the reference drift ``(x, t) -> dx/dt`` for one particle, or ``None``.
        method: ``"static"`` (entropic OT + bridges) or ``"ipf"`` (dynamic IPF).
        num_steps: Euler steps of the path grid on ``[0, duration]``.
        seed: seed of the IPF simulation and features (the static fit is deterministic).
        duration: the time horizon ``T``.
        sinkhorn_threshold: Sinkhorn's marginal-error threshold (static).
        sinkhorn_max_iterations: Sinkhorn's iteration cap (static).
        num_iterations: IPF iterations (ipf).
        num_features: random Fourier features per drift (ipf).
        lengthscale: feature lengthscale in standardised units (ipf).
        ridge: ridge penalty per observation (ipf).
        progress_bar: draw a bar over the IPF iterations (ipf). They run in chunks of
            about half a second: Ctrl-C stops them within about a second and raises
            :class:`~probkit.progress.Interrupted`, whose ``partial_result`` is the
            :class:`Bridge` of the iterations done.

    Returns:
        a :class:`Bridge` with ``.coupling(key, n)`` and ``.sample_paths(key, n)``.

    Raises:
        ValueError: for an unknown ``method``, non-positive ``sigma``/``duration``,
            bad shapes or ``num_steps < 1``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.bridges import schrodinger_bridge
        >>> x0 = jax.random.normal(jax.random.key(0), (200, 1))
        >>> bridge = schrodinger_bridge(x0, x0 + 3.0, sigma=0.2)
        >>> start, end = bridge.coupling(jax.random.key(1), 400)
        >>> round(float(jnp.mean(end - start)), 1)
        3.0
    """
    seed = check_seed(seed)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if not sigma > 0 or not duration > 0:
        raise ValueError(f"sigma and duration must be positive, got {sigma} and {duration}.")
    if not isinstance(num_steps, int | np.integer) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}.")
    x0 = _as_points("x0", x0)
    x1 = _as_points("x1", x1)
    if x0.shape[1] != x1.shape[1]:
        raise ValueError(f"x0 and x1 must have the same dimension, got {x0.shape} and {x1.shape}.")
    reference_drift = brownian_drift if reference is None else reference
    times = jnp.linspace(0.0, duration, num_steps + 1)

    if method == "static":
        ends = jax.vmap(lambda x: reference_flow(reference_drift, x, times)[-1])(x0)
        out = sinkhorn(
            0.5 * squared_distances(ends, x1),
            epsilon=sigma**2 * duration,
            threshold=sinkhorn_threshold,
            max_iterations=sinkhorn_max_iterations,
            warn=False,
        )
        warn_not_converged(
            out.converged,
            out.marginal_errors,
            sigma**2 * duration,
            out.num_iterations,
            fix=(
                "The static bridge's epsilon is sigma**2 * duration: use a larger sigma, a "
                "larger sinkhorn_max_iterations or a looser sinkhorn_threshold (the solver "
                "already works in the log domain), or method='ipf'."
            ),
        )
        return Bridge(
            x0, x1, times, sigma, out.plan, None, None, out.converged, reference_drift, method
        )

    key_features, key_ipf = jax.random.split(jax.random.key(seed))
    features = random_features(
        key_features,
        jnp.concatenate([x0, x1]),
        duration,
        num_features=num_features,
        lengthscale=lengthscale,
    )
    body, init = ipf_iteration(x0, x1, reference_drift, times, features, sigma=sigma, ridge=ridge)

    def bridge(forward_weights) -> Bridge:
        return Bridge(
            x0,
            x1,
            times,
            sigma,
            None,
            features,
            forward_weights,
            jnp.asarray(True),
            reference_drift,
            method,
        )

    # IPF iterations in chunks: Ctrl-C keeps the bridge of the iterations done.
    forward_weights, _ = interruptible_scan(
        body,
        init,
        jax.random.split(key_ipf, num_iterations),
        progress_bar=progress_bar,
        desc="IPF",
        partial_result=lambda carry, _: bridge(carry),
    )
    return bridge(forward_weights)
