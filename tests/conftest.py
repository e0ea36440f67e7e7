"""Shared test settings (CPU JAX) and the runner for tests on simulated devices."""

import json
import os
import subprocess
import sys

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests that count compilations must see them: no persistent cache unless a test
# turns it on (tests/test_compilation_cache.py does, in subprocesses).
os.environ["PROBKIT_COMPILATION_CACHE"] = "off"


@pytest.fixture
def run_on_eight_devices():
    """Run a Python script on 8 simulated CPU devices; return the JSON it prints.

    The device count is fixed when JAX starts, so the script runs in a subprocess; it
    must print ``"RESULT" + json.dumps(...)`` as its last output.
    """

    def run(script: str) -> dict:
        flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags.strip()}
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.split("RESULT", 1)[1])

    return run


@pytest.fixture
def backend_compile_seconds():
    """A list that collects the seconds of every XLA compilation from now on.

    Clear it before the call under test; ``sum(...)`` is then that call's compile time.
    """
    import jax.monitoring

    seconds: list[float] = []

    def record(event: str, secs: float, **_) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            seconds.append(secs)

    jax.monitoring.register_event_duration_secs_listener(record)
    return seconds


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's in-memory compiled programs after each test module.

    A worker runs hundreds of tests; without this its memory grows by every program
    any test compiled (several GB by the end of the suite).
    """
    yield
    import gc

    import jax

    jax.clear_caches()
    gc.collect()
