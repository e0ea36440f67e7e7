"""The hierarchical NIW model of one episode written in NumPyro (for MCMC checks and
benchmarks of the closed forms)."""

from __future__ import annotations

import jax

from ._niw import NIW

__all__ = ["episode_model"]


def episode_model(support: jax.Array, prior: NIW) -> None:
    """NumPyro model of one episode: per class ``Sigma ~ InvWishart``, ``mu ~ Normal``,
    ``support[c] ~ Normal(mu_c, Sigma_c)``. Sites ``"mu"`` ``(N, d)`` and ``"sigma"``
    ``(N, d, d)``; their exact posterior is :func:`episode_posteriors`.

    Example:
        >>> import jax.numpy as jnp
        >>> import probkit as pk
        >>> from probkit.models.fewshot import NIW, episode_model
        >>> prior = NIW(jnp.zeros(2), jnp.array(1.0), jnp.eye(2), jnp.array(4.0))
        >>> target = pk.from_numpyro(episode_model, jnp.zeros((3, 4, 2)), prior)
        >>> sorted(target.constrain(target.example_position))
        ['mu', 'sigma']
    """
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    num_ways = support.shape[0]
    with numpyro.plate("ways", num_ways):
        sigma = numpyro.sample("sigma", dist.InverseWishart(prior.dof, scale_matrix=prior.scale))
        chol = jnp.linalg.cholesky(sigma)
        mu = numpyro.sample(
            "mu",
            dist.MultivariateNormal(prior.loc, scale_tril=chol / jnp.sqrt(prior.concentration)),
        )
    with numpyro.plate("shots", support.shape[1], dim=-1):
        with numpyro.plate("ways_obs", num_ways, dim=-2):
            numpyro.sample(
                "x",
                dist.MultivariateNormal(mu[:, None, :], scale_tril=chol[:, None]),
                obs=support,
            )
