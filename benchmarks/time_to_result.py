"""Time to first result: a fresh process from import to diagnosed draws, probkit vs NumPyro.

The MCMC benchmark (``mcmc_vs_numpyro.py``) measures sampling in one process, compile
time apart. A user running a script waits for more: importing, binding the data,
tracing and compiling, sampling, and (with probkit's defaults) the diagnostics. Each
run here is a fresh Python process that fits one posteriordb posterior with NUTS,
4 chains x (1000 warm-up + 1000 draws), chains vectorised:

* probkit: ``pk.mcmc.sample(pk.from_numpyro(model, **data))`` with its defaults,
  diagnostics on (R-hat, bulk/tail ESS, divergences);
* NumPyro: ``MCMC(NUTS(model), ..., chain_method="vectorized").run(key, **data)``,
  which computes no diagnostics.

"cold" runs start with an empty compilation cache (a fresh folder for probkit's
persistent cache, ``PROBKIT_COMPILATION_CACHE``); "warm" runs reuse the folder a
previous run of the same script filled, as every later run of a user's script does.
NumPyro keeps no persistent cache by default, so its cold and warm runs are the same
thing. Runs alternate between the tools, ``--repeats`` times each; the table shows
medians. The minimum bulk ESS over the posterior's parameters (``probkit.results.ess_bulk``,
equal to ArviZ's; computed after the timed part) gives ESS per total second. The
sampling stage is split into compile/trace (JAX's reported tracing, lowering and XLA
compile or cache-load seconds) and the rest. The last row times the ``probkit sample``
command on eight schools as a user types it.

    JAX_PLATFORMS=cpu python benchmarks/time_to_result.py [--names ...] [--repeats 3] [--no-cli]

writes ``benchmarks/results/time_to_result.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys, time
t0 = time.perf_counter()
tool, name = sys.argv[1], sys.argv[2]
import jax.monitoring
# Tracing, lowering and XLA compilation (a persistent-cache hit is reported as a
# backend compile too): what a warm cache can and cannot save.
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")
compile_seconds = [0.0]
def record(event, duration, **_):
    if event in COMPILE_EVENTS:
        compile_seconds[0] += duration
jax.monitoring.register_event_duration_secs_listener(record)
if tool == "probkit":
    import probkit as pk
    from probkit.models import posteriordb
    t1 = time.perf_counter()
    posterior = posteriordb.load(name)
    target = pk.from_numpyro(posterior.model, **posterior.data)
    t2 = time.perf_counter()
    before = compile_seconds[0]
    # probkit's defaults: sample(...) then diagnoses; split here to time the two.
    result = pk.mcmc.sample(target, kernel="nuts", num_chains=4, seed=0, diagnose=False)
    compile_s = compile_seconds[0] - before
    t3 = time.perf_counter()
    result.diagnose(emit=False)
    t4 = time.perf_counter()
    samples = {k: result.samples[k] for k in posterior.reference_draws()}
else:
    import jax
    import numpyro
    from numpyro.infer import MCMC, NUTS
    from probkit.models import posteriordb
    t1 = time.perf_counter()
    posterior = posteriordb.load(name)
    mcmc = MCMC(NUTS(posterior.model), num_warmup=1000, num_samples=1000, num_chains=4,
                chain_method="vectorized", progress_bar=False)
    t2 = time.perf_counter()
    before = compile_seconds[0]
    mcmc.run(jax.random.PRNGKey(0), **posterior.data)
    samples = mcmc.get_samples(group_by_chain=True)
    samples = {k: samples[k] for k in posterior.reference_draws()}
    jax.block_until_ready(samples)
    compile_s = compile_seconds[0] - before
    t3 = t4 = time.perf_counter()
import numpy as np
from probkit.results import ess_bulk  # ArviZ's bulk ESS (tests/test_diagnostics.py)
ess = min(float(np.min(ess_bulk(np.asarray(v, np.float64)))) for v in samples.values())
print("RESULT" + json.dumps({"import": t1 - t0, "setup": t2 - t1, "compile": compile_s,
                             "sampling": t3 - t2 - compile_s, "diagnostics": t4 - t3,
                             "total": t4 - t0, "min_ess_bulk": ess}))
"""


