"""Result types and every conversion to ArviZ.

All ArviZ-facing code lives in this one module (ArviZ 0.2x ``InferenceData``
today; ArviZ 1.x moves to xarray ``DataTree``, and keeping the conversions here
makes that move one change).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

__all__ = [
    "MCMCResult",
    "SamplingWarning",
    "to_inference_data",
    "smc_to_inference_data",
    "particle_dict",
]

#: Sample statistics under the names ArviZ gives them.
ARVIZ_STAT_NAMES = (
    "diverging",
    "lp",
    "acceptance_rate",
    "step_size",
    "n_steps",
    "tree_depth",
    "energy",
)


class SamplingWarning(UserWarning):
    """A diagnostic says the draws may not represent the posterior."""


def to_inference_data(
    samples: dict,
    stats: dict | None = None,
    *,
    observed_data: dict | None = None,
    log_likelihood: dict | None = None,
):
    """Build an ``arviz.InferenceData`` from (chain, draw, ...) arrays.

    Example:
        >>> import numpy as np
        >>> from probkit.results import to_inference_data
        >>> idata = to_inference_data({"mu": np.zeros((2, 10))})
        >>> list(idata.posterior.data_vars)
        ['mu']
    """
    import arviz as az

    stats = {k: np.asarray(v) for k, v in (stats or {}).items() if k in ARVIZ_STAT_NAMES}
    return az.from_dict(
        posterior={k: np.asarray(v) for k, v in samples.items()},
        sample_stats=stats or None,
        observed_data=observed_data or None,
        log_likelihood=log_likelihood or None,
    )


@dataclasses.dataclass
class MCMCResult:
    """Draws of an MCMC run.

    Attributes:
        samples: site -> array of shape (num_chains, num_samples, *site_shape), in the
            model's constrained space (deterministic sites included).
        stats: sample statistics -> (num_chains, num_samples), under ArviZ's names
            (``diverging``, ``lp``, ``acceptance_rate``, ``step_size``, ``n_steps``,
            ``tree_depth``, ``energy``) where the kernel defines them, plus
            ``nonfinite`` (the proposal's log density was NaN or infinite).
        target: the :class:`probkit.Target` that was sampled.
        kernel: the kernel's name.
        adaptation: tuned parameters per chain (``step_size``, ``inverse_mass_matrix``...).
        unconstrained: the flat unconstrained draws (num_chains, num_samples, dim).
        seconds: wall time of warm-up plus sampling, compilation included.
        last_state: where the chains ended (a :class:`probkit.mcmc.AdaptedState`: kernel
            state, tuned parameters, transitions done); pass it back as
            ``probkit.mcmc.sample(..., init_state=result.last_state)`` to continue the
            run without a new warm-up.

    Example:
        >>> import jax.numpy as jnp
        >>> import probkit as pk
        >>> target = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum(x**2), jnp.zeros(2))
        >>> result = pk.mcmc.sample(target, num_warmup=100, num_samples=100, num_chains=2)
        >>> result.to_arviz().posterior["x"].shape
        (2, 100, 2)
    """

    samples: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]
    target: Any = None
    kernel: str = ""
    adaptation: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    unconstrained: np.ndarray | None = None
    seconds: float = float("nan")
    last_state: Any = dataclasses.field(default=None, repr=False)

    def __repr__(self) -> str:
        """A short summary: sites and shapes, chains, kernel, divergences."""
        sites = ", ".join(f"{k}: {tuple(v.shape[2:])}" for k, v in self.samples.items())
        diverging = self.stats.get("diverging")
        divergences = "" if diverging is None else f", divergences={int(np.sum(diverging))}"
        return (
            f"MCMCResult(kernel={self.kernel!r}, num_chains={self.num_chains}, "
            f"num_samples={self.num_samples}{divergences}, samples={{{sites}}}, "
            f"seconds={self.seconds:.3g})"
        )

    @property
    def num_chains(self) -> int:
        return int(next(iter(self.samples.values())).shape[0])

    @property
    def num_samples(self) -> int:
        return int(next(iter(self.samples.values())).shape[1])

    def to_arviz(self, *, log_likelihood: bool = True):
        """An ``arviz.InferenceData`` with ``posterior`` and ``sample_stats`` groups,
        and ``observed_data`` / ``log_likelihood`` when the target is a NumPyro model
        with observations."""
        observed, loglik = {}, {}
        if self.target is not None and getattr(self.target, "model", None) is not None:
            observed = self.target.observed_data()
            if log_likelihood and observed:
                loglik = {
                    k: np.asarray(v)
                    for k, v in self.target.log_likelihood(self.samples, batch_ndims=2).items()
                }
        return to_inference_data(
            self.samples, self.stats, observed_data=observed, log_likelihood=loglik
        )

    def summary(self, **kwargs):
        """ArviZ's summary table (``arviz.summary``) of the posterior."""
        import arviz as az

        return az.summary(self.to_arviz(log_likelihood=False), **kwargs)

    def diagnose(self, *, rhat_threshold: float = 1.01, emit: bool = True) -> list[str]:
        """Check divergences, R-hat, bulk ESS and non-finite log densities.

        Returns the problems in words (and issues them as :class:`SamplingWarning`
        when ``emit``). An empty list means no diagnostic raised a concern.
        """
        import arviz as az

        messages = []
        total = self.num_chains * self.num_samples
        diverging = self.stats.get("diverging")
        if diverging is not None and diverging.sum() > 0:
            n = int(diverging.sum())
            messages.append(
                f"{n} of {total} draws ({100 * n / total:.1f}%) ended in a divergence: the "
                "sampler could not follow the posterior's curvature there, so the draws may "
                "be biased. Raise target_accept (e.g. 0.95) or reparameterise the model "
                "(e.g. non-centred hierarchies)."
            )
        nonfinite = self.stats.get("nonfinite")
        if nonfinite is not None and nonfinite.mean() > 0.01:
            messages.append(
                f"{100 * nonfinite.mean():.1f}% of proposals had a non-finite log density. "
                "If the model is well defined this is often float32 running out of precision "
                "(e.g. a Cholesky with tiny jitter): enable float64 with "
                "numpyro.enable_x64() (or jax.config.update('jax_enable_x64', True)) before "
                "building the model."
            )
        if self.num_chains > 1 and self.num_samples >= 4:
            posterior = az.convert_to_dataset({k: v for k, v in self.samples.items()})
            rhat = az.rhat(posterior)
            ess = az.ess(posterior, method="bulk")
            worst = []
            low_ess = []
            for name in posterior.data_vars:
                r = np.asarray(rhat[name])
                e = np.asarray(ess[name])
                if np.any(r > rhat_threshold):
                    worst.append(f"{name} ({float(np.nanmax(r)):.3f})")
                if np.any(e < 100 * self.num_chains):
                    low_ess.append(f"{name} ({float(np.nanmin(e)):.0f})")
            if worst:
                messages.append(
                    f"R-hat above {rhat_threshold} for {', '.join(worst)}: the chains disagree, "
                    "so they have not converged to one distribution. Run longer warm-up, or "
                    "look for multimodality or poor identification."
                )
            if low_ess:
                messages.append(
                    f"Bulk effective sample size below {100 * self.num_chains} (100 per chain) "
                    f"for {', '.join(low_ess)}: means and quantiles are imprecise. Draw more "
                    "samples or improve the parameterisation."
                )
        if emit:
            for message in messages:
                warnings.warn(message, SamplingWarning, stacklevel=2)
        return messages


