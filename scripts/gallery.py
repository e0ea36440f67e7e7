"""Run every script in examples/ and copy the pictures it writes into docs/examples/img/.

Each example runs with its default arguments, in a fresh temporary folder as its working
directory (every example writes its PNG files relative to that folder), one at a time, in
its own process with ``JAX_PLATFORMS=cpu`` and ``MPLBACKEND=Agg``. The PNG files it wrote
are copied to ``docs/examples/img/``: a single picture as ``<example>.png``, several under
their own names (prefixed with the example's name where they do not start with it).

    python scripts/gallery.py                      # every example
    python scripts/gallery.py diffusion_2d gflownet_hypergrid   # some of them
    python scripts/gallery.py --timeout 180        # give up on an example after 3 min

It prints one line per example (wall and CPU seconds, pictures written) and exits non-zero when an
example failed, timed out or wrote no PNG. The examples are meant to run in under two
minutes each on two CPU cores; the whole gallery takes about half an hour.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
IMAGES = ROOT / "docs" / "examples" / "img"


def image_names(example: str, written: list[Path]) -> dict[Path, str]:
    """The gallery file name of each PNG an example wrote."""
    if len(written) == 1:
        return {written[0]: f"{example}.png"}
    return {
        png: png.name if png.stem.startswith(example) else f"{example}_{png.name}"
        for png in written
    }


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_example(script: Path, timeout: float, images: Path) -> tuple[str, float, float, list[str]]:
    """Runs one example in a temporary folder.

    Returns:
        (status, wall seconds, CPU seconds, names of the images copied). The CPU seconds
        are those of the example's process (all its threads), which a busy machine
        inflates less than the wall time.
    """
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "MPLBACKEND": "Agg",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    with tempfile.TemporaryDirectory(prefix=f"gallery-{script.stem}-") as folder:
        start, cpu_start = time.perf_counter(), _children_cpu_seconds()
        try:
            proc = subprocess.run(
                [sys.executable, str(script)],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return f"timed out after {timeout:.0f} s", time.perf_counter() - start, float("nan"), []
        seconds = time.perf_counter() - start
        cpu = _children_cpu_seconds() - cpu_start
        if proc.returncode != 0:
            tail = "\n    ".join(proc.stderr.strip().splitlines()[-8:])
            return f"failed (exit {proc.returncode}):\n    {tail}", seconds, cpu, []
        written = sorted(Path(folder).rglob("*.png"))
        if not written:
            return "wrote no PNG", seconds, cpu, []
        images.mkdir(parents=True, exist_ok=True)
        copied = []
        for png, name in image_names(script.stem, written).items():
            shutil.copyfile(png, images / name)
            copied.append(name)
        return "ok", seconds, cpu, copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "examples", nargs="*", help="example names (file stems); default: every example"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds before an example is stopped"
    )
    parser.add_argument("--images", type=Path, default=IMAGES, help="where the PNGs go")
    args = parser.parse_args(argv)
    scripts = sorted(EXAMPLES.glob("*.py"))
    if args.examples:
        known = {s.stem: s for s in scripts}
        unknown = [name for name in args.examples if name.removesuffix(".py") not in known]
        if unknown:
            parser.error(f"unknown examples {unknown}; choose from {sorted(known)}")
        scripts = [known[name.removesuffix(".py")] for name in args.examples]
    failures = 0
    for script in scripts:
        status, seconds, cpu, copied = run_example(script, args.timeout, args.images)
        failures += status != "ok"
        print(
            f"{script.stem:38s} {seconds:6.1f} s wall {cpu:6.1f} s CPU  {status}  "
            f"{' '.join(copied)}",
            flush=True,
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
