"""The kernel registry: which blackjax algorithm each name means, and its options.

probkit does not re-implement NUTS, HMC, MALA or random-walk Metropolis: it takes
them from blackjax and adds what blackjax leaves to its users (the driver loop,
warm-up, multi-chain runs, sharding, statistics under ArviZ's names).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import blackjax
import jax
import jax.numpy as jnp

__all__ = ["KERNELS", "KernelSpec", "check_kernel", "extract_stats"]


class KernelSpec(NamedTuple):
    """What probkit knows about one kernel name."""

    name: str
    description: str
    #: options the user may pass through ``**kernel_options`` with their defaults
    options: Mapping[str, Any]
    #: whether warm-up pools every chain (cross-chain adaptation)
    cross_chain: bool
    #: acceptance rate the step-size adaptation aims for by default
    default_target_accept: float


KERNELS: dict[str, KernelSpec] = {
    "nuts": KernelSpec(
        "nuts",
        "No-U-Turn sampler (blackjax.nuts) with Stan's window adaptation",
        {"max_num_doublings": 10, "step_size": None},
        False,
        0.8,
    ),
    "hmc": KernelSpec(
        "hmc",
        "Hamiltonian Monte Carlo with a fixed number of leapfrog steps (blackjax.hmc)",
        {"num_integration_steps": 16, "step_size": None},
        False,
        0.8,
    ),
    "mala": KernelSpec(
        "mala",
        "Metropolis-adjusted Langevin (blackjax.mala), preconditioned by the adapted metric",
        {"step_size": None},
        False,
        0.574,
    ),
    "rwm": KernelSpec(
        "rwm",
        "Gaussian random-walk Metropolis (blackjax.normal_random_walk), adapted covariance",
        {"step_size": None},
        False,
        0.234,
    ),
    "chees": KernelSpec(
        "chees",
        "ChEES-HMC: jittered HMC with trajectory length tuned across chains "
        "(blackjax.chees_adaptation + blackjax.dynamic_hmc); for many chains on accelerators",
        {"learning_rate": 0.025, "step_size": 0.1, "max_leapfrog_steps": 1000},
        True,
        0.651,
    ),
    "meads": KernelSpec(
        "meads",
        "MEADS: generalised HMC tuned across chain folds "
        "(blackjax.meads_adaptation + blackjax.ghmc); for many chains on accelerators",
        {"num_folds": 4},
        True,
        0.8,
    ),
}


def check_kernel(kernel: str, kernel_options: Mapping[str, Any]) -> KernelSpec:
    """Validate the kernel name and its options before anything is compiled."""
    if not isinstance(kernel, str) or kernel not in KERNELS:
        close = difflib.get_close_matches(str(kernel), KERNELS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown kernel {kernel!r}. Choose one of {sorted(KERNELS)}.{hint}")
    spec = KERNELS[kernel]
    unknown = [k for k in kernel_options if k not in spec.options]
    if unknown:
        allowed = ", ".join(sorted(spec.options)) or "none"
        raise TypeError(
            f"Unknown option(s) {unknown} for kernel={kernel!r}. Options it accepts: "
            f"{allowed}. (Sampler-wide settings such as num_chains or target_accept are "
            "arguments of probkit.mcmc.sample itself.)"
        )
    return spec


def extract_stats(kernel: str, state: Any, info: Any, step_size: jax.Array) -> dict:
    """Per-draw sample statistics under ArviZ's names.

    ``nonfinite`` flags draws whose proposal had a non-finite log density (a NaN
    or an infinity, not merely a rejection), which probkit counts to tell users
    when float32 is not precise enough for their model.
    """
    stats = {
        "lp": state.logdensity,
        "acceptance_rate": info.acceptance_rate,
        "step_size": jnp.broadcast_to(jnp.asarray(step_size, state.logdensity.dtype), ()),
    }
    if kernel in ("nuts", "hmc", "chees", "meads"):
        stats["diverging"] = info.is_divergent
        stats["energy"] = info.energy
    if kernel == "nuts":
        stats["n_steps"] = info.num_integration_steps
        stats["tree_depth"] = info.num_trajectory_expansions
        ends = (
            info.trajectory_leftmost_state.logdensity,
            info.trajectory_rightmost_state.logdensity,
        )
        stats["nonfinite"] = ~(jnp.isfinite(ends[0]) & jnp.isfinite(ends[1]))
    elif kernel in ("hmc", "chees"):
        stats["n_steps"] = info.num_integration_steps
        stats["nonfinite"] = ~jnp.isfinite(info.proposal.logdensity)
    elif kernel == "meads":
        stats["nonfinite"] = ~jnp.isfinite(info.proposal.logdensity)
    # blackjax's MALAInfo carries no proposal, and RWInfo.proposal holds the state
    # after the accept/reject step: their non-finite proposals show only as
    # rejections, so MALA and RWM report no ``nonfinite`` statistic.
    return stats


def build_sampling_algorithm(
    kernel: str, logdensity: Callable, params: Mapping[str, Any], options: Mapping[str, Any]
):
    """The blackjax algorithm used after warm-up, from the adapted parameters."""
    if kernel == "nuts":
        return blackjax.nuts(
            logdensity, **{"max_num_doublings": options["max_num_doublings"], **params}
        )
    if kernel == "hmc":
        return blackjax.hmc(
            logdensity, **{"num_integration_steps": options["num_integration_steps"], **params}
        )
    if kernel == "mala":
        return blackjax.mala(logdensity, params["step_size"])
    if kernel == "rwm":
        return blackjax.normal_random_walk(logdensity, params["step_size"] * params["scale"])
    if kernel == "chees":
        return blackjax.dynamic_hmc(logdensity, **params)
    if kernel == "meads":
        return blackjax.ghmc(logdensity, **params)
    raise AssertionError(kernel)