def _worker_env(tool: str, cache: str, threads: str) -> dict:
    """The worker's environment. probkit picks XLA's CPU threads itself (one on
    machines with two cores or fewer); NumPyro runs as its users run it (XLA's
    default) unless ``threads`` says otherwise. NPROC from this process (importing
    probkit here sets it) must not leak into the workers."""
    env = {k: v for k, v in os.environ.items() if k != "NPROC"}
    env.update(JAX_PLATFORMS="cpu", PROBKIT_COMPILATION_CACHE=cache)
    if tool == "numpyro":
        # the worker imports probkit.models for the data: keep XLA's default there
        env["PROBKIT_CPU_THREADS"] = threads
    return env


def _run_worker(tool: str, name: str, cache: str, threads: str = "xla") -> dict:
    env = _worker_env(tool, cache, threads)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, tool, name],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=1800,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} {name} failed:\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.split("RESULT", 1)[1])
    row["process"] = wall  # interpreter start-up and exit included
    row["load"] = os.getloadavg()[0]  # the shared machine's 1-minute load after the run
    return row


def _run_cli(cache: str, folder: Path) -> float:
    from probkit.models import posteriordb

    posterior = posteriordb.load("eight_schools-eight_schools_noncentered")
    (folder / "model.py").write_text(
        "from probkit.models.posteriordb import eight_schools_noncentered as model\n"
    )
    data = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in posterior.data.items()}
    (folder / "data.json").write_text(json.dumps(data))
    env = _worker_env("probkit", cache, "auto")
    command = [
        str(Path(sys.executable).with_name("probkit")),
        "sample",
        f"{folder / 'model.py'}:model",
        "--data",
        str(folder / "data.json"),
        "--out",
        str(folder / "r.nc"),
        "--no-progress",
    ]
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, text=True, env=env, check=True, timeout=1800)
    return time.perf_counter() - start


def _threads_note() -> str:
    import probkit as pk

    threads = pk.cpu_threads()
    return "XLA's default" if threads is None else f"{threads} thread(s)"


