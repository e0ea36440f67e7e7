"""The discrete flashing ratchet: a six-state Brownian motor (a standard MJP benchmark).

A particle sits on three sites ``i = 0, 1, 2`` of a ring. While the potential is on
(states ``0, 1, 2``) site ``i`` has energy ``U_i = i V`` (in units of ``k_B T``) and the
particle hops ``i -> j`` with rate ``exp(-(U_j - U_i) / 2)``; while it is off (states
``3, 4, 5`` = sites ``0, 1, 2``) it hops between any two sites with rate ``b``; the
potential switches on -> off and off -> on at rate ``r`` without moving the particle
(``i <-> i + 3``). This is the model of Kim, Bae, Lee & Jeong, "Learning entropy
production via neural networks" (PRL 125, 140604, 2020; their off-state rate is
``b = 1``), in the ``(V, r, b)`` parametrisation of Seifner & Sánchez ("Neural Markov
jump processes", ICML 2023) and Berghaus et al. ("Foundation Inference Models for Markov
Jump Processes", NeurIPS 2024), whose benchmark uses ``V = r = b = 1``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from probkit.models.mjp._process import rate_matrix_from_rates

__all__ = ["flashing_ratchet", "flashing_ratchet_adjacency", "flashing_ratchet_parameters"]


def _coefficients() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log q = cV * V + cr * log r + cb * log b`` for every entry (zeros off the graph)."""
    cv = np.zeros((6, 6))
    cr = np.zeros((6, 6))
    cb = np.zeros((6, 6))
    for i in range(3):
        for j in range(3):
            if i != j:
                cv[i, j] = -(j - i) / 2.0  # U_j - U_i = (j - i) V
                cb[3 + i, 3 + j] = 1.0
        cr[i, i + 3] = cr[i + 3, i] = 1.0
    return cv, cr, cb


def flashing_ratchet_adjacency() -> np.ndarray:
    """The ``(6, 6)`` boolean adjacency of the flashing ratchet (18 possible jumps).

    Returns:
        ``adjacency[i, j]`` is ``True`` when the jump ``i -> j`` has a positive rate.

    Example:
        >>> from probkit.models.mjp import flashing_ratchet_adjacency
        >>> int(flashing_ratchet_adjacency().sum())
        18
    """
    cv, cr, cb = _coefficients()
    return (cv != 0) | (cr != 0) | (cb != 0)


def flashing_ratchet(potential=1.0, switching_rate=1.0, off_rate=1.0) -> jax.Array:
    """Rate matrix of the discrete flashing ratchet (see the module docstring).

    Rates: ``q_ij = exp(-(j - i) V / 2)`` for ``i != j`` in ``{0, 1, 2}`` (potential on),
    ``q_{3+i, 3+j} = b`` (potential off), ``q_{i, i+3} = q_{i+3, i} = r`` (switching).

    Args:
        potential: ``V``, the potential strength in units of ``k_B T``.
        switching_rate: ``r``, the rate of switching the potential on or off.
        off_rate: ``b``, the hopping rate while the potential is off.

    Returns:
        The ``(6, 6)`` generator.

    Example:
        >>> from probkit.models.mjp import flashing_ratchet
        >>> q = flashing_ratchet(1.0, 1.0, 1.0)
        >>> round(float(q[0, 1]), 4), round(float(q[2, 0]), 4)  # exp(-1/2), exp(1)
        (0.6065, 2.7183)
    """
    cv, cr, cb = (jnp.asarray(c) for c in _coefficients())
    mask = jnp.asarray(flashing_ratchet_adjacency())
    log_rates = cv * potential + cr * jnp.log(switching_rate) + cb * jnp.log(off_rate)
    return rate_matrix_from_rates(jnp.where(mask, jnp.exp(log_rates), 0.0))


def flashing_ratchet_parameters(rate_matrix: jax.Array) -> jax.Array:
    """Project a 6-state rate matrix onto the ratchet family: least-squares ``(V, r, b)``.

    Fits ``log q_ij`` on the 18 ratchet edges by ``V``, ``log r`` and ``log b`` (the three
    groups of edges are disjoint, so each is an average: ``log r`` and ``log b`` the mean
    log-rate of their edges, ``V`` the regression of the on-state log-rates on
    ``-(j - i) / 2``). Exact for a ratchet generator; works on batches.

    Args:
        rate_matrix: ``(..., 6, 6)`` rate matrices (e.g. posterior draws).

    Returns:
        ``(..., 3)`` array of ``(V, r, b)``.

    Example:
        >>> from probkit.models.mjp import flashing_ratchet, flashing_ratchet_parameters
        >>> flashing_ratchet_parameters(flashing_ratchet(2.0, 0.5, 3.0)).round(4).tolist()
        [2.0, 0.5, 3.0]
    """
    q = jnp.asarray(rate_matrix)
    if q.shape[-2:] != (6, 6):
        raise ValueError(f"rate_matrix must have shape (..., 6, 6), got {q.shape}.")
    cv, cr, cb = (jnp.asarray(c, q.dtype) for c in _coefficients())
    mask = jnp.asarray(flashing_ratchet_adjacency())
    log_q = jnp.log(jnp.where(mask, jnp.maximum(q, jnp.finfo(q.dtype).tiny), 1.0))
    potential = jnp.sum(cv * log_q, (-2, -1)) / jnp.sum(cv**2)
    log_r = jnp.sum(cr * log_q, (-2, -1)) / jnp.sum(cr)
    log_b = jnp.sum(cb * log_q, (-2, -1)) / jnp.sum(cb)
    return jnp.stack([potential, jnp.exp(log_r), jnp.exp(log_b)], axis=-1)
