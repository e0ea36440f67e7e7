"""Conversion of SMC results to ArviZ (moves to probkit/results.py once it lands)."""

from __future__ import annotations

import jax
import numpy as np

from probkit.smc._resampling import systematic
from probkit.smc._result import SMCResult, particle_dict

__all__ = ["smc_to_inference_data"]


def smc_to_inference_data(result: SMCResult, *, weights: str = "resample", seed: int = 0):
    """InferenceData of an :class:`~probkit.smc.SMCResult` (see ``SMCResult.to_arviz``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import probkit.smc as smc
        >>> from probkit.smc._arviz import smc_to_inference_data
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
        equal = bool(np.allclose(log_w, -np.log(n), atol=1e-6))
        if equal:
            handling = "equal"
        elif weights == "resample":
            idx = np.asarray(systematic(jax.random.key(seed), result.log_weights, n))
            values = {k: v[idx] for k, v in values.items()}
            handling = "resampled (systematic)"
        else:
            handling = "recorded in sample_stats.log_weight"
    posterior = {k: v[None] for k, v in values.items()}
    sample_stats = {}
    if handling.startswith("recorded"):
        sample_stats["log_weight"] = log_w[None]
    attrs = {
        "weights": handling,
        "log_evidence": float(result.log_evidence),
        "num_particles": n,
        "ess_history": np.asarray(result.ess, dtype=np.float64),
        "resampled": np.asarray(result.resampled, dtype=np.int8),
        "inference_library": "probkit.smc",
    }
    return az.from_dict(posterior=posterior, sample_stats=sample_stats or None, attrs=attrs)