def _median_row(results: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def main() -> None:
    from probkit.models import posteriordb

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="*", default=posteriordb.names())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-cli", action="store_true", help="skip the `probkit sample` row")
    parser.add_argument(
        "--numpyro-one-thread",
        action="store_true",
        help="also run NumPyro with XLA's CPU client on one thread (probkit's default on "
        "machines with two cores or fewer): how much of the difference is the threading",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/time_to_result.md"))
    args = parser.parse_args()

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = os.getloadavg()
    rows = []
    for name in args.names:
        runs = {("probkit", "cold"): [], ("probkit", "warm"): [], ("numpyro", "-"): []}
        if args.numpyro_one_thread:
            runs["numpyro (1 thread)", "-"] = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as cache:
                runs["probkit", "cold"].append(_run_worker("probkit", name, cache))
                runs["numpyro", "-"].append(_run_worker("numpyro", name, "off"))
                runs["probkit", "warm"].append(_run_worker("probkit", name, cache))
                if args.numpyro_one_thread:
                    runs["numpyro (1 thread)", "-"].append(
                        _run_worker("numpyro", name, "off", threads="1")
                    )
            for key, results in runs.items():
                print(name, key, json.dumps(results[-1]), flush=True)
        numpyro = _median_row(runs["numpyro", "-"])
        numpyro_rate = numpyro["min_ess_bulk"] / numpyro["process"]
        for (tool, mode), results in runs.items():
            med = _median_row(results)
            rate = med["min_ess_bulk"] / med["process"]
            loads = [r["load"] for r in results]
            rows.append((name, tool, mode, med, rate, numpyro, numpyro_rate, loads))

    cli_times = []
    for _ in range(0 if args.no_cli else args.repeats):
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as folder:
            cold = _run_cli(cache, Path(folder))
            warm = _run_cli(cache, Path(folder))
            cli_times.append((cold, warm))
    load_end = os.getloadavg()

    lines = [
        "# Time to first result: a fresh process, probkit vs NumPyro",
        "",
        f"Measured {started} on {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}; medians of {args.repeats} runs per row, runs "
        "alternating between the tools (probkit cold, NumPyro, probkit warm). NUTS, 4 chains "
        "x (1000 + 1000), chains vectorised; probkit with its defaults (diagnostics on: "
        "R-hat, bulk ESS, divergences, and its choice of XLA CPU threads: "
        f"{_threads_note()}), NumPyro's `MCMC.run` (no diagnostics; XLA's default threads, "
        "as its users run it). Seconds. Produced by `benchmarks/time_to_result.py`.",
        "",
        f"Load average (1, 5, 15 min) at the start: {', '.join(f'{x:.1f}' for x in load_start)};"
        f" at the end: {', '.join(f'{x:.1f}' for x in load_end)}. The `load` column is the "
        "1-minute load after each run (min-max over the row's runs).",
        "",
        "Columns: `import` (probkit or NumPyro and JAX), `set-up` (`from_numpyro`, or "
        "building NumPyro's `MCMC`), `compile/trace` (JAX's reported tracing + lowering + "
        "XLA compile or persistent-cache load during sampling), `sampling` (the rest of "
        "`sample`/`run`), `diagnostics` (`result.diagnose()`), `total` (import to "
        "diagnosed draws, in the process), `process` (the whole subprocess: interpreter "
        "start-up and exit included; what a user waits for), `min ESS` (minimum bulk ESS "
        "over the posterior's parameters), `ESS/s` (min ESS per process second), `speed-up` "
        "(NumPyro's process time / this row's), `ESS/s ratio` (this row's ESS/s / "
        "NumPyro's).",
        "",
        "| posterior | tool | cache | import | set-up | compile/trace | sampling | diagnostics "
        "| total | process | min ESS | ESS/s | speed-up | ESS/s ratio | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, tool, mode, med, rate, numpyro, numpyro_rate, loads in rows:
        lines.append(
            f"| {name} | {tool} | {mode} | {med['import']:.1f} | {med['setup']:.1f} | "
            f"{med['compile']:.1f} | {med['sampling']:.1f} | {med['diagnostics']:.2f} | "
            f"{med['total']:.1f} | {med['process']:.1f} | {med['min_ess_bulk']:.0f} | "
            f"{rate:.0f} | {numpyro['process'] / med['process']:.2f} | "
            f"{rate / numpyro_rate:.2f} | {min(loads):.1f}-{max(loads):.1f} |"
        )
    if cli_times:
        cold = statistics.median(c for c, _ in cli_times)
        warm = statistics.median(w for _, w in cli_times)
        lines += [
            "",
            f"`probkit sample` on eight schools (the command, data from JSON, NetCDF "
            f"written): cold {cold:.1f} s, warm {warm:.1f} s.",
        ]
    lines.append("")
    print("\n".join(lines))
    out = Path(args.out)
    text = "\n".join(lines)
    if out.exists():  # earlier runs and their hand-written notes stay, below this one
        text += "\n" + _as_earlier_run(out.read_text())
    out.write_text(text)


def _as_earlier_run(previous: str) -> str:
    """A previous results file as an ``## Earlier run`` section (its title dropped)."""
    body = previous.split("\n", 1)[1].lstrip("\n") if previous.startswith("# ") else previous
    stamp = body[len("Measured ") :].split(" on ", 1)[0] if body.startswith("Measured ") else ""
    return f"## Earlier run ({stamp or 'undated'})\n\n{body}"


if __name__ == "__main__":
    main()
