"""XLA:CPU's thread pool: one thread on small machines, overridable, never the user's NPROC."""

import os
import subprocess
import sys

import pytest

from probkit import _cpu_threads

_PROBE = """
import os, sys
{before}
import probkit as pk
import jax.numpy as jnp
jnp.ones(3).sum().block_until_ready()  # starts the CPU backend
names = []
for tid in os.listdir("/proc/self/task"):
    try:
        names.append(open(f"/proc/self/task/{{tid}}/comm").read().strip())
    except OSError:
        pass
print(os.environ.get("NPROC"), pk.cpu_threads(), sum(n.endswith("XLAEigen") for n in names))
"""


def _probe(env: dict, before: str = "") -> tuple[str, str, int]:
    environment = {k: v for k, v in os.environ.items() if k not in ("NPROC", "XLA_FLAGS")}
    environment.pop(_cpu_threads.ENVIRONMENT_VARIABLE, None)
    environment.update(env, JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(before=before)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    return out[0], out[1], int(out[2])


@pytest.mark.parametrize(
    ("value", "cores", "threads"),
    [
        ("auto", 1, 1),
        ("auto", 2, 1),
        ("", 2, 1),
        ("auto", 3, None),
        ("auto", 64, None),
        ("xla", 2, None),
        ("3", 2, 3),
        (" 1 ", 64, 1),
    ],
)
def test_setting_is_read_as_documented(value, cores, threads):
    assert _cpu_threads._wanted(value, cores) == threads


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_a_bad_setting_names_the_variable_and_the_fix(value):
    with pytest.raises(ValueError, match="PROBKIT_CPU_THREADS=.*'auto'.*'xla'"):
        _cpu_threads._wanted(value, 2)


needs_proc = pytest.mark.skipif(
    not os.path.isdir("/proc/self/task"), reason="counts threads through /proc (Linux)"
)


@needs_proc
def test_the_setting_reaches_xla_thread_pool():
    # XLA's CPU client sizes its pool from NPROC when it starts: count its threads.
    assert _probe({"PROBKIT_CPU_THREADS": "1"}) == ("1", "1", 1)
    assert _probe({"PROBKIT_CPU_THREADS": "3"}) == ("3", "3", 3)


@needs_proc
def test_xla_default_and_the_users_nproc_are_left_alone():
    cores = len(os.sched_getaffinity(0))
    nproc, threads, pool = _probe({"PROBKIT_CPU_THREADS": "xla"})
    assert (nproc, threads, pool) == ("None", "None", cores)
    assert _probe({"NPROC": "2", "PROBKIT_CPU_THREADS": "1"}) == ("2", "2", 2)


@needs_proc
def test_a_backend_started_before_probkit_is_not_touched():
    # Too late to size the pool: probkit must not pretend it did (nor leak NPROC).
    before = "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()"
    cores = len(os.sched_getaffinity(0))
    assert _probe({"PROBKIT_CPU_THREADS": "1"}, before=before) == ("None", "None", cores)


def test_a_bad_setting_warns_at_import_and_keeps_the_default():
    environment = {k: v for k, v in os.environ.items() if k != "NPROC"}
    environment.update(PROBKIT_CPU_THREADS="lots", JAX_PLATFORMS="cpu")
    run = subprocess.run(
        [sys.executable, "-c", "import probkit"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0
    assert "PROBKIT_CPU_THREADS='lots' is not understood" in run.stderr
