"""Likelihoods of masked diffusion: the any-order autoregressive form and the ELBO.

For a time-free denoiser the negative ELBO equals the loss of an any-order
autoregressive model (Ou et al. 2024): with ``sigma`` a uniformly random order of the
positions and ``log p(x | sigma) = sum_i log p(x^{sigma_i} | x^{sigma_<i})``,

    ELBO(x) = E_sigma[ log p(x | sigma) ],

and the first-hitting sampler draws from the mixture ``p(x) = E_sigma[p(x | sigma)]``,
whose exact log-likelihood ``log E_sigma[p(x | sigma)] >= ELBO(x)``. For the exact
conditionals of one distribution every order gives the same value, its
log-probability.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_key

__all__ = [
    "AnyOrderLikelihood",
    "any_order_log_likelihood",
    "negative_elbo",
    "order_log_likelihood",
]

Denoiser = Callable[[jax.Array], jax.Array]


class AnyOrderLikelihood(NamedTuple):
    """Monte Carlo estimates over random orders for one sequence.

    Attributes:
        elbo: mean of ``log p(x | sigma)`` over the orders (unbiased for the ELBO).
        elbo_stderr: its standard error (sample standard deviation / sqrt(#orders)).
        log_likelihood: ``log mean exp`` of the same values: a consistent estimate of
            the sampler's exact log-likelihood ``log E_sigma p(x | sigma)`` (biased
            low for few orders; by Jensen it lies between the ELBO and the truth in
            expectation).
        per_order: the values ``log p(x | sigma)``, shape ``(num_orders,)``.
    """

    elbo: jax.Array
    elbo_stderr: jax.Array
    log_likelihood: jax.Array
    per_order: jax.Array


def order_log_likelihood(
    denoiser: Denoiser, x: jax.Array, order: jax.Array, mask_token: int
) -> jax.Array:
    """``log p(x | sigma)`` for the order ``sigma`` (a permutation of ``0..L-1``).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.masked_diffusion import order_log_likelihood
        >>> uniform = lambda x: jnp.zeros((x.shape[0], 2))
        >>> round(float(order_log_likelihood(uniform, jnp.array([0, 1]), jnp.array([1, 0]), 2)), 4)
        -1.3863
    """
    length = x.shape[0]
    rank = jnp.zeros(length, jnp.int32).at[order].set(jnp.arange(length, dtype=jnp.int32))
    # Step i predicts position order[i] with the positions of rank >= i masked.
    inputs = jnp.where(rank[None, :] >= jnp.arange(length)[:, None], mask_token, x[None, :])
    log_p = jax.nn.log_softmax(jax.vmap(denoiser)(inputs).astype(jnp.float32), axis=-1)
    steps = jnp.arange(length)
    return jnp.sum(log_p[steps, order, x[order]])


def any_order_log_likelihood(
    key: jax.Array, denoiser: Denoiser, x: jax.Array, mask_token: int, num_orders: int = 16
) -> AnyOrderLikelihood:
    """ELBO and log-likelihood of ONE sequence ``x (L,)`` by Monte Carlo over orders.

    Costs ``L`` network calls per order (batched).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.masked_diffusion import any_order_log_likelihood
        >>> uniform = lambda x: jnp.zeros((x.shape[0], 2))
        >>> out = any_order_log_likelihood(jax.random.key(0), uniform, jnp.array([0, 1, 1]), 2)
        >>> round(float(out.elbo), 4), round(float(out.elbo_stderr), 6)
        (-2.0794, 0.0)
    """
    check_key(key)
    length = x.shape[0]
    keys = jax.random.split(key, num_orders)
    orders = jax.vmap(lambda k: jax.random.permutation(k, length))(keys)
    values = jax.vmap(lambda o: order_log_likelihood(denoiser, x, o, mask_token))(orders)
    stderr = jnp.std(values, ddof=1) / jnp.sqrt(num_orders) if num_orders > 1 else jnp.nan
    log_likelihood = jax.scipy.special.logsumexp(values) - jnp.log(num_orders)
    return AnyOrderLikelihood(jnp.mean(values), stderr, log_likelihood, values)


def _mask_table(length: int) -> tuple[np.ndarray, np.ndarray]:
    masks = np.array(list(itertools.product([False, True], repeat=length))[1:], bool)
    n = masks.sum(1)
    weights = 1.0 / (n * np.array([math.comb(length, int(k)) for k in n]))
    return masks, weights.astype(np.float32)


def negative_elbo(denoiser: Denoiser, x: jax.Array, mask_token: int) -> jax.Array:
    """The exact negative ELBO of ONE sequence, by enumerating all ``2**L - 1`` masks.

    ``-ELBO = sum_n (1/n) E[CE | n masked] = -E_sigma log p(x | sigma)``; for ``L <= 16``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.masked_diffusion import negative_elbo
        >>> uniform = lambda x: jnp.zeros((x.shape[0], 2))
        >>> round(float(negative_elbo(uniform, jnp.array([0, 1, 1]), 2)), 4)
        2.0794
    """
    length = x.shape[0]
    if length > 16:
        raise ValueError(f"negative_elbo enumerates 2**L masks; L must be <= 16, got {length}.")
    masks, weights = _mask_table(length)
    inputs = jnp.where(masks, mask_token, x[None, :])
    log_p = jax.nn.log_softmax(jax.vmap(denoiser)(inputs).astype(jnp.float32), axis=-1)
    token_log_p = log_p[:, jnp.arange(length), x]
    ce = -jnp.sum(jnp.where(masks, token_log_p, 0.0), axis=1)
    return jnp.sum(jnp.asarray(weights) * ce)
