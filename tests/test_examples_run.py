"""The examples still run, on a reduced size, and the gallery pages match the scripts.

Each example that already takes a size option (training steps, samples, walkers, ...) is
run with small values in a fresh folder, in its own process, and must exit cleanly and
write a PNG. Examples without such an option (continual learning, few-shot, FKC,
particle filter, tempered SMC) are not run here: their full run is the gallery's,
``python scripts/gallery.py``. Nor are those whose reduced run still takes more than
~30 s of CPU, compilation being most of it (measured without the compilation cache):
the flashing ratchet (NUTS on 18 rates whatever the number of draws), the fractional
SDE (40 s at 5 steps), inference-time scaling on arithmetic (95 s at 4 problems) and on
the flow model (46 s at 20 training steps), and masked diffusion on text (94 s at 20
steps). The runs kept here took 11-27 CPU-s each (about 160 s in all) on a loaded 2-core
machine, without the cache.

The gallery pages (``docs/examples/*.md``) are generated from the scripts by
``scripts/gallery.py``; the last test (not slow) checks that they are up to date.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# example -> the arguments of a reduced run (options each script already has)
REDUCED = {
    "bayesopt_hartmann6": ["--batches", "1"],
    "diffusion_2d": ["--steps", "50", "--samples", "200"],
    "distribution_transformer_sequential": ["--steps", "1"],
    "gflownet_hypergrid": ["--height", "4", "--trajectories", "1280"],
    "pvrnn_online_prediction": ["--steps", "20"],
    "sa_srrw_distributed_optimisation": ["--runs", "4", "--steps", "200"],
    "schrodinger_bridge_lotka_volterra": ["--iterations", "1"],
    "srrw_graph_sampling": ["--walkers", "8", "--steps", "200"],
}


@pytest.mark.slow
@pytest.mark.parametrize("example", sorted(REDUCED))
def test_example_runs_on_a_reduced_size(example, tmp_path):
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "MPLBACKEND": "Agg",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{example}.py"), *REDUCED[example]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{example}:\n{proc.stderr[-4000:]}"
    assert list(tmp_path.rglob("*.png")), f"{example} wrote no PNG:\n{proc.stdout[-2000:]}"


def _gallery():
    spec = importlib.util.spec_from_file_location("gallery", ROOT / "scripts" / "gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gallery_pages_match_the_examples():
    gallery = _gallery()
    scripts = sorted((ROOT / "examples").glob("*.py"))
    stale = [
        script.stem
        for script in scripts
        if not (gallery.PAGES / f"{script.stem}.md").exists()
        or (gallery.PAGES / f"{script.stem}.md").read_text() != gallery.page_text(script)
    ]
    index = (gallery.PAGES / "index.md").read_text() == gallery.index_text(scripts)
    assert not stale and index, (
        f"gallery pages out of date: {stale or 'index.md'}; run "
        "`python scripts/gallery.py --pages-only` (or `python scripts/gallery.py NAME` to "
        "refresh a picture too) and commit docs/examples/."
    )
