"""The Distribution Transformer's mixture helpers: the one-component shortcut and the
Monte Carlo KL divergence (the mixture type itself is tested in test_gaussian_mixture)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from probkit.models.distribution_transformer import gaussian, kl_divergence_mc


def test_kl_mc_against_closed_form_gaussians():
    p = gaussian(jnp.array([0.0, 1.0]), jnp.array([[1.0, 0.3], [0.3, 0.5]]))
    q = gaussian(jnp.array([0.5, 0.0]), jnp.array([[2.0, 0.0], [0.0, 1.0]]))
    sp, sq = np.asarray(p.covariances[0]), np.asarray(q.covariances[0])
    dm = np.asarray(q.means[0] - p.means[0])
    exact = 0.5 * (
        np.trace(np.linalg.solve(sq, sp))
        + dm @ np.linalg.solve(sq, dm)
        - 2
        + np.log(np.linalg.det(sq) / np.linalg.det(sp))
    )
    kl, se = kl_divergence_mc(jax.random.key(1), p, q, 20_000)
    assert abs(float(kl) - exact) < 4 * float(se)


def test_gaussian_checks_its_arguments():
    with pytest.raises(ValueError, match=r"mean must have shape \(d,\)"):
        gaussian(jnp.zeros((1, 2)), jnp.eye(2))
    with pytest.raises(ValueError, match="positive definite"):
        gaussian(jnp.zeros(2), jnp.array([[1.0, 2.0], [2.0, 1.0]]))


def test_kl_divergence_mc_takes_the_key_first_and_the_old_order_warns():
    p = gaussian(jnp.zeros(1), jnp.eye(1))
    q = gaussian(jnp.ones(1), jnp.eye(1))
    new = kl_divergence_mc(jax.random.key(3), p, q, 5000)
    with pytest.warns(DeprecationWarning, match="takes the key first"):
        old = kl_divergence_mc(p, q, jax.random.key(3), 5000)
    assert float(new[0]) == float(old[0])
    # KL(N(0,1) || N(1,1)) = 1/2.
    assert abs(float(new[0]) - 0.5) < 5 * float(new[1])