# --------------------------------------------------------------------------------------
# SMC (probkit.smc): weighted particles -> InferenceData. Owned by the SMC package.
# --------------------------------------------------------------------------------------


def particle_dict(particles: Any) -> dict[str, np.ndarray]:
    """Name the leaves of a particle pytree: dict keys, ``x`` for a bare array, else paths.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.results import particle_dict
        >>> sorted(particle_dict({"mu": jnp.zeros(3), "tau": jnp.ones(3)}))
        ['mu', 'tau']
    """
    import jax

    if isinstance(particles, dict) and all(
        not isinstance(v, dict | list | tuple) for v in particles.values()
    ):
        return {str(k): np.asarray(v) for k, v in particles.items()}
    leaves = jax.tree_util.tree_leaves_with_path(particles)
    if len(leaves) == 1 and not leaves[0][0]:
        return {"x": np.asarray(leaves[0][1])}
    out = {}
    for path, leaf in leaves:
        name = jax.tree_util.keystr(path, simple=True, separator=".")
        out[name or "x"] = np.asarray(leaf)
    return out


def _systematic_indices(seed: int, log_weights: np.ndarray, n: int) -> np.ndarray:
    """Systematic resampling on the host, in float64 (the single uniform from ``seed``).

    The same rule as :func:`probkit.smc.systematic` (whose module imports this one,
    so it is not imported here): offspring ``k`` goes to the first particle whose
    cumulative weight exceeds ``(k + U) / n``.
    """
    import jax

    u = float(jax.random.uniform(jax.random.key(seed), ()))
    w = np.exp(log_weights - np.max(log_weights))
    cdf = np.cumsum(w) / np.sum(w)
    idx = np.searchsorted(cdf, (np.arange(n) + u) / n, side="right")
    return np.minimum(idx, len(log_weights) - 1)


