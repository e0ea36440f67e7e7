"""Forward-KL training: the loss is -log q(z) of the network's GMM, a few optax steps on a
fixed batch lower it, weights round-trip through save/load, and bad arguments fail early."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from probkit.models.distribution_transformer import (
    forward_kl_loss,
    init_model,
    linear_gaussian_task,
    load,
    save,
    train,
    train_step,
)
from probkit.models.distribution_transformer._gmm import gmm_log_prob_cholesky

TASK = linear_gaussian_task(1)
_loss = eqx.filter_jit(forward_kl_loss)
_sample_batch = jax.jit(jax.vmap(TASK.sample_query))  # one compilation, not op by op


def test_loss_of_untrained_model_is_prior_nll():
    batch = _sample_batch(jax.random.split(jax.random.key(0), 16))
    net = init_model(TASK, key=jax.random.key(1), width=16, depth=1)
    expected = -jnp.mean(
        jax.vmap(gmm_log_prob_cholesky)(
            batch.log_weights, batch.means, batch.cholesky, batch.latent
        )
    )
    np.testing.assert_allclose(float(_loss(net, batch)), float(expected), rtol=1e-5)


def test_optax_steps_lower_the_loss_on_a_fixed_batch(tmp_path):
    batch = _sample_batch(jax.random.split(jax.random.key(0), 16))
    net = init_model(TASK, key=jax.random.key(1), width=16, depth=1)
    opt = optax.adam(3e-3)
    state = opt.init(eqx.filter(net, eqx.is_inexact_array))

    step = eqx.filter_jit(train_step)
    losses = []
    trained = net
    for _ in range(40):
        trained, state, loss = step(trained, state, opt, batch)
        losses.append(float(loss))
    start, end = losses[0], float(_loss(trained, batch))
    # Deterministic (fixed batch, full-batch Adam): the loss must drop clearly.
    assert end < start - 0.1, (start, end)

    path = tmp_path / "net.eqx"
    save(path, trained)
    again = load(path)
    np.testing.assert_array_equal(
        np.asarray(_loss(again, batch)), np.asarray(_loss(trained, batch))
    )


def test_train_argument_errors():
    with pytest.raises(ValueError, match="unknown task"):
        train("poisson_3d", num_steps=1)
    with pytest.raises(ValueError, match="num_steps must be a positive int"):
        train("linear_gaussian_1d", num_steps=0)
    with pytest.raises(ValueError, match="residual_decay must be >= 0"):
        train("linear_gaussian_1d", num_steps=1, residual_decay=-1.0)
    net = init_model(linear_gaussian_task(2), key=jax.random.key(0), width=16, depth=1)
    with pytest.raises(ValueError, match="does not fit task"):
        train("linear_gaussian_1d", model=net, num_steps=1)
