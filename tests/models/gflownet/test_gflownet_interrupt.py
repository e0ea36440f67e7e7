"""Ctrl-C stops gflownet.train between chunks and keeps a usable partial GFlowNet.

The interrupt is a real SIGINT raised in this process from inside the chunk runner (as
tests/mcmc/test_mcmc_interrupt.py does); the runs are small, so that the chunked loop
can be compared with one ``lax.scan`` of the same steps.
"""

import signal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import probkit.models.gflownet as gflownet
import pytest
from probkit.models.gflownet import _training

from probkit import progress
from probkit.progress import Interrupted

ENV = gflownet.HyperGrid(ndim=2, height=4)
SMALL = dict(num_trajectories=8 * 300, batch_size=8, width=16, seed=3, eval_every=10)


def _leaves(gfn):
    return jax.tree.leaves(eqx.filter(gfn.policy, eqx.is_inexact_array))


def _interrupt_on(monkeypatch, call: int):
    """SIGINT during the ``call``-th chunk (the loop stops after that chunk)."""
    calls = {"n": 0}
    original = progress._run_chunk_jit

    def counting(*args):
        calls["n"] += 1
        if calls["n"] == call:
            signal.raise_signal(signal.SIGINT)
        return original(*args)

    monkeypatch.setattr(progress, "_run_chunk_jit", counting)


def test_uninterrupted_training_equals_one_lax_scan(monkeypatch):
    # The previous implementation was one lax.scan over the same step: record what train
    # hands the chunked loop and run it through lax.scan instead.
    chunked = gflownet.fit(ENV, **SMALL)

    def scan(f, init, xs, **_):
        return jax.jit(lambda c, x: jax.lax.scan(lambda a, b: f(a, b), c, x))(init, xs)

    monkeypatch.setattr(_training, "interruptible_scan", scan)
    scanned = gflownet.fit(ENV, **SMALL)
    for a, b in zip(chunked.history, scanned.history, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(_leaves(chunked), _leaves(scanned), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_interrupted_training_keeps_the_first_steps(monkeypatch):
    full = gflownet.fit(ENV, **SMALL)
    _interrupt_on(monkeypatch, call=3)
    with pytest.raises(Interrupted, match="interrupted after") as info:
        gflownet.fit(ENV, **SMALL)
    err = info.value
    done, num_steps = err.steps_done, 300
    assert 0 < done < num_steps
    assert f"after {done} of {num_steps} steps ({done * 8} of 2400 trajectories)" in str(err)
    partial = err.partial_result
    assert isinstance(partial, gflownet.GFlowNet)
    # The same keys per step: the steps done are the uninterrupted run's first ones.
    np.testing.assert_array_equal(partial.history.loss, full.history.loss[:done])
    np.testing.assert_array_equal(partial.history.log_z, full.history.log_z[:done])
    evals = done // 10
    assert partial.history.l1.shape == (evals,)
    np.testing.assert_array_equal(partial.history.l1, full.history.l1[:evals])
    np.testing.assert_array_equal(partial.history.trajectories, full.history.trajectories[:evals])
    # log Z is a parameter: after k steps it is the full run's value after step k.
    assert float(partial.policy.log_z) == float(full.history.log_z[done - 1])
    # The partial result samples.
    states, log_probs = partial.sample(jax.random.key(0), 5)
    assert states.shape == (5, 2) and bool(jnp.all(jnp.isfinite(log_probs)))


def test_float_seeds_and_keys_are_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="seed must be an int"):
        gflownet.fit(ENV, num_trajectories=64, seed=1.5)
    with pytest.raises(ValueError, match="seed must be an int"):
        gflownet.fit(ENV, num_trajectories=64, seed=2.0)
    gfn = gflownet.fit(ENV, **SMALL)  # compiled above
    with pytest.raises(TypeError, match="key must be a jax.random key"):
        gfn.sample(0.5, 10)
    with pytest.raises(TypeError, match="key must be a jax.random key"):
        gfn.sample(3, 10)
    with pytest.raises(ValueError, match="num_samples must be an int"):
        gfn.sample(jax.random.key(0), 10.0)
    with pytest.raises(TypeError, match="key must be a jax.random key"):
        gflownet.sample_trajectories(1.0, gfn.policy, ENV, 4)
    with pytest.raises(TypeError, match="key must be a jax.random key"):
        gflownet.importance_samples(1.0, gfn.policy, ENV, 4)
    with pytest.raises(TypeError, match="key must be a jax.random key"):
        gflownet.Policy(ENV, key=0.0)
    with pytest.raises(ValueError, match="schedule must be"):
        gflownet.fit(ENV, num_trajectories=64, schedule="linear")
