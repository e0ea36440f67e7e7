"""NumPyro versions of six posteriordb reference posteriors, with their data and draws.

The posterior database (stan-dev/posteriordb, https://github.com/stan-dev/posteriordb)
pairs Stan models with data and with reference draws from long Stan NUTS runs (10
chains x 1000 thinned draws, R-hat < 1.01, no divergences). A sampler that agrees with
those draws, in means within a few Monte Carlo standard errors and in standard
deviations within a few percent, samples the posterior correctly. This module carries
six of them:

==========================================  ====  =========================================
name                                        dims  what it tests
==========================================  ====  =========================================
``eight_schools-eight_schools_noncentered``   10  a hierarchical funnel, non-centred
``arK-arK``                                    7  an AR(5) time series
``garch-garch11``                              4  a volatility recursion with a bound that
                                                  depends on another parameter
``kidiq-kidscore_momiq``                       3  a linear regression with flat priors
``earnings-earn_height``                       3  a badly scaled regression (dollars)
``diamonds-diamonds``                         26  a strongly correlated regression (brms)
==========================================  ====  =========================================

Each model follows the Stan program of posteriordb parameter by parameter: the same
parameters on the same supports (so the same unconstrained space), the same priors,
flat ones included (``dist.ImproperUniform``), and the same likelihood; the one
rewrite, garch's dependent bound on ``beta1``, is explained in :func:`garch11`. Site
names are posteriordb's, so that a site ``beta`` of shape ``(2,)`` compares with the
reference columns ``beta[1]`` and ``beta[2]`` (:func:`to_posteriordb_names` does the
renaming).

Files. ``models/data/posteriordb/<name>/`` holds, for each posterior, the files of
posteriordb's release (its ``posterior_database/`` folders, gathered per posterior
into ``<name>/``): ``data.json`` and ``reference_draws.json``
xz-compressed byte for byte (``data.json.xz``, ``reference_draws.json.xz``), and
``posterior.json`` and ``reference_info.json`` as they are. The README next to them
lists the SHA-256 of the uncompressed originals. They ship inside the package, so a
clean clone or a ``pip install`` needs no download.

Example:
    >>> from probkit.models import posteriordb
    >>> posterior = posteriordb.load("kidiq-kidscore_momiq")
    >>> sorted(posterior.data)
    ['kid_score', 'mom_iq']
    >>> posterior.reference_draws()["beta"].shape
    (10, 1000, 2)
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import lzma
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

__all__ = [
    "Posterior",
    "ark",
    "diamonds",
    "earn_height",
    "eight_schools_noncentered",
    "garch11",
    "kidscore_momiq",
    "load",
    "names",
    "to_posteriordb_names",
]


# --------------------------------------------------------------------------------------
# The models. Each docstring quotes the Stan program it follows.
# --------------------------------------------------------------------------------------


def eight_schools_noncentered(y: jax.Array, sigma: jax.Array) -> None:
    """Eight schools, non-centred (posteriordb ``eight_schools_noncentered``).

    Stan: ``theta_trans ~ normal(0, 1); mu ~ normal(0, 5); tau ~ cauchy(0, 5)`` with
    ``tau > 0``; ``theta = theta_trans * tau + mu``; ``y ~ normal(theta, sigma)``.
    ``theta`` is a deterministic site, as it is a transformed parameter in Stan.

    Example:
        >>> import jax.numpy as jnp
        >>> from numpyro.infer.util import log_density
        >>> from probkit.models.posteriordb import eight_schools_noncentered
        >>> data = {"y": jnp.array([28.0, 8.0]), "sigma": jnp.array([15.0, 10.0])}
        >>> params = {"theta_trans": jnp.zeros(2), "mu": 0.0, "tau": 1.0}
        >>> bool(jnp.isfinite(log_density(eight_schools_noncentered, (), data, params)[0]))
        True
    """
    num_schools = jnp.shape(y)[0]
    theta_trans = numpyro.sample(
        "theta_trans", dist.Normal(0.0, 1.0).expand([num_schools]).to_event(1)
    )
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    theta = numpyro.deterministic("theta", mu + tau * theta_trans)
    numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


def ark(K: int, y: jax.Array) -> None:  # noqa: N803 - posteriordb's data name
    """AR(K) regression (posteriordb ``arK``).

    Stan: ``alpha ~ normal(0, 10); beta ~ normal(0, 10); sigma ~ cauchy(0, 2.5)`` with
    ``sigma > 0``; for ``t = K+1..T``:
    ``y[t] ~ normal(alpha + sum_k beta[k] * y[t-k], sigma)``. The first ``K``
    observations only enter as predictors.

    Example:
        >>> import jax.numpy as jnp
        >>> from numpyro.infer.util import log_density
        >>> from probkit.models.posteriordb import ark
        >>> params = {"alpha": 0.0, "beta": jnp.zeros(2), "sigma": 1.0}
        >>> lp, _ = log_density(ark, (), {"K": 2, "y": jnp.linspace(0, 1, 6)}, params)
        >>> bool(jnp.isfinite(lp))
        True
    """
    num_times = jnp.shape(y)[0]
    if not 0 < K < num_times:
        raise ValueError(f"K must be in 1..len(y) - 1 = {num_times - 1}, got K={K}.")
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 10.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 10.0).expand([K]).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    # lags[i, k] = y[t - (k + 1)] for the 0-based time t = K + i: Stan's y[t - k].
    lags = jnp.stack([y[K - k - 1 : num_times - k - 1] for k in range(K)], axis=-1)
    numpyro.sample("y", dist.Normal(alpha + lags @ beta, sigma), obs=y[K:])


def garch11(y: jax.Array, sigma1: jax.Array) -> None:
    """GARCH(1, 1) volatility model (posteriordb ``garch11``).

    Stan: ``mu`` flat; ``alpha0 > 0`` flat; ``alpha1`` in (0, 1) flat; ``beta1`` in
    (0, 1 - alpha1) flat; ``sigma[1] = sigma1``,
    ``sigma[t]^2 = alpha0 + alpha1 * (y[t-1] - mu)^2 + beta1 * sigma[t-1]^2``;
    ``y ~ normal(mu, sigma)``.

    The upper bound of ``beta1`` depends on ``alpha1``. As Stan does, the model samples
    ``beta1_unit`` in (0, 1) and sets ``beta1 = (1 - alpha1) * beta1_unit`` (a
    deterministic site), so the unconstrained coordinates are Stan's
    (``logit(alpha1)``, ``logit(beta1 / (1 - alpha1))``). For the density on
    (``alpha1``, ``beta1``) to be flat, the density on (``alpha1``, ``beta1_unit``)
    must carry the Jacobian ``|d beta1 / d beta1_unit| = 1 - alpha1``: that is the
    Beta(1, 2) density ``2 (1 - alpha1)`` of ``alpha1``, up to a constant. So
    ``alpha1 ~ Beta(1, 2)`` here *is* Stan's flat prior on (``alpha1``, ``beta1``),
    written without a ``numpyro.factor`` pseudo-observation (which would otherwise
    show up in log-likelihood output).

    Example:
        >>> import jax.numpy as jnp
        >>> from numpyro.infer.util import log_density
        >>> from probkit.models.posteriordb import garch11
        >>> params = {"mu": 0.0, "alpha0": 1.0, "alpha1": 0.2, "beta1_unit": 0.5}
        >>> lp, _ = log_density(garch11, (), {"y": jnp.ones(5), "sigma1": 0.5}, params)
        >>> bool(jnp.isfinite(lp))
        True
    """
    mu = numpyro.sample("mu", dist.ImproperUniform(constraints.real, (), ()))
    alpha0 = numpyro.sample("alpha0", dist.ImproperUniform(constraints.positive, (), ()))
    alpha1 = numpyro.sample("alpha1", dist.Beta(1.0, 2.0))
    beta1_unit = numpyro.sample(
        "beta1_unit", dist.ImproperUniform(constraints.unit_interval, (), ())
    )
    beta1 = numpyro.deterministic("beta1", (1.0 - alpha1) * beta1_unit)

    def next_variance(variance, y_previous):
        variance = alpha0 + alpha1 * (y_previous - mu) ** 2 + beta1 * variance
        return variance, variance

    sigma1 = jnp.asarray(sigma1, dtype=jnp.result_type(float))
    _, variances = jax.lax.scan(next_variance, sigma1**2, y[:-1])
    sigma = jnp.concatenate([sigma1[None], jnp.sqrt(variances)])
    numpyro.sample("y", dist.Normal(mu, sigma), obs=y)


def kidscore_momiq(mom_iq: jax.Array, kid_score: jax.Array) -> None:
    """Child test score on mother's IQ (posteriordb ``kidscore_momiq``).

    Stan: ``beta`` flat (2-vector); ``sigma ~ cauchy(0, 2.5)`` with ``sigma > 0``;
    ``kid_score ~ normal(beta[1] + beta[2] * mom_iq, sigma)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from numpyro.infer.util import log_density
        >>> from probkit.models.posteriordb import kidscore_momiq
        >>> data = {"mom_iq": jnp.array([100.0, 120.0]), "kid_score": jnp.array([90.0, 95.0])}
        >>> params = {"beta": jnp.array([25.0, 0.6]), "sigma": 18.0}
        >>> bool(jnp.isfinite(log_density(kidscore_momiq, (), data, params)[0]))
        True
    """
    beta = numpyro.sample("beta", dist.ImproperUniform(constraints.real_vector, (), (2,)))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    numpyro.sample("kid_score", dist.Normal(beta[0] + beta[1] * mom_iq, sigma), obs=kid_score)


def earn_height(height: jax.Array, earn: jax.Array) -> None:
    """Earnings on height, in dollars (posteriordb ``earn_height``).

    Stan: ``beta`` flat (2-vector); ``sigma > 0`` flat;
    ``earn ~ normal(beta[1] + beta[2] * height, sigma)``. The posterior scales differ
    by orders of magnitude (``beta[1]`` ~ 1e4, ``beta[2]`` ~ 1e2): a test of step-size
    and mass-matrix adaptation.

    Example:
        >>> import jax.numpy as jnp
        >>> from numpyro.infer.util import log_density
        >>> from probkit.models.posteriordb import earn_height
        >>> data = {"height": jnp.array([60.0, 70.0]), "earn": jnp.array([1e4, 3e4])}
        >>> params = {"beta": jnp.array([-6e4, 1.3e3]), "sigma": 2e4}
        >>> bool(jnp.isfinite(log_density(earn_height, (), data, params)[0]))
        True
    """
    beta = numpyro.sample("beta", dist.ImproperUniform(constraints.real_vector, (), (2,)))
    sigma = numpyro.sample("sigma", dist.ImproperUniform(constraints.positive, (), ()))
    numpyro.sample("earn", dist.Normal(beta[0] + beta[1] * height, sigma), obs=earn)


def diamonds(X: jax.Array, Y: jax.Array, prior_only: int = 0) -> None:  # noqa: N803
    """Log price of diamonds on 24 predictors: brms's linear model (posteriordb ``diamonds``).

    Stan (generated by brms): ``Xc = X[, 2:K]`` minus its column means (transformed
    data); ``b ~ normal(0, 1)``; ``Intercept ~ student_t(3, 8, 10)``;
    ``sigma ~ student_t(3, 0, 10)`` truncated to ``sigma > 0`` (a half-t);
    ``Y ~ normal(Intercept + Xc * b, sigma)`` unless ``prior_only``. Centring makes
    ``Intercept`` the mean of ``Y`` at the mean predictor; ``b`` stays strongly
    correlated (several columns are powers of log carat), which is hard for a diagonal
    mass matrix.

    Example:
        >>> import jax.numpy as jnp
        >>> from numpyro.infer.util import log_density
        >>> from probkit.models.posteriordb import diamonds
        >>> X = jnp.concatenate([jnp.ones((4, 1)), jnp.eye(4, 3)], axis=1)
        >>> params = {"b": jnp.zeros(3), "Intercept": 8.0, "sigma": 1.0}
        >>> lp, _ = log_density(diamonds, (), {"X": X, "Y": jnp.full(4, 8.0)}, params)
        >>> bool(jnp.isfinite(lp))
        True
    """
    # Stan's transformed data: drop the intercept column, centre the rest. XLA hoists
    # this loop-invariant work out of the sampler's loops.
    predictors = X[:, 1:]
    centred = predictors - jnp.mean(predictors, axis=0)
    num_predictors = centred.shape[1]
    b = numpyro.sample("b", dist.Normal(0.0, 1.0).expand([num_predictors]).to_event(1))
    intercept = numpyro.sample("Intercept", dist.StudentT(3.0, 8.0, 10.0))
    # student_t(3, 0, 10) folded at 0 is the half-t: density 2 t(sigma) on sigma > 0,
    # Stan's student_t_lpdf(sigma | 3, 0, 10) - student_t_lccdf(0 | 3, 0, 10).
    sigma = numpyro.sample("sigma", dist.FoldedDistribution(dist.StudentT(3.0, 0.0, 10.0)))
    if not prior_only:
        numpyro.sample("Y", dist.Normal(intercept + centred @ b, sigma), obs=Y)


# --------------------------------------------------------------------------------------
# Registry and loader
# --------------------------------------------------------------------------------------


class _Entry(NamedTuple):
    model: Callable[..., None]
    make_data: Callable[[Mapping[str, Any]], dict[str, Any]]
    # The reference parameters: site -> shape of one draw.
    site_shapes: Mapping[str, tuple[int, ...]]


def _floats(values: Any) -> jax.Array:
    return jnp.asarray(np.asarray(values, dtype=np.float64), dtype=jnp.result_type(float))


_REGISTRY: dict[str, _Entry] = {
    "eight_schools-eight_schools_noncentered": _Entry(
        eight_schools_noncentered,
        lambda d: {"y": _floats(d["y"]), "sigma": _floats(d["sigma"])},
        {"theta": (8,), "mu": (), "tau": ()},
    ),
    "arK-arK": _Entry(
        ark,
        lambda d: {"K": int(d["K"]), "y": _floats(d["y"])},
        {"alpha": (), "beta": (5,), "sigma": ()},
    ),
    "garch-garch11": _Entry(
        garch11,
        lambda d: {"y": _floats(d["y"]), "sigma1": _floats(d["sigma1"])},
        {"mu": (), "alpha0": (), "alpha1": (), "beta1": ()},
    ),
    "kidiq-kidscore_momiq": _Entry(
        kidscore_momiq,
        lambda d: {"mom_iq": _floats(d["mom_iq"]), "kid_score": _floats(d["kid_score"])},
        {"beta": (2,), "sigma": ()},
    ),
    "earnings-earn_height": _Entry(
        earn_height,
        lambda d: {"height": _floats(d["height"]), "earn": _floats(d["earn"])},
        {"beta": (2,), "sigma": ()},
    ),
    "diamonds-diamonds": _Entry(
        diamonds,
        lambda d: {"X": _floats(d["X"]), "Y": _floats(d["Y"]), "prior_only": int(d["prior_only"])},
        {"b": (24,), "Intercept": (), "sigma": ()},
    ),
}


def names() -> list[str]:
    """The posteriordb names of the posteriors this module carries.

    Example:
        >>> from probkit.models import posteriordb
        >>> "diamonds-diamonds" in posteriordb.names()
        True
    """
    return list(_REGISTRY)


def _data_dir(name: str):
    return importlib.resources.files("probkit.models").joinpath("data", "posteriordb", name)


def _read_json_xz(name: str, filename: str) -> Any:
    with lzma.open(_data_dir(name).joinpath(filename).open("rb"), "rt") as f:
        return json.load(f)


@functools.cache
def _reference_columns(name: str) -> dict[str, np.ndarray]:
    """posteriordb name -> float64 array (chains, draws), in posteriordb's order."""
    chains = _read_json_xz(name, "reference_draws.json.xz")
    columns = {
        column: np.array([chain[column] for chain in chains], dtype=np.float64)
        for column in chains[0]
    }
    for values in columns.values():
        values.flags.writeable = False
    return columns


