"""Ctrl-C stops SMC loops between chunks and keeps the particles and log-evidence so far.

In-process tests raise SIGINT from inside the chunk runner; one subprocess test sends
a real SIGINT to a tempered SMC run from outside and times how fast it stops.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import probkit.smc as smc
from probkit import _chunked, progress
from probkit.progress import Interrupted


@pytest.fixture(autouse=True)
def _no_remembered_paces(monkeypatch):
    # These tests interrupt a given chunk; a pace remembered from an earlier run of the
    # same loop would size the first chunk to cover the whole (short) run.
    monkeypatch.setattr(progress, "_remember_pace", lambda key, seconds_per_step: None)


def _interrupt_on_call(monkeypatch, name: str, call: int):
    calls = {"n": 0}
    original = getattr(_chunked, name)

    def counting(*args):
        calls["n"] += 1
        if calls["n"] == call:
            signal.raise_signal(signal.SIGINT)
        return original(*args)

    monkeypatch.setattr(_chunked, name, counting)


FK = smc.FeynmanKac(
    init=lambda key, n: jax.random.normal(key, (n,)),
    move=lambda key, t, x: 0.5 * x + jax.random.normal(key, x.shape),
    log_potential=lambda t, prev, x: -0.5 * (x - 1.0) ** 2,
    num_steps=40,
)


def test_run_interrupted_keeps_the_steps_done(monkeypatch):
    full = smc.run(FK, num_particles=200, seed=4)
    _interrupt_on_call(monkeypatch, "_run_chunk_jit", 3)
    with pytest.raises(Interrupted, match="after [0-9]+ of 39 SMC steps") as info:
        smc.run(FK, num_particles=200, seed=4)
    done = info.value.steps_done
    partial = info.value.partial_result
    assert 0 < done < 39 and int(partial.num_steps) == done + 1
    # The steps done are the uninterrupted run's first steps, to the bit.
    np.testing.assert_array_equal(partial.ess, full.ess[: done + 1])
    np.testing.assert_array_equal(
        partial.log_evidence_increments, full.log_evidence_increments[: done + 1]
    )
    # The log-evidence so far is the sum of the increments so far (float32 sums).
    np.testing.assert_allclose(
        partial.log_evidence, np.sum(partial.log_evidence_increments), rtol=1e-5
    )
    assert partial.particles.shape == (200,)


def test_run_with_done_interrupted_between_chunks(monkeypatch):
    fk = smc.FeynmanKac(FK.init, FK.move, FK.log_potential, 40, done=lambda s: s.t >= 30)
    full = smc.run(fk, num_particles=100, seed=5)
    assert full.ess.shape == (31,)
    _interrupt_on_call(monkeypatch, "_run_while_jit", 2)
    with pytest.raises(Interrupted, match=r"after [0-9]+ SMC steps") as info:
        smc.run(fk, num_particles=100, seed=5)
    done = info.value.steps_done
    partial = info.value.partial_result
    assert 0 < done < 30 and partial.ess.shape == (done + 1,)
    np.testing.assert_array_equal(partial.ess, full.ess[: done + 1])


def test_particle_filter_interrupted_keeps_the_observations_filtered(monkeypatch):
    ssm = smc.StateSpaceModel(
        dist.Normal(0.0, 1.0),
        lambda t, x: dist.Normal(0.9 * x, 1.0),
        lambda t, x: dist.Normal(x, 1.0),
    )
    ys = jnp.sin(jnp.arange(30.0))
    full = smc.particle_filter(ssm, ys, num_particles=100, seed=1)
    _interrupt_on_call(monkeypatch, "_run_chunk_jit", 2)
    with pytest.raises(Interrupted, match="particle filter") as info:
        smc.particle_filter(ssm, ys, num_particles=100, seed=1)
    done = info.value.steps_done
    partial = info.value.partial_result
    assert partial.filtering_mean.shape == (done + 1,)
    np.testing.assert_array_equal(partial.filtering_mean, full.filtering_mean[: done + 1])
    np.testing.assert_array_equal(partial.log_likelihood_path, full.log_likelihood_path[: done + 1])


SCRIPT = r"""
import json, time
import jax.numpy as jnp, numpyro, numpyro.distributions as dist
import probkit as pk, probkit.smc as smc
from probkit.progress import Interrupted

def model(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    numpyro.sample("y", dist.Normal(mu, 0.1), obs=y)

y = jnp.linspace(-1.0, 1.0, 400)
print("READY", flush=True)
try:
    smc.tempered(pk.from_numpyro(model, y=y), num_particles=4000, kernel="rwm",
                 num_mcmc_steps=200, target_ess=0.95, progress_bar=True)
    out = {"finished": True}
except Interrupted as err:
    r = err.partial_result
    out = {"t": time.time(), "message": str(err), "done": err.steps_done,
           "particles": list(r.particles.shape), "temperatures": len(r.info["temperature"]),
           "log_evidence": float(r.log_evidence)}
print("RESULT" + json.dumps(out), flush=True)
"""


def _collect(stream, sink: list):
    for chunk in iter(lambda: stream.read(1), ""):
        sink.append(chunk)


def test_real_sigint_stops_tempered_smc_within_two_seconds():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    err: list = []
    threading.Thread(target=_collect, args=(proc.stderr, err), daemon=True).start()
    try:
        assert proc.stdout.readline().strip() == "READY"
        # The bar (drawn from inside the loop) counts steps: past the first chunks, the
        # loop is compiled and running.
        deadline = time.time() + 120
        while not any(int(n) >= 4 for n in re.findall(r"step ([0-9]+)", "".join(err))):
            assert time.time() < deadline, "".join(err)[-3000:]
            assert proc.poll() is None, "".join(err)[-3000:]
            time.sleep(0.05)
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, "".join(err)[-3000:]
    result = json.loads(out.split("RESULT", 1)[1])
    assert "finished" not in result
    assert re.search(r"after [0-9]+ tempered SMC steps", result["message"]), result
    assert result["done"] >= 4 and result["temperatures"] == result["done"] + 1
    assert result["particles"] == [4000, 1] and np.isfinite(result["log_evidence"])
    assert result["t"] - sent < 2.0, result
