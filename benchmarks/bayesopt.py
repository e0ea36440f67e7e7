"""Bayesian optimisation: probkit's loop and surrogates vs random search and plain BoTorch.

Two parts, in one process:

1. Regret. Best value found against the number of evaluations on
   - Branin (2-D): 10 Sobol' points + 30 sequential evaluations,
   - Hartmann6 (6-D): 10 + 19 batches of 10 (the BNN study's setting; batches are
     chosen jointly with qLogEI),
   - Ackley (10-D, on [-32.768, 32.768]^10): 10 + 40 sequential evaluations,
   for random search and probkit with surrogate/acquisition GP-LogEI, GP-qKG, BNN-HMC
   (NUTS in JAX), I-BNN and DKL (the ensembles use Monte Carlo qLogEI). Simple regret
   = best value - known minimum.
2. Overhead. Wall time per iteration of ``probkit.bayesopt.minimize`` (GP + LogEI)
   against the loop of BoTorch's tutorials written out by hand (SingleTaskGP with
   Normalize/Standardize, fit_gpytorch_mll, LogExpectedImprovement, optimize_acqf
   with 10 restarts and 512 raw samples), on Branin from the same initial points, the
   two runs interleaved so that machine load hits both alike.

Compile time: only the BNN-HMC surrogate compiles (its NUTS runner, once per data-size
bucket); its first fit is reported apart from the median fit.

torch runs single-threaded (the matrices are tiny; on a shared 2-core machine extra
intra-op threads cost several times more than they save) for probkit and BoTorch alike.

Run: ``python benchmarks/bayesopt.py [--repeats 3] [--problems branin hartmann6 ackley10]
[--methods ...]``; writes ``benchmarks/results/bayesopt.md`` and
``benchmarks/results/bayesopt_regret.png``.
"""

from __future__ import annotations

import argparse
import os
import platform
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

torch.set_num_threads(1)
RESULTS = Path(__file__).parent / "results"

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


def objective_of(problem):
    return lambda x: float(problem(torch.as_tensor(x)))


def run_method(name: str, problem_name: str, seed: int) -> dict:
    problem, bounds, initial, batch, batches = PROBLEMS[problem_name]
    budget = initial + batch * batches
    f = objective_of(problem)
    if METHODS[name] is None:
        low, high = np.array(bounds).T
        X = low + (high - low) * np.random.default_rng(seed).random((budget, len(bounds)))
        y = np.array([f(x) for x in X])
        return {"best": np.minimum.accumulate(y), "seconds": [], "first": None}
    stamps = []

    def stamp(result):
        stamps.append(time.perf_counter())

    start = time.perf_counter()
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
            **METHODS[name],
        )
    times = np.diff([start, *stamps])[1:]  # per BO iteration (the Sobol' design excluded)
    return {"best": result.best_so_far, "seconds": times, "first": times[0]}


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


