"""Ctrl-C stops probkit.mcmc.sample between chunks and keeps the draws done.

In-process tests raise SIGINT from inside the chunk runner (a real signal, delivered
to this process's handler); one subprocess test sends real SIGINTs from outside,
mid-sampling, and times how fast the run stops.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import jax.numpy as jnp
import numpy as np
import pytest

import probkit as pk
from probkit import _chunked, progress
from probkit.mcmc import _sample
from probkit.progress import Interrupted


@pytest.fixture(autouse=True)
def _no_remembered_paces(monkeypatch):
    # These tests interrupt a given chunk; a pace remembered from an earlier run of the
    # same loop would size the first chunk to cover the whole (short) run.
    monkeypatch.setattr(progress, "_remember_pace", lambda key, seconds_per_step: None)


TARGET = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum((x - 1.0) ** 2), jnp.zeros(2))


def _interrupt_on(monkeypatch, *, phase: str, call: int):
    """SIGINT during the ``call``-th chunk of ``phase`` ("warm-up" or "sampling")."""
    calls = {"n": 0}
    original = _chunked._run_chunk_jit

    def counting(static, *args):
        sampling = isinstance(static[0], _sample._SampleStep)
        if sampling == (phase == "sampling"):
            calls["n"] += 1
            if calls["n"] == call:
                signal.raise_signal(signal.SIGINT)
        return original(static, *args)

    monkeypatch.setattr(_chunked, "_run_chunk_jit", counting)


SETTINGS = dict(num_warmup=30, num_samples=60, seed=3, diagnose=False)


@pytest.mark.parametrize("chain_method", ["vectorized", "sharded"])
def test_sampling_interrupted_keeps_exactly_the_draws_done(monkeypatch, chain_method):
    num_chains = 2
    kwargs = dict(SETTINGS, kernel="rwm", chain_method=chain_method, num_chains=num_chains)
    full = pk.mcmc.sample(TARGET, **kwargs)
    _interrupt_on(monkeypatch, phase="sampling", call=3)
    with pytest.raises(Interrupted, match="during sampling after") as info:
        pk.mcmc.sample(TARGET, **kwargs)
    err = info.value
    done = err.steps_done
    assert 0 < done < 60
    assert f"after {done} of 60 draws per chain" in str(err)
    partial = err.partial_result
    assert isinstance(partial, pk.MCMCResult)
    assert partial.unconstrained.shape == (num_chains, done, 2)
    # The same keys per transition: the draws done are the uninterrupted run's first ones.
    np.testing.assert_array_equal(partial.unconstrained, full.unconstrained[:, :done])
    assert np.asarray(partial.last_state.num_transitions).tolist() == [done] * num_chains
    assert partial.to_arviz().posterior.sizes["draw"] == done


def test_warmup_interrupted_says_so_and_keeps_nothing(monkeypatch):
    _interrupt_on(monkeypatch, phase="warm-up", call=2)
    with pytest.raises(Interrupted, match="during warm-up after .* no draws") as info:
        pk.mcmc.sample(TARGET, kernel="rwm", num_chains=2, **SETTINGS)
    assert info.value.partial_result is None
    assert 0 < info.value.steps_done < 30


def test_sequential_keeps_the_finished_chains(monkeypatch):
    # Chain 1's sampling takes chunks 1..k; chain 2's sampling starts after it.
    kwargs = dict(SETTINGS, kernel="rwm", chain_method="sequential", num_chains=2)
    full = pk.mcmc.sample(TARGET, **kwargs)
    calls = {"n": 0, "chain2": False}
    original = _chunked._run_chunk_jit

    def counting(static, carry, ys, start, stop):
        if isinstance(static[0], _sample._SampleStep):
            if int(start) == 0:
                calls["n"] += 1
            if calls["n"] == 2 and int(start) > 0 and not calls["chain2"]:
                calls["chain2"] = True
                signal.raise_signal(signal.SIGINT)
        return original(static, carry, ys, start, stop)

    monkeypatch.setattr(_chunked, "_run_chunk_jit", counting)
    with pytest.raises(Interrupted, match="of chain 2/2 .* 1 finished chain") as info:
        pk.mcmc.sample(TARGET, **kwargs)
    partial = info.value.partial_result
    assert partial.unconstrained.shape == (1, 60, 2)
    np.testing.assert_array_equal(partial.unconstrained, full.unconstrained[:1])


def test_a_second_run_compiles_nothing(backend_compile_seconds):
    kwargs = dict(SETTINGS, kernel="rwm", num_chains=2)
    pk.mcmc.sample(TARGET, **kwargs)
    backend_compile_seconds.clear()
    pk.mcmc.sample(TARGET, **dict(kwargs, seed=9))  # one program per chunk length, not per chunk
    assert backend_compile_seconds == []


SCRIPT = r"""
import json, sys, time
import jax.numpy as jnp
import probkit as pk
from probkit.progress import Interrupted

target = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum((x - 1.0) ** 2), jnp.zeros(2))
runs = [
    dict(kernel="rwm", progress_bar=True),
    dict(kernel="rwm", progress_bar=False),  # compiled above: sampling starts at once
    dict(kernel="rwm", chain_method="sharded", progress_bar=True),
    dict(kernel="chees", progress_bar=True),
]
for kwargs in runs:
    print("READY", flush=True)
    try:
        # Forty million transitions: far longer than the test waits.
        pk.mcmc.sample(target, num_chains=4, num_warmup=50, num_samples=200_000,
                       thinning=200, diagnose=False, **kwargs)
        out = {"finished": True}
    except Interrupted as err:
        shape = None if err.partial_result is None else err.partial_result.unconstrained.shape
        out = {"t": time.time(), "message": str(err), "shape": shape, "done": err.steps_done}
    print("RESULT" + json.dumps(out), flush=True)
"""


class _Reader:
    """Collects a pipe's text in a thread (tqdm writes with carriage returns)."""

    def __init__(self, stream):
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for chunk in iter(lambda: stream.read(1), ""):
            self.text += chunk

    def wait_for_progress(self, desc: str, start: int, timeout: float) -> int:
        """Until a bar labelled ``desc`` counts past its first chunks (compiled)."""
        pattern = re.compile(re.escape(desc) + r":[^|]*\|[^|]*\| *([0-9]+)/")
        deadline = time.time() + timeout
        while time.time() < deadline:
            for match in pattern.finditer(self.text, start):
                if int(match.group(1)) > 3:
                    return match.end()
            time.sleep(0.05)
        raise AssertionError(f"no progress of {desc!r}; output so far:\n{self.text[-3000:]}")

    def wait_for(self, needle: str, start: int, timeout: float) -> int:
        deadline = time.time() + timeout
        while time.time() < deadline:
            at = self.text.find(needle, start)
            if at >= 0:
                return at + len(needle)
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not seen; output so far:\n{self.text[-3000:]}")


def test_real_sigint_stops_sampling_within_two_seconds():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    out, err = _Reader(proc.stdout), _Reader(proc.stderr)
    try:
        at_out = 0
        for bar in (True, False, True, True):
            at_out = out.wait_for("READY", at_out, 120)
            at_err = len(err.text)  # this run's bar only
            if bar:  # the bar shows sampling under way
                at_err = err.wait_for_progress("sampling", at_err, 120)
            else:
                time.sleep(2.5)  # warm-up of 50 steps is long done
            sent = time.time()
            proc.send_signal(signal.SIGINT)
            at_out = out.wait_for("RESULT", at_out, 60)
            line = out.text[at_out:].split("\n", 1)
            while len(line) < 2:
                time.sleep(0.05)
                line = out.text[at_out:].split("\n", 1)
            result = json.loads(line[0])
            assert "finished" not in result
            assert "during sampling after" in result["message"], result["message"]
            assert result["shape"] == [4, result["done"], 2]
            # About a second: chunks aim at 0.5 s; allow for a loaded machine.
            assert result["t"] - sent < 2.0, result
        proc.wait(timeout=60)
        assert proc.returncode == 0, err.text[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_one_loop_interrupted_with_thinning_continues_exactly(monkeypatch):
    # NUTS warms up and samples in one loop (_TunedStep); its sampling phase is
    # chunked by draws, so Ctrl-C stops between draws and last_state continues the run.
    kwargs = dict(SETTINGS, kernel="nuts", num_chains=2, thinning=3)
    full = pk.mcmc.sample(TARGET, **kwargs)
    calls = {"n": 0}
    original = _chunked._run_chunk_jit

    def counting(static, carry, ys, start, stop):
        if isinstance(static[0], _sample._TunedStep) and int(start) >= SETTINGS["num_warmup"]:
            calls["n"] += 1
            if calls["n"] == 3:
                signal.raise_signal(signal.SIGINT)
        return original(static, carry, ys, start, stop)

    monkeypatch.setattr(_chunked, "_run_chunk_jit", counting)
    with pytest.raises(Interrupted, match="during sampling after") as info:
        pk.mcmc.sample(TARGET, **kwargs)
    monkeypatch.setattr(_chunked, "_run_chunk_jit", original)
    done = info.value.steps_done
    assert 0 < done < 60
    partial = info.value.partial_result
    np.testing.assert_array_equal(partial.unconstrained, full.unconstrained[:, :done])
    assert np.asarray(partial.last_state.num_transitions).tolist() == [3 * done] * 2
    rest = pk.mcmc.sample(
        TARGET,
        kernel="nuts",
        num_chains=2,
        thinning=3,
        num_samples=60 - done,
        seed=3,
        init_state=partial.last_state,
        diagnose=False,
    )
    joined = np.concatenate([partial.unconstrained, rest.unconstrained], axis=1)
    # Same parameters and transition keys: the draws of the uninterrupted run, up to
    # XLA's rounding (the continued run is compiled as a program of its own).
    np.testing.assert_allclose(joined, full.unconstrained, atol=1e-5)
