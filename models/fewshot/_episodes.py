"""N-way K-shot episodes on fixed features, and synthetic episodes drawn from a known NIW."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from probkit._checks import check_key

from ._niw import NIW, check_niw

__all__ = ["Episodes", "check_episodes", "sample_episodes"]


class Episodes(NamedTuple):
    """A batch of N-way K-shot episodes on fixed features (a pytree).

    Attributes:
        support: ``(E, N, K, d)`` labelled features, class-major: ``support[e, c]`` are
            the K shots of class ``c`` in episode ``e``.
        query_x: ``(E, M, d)`` query features.
        query_y: ``(E, M)`` integer classes in ``[0, N)`` of the queries.

    Example:
        >>> import jax
        >>> from probkit.models.fewshot import sample_episodes, NIW
        >>> import jax.numpy as jnp
        >>> prior = NIW(jnp.zeros(2), jnp.array(0.5), jnp.eye(2), jnp.array(5.0))
        >>> episodes = sample_episodes(jax.random.key(0), prior, 3, num_ways=4, num_shots=2)
        >>> episodes.support.shape, episodes.query_x.shape
        ((3, 4, 2, 2), (3, 60, 2))
    """

    support: jax.Array
    query_x: jax.Array
    query_y: jax.Array

    @property
    def num_episodes(self) -> int:
        return int(self.support.shape[0])

    @property
    def num_ways(self) -> int:
        return int(self.support.shape[1])

    @property
    def num_shots(self) -> int:
        return int(self.support.shape[2])


def check_episodes(episodes: Episodes, name: str = "episodes") -> Episodes:
    """Validate the shapes and labels of :class:`Episodes` (before any compilation).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.fewshot import Episodes, check_episodes
        >>> e = check_episodes(Episodes(jnp.zeros((1, 2, 3, 4)), jnp.zeros((1, 5, 4)),
        ...                             jnp.zeros((1, 5), int)))
        >>> e.num_ways
        2
    """
    if not isinstance(episodes, Episodes):
        raise TypeError(f"{name} must be an Episodes(support, query_x, query_y).")
    support = jnp.asarray(episodes.support)
    if support.ndim != 4:
        raise ValueError(
            f"{name}.support must have shape (episodes, ways, shots, features), got "
            f"{support.shape}; add a leading axis of size 1 for a single episode."
        )
    qx, qy = jnp.asarray(episodes.query_x), jnp.asarray(episodes.query_y)
    e, n, _, d = support.shape
    if qx.ndim != 3 or qx.shape[0] != e or qx.shape[2] != d:
        raise ValueError(f"{name}.query_x must have shape ({e}, M, {d}), got {qx.shape}.")
    if qy.shape != qx.shape[:2]:
        raise ValueError(f"{name}.query_y must have shape {qx.shape[:2]}, got {qy.shape}.")
    if not jnp.issubdtype(qy.dtype, jnp.integer):
        raise ValueError(f"{name}.query_y must hold integer classes, got dtype {qy.dtype}.")
    if qy.size and (int(qy.min()) < 0 or int(qy.max()) >= n):
        raise ValueError(f"{name}.query_y must lie in [0, {n}) (the number of ways).")
    if not bool(jnp.all(jnp.isfinite(support))) or not bool(jnp.all(jnp.isfinite(qx))):
        raise ValueError(f"{name} holds non-finite features.")
    return Episodes(support, qx, qy)


def sample_episodes(
    key: jax.Array,
    prior: NIW,
    num_episodes: int,
    *,
    num_ways: int = 5,
    num_shots: int = 5,
    num_queries: int = 15,
) -> Episodes:
    """Draw synthetic episodes from the hierarchical model with a known global NIW.

    For every episode and class, ``(mu, Sigma) ~ prior``; the ``num_shots`` support
    features and ``num_queries`` query features of that class are ``Normal(mu, Sigma)``.
    Queries are class-major (``query_y = [0]*Q + [1]*Q + ...``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.fewshot import NIW, sample_episodes
        >>> prior = NIW(jnp.zeros(3), jnp.array(0.2), jnp.eye(3), jnp.array(6.0))
        >>> sample_episodes(jax.random.key(1), prior, 10).query_y.shape
        (10, 75)
    """
    check_key(key)
    prior = check_niw(prior)
    for name, value in (("num_episodes", num_episodes), ("num_ways", num_ways)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}.")
    if int(num_shots) < 1 or int(num_queries) < 0:
        raise ValueError("num_shots must be >= 1 and num_queries >= 0.")
    return _sample(key, prior, int(num_episodes), int(num_ways), int(num_shots), int(num_queries))


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _sample(key, prior, num_episodes, num_ways, num_shots, num_queries):
    import numpyro.distributions as dist

    d = prior.dim
    groups = (num_episodes, num_ways)
    k_sigma, k_mu, k_x = jax.random.split(key, 3)
    sigma = dist.InverseWishart(prior.dof, scale_matrix=prior.scale).sample(k_sigma, groups)
    chol = jnp.linalg.cholesky(sigma)
    mu = prior.loc + jnp.einsum(
        "...ij,...j->...i",
        chol / jnp.sqrt(prior.concentration),
        jax.random.normal(k_mu, (*groups, d)),
    )
    total = num_shots + num_queries
    noise = jax.random.normal(k_x, (*groups, total, d))
    x = mu[:, :, None, :] + jnp.einsum("enij,enkj->enki", chol, noise)
    support = x[:, :, :num_shots]
    query_x = x[:, :, num_shots:].reshape(num_episodes, num_ways * num_queries, d)
    labels = jnp.repeat(jnp.arange(num_ways), num_queries)
    query_y = jnp.broadcast_to(labels, (num_episodes, labels.size))
    return Episodes(support, query_x, query_y)
