"""Schrödinger bridges: entropic OT, two-marginal bridges (static and IPF), multi-marginal
bridges with iterative reference refinement, and the Gaussian closed form.

- :func:`sinkhorn`: log-domain Sinkhorn (OTT-JAX) with plan, costs and diagnostics.
- :func:`gaussian_bridge_coupling`: the Schrödinger bridge between two Gaussians with a
  Brownian reference, in closed form.
- :func:`schrodinger_bridge`: bridge between two sample sets, ``method="static"``
  (entropic OT + Brownian/residual bridges) or ``"ipf"`` (dynamic IPF with
  random-feature drifts); returns a :class:`Bridge` with ``.coupling`` and
  ``.sample_paths``.
- :func:`multimarginal`: snapshots at several times, a parametric reference drift
  (:func:`lotka_volterra`, :func:`repressilator`, :func:`linear_drift` or any
  ``f(x, theta)``), alternating bridging and maximum-likelihood refits of ``theta``.

Example:
    >>> import jax, jax.numpy as jnp
    >>> import probkit.bridges as br
    >>> x0 = jax.random.normal(jax.random.key(0), (300, 1))
    >>> x1 = 2.0 + 0.5 * jax.random.normal(jax.random.key(1), (300, 1))
    >>> bridge = br.schrodinger_bridge(x0, x1, sigma=0.5)
    >>> paths = bridge.sample_paths(jax.random.key(2), 500)
    >>> paths.shape
    (500, 51, 1)
"""

from probkit.bridges._bridge import Bridge, brownian_drift, schrodinger_bridge
from probkit.bridges._gaussian import (
    GaussianCoupling,
    gaussian_bridge_coupling,
    gaussian_bridge_marginal,
)
from probkit.bridges._ipf import (
    RandomFeatures,
    feature_map,
    ipf_fit,
    ipf_iteration,
    random_features,
    ridge_fit,
)
from probkit.bridges._multimarginal import (
    MultimarginalHistory,
    MultimarginalResult,
    bridge_snapshots,
    fit_drift_parameters,
    multimarginal,
)
from probkit.bridges._paths import (
    brownian_bridge,
    reference_flow,
    residual_bridge,
)
from probkit.bridges._references import (
    DriftReference,
    as_reference,
    linear_drift,
    lotka_volterra,
    repressilator,
    simulate_snapshots,
)
from probkit.bridges._sinkhorn import SinkhornResult, sinkhorn, squared_distances

__all__ = [
    "SinkhornResult",
    "sinkhorn",
    "squared_distances",
    "GaussianCoupling",
    "gaussian_bridge_coupling",
    "gaussian_bridge_marginal",
    "reference_flow",
    "brownian_bridge",
    "residual_bridge",
    "RandomFeatures",
    "random_features",
    "feature_map",
    "ridge_fit",
    "ipf_fit",
    "ipf_iteration",
    "Bridge",
    "brownian_drift",
    "schrodinger_bridge",
    "DriftReference",
    "lotka_volterra",
    "repressilator",
    "linear_drift",
    "as_reference",
    "simulate_snapshots",
    "MultimarginalHistory",
    "MultimarginalResult",
    "bridge_snapshots",
    "fit_drift_parameters",
    "multimarginal",
]