def _read_json(name: str, filename: str) -> Any:
    return json.loads(_data_dir(name).joinpath(filename).read_text(encoding="utf-8"))


def _column_name(site: str, index: tuple[int, ...]) -> str:
    """Stan's 1-based name of one element of a site: ("beta", (0,)) -> "beta[1]"."""
    return f"{site}[{','.join(str(i + 1) for i in index)}]"


def to_posteriordb_names(samples: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Split sites with event dimensions into posteriordb's 1-based scalar names.

    Args:
        samples: site -> array of shape ``(chains, draws, *site_shape)``.

    Returns:
        name -> array of shape ``(chains, draws)``, e.g. ``beta`` of shape
        ``(4, 1000, 2)`` becomes ``beta[1]`` and ``beta[2]``; scalar sites keep their
        name. Matrix sites become ``name[i,j]``, as Stan writes them.

    Example:
        >>> import numpy as np
        >>> from probkit.models.posteriordb import to_posteriordb_names
        >>> sorted(to_posteriordb_names({"beta": np.zeros((4, 10, 2)), "sigma": np.ones((4, 10))}))
        ['beta[1]', 'beta[2]', 'sigma']
    """
    flat: dict[str, np.ndarray] = {}
    for site, values in samples.items():
        values = np.asarray(values)
        if values.ndim < 2:
            raise ValueError(
                f"samples[{site!r}] has shape {values.shape}; expected (chains, draws, "
                "*site_shape). Add the chain axis (e.g. values[None]) for a single chain."
            )
        if values.ndim == 2:
            flat[site] = values
            continue
        for index in np.ndindex(*values.shape[2:]):
            flat[_column_name(site, index)] = values[(slice(None), slice(None), *index)]
    return flat


class Posterior(NamedTuple):
    """A posteriordb posterior: its NumPyro model, data, and reference draws.

    Attributes:
        name: the posteriordb name, e.g. ``"diamonds-diamonds"``.
        model: the NumPyro model; call it as ``model(**data)``.
        data: keyword arguments of ``model``: JAX arrays (default float dtype), and
            Python ints for sizes and flags.
        site_shapes: the reference parameters, site -> shape of one draw.

    Example:
        >>> from probkit.models import posteriordb
        >>> posterior = posteriordb.load("eight_schools-eight_schools_noncentered")
        >>> posterior.site_shapes["theta"]
        (8,)
        >>> posterior.reference_names()[:2]
        ['theta[1]', 'theta[2]']
    """

    name: str
    model: Callable[..., None]
    data: dict[str, Any]
    site_shapes: Mapping[str, tuple[int, ...]]

    def reference_names(self) -> list[str]:
        """The reference draws' parameter names, in posteriordb's order (1-based)."""
        return list(_reference_columns(self.name))

    def reference_draws(self) -> dict[str, np.ndarray]:
        """The reference draws by site: site -> float64 array ``(10, 1000, *site_shape)``.

        Assembled from posteriordb's scalar columns (``beta[1]``, ``beta[2]`` -> site
        ``beta``); 10 chains of 1000 draws each, thinned from long Stan NUTS runs.
        """
        columns = _reference_columns(self.name)
        draws: dict[str, np.ndarray] = {}
        for site, shape in self.site_shapes.items():
            if shape == ():
                draws[site] = columns[site].copy()
                continue
            labels = [_column_name(site, index) for index in np.ndindex(*shape)]
            # (chains, draws, columns), columns in row-major order of the site shape
            stacked = np.stack([columns[label] for label in labels], axis=-1)
            draws[site] = stacked.reshape(*stacked.shape[:2], *shape)
        return draws

    def reference_summary(self):
        """ArviZ's summary of the reference draws, indexed by posteriordb's names.

        A pandas DataFrame with ``mean``, ``sd``, ``hdi_3%``, ``hdi_97%``,
        ``mcse_mean``, ``mcse_sd``, ``ess_bulk``, ``ess_tail`` and ``r_hat``.
        """
        import arviz as az

        flat = to_posteriordb_names(self.reference_draws())
        table = az.summary(az.from_dict(posterior=flat), round_to="none")
        return table.loc[self.reference_names()]

    def reference_info(self) -> dict[str, Any]:
        """posteriordb's ``reference_info.json``: how the draws were made, diagnostics."""
        return _read_json(self.name, "reference_info.json")

    def raw_data(self) -> dict[str, Any]:
        """posteriordb's ``data.json`` as it is (Stan-style names, Python lists)."""
        return _read_json_xz(self.name, "data.json.xz")


def load(name: str) -> Posterior:
    """Load a posteriordb posterior: model, data, and access to its reference draws.

    Args:
        name: a posteriordb name from :func:`names`, e.g. ``"arK-arK"``.

    Raises:
        KeyError: an unknown name (the message lists the known ones).

    Example:
        >>> import jax.numpy as jnp
        >>> from numpyro.infer.util import log_density
        >>> from probkit.models import posteriordb
        >>> posterior = posteriordb.load("arK-arK")
        >>> params = {"alpha": 0.0, "beta": jnp.zeros(5), "sigma": 1.0}
        >>> lp, _ = log_density(posterior.model, (), posterior.data, params)
        >>> bool(jnp.isfinite(lp))
        True
    """
    if name not in _REGISTRY:
        raise KeyError(
            f"Unknown posterior {name!r}. Known posteriors: {', '.join(names())} "
            "(posteriordb's '<data>-<model>' names)."
        )
    entry = _REGISTRY[name]
    data = entry.make_data(_read_json_xz(name, "data.json.xz"))
    return Posterior(name=name, model=entry.model, data=data, site_shapes=dict(entry.site_shapes))
