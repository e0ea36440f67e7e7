"""The persistent compilation cache: on by default, movable, off on request, never fatal.

Each check runs a fresh Python process: the cache matters across processes, and the
test session itself runs with the cache off (tests/conftest.py).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# A small model sampled with probkit's defaults (progress bar off: programs with host
# callbacks are never written to JAX's cache). Prints the folder in use, the number of
# XLA compilations (persistent-cache misses) and hits, and a draw to compare across runs.
SAMPLE_SCRIPT = r"""
import json, jax.monitoring
compiles, hits = [], []
# JAX times a cache hit as a "backend compile" too: count its hits and misses instead.
jax.monitoring.register_event_listener(
    lambda e, **_: compiles.append(e) if e == "/jax/compilation_cache/cache_misses" else None)
jax.monitoring.register_event_listener(
    lambda e, **_: hits.append(e) if e == "/jax/compilation_cache/cache_hits" else None)
import numpyro, numpyro.distributions as dist, jax.numpy as jnp
import probkit as pk
def model(y):
    mu = numpyro.sample("mu", dist.Normal(0, 5))
    numpyro.sample("y", dist.Normal(mu, 1), obs=y)
%(setup)s
target = pk.from_numpyro(model, jnp.array([0.3, -0.2, 1.1]))
r = pk.mcmc.sample(target, kernel="nuts", num_chains=2, num_warmup=50, num_samples=50,
                   seed=1, diagnose=False)
folder = pk.compilation_cache_dir()
print("RESULT" + json.dumps({"folder": None if folder is None else str(folder),
    "compiles": len(compiles), "hits": len(hits), "draw": float(r.samples["mu"][0, -1])}))
"""


def _run(env_cache, setup: str = "", extra_env: dict | None = None):
    env = {k: v for k, v in os.environ.items() if k != "PROBKIT_COMPILATION_CACHE"}
    env["JAX_PLATFORMS"] = "cpu"
    if env_cache is not None:
        env["PROBKIT_COMPILATION_CACHE"] = env_cache
    env.update(extra_env or {})
    proc = subprocess.run(
        [sys.executable, "-c", SAMPLE_SCRIPT % {"setup": setup}],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.split("RESULT", 1)[1]), proc.stderr


@pytest.mark.slow
def test_warm_cache_compiles_nothing_and_gives_the_same_draws(tmp_path):
    setup = f"pk.set_compilation_cache({str(tmp_path)!r}, min_compile_seconds=0.0)"
    cold, _ = _run("off", setup)
    assert cold["folder"] == str(tmp_path)
    assert cold["compiles"] > 0 and any(tmp_path.iterdir())
    warm, _ = _run("off", setup)
    assert warm["compiles"] == 0, warm
    assert warm["hits"] > 0
    assert warm["draw"] == cold["draw"]


def test_on_by_default_in_a_per_user_folder_and_off_on_request(tmp_path):
    code = "import probkit as pk; print('RESULT' + repr(str(pk.compilation_cache_dir())))"

    def folder(env_value):
        env = {k: v for k, v in os.environ.items() if k != "PROBKIT_COMPILATION_CACHE"}
        env["XDG_CACHE_HOME"] = str(tmp_path)
        if env_value is not None:
            env["PROBKIT_COMPILATION_CACHE"] = env_value
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        ).stdout
        return out.split("RESULT", 1)[1].strip().strip("'")

    assert folder(None) == str(tmp_path / "probkit" / "xla")
    assert folder("off") == "None"
    assert folder(str(tmp_path / "elsewhere")) == str(tmp_path / "elsewhere")


def test_unwritable_folder_warns_once_and_still_samples(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result, stderr = _run(str(blocker / "cache"))
    assert result["folder"] is None
    assert stderr.count("cannot be written") == 1
    assert result["hits"] == 0


def test_corrupt_entries_degrade_to_compiling(tmp_path):
    setup = f"pk.set_compilation_cache({str(tmp_path)!r}, min_compile_seconds=0.0)"
    first, _ = _run("off", setup)
    entries = [p for p in Path(tmp_path).rglob("*") if p.is_file()]
    assert entries
    for entry in entries:
        entry.write_bytes(b"garbage")
    second, _ = _run("off", setup)
    assert second["draw"] == first["draw"]


def test_set_compilation_cache_checks_its_argument():
    import probkit as pk

    with pytest.raises(ValueError, match="min_compile_seconds"):
        pk.set_compilation_cache("default", min_compile_seconds=-1)
