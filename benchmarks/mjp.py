"""MJP inference: rate RMSE and time per data set for four methods on two processes.

Processes: the discrete flashing ratchet (V = r = b = 1, 18 rates, exact snapshots) and
a random fully connected 4-state process (12 rates log-uniform on [0.2, 5], label noise
0.05). Each data set: 300 stationary paths observed at 50 times on [0, 10]. Methods:

* MLE on the complete (Gillespie) paths: the oracle, which sees every jump;
* NUTS on the snapshots (probkit.mcmc through ``posterior``; posterior mean);
* tempered SMC on the snapshots (probkit.smc.tempered through ``posterior``, its
  waste-free defaults ``mjp.SMC_DEFAULTS``);
* the shipped amortised network (``amortized_posterior``; median rates).

RMSE is over the allowed off-diagonal rates, averaged over ``--datasets`` data sets.
Compile seconds (from jax.monitoring) are reported apart from run seconds; the
samplers compile on their first data set of a shape, so for them both columns matter.
Usage: ``python benchmarks/mjp.py [--datasets 2]``; ``--reuse-samplers`` re-runs only
the network against the MLE/NUTS/SMC results stored in ``results/mjp_raw.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import probkit.models.mjp as mjp  # noqa: E402
from _timing import timed  # noqa: E402

NUM_PATHS, NUM_OBS, HORIZON = 300, 50, 10.0


def processes(seed: int):
    ratchet = np.asarray(mjp.flashing_ratchet(1.0, 1.0, 1.0))
    rng = np.random.default_rng(seed)
    rates = np.exp(rng.uniform(np.log(0.2), np.log(5.0), (4, 4))) * (1 - np.eye(4))
    random4 = rates - np.diag(rates.sum(1))
    return {
        "flashing ratchet (K=6)": (ratchet, mjp.flashing_ratchet_adjacency(), 0.0),
        "random 4-state (K=4)": (random4, ~np.eye(4, dtype=bool), 0.05),
    }


def rmse(estimate, truth, adjacency):
    mask = adjacency & ~np.eye(len(truth), dtype=bool)
    return float(np.sqrt(np.mean((np.asarray(estimate)[mask] - truth[mask]) ** 2)))


def run_samplers(times, y, paths, k, adjacency, noise, seed, args, mle):
    """``{method: (estimate, compile s, run s)}`` of MLE, NUTS and SMC on one data set."""
    out = {"mle": timed(lambda: mle(paths, k))}
    common = dict(adjacency=adjacency, label_noise=noise, seed=seed)
    out["nuts"] = timed(
        lambda: mjp.posterior(
            times,
            y,
            k,
            num_chains=2,
            num_warmup=args.nuts_draws,
            num_samples=args.nuts_draws,
            diagnose=False,
            **common,
        ).mean()
    )
    out["smc"] = timed(
        lambda: mjp.posterior(
            times,
            y,
            k,
            method="smc",
            num_particles=args.particles,
            **common,
        ).mean()
    )
    return out


def run_network(times, y, k, adjacency):
    """``(estimate, compile s, run s)`` of the shipped network on one data set."""
    network = lambda: mjp.amortized_posterior(times, y, k, adjacency=adjacency)
    estimate, compile_s, _ = timed(network)  # the first call compiles
    runs = [timed(network)[2] for _ in range(5)]  # later calls are pure evaluation
    return estimate, compile_s, min(runs)


LABELS = {
    "mle": "MLE, complete paths (oracle)",
    "nuts": "NUTS, snapshots (2 chains x {nuts} draws)",
    "smc": "waste-free tempered SMC, snapshots ({particles} particles)",
    "net": "amortised network, snapshots",
}


def reuse_note(cached: dict) -> str:
    """The header note of a ``--reuse-samplers`` run: where the sampler rows come from."""
    splits = []
    for name, methods in cached.items():
        if name.startswith("_"):
            continue
        for method in ("nuts", "smc"):
            compile_s, run_s = np.mean(methods[method], axis=0)[1:]
            splits.append(
                f"{method.upper()} on the {name.split(' (')[0]}: {compile_s:.1f} s compile + "
                f"{run_s:.1f} s run"
            )
    return (
        f"(MLE, NUTS and SMC rows: measured by the last full run, {cached['_measured']}, "
        "stored in `results/mjp_raw.json`; this run re-ran only the network on the same "
        "data sets, regenerated from fixed keys. That full run predates commit 7e5029e: "
        "tempered SMC then compiled on every call, NUTS only on the first data set of a "
        "shape (every run here has one data set per process). As measured: "
        + "; ".join(splits)
        + ". With the compiled samplers reused, later data sets of the same shapes would "
        "cost the run time alone; not re-measured.)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=int, default=2)
    parser.add_argument("--nuts-draws", type=int, default=500)
    parser.add_argument("--particles", type=int, default=1000)
    parser.add_argument(
        "--reuse-samplers",
        action="store_true",
        help="read the MLE/NUTS/SMC results of the last run from results/mjp_raw.json "
        "(same data sets, regenerated from fixed keys) and re-run only the network",
    )
    args = parser.parse_args()
    raw_path = Path(__file__).parent / "results" / "mjp_raw.json"
    cached = json.loads(raw_path.read_text()) if args.reuse_samplers else None
    if cached is not None:
        stored = min(len(m["nuts"]) for n, m in cached.items() if not n.startswith("_"))
        if args.datasets > stored:
            parser.error(
                f"--reuse-samplers: mjp_raw.json holds {stored} data set(s) per "
                f"process; pass --datasets {stored} or rerun without it."
            )

    times = jnp.linspace(0.0, HORIZON, NUM_OBS)
    simulate_paths = jax.jit(mjp.simulate_paths, static_argnums=2, static_argnames="max_jumps")
    observe = jax.jit(mjp.observe, static_argnames="num_states")
    mle = jax.jit(mjp.maximum_likelihood, static_argnums=1)
    rows = []
    datasets = []
    results = {}
    for name, (q, adjacency, noise) in processes(0).items():
        k = len(q)
        process = mjp.MJP(jnp.asarray(q), mjp.stationary_distribution(jnp.asarray(q)))
        results[name] = {m: [] for m in LABELS}
        for d in range(args.datasets):
            key = jax.random.key(100 + d)
            paths = simulate_paths(key, process, NUM_PATHS, HORIZON, max_jumps=300)
            y = observe(jax.random.fold_in(key, 1), paths, times, num_states=k, label_noise=noise)
            y = np.asarray(y)
            datasets.append((name, q, adjacency, y))
            if cached is not None:
                for method in ("mle", "nuts", "smc"):
                    results[name][method].append(tuple(cached[name][method][d]))
            else:
                out = run_samplers(times, y, paths, k, adjacency, noise, d, args, mle)
                for method, (estimate, compile_s, run_s) in out.items():
                    results[name][method].append((rmse(estimate, q, adjacency), compile_s, run_s))
            print(name, d, {m: v[-1] for m, v in results[name].items() if v}, flush=True)
    if cached is None:
        raw = {n: {m: v for m, v in r.items() if m != "net"} for n, r in results.items()}
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        raw["_measured"] = f"{stamp}, load average " + " / ".join(
            f"{x:.1f}" for x in os.getloadavg()
        )
        raw_path.write_text(json.dumps(raw, indent=1))
    # the network last (its weights are read once, on the first call)
    initial_errors = {}
    for name, q, adjacency, y in datasets:
        estimate, compile_s, run_s = run_network(times, y, len(q), adjacency)
        results[name]["net"].append((rmse(estimate.rate_matrix, q, adjacency), compile_s, run_s))
        # the paths start stationary: the initial distribution is the stationary one
        pi = np.asarray(mjp.stationary_distribution(jnp.asarray(q)))
        error = np.abs(estimate.initial - pi)
        # reference: the first labels' frequencies (the MLE when the labels are exact)
        first = np.bincount(y[:, 0], minlength=len(q)) / len(y)
        initial_errors.setdefault(name, []).append(
            (error.max(), np.max(error / estimate.initial_sd), np.abs(first - pi).max())
        )
        print(name, "network", results[name]["net"][-1], initial_errors[name][-1], flush=True)
    for name in results:
        if name.startswith("_"):
            continue
        for method, label in LABELS.items():
            mean = np.mean(results[name][method], axis=0)
            label = label.format(nuts=args.nuts_draws, particles=args.particles)
            rows.append((name, label, *mean))
    weights = mjp.PRETRAINED_PATH
    with open(weights, "rb") as f:
        meta = json.loads(f.readline())["metadata"]

    load = os.getloadavg()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cpu = platform.processor() or platform.machine()
    lines = [
        "# MJP inference benchmark",
        "",
        f"`python benchmarks/mjp.py --datasets {args.datasets}` on {cpu}, {os.cpu_count()} "
        f"CPU cores shared with other jobs, load average {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} at the end ({stamp}). {NUM_PATHS} paths x {NUM_OBS} observations on "
        f"[0, {HORIZON:g}] per data set; RMSE over the allowed rates, averaged over data "
        "sets; seconds per data set (mean); the samplers' time per data set is counted as "
        "compile + run. NUTS (probkit.mcmc) and, since commit 7e5029e, tempered SMC "
        "(probkit.smc) reuse their compiled samplers for later data sets of the same shapes, "
        "so compile + run is the cost of the first data set and run alone that of later ones. "
        "The network compiles once per input shape. Exact labels "
        "(the ratchet) use the transition-count likelihood, noisy ones the forward "
        "algorithm. Shipped network: "
        f"{meta['steps']} steps, {meta['cpu_seconds']:.0f} CPU-s of training, held-out "
        f"synthetic log-rate RMSE {meta['log_rate_rmse']:.3f}, +-2 sd coverage "
        f"{meta['coverage_2sd']:.3f}; initial distribution: RMSE "
        f"{meta.get('initial_rmse', float('nan')):.3f} per probability, +-2 sd coverage "
        f"{meta.get('initial_coverage_2sd', float('nan')):.3f}.",
        "" if cached is None else reuse_note(cached),
        "",
        "| process | method | rate RMSE | compile s | run s | s per data set | RMSE / NUTS "
        "| speed-up vs NUTS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r[0] for r in rows):
        sub = [r for r in rows if r[0] == name]
        nuts = next(r for r in sub if r[1].startswith("NUTS"))
        nuts_total = nuts[3] + nuts[4]
        for r in sub:
            # samplers compile for every data set; MLE and the network compile once
            per_set = r[3] + r[4] if r[1].startswith(("NUTS", "waste-free", "tempered")) else r[4]
            lines.append(
                f"| {name} | {r[1]} | {r[2]:.4f} | {r[3]:.2f} | {r[4]:.4f} | {per_set:.4f} | "
                f"{r[2] / nuts[2]:.2f} | {nuts_total / max(per_set, 1e-9):,.1f}x |"
            )
    lines += ["", "Initial distribution by the network (the paths start stationary):"]
    for name, errors in initial_errors.items():
        error, z, first = np.mean(errors, axis=0)
        lines.append(
            f"{name}: largest absolute error of the initial probabilities {error:.3f} "
            f"(largest in units of the network's sd: {z:.1f}); the first labels' "
            f"frequencies: {first:.3f}."
        )
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).parent / "results" / "mjp.md"
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
