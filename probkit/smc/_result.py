"""``SMCResult``: weighted particles, log-evidence and the per-step record of a run."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probkit.results import particle_dict, smc_to_inference_data

__all__ = ["SMCHistory", "SMCResult"]

PyTree = Any


class SMCHistory(NamedTuple):
    """Particles, weights and ancestry at every step (``store_history=True``).

    Attributes:
        particles: pytree with leaves of shape ``(T, N, ...)``.
        log_weights: normalised log-weights after each step, ``(T, N)``.
        ancestors: ``ancestors[t, i]`` is the index at step ``t - 1`` of the parent
            of particle ``i`` at step ``t`` (``arange(N)`` at ``t = 0`` and whenever
            the step did not resample).
    """

    particles: PyTree
    log_weights: jax.Array
    ancestors: jax.Array


class SMCResult(NamedTuple):
    """The output of an SMC run (a pytree: it can be returned from ``jit``/``vmap``).

    Attributes:
        particles: the final particles, a pytree with leading axis ``N``.
        log_weights: their normalised log-weights, shape ``(N,)``.
        log_evidence: the estimate of ``log Z`` (unbiased for ``Z`` on the natural
            scale, for a fixed schedule).
        ess: effective sample size after each step, shape ``(T,)``.
        resampled: whether step ``t`` resampled before moving, shape ``(T,)``.
        log_evidence_increments: ``log Z_t - log Z_{t-1}`` per step, shape ``(T,)``.
        history: an :class:`SMCHistory` when the run stored it, else ``None``.
        samples: for samplers of static targets, a dict of constrained model values
            with leading axis ``N`` and equal weights; else ``None``.
        info: per-step diagnostics of the specific sampler (e.g. ``temperature``,
            ``acceptance_rate``), a dict of arrays; ``info["parameters"]`` holds the
            model's parameters after each step when it declares any.
        num_steps: the number of steps done, ``T``. Loops that stop on ``done``
            return per-step arrays of the largest length from :func:`probkit.smc.loop`,
            valid up to ``num_steps``; :func:`probkit.smc.run` trims them.
        num_nan: per step, how many particles' log-potentials were NaN (given zero
            weight), shape ``(T,)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import probkit.smc as smc
        >>> fk = smc.FeynmanKac(lambda k, n: jax.random.normal(k, (n,)),
        ...                     lambda k, t, x: x, lambda t, p, x: -0.5 * x**2, 1)
        >>> result = smc.run(fk, num_particles=1000)
        >>> round(float(jnp.exp(result.log_evidence)), 1)  # E[exp(-X^2/2)] = 1/sqrt(2)
        0.7
    """

    particles: PyTree
    log_weights: jax.Array
    log_evidence: jax.Array
    ess: jax.Array
    resampled: jax.Array
    log_evidence_increments: jax.Array
    history: SMCHistory | None = None
    samples: dict | None = None
    info: dict | None = None
    num_steps: jax.Array | None = None
    num_nan: jax.Array | None = None

    def __repr__(self) -> str:
        # A short summary: the arrays of a run with 10^5 particles would print for pages.
        def describe(x):
            try:
                value = np.asarray(x)
            except Exception:  # a tracer inside jit / vmap
                return f"<{getattr(x, 'shape', '?')}>"
            return f"{float(value):.6g}" if value.ndim == 0 else f"<array {value.shape}>"

        shapes = jax.tree_util.tree_map(lambda x: tuple(jnp.shape(x)), self.particles)
        steps = self.ess.shape[-1] if self.num_steps is None else self.num_steps
        parts = [
            f"log_evidence={describe(self.log_evidence)}",
            f"num_particles={self.log_weights.shape[-1]}",
            f"ess={describe(self.ess[..., -1])} (last step)",
            f"num_steps={describe(steps)}",
            f"particles={shapes}",
        ]
        if self.samples is not None:
            parts.append(f"samples={sorted(self.samples)}")
        if self.info:
            parts.append(f"info={sorted(self.info)}")
        return "SMCResult(" + ", ".join(parts) + ")"

    @property
    def num_particles(self) -> int:
        """``N``, the number of particles."""
        return int(self.log_weights.shape[-1])

    @property
    def weights(self) -> jax.Array:
        """Normalised weights ``exp(log_weights)``."""
        return jnp.exp(self.log_weights)

    def to_arviz(self, *, weights: str = "resample", seed: int = 0):
        """An ArviZ ``InferenceData`` of the final particles (one chain of ``N`` draws).

        Weights: with ``weights="resample"`` (default) the particles are resampled by
        systematic resampling (key from ``seed``) into ``N`` equally-weighted draws,
        which ArviZ's unweighted statistics then treat correctly; no resampling is done
        when the weights are already equal (``samples`` of tempered SMC). With
        ``weights="record"`` the particles are stored as they are and their
        normalised log-weights go to ``sample_stats["log_weight"]``: ArviZ ignores
        them, so weight any statistic yourself. ``attrs`` say which was done
        (``attrs["weights"]``) and hold the log-evidence, the ESS history and the
        resampling flags.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> import probkit.smc as smc
            >>> fk = smc.FeynmanKac(lambda k, n: jax.random.normal(k, (n, 2)),
            ...                     lambda k, t, x: x, lambda t, p, x: -x[:, 0], 1)
            >>> idata = smc.run(fk, num_particles=100).to_arviz()
            >>> idata.posterior["x"].shape
            (1, 100, 2)
        """
        return smc_to_inference_data(self, weights=weights, seed=seed)

    def summary(self, *, quantiles: tuple[float, float] = (0.05, 0.95)):
        """Weighted posterior summary: mean, sd, quantiles and the final ESS per scalar.

        Computed from the weighted particles directly (no resampling noise). Returns
        a ``pandas.DataFrame`` whose ``attrs`` hold the log-evidence and ESS.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> import probkit.smc as smc
            >>> fk = smc.FeynmanKac(lambda k, n: jax.random.normal(k, (n,)),
            ...                     lambda k, t, x: x, lambda t, p, x: jnp.zeros_like(x), 1)
            >>> list(smc.run(fk, num_particles=100).summary().columns)
            ['mean', 'sd', 'q5%', 'q95%', 'ess']
        """
        import pandas as pd

        values = self.samples if self.samples is not None else particle_dict(self.particles)
        w = np.asarray(self.weights, dtype=np.float64)
        if self.samples is not None:
            w = np.full(self.num_particles, 1.0 / self.num_particles)
        w = w / w.sum()
        ess = 1.0 / np.sum(w**2)
        rows, index = [], []
        for name, value in values.items():
            arr = np.asarray(value, dtype=np.float64).reshape(self.num_particles, -1)
            shape = np.shape(value)[1:]
            for k in range(arr.shape[1]):
                col = arr[:, k]
                mean = float(np.sum(w * col))
                sd = float(np.sqrt(max(np.sum(w * (col - mean) ** 2), 0.0)))
                order = np.argsort(col)
                cdf = np.cumsum(w[order])
                qs = [
                    float(col[order][min(np.searchsorted(cdf, q), len(col) - 1)]) for q in quantiles
                ]
                suffix = (
                    "" if not shape else "[" + ", ".join(map(str, np.unravel_index(k, shape))) + "]"
                )
                index.append(name + suffix)
                rows.append([mean, sd, *qs, ess])
        columns = ["mean", "sd", *[f"q{100 * q:g}%" for q in quantiles], "ess"]
        frame = pd.DataFrame(rows, index=index, columns=columns)
        frame.attrs["log_evidence"] = float(self.log_evidence)
        return frame