def smc_to_inference_data(result: Any, *, weights: str = "resample", seed: int = 0):
    """InferenceData of a :class:`probkit.smc.SMCResult` (one chain of ``N`` draws).

    ``weights="resample"``: unequal weights are resampled systematically (key from
    ``seed``) into equally-weighted draws; ``"record"``: the particles are stored as
    they are, with their normalised log-weights in ``sample_stats["log_weight"]``.
    Equally-weighted results (tempered SMC's ``samples``) are stored as they are.
    ``attrs["weights"]`` says which was done; ``attrs`` also hold the log-evidence,
    the ESS history and the resampling flags.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import probkit.smc as smc
        >>> from probkit.results import smc_to_inference_data
        >>> fk = smc.FeynmanKac(lambda k, n: jax.random.normal(k, (n,)),
        ...                     lambda k, t, x: x, lambda t, p, x: -x, 1)
        >>> smc_to_inference_data(smc.run(fk, num_particles=10)).attrs["weights"]
        'resampled (systematic)'
    """
    import arviz as az

    if weights not in ("resample", "record"):
        raise ValueError(f"weights must be 'resample' or 'record', got {weights!r}.")
    n = result.num_particles
    log_w = np.asarray(result.log_weights, dtype=np.float64)
    if result.samples is not None:
        values, handling = {k: np.asarray(v) for k, v in result.samples.items()}, "equal"
    else:
        values = particle_dict(result.particles)
        if np.allclose(log_w, -np.log(n), atol=1e-6):
            handling = "equal"
        elif weights == "resample":
            idx = _systematic_indices(seed, log_w, n)
            values = {k: v[idx] for k, v in values.items()}
            handling = "resampled (systematic)"
        else:
            handling = "recorded in sample_stats.log_weight"
    sample_stats = {"log_weight": log_w[None]} if handling.startswith("recorded") else None
    attrs = {
        "weights": handling,
        "log_evidence": float(result.log_evidence),
        "num_particles": n,
        "ess_history": np.asarray(result.ess, dtype=np.float64),
        "resampled": np.asarray(result.resampled, dtype=np.int8),
        "inference_library": "probkit.smc",
    }
    posterior = {k: v[None] for k, v in values.items()}
    return az.from_dict(posterior=posterior, sample_stats=sample_stats, attrs=attrs)
