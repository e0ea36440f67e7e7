"""Bayesian optimisation: probkit's loop and surrogates vs random search and plain BoTorch.

Two parts (each run in one process, probkit and its comparators side by side):

1. Regret. Best value found against the number of evaluations on
   - Branin (2-D): 10 Sobol' points + 30 sequential evaluations,
   - Hartmann6 (6-D): 10 + 19 batches of 10 (the BNN study's setting; batches are
     chosen jointly with qLogEI),
   - Ackley (10-D, on [-32.768, 32.768]^10): 10 + 40 sequential evaluations,
   for random search and probkit with surrogate/acquisition GP-LogEI, GP-qKG, BNN-HMC
   (NUTS in JAX), I-BNN and DKL (the ensembles use Monte Carlo qLogEI). Simple regret
   = best value - known minimum. GP-qKG on Hartmann6 (q = 10) runs with lighter optimiser
   settings than the other cells (``CELL_OPTIONS``; the table says which).
2. Overhead. Wall time per iteration of ``probkit.bayesopt.minimize`` (GP + LogEI)
   against the loop of BoTorch's tutorials written out by hand (SingleTaskGP with
   Normalize/Standardize, fit_gpytorch_mll, LogExpectedImprovement, optimize_acqf
   with 10 restarts and 512 raw samples), on Branin from the same initial points, the
   two runs interleaved so that machine load hits both alike.

Compile time: only the BNN-HMC surrogate compiles (its NUTS runner, once per data-size
bucket); its first fit is reported apart from the median fit.

torch runs single-threaded (the matrices are tiny; on a shared 2-core machine extra
intra-op threads cost several times more than they save) for probkit and BoTorch alike.

Every seed's raw result (best-so-far curve, per-iteration wall and CPU times, the
acquisition settings, load average, date) is merged into
``benchmarks/results/bayesopt_raw.json`` as soon as it finishes, keyed by
problem/method/seed; the Markdown table, the regret plot and the overhead section are
always regenerated from that file, so cells can be added or re-run on their own.
Hand-written remarks in ``benchmarks/results/bayesopt_notes.md`` (if present) are copied
under the table.

Run: ``python benchmarks/bayesopt.py [--repeats 2] [--hartmann-repeats 1]
[--problems branin hartmann6 ackley10] [--methods ...]`` (every selected cell and the
overhead comparison), ``--only hartmann6:gp-qkg branin:dkl overhead`` (just those
cells), ``--report`` (no runs: rewrite the table and plot from the raw file). Writes
``benchmarks/results/bayesopt.md``, ``benchmarks/results/bayesopt_regret.png`` and
``benchmarks/results/bayesopt_raw.json``.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import botorch  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from botorch.acquisition import LogExpectedImprovement  # noqa: E402
from botorch.fit import fit_gpytorch_mll  # noqa: E402
from botorch.models import SingleTaskGP  # noqa: E402
from botorch.models.transforms import Normalize, Standardize  # noqa: E402
from botorch.optim import optimize_acqf  # noqa: E402
from botorch.test_functions import Ackley, Branin, Hartmann  # noqa: E402
from gpytorch.mlls import ExactMarginalLogLikelihood  # noqa: E402

from probkit import bayesopt  # noqa: E402
from probkit.bayesopt import ACQUISITION_DEFAULTS  # noqa: E402

torch.set_num_threads(1)
RESULTS = Path(__file__).parent / "results"
RAW = RESULTS / "bayesopt_raw.json"

PROBLEMS = {
    # name: (test function, bounds, initial design, batch size, number of batches)
    "branin": (Branin(), [(-5.0, 10.0), (0.0, 15.0)], 10, 1, 30),
    "hartmann6": (Hartmann(dim=6), [(0.0, 1.0)] * 6, 10, 10, 19),
    "ackley10": (Ackley(dim=10), [(-32.768, 32.768)] * 10, 10, 1, 40),
}
COLORS = {
    "random": "tab:blue",
    "gp-logei": "tab:orange",
    "gp-qkg": "tab:green",
    "bnn-hmc": "tab:red",
    "ibnn": "tab:purple",
    "dkl": "tab:brown",
    "botorch tutorial loop": "tab:pink",
}
METHODS = {
    "random": None,
    "gp-logei": {"surrogate": "gp", "acquisition": "logei"},
    "gp-qkg": {"surrogate": "gp", "acquisition": "qkg"},
    "bnn-hmc": {"surrogate": "bnn-hmc", "acquisition": "logei"},
    "ibnn": {"surrogate": "ibnn", "acquisition": "logei"},
    "dkl": {"surrogate": "dkl", "acquisition": "logei"},
}
# Cells whose acquisition settings differ from probkit's ACQUISITION_DEFAULTS (which
# follow BoTorch's tutorials: 10 restarts, 512 raw samples, 64 KG fantasies). qKG with
# q = 10 on Hartmann6 is a one-shot optimisation over (10 + 64) x 6 = 444 inputs per
# batch; with the defaults one batch took 17 s of CPU at 10 points and 150 s at 100
# points (more than an hour of one core for the 19 batches), so this cell uses half the
# fantasies, restarts and raw samples.
CELL_OPTIONS: dict[str, dict] = {
    "hartmann6:gp-qkg": {"num_fantasies": 32, "num_restarts": 5, "raw_samples": 256},
}


def objective_of(problem):
    return lambda x: float(problem(torch.as_tensor(x)))


def acquisition_settings(problem_name: str, method: str) -> dict:
    """The acquisition options a cell runs with (the defaults it uses, plus its overrides)."""
    if METHODS[method] is None:
        return {}
    options = {**ACQUISITION_DEFAULTS, **CELL_OPTIONS.get(f"{problem_name}:{method}", {})}
    keys = ["num_restarts", "raw_samples", "maxiter"]
    keys += ["num_fantasies"] if METHODS[method]["acquisition"] == "qkg" else ["mc_samples"]
    return {k: options[k] for k in keys}


def run_method(name: str, problem_name: str, seed: int) -> dict:
    problem, bounds, initial, batch, batches = PROBLEMS[problem_name]
    budget = initial + batch * batches
    f = objective_of(problem)
    if METHODS[name] is None:
        low, high = np.array(bounds).T
        X = low + (high - low) * np.random.default_rng(seed).random((budget, len(bounds)))
        y = np.array([f(x) for x in X])
        return {"best": np.minimum.accumulate(y), "seconds": [], "cpu_seconds": []}
    wall, cpu = [], []

    def stamp(result):
        wall.append(time.perf_counter())
        cpu.append(time.process_time())
        if len(wall) > 1:
            print(
                f"    {result.num_evaluations} evaluations, best {result.y_best:.5g}, "
                f"step {wall[-1] - wall[-2]:.1f} s wall {cpu[-1] - cpu[-2]:.1f} s CPU",
                flush=True,
            )

    start_wall, start_cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BoTorch's optimiser restarts and numerical notes
        result = bayesopt.minimize(
            f,
            bounds,
            budget=budget,
            initial_design=initial,
            batch_size=batch,
            seed=seed,
            callback=stamp,
            progress_bar=False,
            acquisition_options=CELL_OPTIONS.get(f"{problem_name}:{name}"),
            **METHODS[name],
        )
    # Per BO iteration (fit + acquisition + evaluation); the Sobol' design excluded.
    return {
        "best": result.best_so_far,
        "seconds": np.diff([start_wall, *wall])[1:],
        "cpu_seconds": np.diff([start_cpu, *cpu])[1:],
    }


def plain_botorch_step(train_X: torch.Tensor, train_Y: torch.Tensor, bounds_t: torch.Tensor):
    """One iteration of the loop of BoTorch's tutorials (maximises train_Y)."""
    model = SingleTaskGP(
        train_X,
        train_Y,
        input_transform=Normalize(d=train_X.shape[-1], bounds=bounds_t),
        outcome_transform=Standardize(m=1),
    )
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    acquisition = LogExpectedImprovement(model, best_f=train_Y.max())
    candidate, _ = optimize_acqf(
        acquisition,
        bounds=bounds_t,
        q=1,
        num_restarts=10,
        raw_samples=512,
        options={"batch_limit": 5, "maxiter": 200},
    )
    return candidate


