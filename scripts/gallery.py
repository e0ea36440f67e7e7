"""Run every script in examples/, collect its pictures, and write the gallery pages.

Each example runs with its default arguments, in a fresh temporary folder as its working
directory (every example writes its PNG files relative to that folder), one at a time, in
its own process with ``JAX_PLATFORMS=cpu`` and ``MPLBACKEND=Agg``. The PNG files it wrote
are copied to ``docs/examples/img/``: a single picture as ``<example>.png``, several under
their own names (prefixed with the example's name where they do not start with it).
Then ``docs/examples/<example>.md`` (the script's docstring, its pictures and its code)
and ``docs/examples/index.md`` are written from the scripts and the pictures present.

    python scripts/gallery.py                      # every example, then the pages
    python scripts/gallery.py diffusion_2d gflownet_hypergrid   # some of them
    python scripts/gallery.py --timeout 180        # give up on an example after 3 min
    python scripts/gallery.py --pages-only         # rewrite the pages, run nothing

It prints one line per example (wall and CPU seconds, pictures written) and exits
non-zero when an example failed, timed out or wrote no PNG. The examples are meant to
run in under two minutes each on two CPU cores; the whole gallery takes about half an
hour on an idle machine. tests/test_examples_run.py checks that the pages match the
scripts (rerun with ``--pages-only`` after editing an example).
"""

from __future__ import annotations

import argparse
import ast
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
PAGES = ROOT / "docs" / "examples"
IMAGES = PAGES / "img"

# The guide (docs/guide/<name>.md) and API page (docs/api/<name>.md) of each example.
GUIDES = {
    "bayesopt_hartmann6": ("bayesopt", "bayesopt"),
    "continual_learning_sequential_bayes": ("continual", "continual"),
    "diffusion_2d": ("sde", "diffusion"),
    "distribution_transformer_sequential": (
        "distribution_transformer",
        "distribution_transformer",
    ),
    "fewshot_hierarchical_niw": ("fewshot", "fewshot"),
    "fkc_product_and_annealing": ("fkc", "fkc"),
    "fractional_sde_vi": ("fractional_sde", "sde_fractional"),
    "gflownet_hypergrid": ("gflownet", "gflownet"),
    "inference_time_scaling_arithmetic": ("inference_time_scaling", "scaling"),
    "inference_time_scaling_flow": ("inference_time_scaling", "scaling"),
    "masked_diffusion_text": ("masked_diffusion", "masked_diffusion"),
    "mjp_flashing_ratchet": ("mjp", "mjp"),
    "particle_filter_stochastic_volatility": ("smc", "smc"),
    "pvrnn_online_prediction": ("pvrnn", "pvrnn"),
    "sa_srrw_distributed_optimisation": ("graph", "graph"),
    "schrodinger_bridge_lotka_volterra": ("bridges", "bridges"),
    "sobol_ishigami": ("importance", "importance"),
    "srrw_graph_sampling": ("graph", "graph"),
    "tempered_smc_mixture": ("smc", "smc"),
}


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


def docstring(script: Path) -> tuple[str, str]:
    """The first line and the rest of a script's docstring, reST literals made Markdown."""
    text = ast.get_docstring(ast.parse(script.read_text())) or script.stem
    text = text.replace("``", "`")
    title, _, body = text.partition("\n")
    return title.strip().rstrip("."), body.strip()


def _heading(page: Path) -> str:
    """The first Markdown heading of a page (its title)."""
    for line in page.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return page.stem


def images_of(example: str, images: Path = IMAGES) -> list[str]:
    """The gallery pictures of an example present in ``images``."""
    if (images / f"{example}.png").exists():
        return [f"{example}.png"]
    return sorted(p.name for p in images.glob(f"{example}_*.png"))


def page_text(script: Path, images: Path = IMAGES) -> str:
    """The Markdown gallery page of one example."""
    title, body = docstring(script)
    lines = [f"# {title}", ""]
    pictures = images_of(script.stem, images)
    for name in pictures:
        lines += [f"![{title}: {Path(name).stem}](img/{name})", ""]
    if not pictures:
        lines += [
            "!!! note",
            f"    No picture yet: run `python scripts/gallery.py {script.stem}`.",
            "",
        ]
    lines += [body, ""]
    if f"python examples/{script.name}" not in body:
        lines += ["Run it from the repository root:", "", "```bash"]
        lines += [f"python examples/{script.name}", "```", ""]
    guide, api = GUIDES.get(script.stem, (None, None))
    links = []
    for folder, name, kind in (("guide", guide, "guide"), ("api", api, "API")):
        page = ROOT / "docs" / folder / f"{name}.md"
        if name and page.exists():
            links.append(f"{kind}: [{_heading(page)}](../{folder}/{name}.md)")
    if links:
        lines += ["See the " + "; the ".join(links) + ".", ""]
    lines += [f"## `examples/{script.name}`", "", "<!-- no-run -->", "```python"]
    lines += [script.read_text().rstrip("\n"), "```", ""]
    return "\n".join(lines)


def index_text(scripts: list[Path], images: Path = IMAGES) -> str:
    """The gallery's index page: every example with its first picture."""
    lines = [
        "# Example gallery",
        "",
        "Each page shows a script of `examples/`, what it does and the picture it writes.",
        "Every script runs on its own (`python examples/<name>.py`, at most a couple of",
        "minutes on a laptop CPU); `python scripts/gallery.py` reruns them all and",
        "refreshes the pictures and these pages.",
        "",
    ]
    for script in scripts:
        title, _ = docstring(script)
        lines += [f"## [{title}]({script.stem}.md)", ""]
        pictures = images_of(script.stem, images)
        if pictures:
            lines += [f'[![{title}](img/{pictures[0]}){{ width="480" }}]({script.stem}.md)', ""]
    return "\n".join(lines)


def write_pages(scripts: list[Path], pages: Path = PAGES, images: Path = IMAGES) -> None:
    """Writes one page per example and the index."""
    pages.mkdir(parents=True, exist_ok=True)
    for script in scripts:
        (pages / f"{script.stem}.md").write_text(page_text(script, images))
    (pages / "index.md").write_text(index_text(scripts, images))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "examples", nargs="*", help="example names (file stems); default: every example"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds before an example is stopped"
    )
    parser.add_argument(
        "--pages-only", action="store_true", help="write the pages from what is there; run nothing"
    )
    args = parser.parse_args(argv)
    every_script = sorted(EXAMPLES.glob("*.py"))
    scripts = every_script
    if args.examples:
        known = {s.stem: s for s in scripts}
        unknown = [name for name in args.examples if name.removesuffix(".py") not in known]
        if unknown:
            parser.error(f"unknown examples {unknown}; choose from {sorted(known)}")
        scripts = [known[name.removesuffix(".py")] for name in args.examples]
    failures = 0
    for script in [] if args.pages_only else scripts:
        status, seconds, cpu, copied = run_example(script, args.timeout, IMAGES)
        failures += status != "ok"
        print(
            f"{script.stem:38s} {seconds:6.1f} s wall {cpu:6.1f} s CPU  {status}  "
            f"{' '.join(copied)}",
            flush=True,
        )
    write_pages(every_script)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
