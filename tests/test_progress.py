"""interruptible_scan: lax.scan's results, one compile, and Ctrl-C that keeps the steps done."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probkit.progress import Interrupted, interruptible_scan, run_in_chunks


def _decay(c, x):
    return 0.99 * c + x, c


def test_equals_lax_scan():
    xs = jnp.linspace(0.0, 1.0, 257)
    expected = jax.lax.scan(_decay, jnp.zeros(()), xs)
    got = interruptible_scan(_decay, jnp.zeros(()), xs, chunk_seconds=1e-6)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_length_without_xs_and_pytree_outputs():
    def body(c, _):
        return c + 1, {"c": c, "twice": 2 * c}

    carry, ys = interruptible_scan(body, jnp.zeros((), jnp.int32), length=7)
    assert int(carry) == 7
    assert ys["twice"].tolist() == [0, 2, 4, 6, 8, 10, 12]
    carry, ys = interruptible_scan(body, jnp.zeros((), jnp.int32), length=0)
    assert int(carry) == 0 and ys["c"].shape == (0,)


def test_new_data_of_the_same_shapes_compiles_nothing(backend_compile_seconds):
    scale = jnp.float32(2.0)
    step = jax.tree_util.Partial(lambda a, c, x: (c + a * x, c), scale)
    xs, init = jnp.ones(50), jnp.zeros(())
    interruptible_scan(step, init, xs)
    other = jax.tree_util.Partial(step.func, jnp.float32(3.0))
    init = jnp.zeros(())
    backend_compile_seconds.clear()
    carry, _ = interruptible_scan(other, init, xs)
    assert float(carry) == 150.0
    assert backend_compile_seconds == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"xs": None}, "needs `length`"),
        ({"xs": jnp.ones(3), "length": 4}, "differs from the leading axis"),
        ({"xs": jnp.ones(3), "chunk_seconds": 0.0}, "chunk_seconds"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        interruptible_scan(_decay, jnp.zeros(()), **kwargs)


SCRIPT = r"""
import json, sys, time
import jax, jax.numpy as jnp
from probkit.progress import Interrupted, interruptible_scan
M = jax.random.normal(jax.random.key(0), (200, 200)) / 15
# No per-step output: the compiled chunk does not depend on the loop's length, so a
# short first call compiles everything the long one runs.
step = jax.tree_util.Partial(lambda M, c, x: (jnp.tanh(M @ c), None), M)
interruptible_scan(step, jnp.ones(200), length=5)
init = jnp.ones(200)
print("READY", flush=True)
try:
    interruptible_scan(step, init, length=50_000_000)
except Interrupted as err:
    print("RESULT" + json.dumps({"done": err.steps_done, "carry": float(err.carry[0]),
                                 "message": str(err), "t": time.time()}), flush=True)
"""


def test_sigint_stops_within_a_second_and_keeps_the_steps_done():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout.readline().strip() == "READY"
    time.sleep(2.0)  # well into the loop
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    result = json.loads(out.split("RESULT", 1)[1])
    assert result["done"] > 0 and abs(result["carry"]) <= 1.0
    assert "interrupted after" in result["message"]
    # "About a second": the chunks aim at 0.5 s; allow for a loaded machine.
    assert result["t"] - sent < 2.0


def test_interrupted_is_a_keyboard_interrupt():
    assert issubclass(Interrupted, KeyboardInterrupt)


def test_interrupted_keeps_the_outputs_of_the_steps_done(monkeypatch):
    # Simulate a Ctrl-C that arrives during the third chunk.
    from probkit import progress

    calls = {"n": 0}
    original = progress._run_chunk_jit

    def counting(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            signal.raise_signal(signal.SIGINT)
        return original(*args)

    monkeypatch.setattr(progress, "_run_chunk_jit", counting)
    xs = jnp.arange(100.0)
    with pytest.raises(Interrupted) as info:
        interruptible_scan(_decay, jnp.zeros(()), xs, chunk_seconds=1e-6)
    done = info.value.steps_done
    assert 0 < done < 100
    expected_carry, expected_ys = jax.lax.scan(_decay, jnp.zeros(()), xs[:done])
    np.testing.assert_allclose(info.value.carry, expected_carry, rtol=1e-6)
    np.testing.assert_allclose(info.value.ys, expected_ys, rtol=1e-6)


@pytest.fixture
def paces(monkeypatch):
    """An empty pace memory for this test (the module's own is left as it was)."""
    import collections

    from probkit import progress

    monkeypatch.setattr(progress, "_PACES", collections.OrderedDict())
    return progress


def _counting_add(sizes):
    add = jax.jit(lambda c, a, b: c + (b - a))

    def run(state, start, stop):
        sizes.append(int(stop) - int(start))
        return add(state, start, stop)

    return run


def test_a_remembered_pace_sizes_the_first_chunk_and_keeps_the_result(paces):
    progress = paces
    key = ("test", "remembered pace")
    first, second = [], []
    a = run_in_chunks(_counting_add(first), lambda: jnp.zeros((), jnp.int32), 5000, pace_key=key)
    assert first[:2] == [1, 2]  # no pace yet: short chunks time the step
    assert key in progress._PACES
    b = run_in_chunks(_counting_add(second), lambda: jnp.zeros((), jnp.int32), 5000, pace_key=key)
    assert int(a) == int(b) == 5000
    # The pace kept is the slowest chunk's (here the 2-step one, dominated by its
    # dispatch): the next run starts with a chunk sized from it, not with 1 and 2 steps.
    assert second[0] > 2 and len(second) < len(first)
    third = []
    run_in_chunks(_counting_add(third), lambda: jnp.zeros((), jnp.int32), 5000, pace_key=key)
    assert third == [5000]  # microsecond steps, 0.5 s chunks: the whole run at once


def test_a_remembered_pace_bounds_the_first_chunk(paces):
    progress = paces
    key = ("test", "slow pace")
    progress._remember_pace(key, 0.01)  # 10 ms per step: 0.5 s chunks of 50 steps
    sizes = []
    run_in_chunks(_counting_add(sizes), lambda: jnp.zeros((), jnp.int32), 60, pace_key=key)
    assert sizes[0] == 50
    assert sum(sizes) == 60


def test_the_pace_memory_is_bounded(paces):
    progress = paces
    for i in range(progress._MAX_PACES + 10):
        progress._remember_pace(("test", "bound", i), 1e-3)
    assert len(progress._PACES) <= progress._MAX_PACES
    assert ("test", "bound", progress._MAX_PACES + 9) in progress._PACES
    assert ("test", "bound", 0) not in progress._PACES