def plain_botorch_loop(f, bounds, X0: torch.Tensor, iterations: int, seed: int) -> np.ndarray:
    """The tutorial loop run on its own from ``X0``: best value after each evaluation."""
    bounds_t = torch.tensor(np.array(bounds).T, dtype=torch.float64)
    train_X = X0.clone()
    train_Y = -torch.tensor([[f(x.numpy())] for x in train_X], dtype=torch.float64)
    for i in range(iterations):
        torch.manual_seed(seed * 1000 + i)
        candidate = plain_botorch_step(train_X, train_Y, bounds_t)
        y = -torch.tensor([[f(candidate[0].numpy())]], dtype=torch.float64)
        train_X = torch.cat([train_X, candidate])
        train_Y = torch.cat([train_Y, y])
    return np.minimum.accumulate(-train_Y.squeeze(-1).numpy())


def overhead(repeats: int) -> dict:
    """probkit's GP-LogEI step vs the tutorial step on the same data; and both loops' regret.

    Timing: at every iteration of a probkit run, ``Optimizer.ask`` (fit + LogEI +
    optimize_acqf, with probkit's bookkeeping) and the tutorial step are both timed on
    the same training data, in alternating order. Regret: each loop run on its own
    from the same 10 Sobol' points.
    """
    problem, bounds, initial, _, iterations = PROBLEMS["branin"]
    f = objective_of(problem)
    bounds_t = torch.tensor(np.array(bounds).T, dtype=torch.float64)
    out = {"probkit_s": [], "botorch_s": [], "probkit_best": [], "botorch_best": []}
    for seed in range(repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = bayesopt.Optimizer(bounds, seed=seed)
            X0 = opt.ask(initial)
            opt.tell(X0, [f(x) for x in X0])
            for i in range(iterations):
                data = opt.training_data()
                for who in ("probkit", "botorch") if i % 2 == 0 else ("botorch", "probkit"):
                    start = time.perf_counter()
                    if who == "probkit":
                        x = opt.ask(1)
                    else:
                        plain_botorch_step(data.X, data.Y, bounds_t)
                    out[f"{who}_s"].append(time.perf_counter() - start)
                opt.tell(x, [f(x[0])])
            out["probkit_best"].append(opt.result().best_so_far)
            out["botorch_best"].append(
                plain_botorch_loop(f, bounds, torch.as_tensor(X0), iterations, seed)
            )
    return out


# -- raw results file ---------------------------------------------------------------------


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _environment(load_start: float) -> dict:
    return {
        "finished": _now(),
        "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "botorch": botorch.__version__,
        "torch": f"{torch.__version__} ({torch.get_num_threads()} thread)",
        "cpu": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }


def _to_json(value):
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_to_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def merge_raw(update) -> dict:
    """Apply ``update(raw)`` to the raw file under a lock (several runs may share it)."""
    with open(Path(tempfile.gettempdir()) / "probkit_bayesopt_raw.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        raw = json.loads(RAW.read_text()) if RAW.exists() else {"runs": {}, "overhead": None}
        update(raw)
        RESULTS.mkdir(exist_ok=True)
        tmp = RAW.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(_to_json(raw), indent=1) + "\n")
        os.replace(tmp, RAW)
    return raw


def store_run(problem_name: str, method: str, seed: int, run: dict, load_start: float) -> None:
    record = {
        **run,
        "settings": acquisition_settings(problem_name, method),
        **_environment(load_start),
    }

    def update(raw):
        raw["runs"].setdefault(problem_name, {}).setdefault(method, {})[str(seed)] = record

    merge_raw(update)


def store_overhead(rows: dict, load_start: float) -> None:
    def update(raw):
        raw["overhead"] = {**rows, **_environment(load_start)}

    merge_raw(update)


# -- report ---------------------------------------------------------------------------------


def summarise(values) -> str:
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return f"{values.item():.3g}"
    return f"{values.mean():.3g} ± {values.std(ddof=1) / np.sqrt(values.size):.2g}"


def _settings_text(problem_name: str, method: str, settings: dict) -> str:
    if not settings:
        return "-"
    changed = CELL_OPTIONS.get(f"{problem_name}:{method}", {})
    short = {
        "num_restarts": "restarts",
        "raw_samples": "raw",
        "mc_samples": "MC",
        "num_fantasies": "fantasies",
    }
    text = ", ".join(f"{short[k]} {v}" for k, v in settings.items() if k in short)
    return f"**{text}**" if changed else text


def _span(texts: list[str]) -> str:
    texts = sorted(set(texts))
    return texts[0] if len(texts) == 1 else f"{texts[0]} – {texts[-1]}"


def regret_rows(raw: dict) -> list[str]:
    rows = []
    for problem_name, (problem, _, initial, batch, batches) in PROBLEMS.items():
        for method in METHODS:
            runs = raw["runs"].get(problem_name, {}).get(method)
            if not runs:
                continue
            seeds = sorted(runs, key=int)
            regret = [np.asarray(runs[s]["best"]) - problem.optimal_value for s in seeds]
            n = len(regret[0])
            checkpoints = sorted(
                {initial + batch * max(1, batches // 3), initial + batch * (2 * batches // 3), n}
            )
            at = ", ".join(f"{summarise([r[c - 1] for r in regret])} @ {c}" for c in checkpoints)
            timed = [runs[s] for s in seeds if runs[s]["seconds"]]
            if timed:
                wall = summarise([np.median(r["seconds"]) for r in timed])
                cpu = summarise([np.median(r["cpu_seconds"]) for r in timed])
                first = summarise([r["seconds"][0] for r in timed])
                last = summarise([r["seconds"][-1] for r in timed])
            else:
                wall = cpu = first = last = "-"
            when = _span([runs[s]["finished"][5:16] for s in seeds])
            loads = [x for s in seeds for x in runs[s]["load_average"]]
            settings = _settings_text(problem_name, method, runs[seeds[0]]["settings"])
            rows.append(
                f"| {problem_name} | {method} | {len(seeds)} | {at} | {wall} | {cpu} | {first} "
                f"| {last} | {settings} | {when}, load {min(loads):.1f}–{max(loads):.1f} |"
            )
    return rows


def plot(raw: dict) -> None:
    panels = [p for p in PROBLEMS if raw["runs"].get(p)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, problem_name in zip(axes[0], panels, strict=True):
        optimum = PROBLEMS[problem_name][0].optimal_value
        curves = {
            method: [np.asarray(r["best"]) - optimum for r in runs.values()]
            for method, runs in raw["runs"][problem_name].items()
        }
        if problem_name == "branin" and raw.get("overhead"):
            curves["botorch tutorial loop"] = [
                np.asarray(b) - optimum for b in raw["overhead"]["botorch_best"]
            ]
        for method in [*METHODS, "botorch tutorial loop"]:
            if method not in curves:
                continue
            regret = np.maximum(np.asarray(curves[method]), 1e-8)
            mean = np.exp(np.mean(np.log(regret), axis=0))  # geometric mean over seeds
            seeds = regret.shape[0]
            label = f"{method} ({seeds} seed{'s' if seeds > 1 else ''})"
            if f"{problem_name}:{method}" in CELL_OPTIONS:
                label += ", lighter settings"
            ax.semilogy(np.arange(1, regret.shape[1] + 1), mean, label=label, color=COLORS[method])
        ax.set_title(problem_name)
        ax.set_xlabel("evaluations")
        ax.set_ylabel("simple regret (geometric mean over seeds)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "bayesopt_regret.png", dpi=110)
    plt.close(fig)


def overhead_lines(overhead: dict | None) -> list[str]:
    header = [
        "## Overhead of probkit's loop over plain BoTorch (Branin, GP + LogEI, 10 + 30)",
        "",
    ]
    if not overhead:
        return [*header, "Not run yet (`--only overhead`).", ""]
    optimum = PROBLEMS["branin"][0].optimal_value
    pk_time, bt_time = np.median(overhead["probkit_s"]), np.median(overhead["botorch_s"])
    ratios = np.array(overhead["probkit_s"]) / np.array(overhead["botorch_s"])
    pk_regret = [b[-1] - optimum for b in overhead["probkit_best"]]
    bt_regret = [b[-1] - optimum for b in overhead["botorch_best"]]
    load = overhead["load_average"]
    return [
        *header,
        "Per-iteration times are measured on the same training data (both steps timed at",
        "every iteration of probkit's run, in alternating order); final regrets come from",
        "each loop run on its own from the same 10 Sobol' points. Run finished "
        f"{overhead['finished']}, load average {load[0]:.1f} at the start, {load[1]:.1f} at "
        "the end.",
        "",
        "| loop | median s / iteration | final regret @ 40 (mean ± s.e.) | seeds |",
        "|---|---|---|---|",
        f"| BoTorch tutorial loop | {bt_time:.3f} | {summarise(bt_regret)} | {len(bt_regret)} |",
        f"| probkit.bayesopt (Optimizer.ask, as minimize runs it) | {pk_time:.3f} "
        f"| {summarise(pk_regret)} | {len(pk_regret)} |",
        f"| ratio probkit / BoTorch (median of per-iteration ratios) | "
        f"{np.median(ratios):.3f} | | {len(ratios)} iterations |",
        "",
    ]


def write_report(raw: dict, notes: str = "") -> None:
    """Regenerate the Markdown table and the regret plot from the raw results."""
    plot(raw)
    out = [
        "# Bayesian optimisation (benchmarks/bayesopt.py)",
        "",
        f"botorch {botorch.__version__}, torch {torch.__version__} (1 thread), CPU: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with "
        "other jobs: wall times of different rows are not comparable (each row says when it "
        "ran and the 1-minute load average at the start and end of its runs); CPU seconds "
        "are steadier. The overhead ratio comes from paired, interleaved steps. Every row "
        "is computed from `bayesopt_raw.json` (each seed's best-so-far curve and "
        "per-iteration times), written by the runs listed in the last column.",
        "",
        "## Simple regret (best value - minimum) against evaluations",
        "",
        "Mean ± standard error over the seeds (one seed: the value). Seconds per iteration:",
        "median over the iterations of one BO step (fit + acquisition + evaluation), mean",
        "over seeds, in wall and process CPU time; first and last step in wall time (the",
        "data grow from the initial design to the whole budget; BNN-HMC's first step",
        "includes compiling its NUTS runner, the only compile in these loops). Settings:",
        "the acquisition optimiser's restarts and raw samples and the acquisition's quasi-",
        "Monte Carlo samples (qKG: fantasies); **bold** where a cell departs from probkit's",
        "defaults (those of BoTorch's tutorials).",
        "",
        "| problem | method | seeds | regret @ evaluations | s / iteration | CPU s / iteration "
        "| first step (s) | last step (s) | settings | run (UTC) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *regret_rows(raw),
        "",
        "![regret](bayesopt_regret.png)",
        "",
    ]
    if notes:
        out += [notes.strip(), ""]
    out += overhead_lines(raw.get("overhead"))
    missing = [f"{p}:{m}" for p in PROBLEMS for m in METHODS if not raw["runs"].get(p, {}).get(m)]
    if missing:
        out.append(f"Not run yet: {', '.join(missing)} (`--only problem:method`).")
    (RESULTS / "bayesopt.md").write_text("\n".join(out).rstrip() + "\n")
    print(f"wrote {RESULTS / 'bayesopt.md'} and {RESULTS / 'bayesopt_regret.png'}")


NOTES = RESULTS / "bayesopt_notes.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="seeds for branin / ackley10")
    parser.add_argument("--hartmann-repeats", type=int, default=1)
    parser.add_argument("--overhead-repeats", type=int, default=4)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="CELL",
        help="run only these problem:method cells (and 'overhead' for the overhead part); "
        "their seeds replace the same seeds in the raw file, other cells are kept",
    )
    parser.add_argument(
        "--report", action="store_true", help="run nothing; rewrite the table and plot"
    )
    args = parser.parse_args()

    if args.only:
        cells = [c.split(":", 1) for c in args.only if c != "overhead"]
        for cell in cells:
            if len(cell) != 2 or cell[0] not in PROBLEMS or cell[1] not in METHODS:
                parser.error(
                    f"--only {':'.join(cell)}: give problem:method with a problem of "
                    f"{list(PROBLEMS)} and a method of {list(METHODS)}, or 'overhead'."
                )
        run_overhead = "overhead" in args.only
    else:
        cells = [[p, m] for p in args.problems for m in args.methods]
        run_overhead = True
    if args.report:
        cells, run_overhead = [], False

    print(f"botorch {botorch.__version__}, torch {torch.__version__}, {platform.processor()}")
    for problem_name, method in cells:
        problem = PROBLEMS[problem_name][0]
        repeats = args.hartmann_repeats if problem_name == "hartmann6" else args.repeats
        for seed in range(repeats):
            print(f"{problem_name} {method} seed {seed}", flush=True)
            load_start = os.getloadavg()[0]
            start, start_cpu = time.perf_counter(), time.process_time()
            run = run_method(method, problem_name, seed)
            store_run(problem_name, method, seed, run, load_start)
            print(
                f"{problem_name:10s} {method:9s} seed {seed}: regret "
                f"{run['best'][-1] - problem.optimal_value:.4g} "
                f"({time.perf_counter() - start:.0f} s wall, "
                f"{time.process_time() - start_cpu:.0f} s CPU)",
                flush=True,
            )

    if run_overhead:
        print("overhead: probkit GP-LogEI loop vs the BoTorch tutorial loop (Branin)", flush=True)
        load_start = os.getloadavg()[0]
        rows = overhead(args.overhead_repeats)
        store_overhead(rows, load_start)
        ratios = np.array(rows["probkit_s"]) / np.array(rows["botorch_s"])
        print(f"  median of per-iteration ratios probkit / BoTorch {np.median(ratios):.3f}")

    raw = merge_raw(lambda raw: None)
    write_report(raw, NOTES.read_text() if NOTES.exists() else "")


if __name__ == "__main__":
    main()
