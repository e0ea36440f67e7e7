"""Schedules, losses and likelihoods against exact answers.

Exact values come from enumeration: every mask of a length-5 sequence (31), every order
(120), every sequence of a 3-token space (243), and scipy quadrature of the
time-conditioned ELBO with the schedules written out here in NumPy. Monte Carlo
estimates must lie within 4 standard errors (over 40 independent batches) of them.
"""

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import probkit.models.masked_diffusion as md
import pytest
from scipy import integrate, special, stats

V, L = 3, 5
X = jnp.array([0, 2, 1, 1, 0])
EPS = 1e-3
ALPHA = {
    "linear": lambda t: 1.0 - t,
    "cosine": lambda t: 1.0 - np.cos(0.5 * np.pi * (1.0 - t)),
    "log_linear": lambda t: 1.0 - (1.0 - EPS) * t,
}


@pytest.fixture(scope="module")
def net():
    # An untrained network: its conditionals are not those of any one distribution, so
    # the ELBO, the orders and the sampler's law all differ (nothing holds by accident).
    return md.Denoiser(V, L, key=jax.random.key(7), width=16, depth=1, num_heads=2)


@pytest.fixture(scope="module")
def mask_ce(net):
    """Per-mask cross-entropies of X, from the network's raw logits (NumPy)."""
    masks = np.array(list(itertools.product([False, True], repeat=L))[1:])
    batched = eqx.filter_jit(lambda m, x: jax.vmap(m)(x))
    logits = np.asarray(batched(net, jnp.where(masks, V, X)), np.float64)
    log_p = logits - special.logsumexp(logits, axis=-1, keepdims=True)
    token = log_p[:, np.arange(L), np.asarray(X)]
    ce = -np.sum(np.where(masks, token, 0.0), axis=1)
    sizes = masks.sum(1)
    f = np.array([ce[sizes == n].mean() for n in range(1, L + 1)])
    return f


def _weight(name, t, h=1e-6):
    a = ALPHA[name]
    return -(a(t + h) - a(t - h)) / (2 * h) / (1.0 - a(t))


def test_schedules_match_their_formulas():
    t = np.linspace(0.05, 0.95, 7)
    for name in ("linear", "cosine", "log_linear"):
        s = md.get_schedule(name)
        np.testing.assert_allclose(s.alpha(t), ALPHA[name](t), atol=1e-6)
        np.testing.assert_allclose(s.weight(t), _weight(name, t), rtol=1e-4)
        np.testing.assert_allclose(
            s.alpha_derivative(t) * -1 / (1 - s.alpha(t)), s.weight(t), rtol=1e-5
        )
        np.testing.assert_allclose(s.time_at(s.alpha(t)), t, atol=1e-5)
    with pytest.raises(ValueError, match="schedule"):
        md.get_schedule("geometric")


def test_time_conditioned_elbo_equals_time_agnostic_exactly(mask_ce):
    agnostic = np.sum(mask_ce / np.arange(1, L + 1))
    n = np.arange(1, L + 1)
    for name in ("linear", "cosine", "log_linear"):

        def integrand(t, name=name):
            masked = 1.0 - ALPHA[name](t)
            return _weight(name, t) * np.sum(stats.binom.pmf(n, L, masked) * mask_ce)

        value = integrate.quad(integrand, 1e-9, 1.0, limit=200)[0]
        if name == "log_linear":
            # alpha(1) = eps: the u-integral stops at 1 - eps (incomplete beta).
            expected = np.sum(
                mask_ce * [math.comb(L, k) for k in n] * special.beta(n, L - n + 1)
                * special.betainc(n, L - n + 1, 1 - EPS)
            )  # fmt: skip
            assert abs(value - expected) < 1e-5 and 0 < agnostic - value < 1e-2
        else:
            assert abs(value - agnostic) < 1e-5 * agnostic


