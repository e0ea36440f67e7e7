"""One chain's warm-up as a pure function: the middle layer for runs of your own.

:func:`warmup` runs the warm-up :func:`probkit.mcmc.sample` runs for a named kernel
(Stan's window adaptation for NUTS and HMC) and returns what :func:`probkit.mcmc.loop`
needs. Being pure, it goes inside your own ``jax.jit`` / ``jax.vmap``: chains with
data of their own, each warmed up on its own posterior.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from probkit._checks import check_key
from probkit.mcmc._kernels import KERNELS, Settings, check_kernel

__all__ = ["Tuned", "warmup"]

# Kernels whose state is the target's position (MALA and RWM run in whitened
# coordinates, ChEES and MEADS pool their warm-up across chains).
_PER_CHAIN_IN_PLACE = ("nuts", "hmc")


class Tuned(NamedTuple):
    """A warmed-up chain: what :func:`probkit.mcmc.loop` takes.

    Attributes:
        algorithm: the blackjax ``SamplingAlgorithm`` at the tuned parameters.
        state: the chain's state at the end of the warm-up.
        params: the tuned parameters (``step_size``, ``inverse_mass_matrix``).
        statistics: ``(state, info) -> dict`` of ArviZ-named statistics, for
            ``loop(..., statistics=tuned.statistics)``.
    """

    algorithm: Any
    state: Any
    params: dict
    statistics: Callable


def warmup(
    key: jax.Array,
    logdensity_fn: Callable[[jax.Array], jax.Array],
    position: jax.Array,
    num_warmup: int = 1000,
    *,
    kernel: str = "nuts",
    target_accept: float | None = None,
    mass_matrix: str = "diag",
    **kernel_options: Any,
) -> Tuned:
    """Warm up one chain of ``kernel`` as :func:`probkit.mcmc.sample` does.

    Args:
        key: a ``jax.random`` key.
        logdensity_fn: the log density of a flat position (a 1-D array; flatten a
            pytree with ``jax.flatten_util.ravel_pytree``).
        position: where the chain starts, shape ``(d,)``.
        num_warmup: warm-up transitions (at least 1).
        kernel: ``"nuts"`` or ``"hmc"`` (MALA and RWM run in whitened coordinates, and
            ChEES and MEADS pool their warm-up across chains: use
            :func:`probkit.mcmc.sample` for them).
        target_accept: the acceptance rate the step size is tuned to (default 0.8).
        mass_matrix: ``"diag"``, ``"dense"`` or ``"low_rank"``.
        **kernel_options: the kernel's options, as for :func:`probkit.mcmc.sample`
            (``max_num_doublings``, ``step_size``, ``num_integration_steps``, ...).

    Returns:
        a :class:`Tuned`: ``loop(key, tuned.algorithm, tuned.state, n,
        statistics=tuned.statistics)`` then samples.

    Example:
        Three chains, each on a posterior of its own data, under one ``jit(vmap)``:

        >>> import jax, jax.numpy as jnp
        >>> import probkit as pk
        >>> def run(key, mean):
        ...     logdensity = lambda x: -0.5 * jnp.sum((x - mean) ** 2)
        ...     warm_key, sample_key = jax.random.split(key)
        ...     tuned = pk.mcmc.warmup(warm_key, logdensity, jnp.zeros(1), 300)
        ...     _, (draws, stats) = pk.mcmc.loop(
        ...         sample_key, tuned.algorithm, tuned.state, 500, statistics=tuned.statistics)
        ...     return draws, stats["acceptance_rate"]
        >>> keys = jax.random.split(jax.random.key(0), 3)
        >>> draws, accept = jax.jit(jax.vmap(run))(keys, jnp.array([-3.0, 0.0, 5.0]))
        >>> draws.shape, [round(float(m)) for m in draws.mean(axis=(1, 2))]
        ((3, 500, 1), [-3, 0, 5])
    """
    spec = check_kernel(kernel, kernel_options)
    if kernel not in _PER_CHAIN_IN_PLACE:
        raise ValueError(
            f"warmup runs kernel 'nuts' or 'hmc', not {kernel!r}: MALA and RWM sample in "
            "whitened coordinates and ChEES and MEADS warm up across chains. Use "
            "probkit.mcmc.sample for them."
        )
    key = check_key(key, "key")
    if isinstance(num_warmup, bool) or not isinstance(num_warmup, int) or num_warmup < 1:
        raise ValueError(f"num_warmup must be an int >= 1, got {num_warmup!r}.")
    if mass_matrix not in ("diag", "dense", "low_rank"):
        raise ValueError(
            f"mass_matrix must be 'diag', 'dense' or 'low_rank', got {mass_matrix!r} (dense "
            "blocks over named sites need a target: use probkit.mcmc.sample)."
        )
    if jnp.ndim(position) != 1:
        raise ValueError(
            f"position must be a flat 1-D array, got shape {jnp.shape(position)}; flatten a "
            "pytree with jax.flatten_util.ravel_pytree (and unflatten the draws with its "
            "unravel function)."
        )
    target_accept = spec.default_target_accept if target_accept is None else target_accept
    if not 0.0 < float(target_accept) < 1.0:
        raise ValueError(f"target_accept must lie strictly between 0 and 1, got {target_accept}.")
    settings = Settings(
        num_warmup=num_warmup,
        mass_matrix=mass_matrix,
        target_accept=float(target_accept),
        options=tuple(sorted({**spec.options, **kernel_options}.items())),
        num_chains=1,
        num_samples=1,
        thinning=1,
        num_dims=int(jnp.shape(position)[0]),
    )
    position = jnp.asarray(position, jnp.result_type(float))
    state, params = KERNELS[kernel].warmup(key, logdensity_fn, position, settings)
    algorithm = spec.algorithm(logdensity_fn, params, settings.option)

    def statistics(state, info):
        return spec.statistics(state, info, params)

    return Tuned(algorithm, state, params, statistics)