def summarise(values: list[np.ndarray]) -> str:
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return f"{values.item():.3g}"
    return f"{values.mean():.3g} ± {values.std(ddof=1) / np.sqrt(values.size):.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="seeds for branin / ackley10")
    parser.add_argument("--hartmann-repeats", type=int, default=1)
    parser.add_argument("--overhead-repeats", type=int, default=4)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument(
        "--skip",
        nargs="*",
        default=["hartmann6:gp-qkg"],
        help="problem:method pairs not run (default: qKG with q=10 batches, "
        "a 650-dimensional one-shot optimisation per batch on a CPU)",
    )
    args = parser.parse_args()

    print(f"botorch {botorch.__version__}, torch {torch.__version__}, {platform.processor()}")
    load_start = os.getloadavg()[0]
    curves: dict[str, dict[str, list]] = {}
    lines = []
    for problem_name in args.problems:
        problem, bounds, initial, batch, batches = PROBLEMS[problem_name]
        repeats = args.hartmann_repeats if problem_name == "hartmann6" else args.repeats
        curves[problem_name] = {}
        for method in args.methods:
            if f"{problem_name}:{method}" in args.skip:
                continue
            runs = []
            for seed in range(repeats):
                start = time.perf_counter()
                runs.append(run_method(method, problem_name, seed))
                print(
                    f"{problem_name:10s} {method:9s} seed {seed}: regret "
                    f"{runs[-1]['best'][-1] - problem.optimal_value:.4g} "
                    f"({time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
            regret = [r["best"] - problem.optimal_value for r in runs]
            curves[problem_name][method] = regret
            n = len(regret[0])
            checkpoints = sorted(
                {initial + batch * max(1, batches // 3), initial + batch * (2 * batches // 3), n}
            )
            per_iteration = [np.median(r["seconds"]) for r in runs if len(r["seconds"])]
            first = [r["first"] for r in runs if r["first"] is not None]
            lines.append(
                (
                    problem_name,
                    method,
                    repeats,
                    checkpoints,
                    [summarise([r[c - 1] for r in regret]) for c in checkpoints],
                    summarise(per_iteration) if per_iteration else "-",
                    summarise(first) if first else "-",
                )
            )

    print("overhead: probkit GP-LogEI loop vs the BoTorch tutorial loop (Branin)", flush=True)
    rows = overhead(args.overhead_repeats)
    pk_time, bt_time = np.median(rows["probkit_s"]), np.median(rows["botorch_s"])
    ratios = np.array(rows["probkit_s"]) / np.array(rows["botorch_s"])
    optimum = PROBLEMS["branin"][0].optimal_value
    pk_regret = [b[-1] - optimum for b in rows["probkit_best"]]
    bt_regret = [b[-1] - optimum for b in rows["botorch_best"]]
    print(
        f"  per iteration: probkit {pk_time:.3f} s, BoTorch {bt_time:.3f} s, "
        f"median of per-iteration ratios {np.median(ratios):.3f}"
    )
    curves.setdefault("branin", {})
    curves["branin"]["botorch tutorial loop"] = [b - optimum for b in rows["botorch_best"]]

    # -- plot -------------------------------------------------------------------------
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4), squeeze=False)
    for ax, (problem_name, methods) in zip(axes[0], curves.items(), strict=True):
        for method, regret in methods.items():
            regret = np.maximum(np.asarray(regret), 1e-8)
            mean = np.exp(np.mean(np.log(regret), axis=0))  # geometric mean over seeds
            label = f"{method} ({regret.shape[0]} seeds)"
            ax.semilogy(np.arange(1, regret.shape[1] + 1), mean, label=label, color=COLORS[method])
        ax.set_title(problem_name)
        ax.set_xlabel("evaluations")
        ax.set_ylabel("simple regret (geometric mean over seeds)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    RESULTS.mkdir(exist_ok=True)
    fig.savefig(RESULTS / "bayesopt_regret.png", dpi=110)

    # -- table ------------------------------------------------------------------------
    out = [
        "# Bayesian optimisation (benchmarks/bayesopt.py)",
        "",
        f"botorch {botorch.__version__}, torch {torch.__version__} (1 thread), CPU: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with "
        f"other jobs (1-minute load average {load_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end): wall times of different rows are not "
        "comparable; the overhead ratio comes from paired, interleaved steps.",
        "",
        "## Simple regret (best value - minimum) against evaluations",
        "",
        "Mean ± standard error over the seeds (one seed: the value). Seconds per iteration:",
        "median wall time of one BO step (fit + acquisition), mean over seeds. BNN-HMC's",
        "first step includes compiling its NUTS runner (the only compile in these loops).",
        "",
        "| problem | method | seeds | regret @ evaluations | s / iteration | first step (s) |",
        "|---|---|---|---|---|---|",
    ]
    for problem_name, method, repeats, checkpoints, values, per_iteration, first in lines:
        at = ", ".join(f"{v} @ {c}" for c, v in zip(checkpoints, values, strict=True))
        out.append(f"| {problem_name} | {method} | {repeats} | {at} | {per_iteration} | {first} |")
    out += [
        "",
        "![regret](bayesopt_regret.png)",
        "",
        "## Overhead of probkit's loop over plain BoTorch (Branin, GP + LogEI, 10 + 30)",
        "",
        "Per-iteration times are measured on the same training data (both steps timed at",
        "every iteration of probkit's run, in alternating order); final regrets come from",
        "each loop run on its own from the same 10 Sobol' points.",
        "",
        "| loop | median s / iteration | final regret @ 40 (mean ± s.e.) | seeds |",
        "|---|---|---|---|",
        f"| BoTorch tutorial loop | {bt_time:.3f} | {summarise(bt_regret)} | {len(bt_regret)} |",
        f"| probkit.bayesopt (Optimizer.ask, as minimize runs it) | {pk_time:.3f} "
        f"| {summarise(pk_regret)} "
        f"| {len(pk_regret)} |",
        f"| ratio probkit / BoTorch (median of per-iteration ratios) | "
        f"{np.median(ratios):.3f} | | {len(ratios)} iterations |",
        "",
    ]
    if args.skip:
        out.append(f"Not run: {', '.join(args.skip)} (see --skip).")
    (RESULTS / "bayesopt.md").write_text("\n".join(out) + "\n")
    print(f"wrote {RESULTS / 'bayesopt.md'} and {RESULTS / 'bayesopt_regret.png'}")


if __name__ == "__main__":
    main()