def test_loss_estimators_are_unbiased(net, mask_ce):
    agnostic = np.sum(mask_ce / np.arange(1, L + 1))
    batch = jnp.broadcast_to(X, (1000, L))
    keys = jax.random.split(jax.random.key(0), 40)
    run_agnostic = eqx.filter_jit(jax.vmap(md.time_agnostic_loss, in_axes=(None, 0, None, None)))
    values = np.asarray(run_agnostic(net, keys, batch, V))
    assert abs(values.mean() - agnostic) < 4 * values.std(ddof=1) / np.sqrt(40)
    for name in ("linear", "cosine"):
        fn = eqx.filter_jit(
            jax.vmap(lambda m, k, b, name=name: md.time_conditioned_loss(m, k, b, V, name),
                     in_axes=(None, 0, None))
        )  # fmt: skip
        cond = np.asarray(fn(net, keys, batch))
        assert abs(cond.mean() - agnostic) < 4 * cond.std(ddof=1) / np.sqrt(40)
        assert values.std() < cond.std()  # the time-agnostic loss has lower variance


def test_exact_elbo_and_any_order_form(net, mask_ce):
    agnostic = np.sum(mask_ce / np.arange(1, L + 1))
    assert abs(float(eqx.filter_jit(md.negative_elbo)(net, X, V)) - agnostic) < 1e-4 * agnostic
    orders = jnp.array(list(itertools.permutations(range(L))))
    all_orders = eqx.filter_jit(jax.vmap(md.order_log_likelihood, in_axes=(None, None, 0, None)))
    per_order = np.asarray(all_orders(net, X, orders, V))
    assert abs(-per_order.mean() - agnostic) < 1e-4 * agnostic
    est = eqx.filter_jit(md.any_order_log_likelihood)(jax.random.key(1), net, X, V, 64)
    assert abs(float(est.elbo) - per_order.mean()) < 4 * float(est.elbo_stderr)
    assert float(est.elbo_stderr) > 0  # the orders disagree for this network
    exact_ll = special.logsumexp(per_order) - np.log(len(per_order))
    assert float(est.elbo) <= float(est.log_likelihood) and exact_ll > per_order.mean()


def test_exact_denoiser_every_order_gives_log_probability():
    dist = md.random_markov_chain(2, V, L)
    den = md.exact_denoiser(dist)
    x = jnp.asarray(dist.sequences[int(np.argmax(dist.probs))])
    log_p = np.log(dist.probs.max())
    est = jax.jit(md.any_order_log_likelihood, static_argnums=(3, 4))(
        jax.random.key(0), den, x, V, 8
    )
    np.testing.assert_allclose(est.per_order, log_p, atol=1e-4)
    assert abs(float(jax.jit(md.negative_elbo, static_argnums=2)(den, x, V)) + log_p) < 1e-4


def test_first_hitting_samples_the_any_order_mixture_of_any_denoiser(net):
    # For any denoiser the first-hitting sampler draws from E_sigma p(x | sigma),
    # enumerated here over all 243 sequences and 120 orders.
    seqs = md.markov_chain(np.full(V, 1 / V), np.full((V, V), 1 / V), L).sequences
    orders = jnp.array(list(itertools.permutations(range(L))))
    ll = jax.jit(
        jax.vmap(lambda x: jax.vmap(lambda o: md.order_log_likelihood(net, x, o, V))(orders))
    )(jnp.asarray(seqs))
    probs = np.exp(np.asarray(ll, np.float64)).mean(1)
    assert abs(probs.sum() - 1) < 1e-4
    target = md.SequenceDistribution(seqs, probs / probs.sum(), V)
    n = 10_000
    out = md.sample(net, md.initial_sequences(n, L, V), mask_token=V, seed=5)
    mean, sd = md.tv_noise_floor(target, n)
    tv = md.total_variation(md.empirical_distribution(out.sequences, target), target.probs)
    assert tv < mean + 4 * sd
