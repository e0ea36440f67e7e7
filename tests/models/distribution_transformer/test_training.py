"""Forward-KL training: the loss is -log q(z) of the network's GMM, a few optax steps on a
fixed batch lower it, weights round-trip through save/load, and bad arguments fail early."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from probkit.models.distribution_transformer import (
    fit,
    forward_kl_loss,
    init_model,
    linear_gaussian_task,
    load,
    save,
    train_step,
)

from probkit.sde import log_prob_from_cholesky

TASK = linear_gaussian_task(1)
_loss = eqx.filter_jit(forward_kl_loss)
_sample_batch = jax.jit(jax.vmap(TASK.sample_query))  # one compilation, not op by op


def test_loss_of_untrained_model_is_prior_nll():
    batch = _sample_batch(jax.random.split(jax.random.key(0), 16))
    net = init_model(TASK, key=jax.random.key(1), width=16, depth=1)
    expected = -jnp.mean(
        jax.vmap(log_prob_from_cholesky)(
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
    # Deterministic (fixed batch, full-batch Adam): the loss must drop clearly. Judged on
    # the last ten steps, not the last one: a single Adam step can spike (here step 40
    # takes the loss from -1.5 back to +0.77, depending on the dependencies' rounding).
    start, end = losses[0], float(np.mean(losses[-10:]))
    assert end < start - 1.0, (start, end, losses[-10:])

    path = tmp_path / "net.eqx"
    save(path, trained)
    again = load(path)
    np.testing.assert_array_equal(
        np.asarray(_loss(again, batch)), np.asarray(_loss(trained, batch))
    )


def test_train_argument_errors():
    with pytest.raises(ValueError, match="unknown task"):
        fit("poisson_3d", num_steps=1)
    with pytest.raises(ValueError, match="num_steps must be an int >= 1"):
        fit("linear_gaussian_1d", num_steps=0)
    with pytest.raises(ValueError, match="residual_decay must be >= 0"):
        fit("linear_gaussian_1d", num_steps=1, residual_decay=-1.0)
    net = init_model(linear_gaussian_task(2), key=jax.random.key(0), width=16, depth=1)
    with pytest.raises(ValueError, match="does not fit task"):
        fit("linear_gaussian_1d", model=net, num_steps=1)


def test_train_refuses_float_seeds_and_sizes():
    with pytest.raises(ValueError, match="seed must be an int"):
        fit("linear_gaussian_1d", num_steps=1, seed=1.0)
    with pytest.raises(ValueError, match="batch_size must be an int"):
        fit("linear_gaussian_1d", num_steps=1, batch_size=8.0)
    with pytest.raises(TypeError, match="key must be a jax.random key"):
        init_model(TASK, key=0.0)
    with pytest.raises(TypeError, match="key must be a jax.random key"):
        TASK.sample_query(1.5)


SMALL = dict(num_steps=6, batch_size=4, width=16, depth=1, num_heads=2, residual_decay=0.5)


def _scan_reference(num_steps, **kwargs):
    """The same training as one jitted ``lax.scan`` (the loop of earlier versions)."""
    from probkit.models.distribution_transformer import _training

    key_init, key_train = jax.random.split(jax.random.key(0))
    net = init_model(TASK, key=key_init, width=16, depth=1, num_heads=2)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    opt = _training._default_optimizer(1e-3, num_steps)  # the default of fit
    body = _training._TrainBody(static, TASK.sample_query, opt, 4, 0.5)

    @jax.jit
    def run(params, keys):
        return jax.lax.scan(lambda c, k: body(c, k), (params, opt.init(params)), keys)

    (params, _), losses = run(params, jax.random.split(key_train, num_steps))
    return eqx.combine(params, static), losses


def _leaves(model):
    return jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))


@pytest.mark.slow  # two compilations of a training step: ~20-40 s on a shared core
def test_chunked_training_equals_one_scan():
    result = fit(TASK, **SMALL)
    model, losses = _scan_reference(SMALL["num_steps"])
    # The same float32 steps, compiled as a chunked loop and as one scan: equal up to
    # XLA's rounding of differently fused programs.
    np.testing.assert_allclose(np.asarray(result.losses), np.asarray(losses), rtol=1e-5)
    for a, b in zip(_leaves(result.model), _leaves(model), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


def test_ctrl_c_keeps_the_steps_done(monkeypatch, backend_compile_seconds):
    import signal

    from probkit import progress
    from probkit.progress import Interrupted

    full = fit(TASK, **SMALL)
    calls = {"n": 0}
    original = progress._run_chunk_jit

    def counting(*args):
        calls["n"] += 1
        if calls["n"] == 2:  # chunk 1 is one step, chunk 2 two more: stop after 3
            signal.raise_signal(signal.SIGINT)
        return original(*args)

    monkeypatch.setattr(progress, "_run_chunk_jit", counting)
    backend_compile_seconds.clear()
    with pytest.raises(Interrupted, match="interrupted after 3 of 6 steps") as info:
        fit(TASK, **SMALL)
    # The same settings: the compiled loop is reused (the one compilation allowed is the
    # slice of the loss history to the steps done).
    assert len(backend_compile_seconds) <= 1
    partial = info.value.partial_result
    assert info.value.steps_done == 3
    assert isinstance(partial, type(full))
    # The same keys per step: the steps done are the uninterrupted run's first three.
    np.testing.assert_array_equal(np.asarray(partial.losses), np.asarray(full.losses[:3]))
    # And the partial network is the full run's after 3 steps: its loss on the 4th batch
    # (the keys of fit: seed 0 split for the steps) is the full run's 4th loss.
    batch = jax.vmap(TASK.sample_query)(
        jax.random.split(jax.random.split(jax.random.split(jax.random.key(0))[1], 6)[3], 4)
    )
    np.testing.assert_allclose(float(_loss(partial.model, batch)), float(full.losses[3]), rtol=1e-5)
