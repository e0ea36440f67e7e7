"""Structural properties of the network: identity at initialisation, permutation
invariance in data and equivariance in components, masking, valid outputs."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from probkit.models.distribution_transformer import (
    DistributionTransformer,
    apply_model,
    gaussian,
    gaussian_mixture,
    linear_gaussian_posterior,
    linear_gaussian_task,
    posterior,
    prepare_query,
)

TASK = linear_gaussian_task(2)
NUM_TOKENS = 40  # one per scalar observation: 20 observations x 2 rows of H


def _net(random_head: bool, sites: bool = True, site_inputs: int = 0):
    net = DistributionTransformer(
        2,
        TASK.data_feature_dim,
        key=jax.random.key(0),
        width=16,
        depth=2,
        sites=sites,
        site_inputs=site_inputs,
        site_rank=TASK.site_rank if site_inputs else None,
    )
    if random_head:
        w = 0.3 * jax.random.normal(jax.random.key(1), net.head.weight.shape)
        b = 0.3 * jax.random.normal(jax.random.key(2), net.head.bias.shape)
        net = eqx.tree_at(lambda m: (m.head.weight, m.head.bias), net, (w, b))
    return net


def _query(seed=3):
    q = jax.jit(TASK.sample_query)(jax.random.key(seed))  # one compilation, not op by op
    # Make sure the query has several components and data points.
    mask = jnp.arange(4) < 3
    log_w = jnp.where(mask, jnp.log(jnp.array([0.2, 0.3, 0.5, 1.0])), -jnp.inf)
    return q._replace(
        log_weights=log_w,
        component_mask=mask,
        parametric=jnp.asarray(False),
        data_mask=jnp.arange(NUM_TOKENS) < 7,
    )


_call = eqx.filter_jit(apply_model)  # one compilation for every network of this shape


@pytest.mark.parametrize("sites,site_inputs", [(True, 0), (False, 0), (True, TASK.site_input_dim)])
def test_untrained_network_returns_the_prior(sites, site_inputs):
    q = _query()
    log_w, means, chol = _call(_net(False, sites, site_inputs), q)
    k = 3
    # Means and Cholesky factors: L @ I and mu + L @ 0 are exact in floating point.
    np.testing.assert_array_equal(np.asarray(means[:k]), np.asarray(q.means[:k]))
    np.testing.assert_array_equal(np.asarray(chol[:k]), np.asarray(q.cholesky[:k]))
    # Log weights pass through log_softmax of normalised log weights: float32 rounding only.
    np.testing.assert_allclose(
        np.asarray(log_w[:k]), np.asarray(q.log_weights[:k]), rtol=0, atol=1e-6
    )
    assert np.all(np.isneginf(np.asarray(log_w[k:])))


@pytest.mark.parametrize("num_rows", [2, 1])
def test_pseudo_observation_sites_hold_the_exact_posterior(num_rows):
    # With the raw site read-out set to the likelihood's own pseudo-observation (B = a_j^T,
    # t = r_j per scalar observation in each component's whitened frame, see
    # linear_gaussian_features) and every other output still at its zero start, the network
    # must return the exact posterior (linear_gaussian_posterior, an independent closed
    # form), for a square H and for one row: this checks the site algebra (precision, mean,
    # evidence at the mean), the frame changes and the split into scalar tokens.
    from probkit.models.distribution_transformer._network import _SITE_RAW_GAIN

    net = _net(False, True, TASK.site_input_dim)
    d = 2
    weight = jnp.zeros_like(net.site_raw.weight)
    weight = weight.at[: d + 1, : d + 1].set(jnp.eye(d + 1) / _SITE_RAW_GAIN)
    net = eqx.tree_at(lambda m: m.site_raw.weight, net, weight)
    prior = gaussian_mixture(
        jnp.array([0.3, 0.7]),
        jnp.array([[0.5, -1.0], [-1.0, 2.0]]),
        jnp.array([[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 0.9]]]),
    )
    h = jnp.array([[1.0, 0.5], [-0.3, 1.2]])[:num_rows]
    y = jnp.array([[0.2, 1.1], [-0.4, 0.9], [0.1, 1.6]])[:, :num_rows]
    post = posterior(prior, y, obs_matrix=h, noise_std=0.7, model=net)
    exact = linear_gaussian_posterior(prior, y, h, 0.7)
    # float32 closed forms of 2x2 systems on both sides: rounding only.
    np.testing.assert_allclose(np.asarray(post.weights), np.asarray(exact.weights), atol=1e-5)
    np.testing.assert_allclose(np.asarray(post.means), np.asarray(exact.means), atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(post.covariances), np.asarray(exact.covariances), rtol=1e-4, atol=1e-6
    )


def test_untrained_posterior_of_a_gmm_is_the_gmm():
    prior = gaussian(jnp.array([0.5, -1.0]), jnp.array([[1.0, 0.3], [0.3, 0.5]]))
    post = posterior(
        prior, jnp.ones((4, 2)), obs_matrix=jnp.eye(2), noise_std=0.5, model=_net(False)
    )
    np.testing.assert_allclose(
        np.asarray(post.covariances), np.asarray(prior.covariances), rtol=1e-6
    )
    np.testing.assert_array_equal(np.asarray(post.means), np.asarray(prior.means))


def test_permutation_invariance_in_data_and_equivariance_in_components():
    net = _net(True)
    q = _query()
    base = _call(net, q)
    assert not np.allclose(np.asarray(base[1][:3]), np.asarray(q.means[:3]))  # non-trivial map
    data_perm = jnp.array([4, 0, 6, 2, 1, 5, 3] + list(range(7, NUM_TOKENS)))
    out = _call(net, q._replace(data_features=q.data_features[:, data_perm]))
    for a, b in zip(base, out, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
    comp_perm = jnp.array([2, 0, 1, 3])
    permuted = q._replace(
        log_weights=q.log_weights[comp_perm],
        means=q.means[comp_perm],
        cholesky=q.cholesky[comp_perm],
        component_mask=q.component_mask[comp_perm],
        data_features=q.data_features[comp_perm],
    )
    out = _call(net, permuted)
    for a, b in zip(base, out, strict=True):
        np.testing.assert_allclose(np.asarray(a)[comp_perm], np.asarray(b), rtol=1e-5, atol=1e-5)


def test_padding_is_ignored_and_outputs_are_valid():
    net = _net(True)
    q = _query()
    base = _call(net, q)
    junk = q._replace(
        data_features=q.data_features.at[:, 10:].set(7.0).at[3].set(5.0),
        means=q.means.at[3].set(9.0),
    )
    out = _call(net, junk)
    for a, b in zip(base, out, strict=True):
        np.testing.assert_allclose(np.asarray(a)[:3], np.asarray(b)[:3], rtol=1e-6, atol=1e-6)
    log_w, _, chol = base
    np.testing.assert_allclose(float(jax.nn.logsumexp(log_w)), 0.0, atol=1e-6)
    assert np.all(np.asarray(jnp.diagonal(chol, axis1=-2, axis2=-1)) > 0)
    assert np.all(np.asarray(jnp.triu(chol, 1)) == 0)


def test_parametric_prior_expands_to_k_components():
    prior = gaussian(jnp.zeros(2), jnp.eye(2))
    _, q, k = prepare_query(
        prior, jnp.ones((3, 2)), obs_matrix=jnp.eye(2), noise_std=1.0, num_components=3
    )
    assert k == 3 and bool(q.parametric)
    post = posterior(
        prior,
        jnp.ones((3, 2)),
        obs_matrix=jnp.eye(2),
        noise_std=1.0,
        num_components=3,
        model=_net(True),
    )
    assert post.num_components == 3
    # The slot embeddings let identical tokens split into different components.
    assert float(jnp.abs(post.means[0] - post.means[1]).max()) > 1e-4


def test_posterior_fast_path_matches_the_pure_pieces_and_compiles_once():
    from probkit.models.distribution_transformer import _inference

    net = _net(True)
    prior = gaussian_mixture(
        jnp.array([0.3, 0.7]),
        jnp.array([[0.5, -1.0], [-1.0, 2.0]]),
        jnp.array([[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 0.9]]]),
    )
    h = jnp.array([[1.0, 0.5], [-0.3, 1.2]])
    before = len(_inference._COMPILED)
    for n in (3, 7, 20):
        y = jnp.sin(jnp.arange(2.0 * n)).reshape(n, 2)
        post = posterior(prior, y, obs_matrix=h, noise_std=0.7, model=net)
        _, q, k = prepare_query(prior, y, obs_matrix=h, noise_std=0.7)
        log_w, means, chol = _call(net, q)
        cov = chol[:k] @ jnp.swapaxes(chol[:k], -1, -2)
        # Same float32 computation, compiled as two different programs: rounding only.
        np.testing.assert_allclose(np.asarray(post.weights), np.exp(log_w[:k]), atol=1e-6)
        np.testing.assert_allclose(np.asarray(post.means), means[:k], rtol=1e-5, atol=1e-5)
        # (Covariances: rounding relative to the largest entry of each matrix.)
        scale = float(np.abs(np.asarray(cov)).max())
        np.testing.assert_allclose(np.asarray(post.covariances), cov, rtol=1e-5, atol=1e-6 * scale)
    # One executable for this (network, task) whatever n and K: all padded.
    assert len(_inference._COMPILED) == before + 1
    # The output is a valid GMM (the fast path skips the checks, so recheck here).
    gaussian_mixture(post.weights, post.means, post.covariances)
