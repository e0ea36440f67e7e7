"""``import probkit`` stays light, and no subpackage starts a JAX backend on import.

A backend started at import time would make ``jax.distributed.initialize`` (multi-
process runs) impossible after ``import probkit``; torch at import time would cost
every user of the core seconds. Each check runs in a fresh process.
"""

import json
import os
import subprocess
import sys

import pytest

SUBPACKAGES = [
    "probkit.bridges",
    "probkit.distributed",
    "probkit.fkc",
    "probkit.graph",
    "probkit.importance",
    "probkit.mcmc",
    "probkit.progress",
    "probkit.results",
    "probkit.scaling",
    "probkit.sde",
    "probkit.smc",
    "probkit.target",
    "probkit.models.posteriordb",
    "probkit.models.diffusion",
    "probkit.models.distribution_transformer",
    "probkit.models.gflownet",
    "probkit.models.mjp",
    "probkit.models.masked_diffusion",
    "probkit.models.continual",
    "probkit.models.fewshot",
    "probkit.models.pvrnn",
    "probkit.models.arithmetic_lm",
]

SCRIPT = r"""
import importlib, json, sys
from jax._src import xla_bridge
names = %r
started = None
import probkit
heavy = sorted(m for m in ("torch", "blackjax", "arviz", "botorch") if m in sys.modules)
for name in names:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
        continue  # a subpackage this checkout does not have yet
    if xla_bridge._backends and started is None:
        started = name
print("RESULT" + json.dumps({"heavy": heavy, "started": started}))
"""


def _run(names):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.replace("%r", repr(names))],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.split("RESULT", 1)[1])


def test_import_probkit_loads_no_heavy_dependency():
    assert _run([])["heavy"] == []


def test_no_subpackage_starts_a_backend_on_import():
    assert _run(SUBPACKAGES)["started"] is None


@pytest.mark.parametrize("name", ["smc", "mcmc", "sde", "fkc", "importance", "bridges", "models"])
def test_subpackages_are_attributes(name):
    import probkit as pk

    assert getattr(pk, name).__name__ == f"probkit.{name}"


def test_model_families_are_lazy_attributes_of_probkit_models():
    code = (
        "import json, sys, probkit as pk; m = pk.models; "
        "loaded = sorted(n for n in sys.modules if n.startswith('probkit.models.')); "
        "listed = set(dir(m)); "
        "print('RESULT' + json.dumps({'loaded': loaded, 'listed': sorted(listed), "
        "'names': [getattr(m, n).__name__ for n in sorted(m.__all__)]}))"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert out["loaded"] == []  # nothing imported before first access
    for family in ["gflownet", "mjp", "distribution_transformer", "masked_diffusion"]:
        assert family in out["listed"]
        assert f"probkit.models.{family}" in out["names"]
