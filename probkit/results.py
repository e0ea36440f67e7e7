"""Result types, convergence diagnostics and every conversion to ArviZ.

All ArviZ-facing code lives in this one module (ArviZ 0.2x ``InferenceData``
today; ArviZ 1.x moves to xarray ``DataTree``, and keeping the conversions here
makes that move one change). ArviZ is imported only for ArviZ objects
(:meth:`MCMCResult.to_arviz`, :meth:`MCMCResult.summary`): R-hat and ESS
(:func:`rhat`, :func:`ess_bulk`, :func:`ess_tail`, :meth:`MCMCResult.diagnose`)
are ArviZ's numbers computed by probkit, because ArviZ's import alone takes
seconds in a fresh process.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from probkit._checks import check_seed
from probkit._diagnostics import convergence, ess_bulk, ess_tail, rhat

__all__ = [
    "MCMCResult",
    "SamplingWarning",
    "to_inference_data",
    "smc_to_inference_data",
    "particle_dict",
    "convergence",
    "rhat",
    "ess_bulk",
    "ess_tail",
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
        """A short summary: sites and shapes, chains, kernel, divergences, and how many
        diagnostics raised a concern (the first thing a result says about itself)."""
        shown = [f"{k}: {tuple(v.shape[2:])}" for k, v in list(self.samples.items())[:8]]
        more = len(self.samples) - len(shown)
        sites = ", ".join(shown) + (f", ... ({more} more sites)" if more else "")
        diverging = self.stats.get("diverging")
        divergences = "" if diverging is None else f", divergences={int(np.sum(diverging))}"
        problems = len(self.diagnose(emit=False))
        flag = f", PROBLEMS={problems} (see .diagnose())" if problems else ""
        return (
            f"MCMCResult(kernel={self.kernel!r}, num_chains={self.num_chains}, "
            f"num_samples={self.num_samples}{divergences}, samples={{{sites}}}, "
            f"seconds={self.seconds:.3g}{flag})"
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
        """ArviZ's summary table (``arviz.summary``) of the posterior.

        When a diagnostic raises a concern (:meth:`diagnose`), each one is issued again
        as a :class:`SamplingWarning` next to the table, and listed in the table's
        ``attrs["problems"]``: a summary whose numbers should not be trusted says so.
        """
        import arviz as az

        table = az.summary(self.to_arviz(log_likelihood=False), **kwargs)
        problems = self.diagnose(emit=False)
        for message in problems:
            warnings.warn(f"[summary] {message}", SamplingWarning, stacklevel=2)
        table.attrs["problems"] = problems
        return table

    @property
    def latent_sites(self) -> list[str]:
        """The sites the sampler moved (a NumPyro model's latent ``sample`` sites, or a
        log density's position); the other sites of ``samples`` are deterministic
        functions of them."""
        position = getattr(self.target, "example_position", None)
        if isinstance(position, dict):
            latent = [name for name in self.samples if name in position]
            if latent:
                return latent
        return list(self.samples)

    def _sites(self, sites, include_deterministic: bool) -> list[str]:
        if sites is None:
            return list(self.samples) if include_deterministic else self.latent_sites
        names = [sites] if isinstance(sites, str) else list(sites)
        unknown = [name for name in names if name not in self.samples]
        if unknown:
            raise ValueError(
                f"sites {unknown} are not in the result; its sites are {list(self.samples)} "
                f"(latent: {self.latent_sites})."
            )
        return names

    def diagnostics(
        self,
        *,
        sites: str | list[str] | None = None,
        include_deterministic: bool = False,
        statistics: tuple[str, ...] = ("rhat", "ess_bulk", "ess_tail"),
    ) -> dict[str, dict[str, np.ndarray]]:
        """R-hat and bulk/tail effective sample sizes of every element of the sites.

        The numbers are ArviZ's (rank-normalised split R-hat, bulk and tail ESS, see
        :func:`probkit.results.convergence`), computed without importing ArviZ.

        Args:
            sites: the sites to diagnose; by default the latent sites
                (:attr:`latent_sites`), as NumPyro's summary does.
            include_deterministic: with ``sites=None``, also diagnose the
                deterministic sites (their cost grows with their size: about a
                millisecond of CPU per element for 4 chains x 1000 draws).
            statistics: any of ``"rhat"``, ``"ess_bulk"``, ``"ess_tail"``.

        Returns:
            ``{site: {statistic: array of the site's shape}}``.

        Example:
            >>> import jax.numpy as jnp
            >>> import probkit as pk
            >>> target = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum(x**2), jnp.zeros(2))
            >>> result = pk.mcmc.sample(target, num_warmup=200, num_samples=200, num_chains=2,
            ...                         diagnose=False)
            >>> result.diagnostics()["x"]["rhat"].shape
            (2,)
        """
        return {
            name: convergence(np.asarray(self.samples[name]), statistics)
            for name in self._sites(sites, include_deterministic)
        }

    def diagnose(
        self,
        *,
        sites: str | list[str] | None = None,
        include_deterministic: bool = False,
        rhat_threshold: float = 1.01,
        emit: bool = True,
    ) -> list[str]:
        """Check divergences, R-hat, bulk ESS, NaN draws and non-finite log densities.

        R-hat and bulk ESS are ArviZ's (see :meth:`diagnostics`), computed without
        importing ArviZ, for the latent sites unless ``sites`` or
        ``include_deterministic`` say otherwise; NaN draws are looked for in every site
        (deterministic ones included) unless ``sites`` names some.

        Args:
            sites: the sites whose R-hat and ESS are checked (default: the latent sites).
            include_deterministic: with ``sites=None``, check deterministic sites too.
            rhat_threshold: R-hat above this is reported.
            emit: also issue each problem as a :class:`SamplingWarning`.

        Returns:
            The problems in words; an empty list means no diagnostic raised a concern.

        Example:
            >>> import jax.numpy as jnp
            >>> import probkit as pk
            >>> target = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum(x**2), jnp.zeros(2))
            >>> result = pk.mcmc.sample(target, num_warmup=300, num_samples=300, num_chains=2)
            >>> result.diagnose()
            []
        """
        names = self._sites(sites, include_deterministic)
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
        # NaN is looked for in every site (deterministic ones too, unless ``sites``
        # names some): it is cheap, unlike R-hat and ESS.
        with_nan = [
            name
            for name in (names if sites is not None else self.samples)
            if np.issubdtype(np.asarray(self.samples[name]).dtype, np.floating)
            and np.isnan(np.asarray(self.samples[name])).any()
        ]
        if with_nan:
            messages.append(
                f"Draws of {', '.join(with_nan)} contain NaN, so their R-hat and ESS are "
                "undefined. Look for an operation that overflows or divides by zero in the "
                "model at the sampled values."
            )
        if self.num_chains > 1 and self.num_samples >= 4:
            worst = []
            low_ess = []
            for name in names:
                stats = convergence(np.asarray(self.samples[name]), ("rhat", "ess_bulk"))
                r, e = stats["rhat"], stats["ess_bulk"]
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
    seed = check_seed(seed)
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
