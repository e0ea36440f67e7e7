"""Score networks and denoising score matching (probkit.models.diffusion).

The DSM loss is checked exactly: its minimiser is the true score, which Gaussian-mixture
data give in closed form (probkit.sde.exact_score), so the loss's gradient along any
direction vanishes there in expectation (mean over 20 independent batches within 4
standard errors of 0) and not at a perturbed score.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import probkit.models.diffusion as diffusion
import pytest

from probkit.sde import VPSDE, exact_score, gaussian_mixture

DATA = gaussian_mixture(
    jnp.array([0.4, 0.6]), jnp.array([[-1.5, 0.0], [1.0, 1.0]]), jnp.array([0.3, 0.5])
)


class _Oracle(eqx.Module):
    """eps_hat = -s(t) grad log p_t (the DSM minimiser) plus c * x."""

    sde: VPSDE
    c: jax.Array

    @property
    def null_label(self):
        return 0

    def __call__(self, x, t, label=None):
        return -self.sde.marginal(t)[1] * exact_score(DATA, self.sde)(x, t) + self.c * x


@eqx.filter_jit
def _gradients(weighting, c, keys):
    sde = VPSDE()

    def one(key):
        x0 = DATA.sample(jax.random.fold_in(key, 0), 2000)

        def loss(c):
            return diffusion.dsm_loss(_Oracle(sde, c), sde, key, x0, weighting=weighting)

        return jax.grad(loss)(c)

    return jax.vmap(one)(keys)


@pytest.mark.parametrize("weighting", ["noise", "likelihood"])
def test_dsm_loss_is_minimised_by_the_exact_score(weighting):
    keys = jax.random.split(jax.random.key(0), 20)
    grads = np.asarray(_gradients(weighting, jnp.asarray(0.0), keys))
    assert abs(grads.mean()) < 4 * grads.std(ddof=1) / np.sqrt(len(grads))
    grads = np.asarray(_gradients(weighting, jnp.asarray(0.3), keys))
    assert grads.mean() > 10 * grads.std(ddof=1) / np.sqrt(len(grads))


def test_training_learns_the_score_of_a_mixture():
    sde = VPSDE()
    data = DATA.sample(jax.random.key(1), 8000)
    net = diffusion.ScoreNetwork((2,), key=jax.random.key(2), width=32, depth=2)
    result = diffusion.fit(net, sde, data, num_steps=1500, batch_size=256, learning_rate=3e-3)
    assert result.losses[-100:].mean() < result.losses[:100].mean()

    def relative_error(model):
        score = diffusion.score_fn(model, sde)
        errors = []
        for t in (0.3, 0.6):
            m, s = sde.marginal(t)
            x = m * data[:2000] + s * jax.random.normal(jax.random.key(3), (2000, 2))
            got = jax.vmap(score, in_axes=(0, None))(x, t)
            want = jax.vmap(exact_score(DATA, sde), in_axes=(0, None))(x, t)
            errors.append(jnp.sqrt(jnp.sum((got - want) ** 2) / jnp.sum(want**2)))
        return np.array(errors)

    # A learned model, so no Monte Carlo bound: 1500 steps of a 2 x 32 MLP reach
    # relative L2 errors of 0.07 (t = 0.3) and 0.035 (t = 0.6) (measured; small t, where
    # the score is large and sharp, needs far longer training); untrained: ~1.
    trained, untrained = relative_error(result.model), relative_error(net)
    assert np.all(trained < 0.15), trained
    assert np.all(untrained > 0.5), untrained


def test_label_dropout_trains_only_the_null_label():
    sde = VPSDE()
    net = diffusion.ScoreNetwork((2,), key=jax.random.key(0), width=16, depth=1, num_classes=3)
    x0 = DATA.sample(jax.random.key(1), 64)
    labels = jnp.arange(64) % 3

    @eqx.filter_jit
    def embedding_gradient(dropout):
        grads = eqx.filter_grad(diffusion.dsm_loss)(
            net, sde, jax.random.key(2), x0, labels, label_dropout=dropout
        )
        return jnp.abs(grads.label_embedding.weight).sum(axis=1)

    # dropout as an array: one compilation for both values
    all_dropped = np.asarray(embedding_gradient(jnp.asarray(1.0)))
    none_dropped = np.asarray(embedding_gradient(jnp.asarray(0.0)))
    assert np.all(all_dropped[:3] == 0) and all_dropped[3] > 0
    assert np.all(none_dropped[:3] > 0) and none_dropped[3] == 0
    x = jnp.array([0.3, -0.2])
    evaluate = eqx.filter_jit(lambda score: score(x, 0.4))
    outputs = [evaluate(diffusion.score_fn(net, sde, label)) for label in (0, 1, None, 3)]
    assert not np.allclose(outputs[0], outputs[1])
    np.testing.assert_allclose(outputs[2], outputs[3])  # None is the null label, 3


def test_save_and_load_round_trip(tmp_path):
    net = diffusion.ScoreNetwork(
        (3,), key=jax.random.key(0), width=8, depth=2, num_classes=2, input_features=4
    )
    path = tmp_path / "net.eqx"
    diffusion.save(path, net)
    loaded = diffusion.load(path)
    x = jnp.array([0.1, 0.2, 0.3])
    np.testing.assert_array_equal(loaded(x, 0.5, 1), net(x, 0.5, 1))
    assert loaded.num_classes == 2 and loaded.event_shape == (3,)


def test_toy_data_and_bad_input():
    x = diffusion.checkerboard(jax.random.key(0), 500)
    assert bool(diffusion.in_checkerboard(x).all())
    # a shifted board lands on the light squares
    assert not bool(diffusion.in_checkerboard(x + jnp.array([1.0, 0.0])).any())
    rings, labels = diffusion.rings(jax.random.key(1), 300)
    radius = np.linalg.norm(np.asarray(rings), axis=-1)
    np.testing.assert_allclose(radius, np.asarray(labels) + 1.0, atol=0.5)
    net = diffusion.ScoreNetwork((2,), key=jax.random.key(0), width=8, depth=1)
    with pytest.raises(ValueError, match="event_shape"):
        net(jnp.zeros(3), 0.5)
    with pytest.raises(ValueError, match="unconditional"):
        diffusion.fit(net, VPSDE(), x, labels=jnp.zeros(500, int))
    with pytest.raises(ValueError, match="data must have shape"):
        diffusion.fit(net, VPSDE(), jnp.zeros((10, 3)))
    with pytest.raises(ValueError, match="weighting"):
        diffusion.dsm_loss(net, VPSDE(), jax.random.key(0), x, weighting="snr")
    with pytest.raises(ValueError, match="label"):
        diffusion.score_fn(net, VPSDE(), label=1)
