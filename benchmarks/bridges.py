"""Schrödinger bridges: held-out EMD of multi-marginal bridges, and Sinkhorn against POT.

Part 1 — trajectory inference (Shen, Berlinghieri & Broderick, AISTATS 2025, Sec. 5):
data simulated here from ``dX = f(X, theta) dt + sigma dW`` (Euler-Maruyama, 100 steps
per snapshot interval):

- Lotka-Volterra, 2-D, ``theta = (1, 0.5, 0.5, 1)``, ``sigma = 0.1``, 9 snapshots of 50
  particles on ``t = 0, 0.5, ..., 4``;
- repressilator, 3-D, ``theta = (beta, n, gamma) = (10, 3, 1)``, ``sigma = 0.1``,
  11 snapshots of 50 particles on ``t = 0, 0.5, ..., 5``.

The bridges see only the even snapshots; the odd ones are held out (drawn from an
independent simulation). Vanilla: the Brownian-reference bridge (``theta0`` with zero
drift, no refit). Refinement: ``multimarginal`` with 10 outer iterations from the same
``theta0``. EMD: exact W1 (Euclidean ground cost) between 50 held-out particles and 50
bridged positions at each odd time by ``scipy.optimize.linear_sum_assignment``,
averaged over 4 disjoint blocks of 50 trajectories and over the odd times. Seconds per
outer iteration are medians over iterations 2..10 (iteration 1 includes compilation,
reported apart).

Part 2 — Sinkhorn speed: ``probkit.bridges.sinkhorn`` (OTT-JAX, log domain, jitted)
against POT's ``ot.sinkhorn(method="sinkhorn_log")`` (NumPy) on the same problems: 2-D
Gaussian point clouds, squared Euclidean cost, ``epsilon = 0.05``, marginal-error
L1 marginal-error threshold 1e-3 for both (POT checks an L2 error, so it gets
``stopThr = 1e-3 / sqrt(n)``, which implies the same L1 bound), float32 for probkit and
float64 for POT (its default). Compile time = first call minus the median run.

Run with ``JAX_PLATFORMS=cpu python benchmarks/bridges.py`` (``--quick``: fewer
outer iterations); writes ``benchmarks/results/bridges.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import ot
from scipy.optimize import linear_sum_assignment

import probkit.bridges as br

SYSTEMS = {
    "Lotka-Volterra (2-D, 9 x 50)": dict(
        reference=br.lotka_volterra(),
        theta=np.array([1.0, 0.5, 0.5, 1.0]),
        theta0=np.zeros(4),
        center=np.array([1.5, 1.0]),
        spread=0.2,
        times=np.linspace(0.0, 4.0, 9),
    ),
    "repressilator (3-D, 11 x 50)": dict(
        reference=br.repressilator(),
        theta=np.array([10.0, 3.0, 1.0]),
        theta0=np.array([0.0, 2.0, 0.0]),
        center=np.array([1.0, 2.0, 4.0]),
        spread=0.3,
        times=np.linspace(0.0, 5.0, 11),
    ),
}
SIGMA, N = 0.1, 50


def emd(a: np.ndarray, b: np.ndarray) -> float:
    """Exact W1 between two equal-size point sets (optimal assignment)."""
    cost = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def held_out_emd(result, times, held_out) -> float:
    values = []
    for k in range(1, len(times), 2):
        positions = np.asarray(result.at(float(times[k])))
        for block in range(positions.shape[0] // N):
            values.append(emd(positions[block * N : (block + 1) * N], held_out[k]))
    return float(np.mean(values))


def simulate(system, seed):
    x_init = system["center"] + system["spread"] * jax.random.normal(
        jax.random.key(seed), (N, len(system["center"]))
    )
    return np.asarray(
        br.simulate_snapshots(
            jax.random.key(seed + 1),
            system["reference"],
            jnp.asarray(system["theta"]),
            x_init,
            jnp.asarray(system["times"]),
            sigma=SIGMA,
        )
    )


def trajectory_inference(outer_iterations: int):
    rows = []
    for name, system in SYSTEMS.items():
        train, held_out = simulate(system, 0), simulate(system, 100)
        times = system["times"]
        kwargs = dict(
            reference=system["reference"],
            theta0=jnp.asarray(system["theta0"]),
            sigma=SIGMA,
            num_trajectories=4 * N,
            seed=0,
        )
        vanilla = br.multimarginal(times[::2], train[::2], outer_iterations=0, **kwargs)
        refined = br.multimarginal(
            times[::2], train[::2], outer_iterations=outer_iterations, **kwargs
        )
        seconds = refined.history.seconds
        rows.append(
            dict(
                system=name,
                vanilla=held_out_emd(vanilla, times, held_out),
                refined=held_out_emd(refined, times, held_out),
                first=float(seconds[0]),
                per_iteration=float(np.median(seconds[1:])),
                theta=np.asarray(refined.theta),
                truth=system["theta"],
                names=refined.parameter_names,
            )
        )
        print(rows[-1])
    return rows


def sinkhorn_speed(sizes, repeats):
    rows = []
    eps, threshold = 0.05, 1e-3
    solve = jax.jit(
        lambda c: br.sinkhorn(c, epsilon=eps, threshold=threshold, max_iterations=10000)
    )
    for n in sizes:
        rng = np.random.default_rng(n)
        x = rng.normal(size=(n, 2))
        y = rng.normal(size=(n, 2)) * 0.7 + np.array([1.0, 0.5])
        cost64 = np.asarray(((x[:, None] - y[None]) ** 2).sum(-1))
        cost = jnp.asarray(cost64, jnp.float32)
        start = time.perf_counter()
        jax.block_until_ready(solve(cost))
        first_s = time.perf_counter() - start
        pk_times, pot_times, pk_cpu, pot_cpu = [], [], [], []
        for _ in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            out = jax.block_until_ready(solve(cost))
            pk_times.append(time.perf_counter() - start)
            pk_cpu.append(time.process_time() - cpu)
        a = np.full(n, 1.0 / n)
        for _ in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            plan, log = ot.sinkhorn(
                a,
                a,
                cost64,
                eps,
                method="sinkhorn_log",
                stopThr=threshold / np.sqrt(n),  # POT checks the L2 error: L1 <= sqrt(n) L2
                numItermax=10000,
                log=True,
            )
            pot_times.append(time.perf_counter() - start)
            pot_cpu.append(time.process_time() - cpu)
        pk_s, pot_s = float(np.median(pk_times)), float(np.median(pot_times))
        pot_error = np.abs(plan.sum(0) - a).sum() + np.abs(plan.sum(1) - a).sum()
        rows.append(
            dict(
                n=n,
                compile=first_s - pk_s,
                probkit=pk_s,
                pot=pot_s,
                ratio=pot_s / pk_s,
                pk_cpu=float(np.median(pk_cpu)),
                pot_cpu=float(np.median(pot_cpu)),
                pk_iter=int(out.num_iterations),
                pot_iter=int(log["niter"]),
                pk_cost=float(out.transport_cost),
                pot_cost=float(np.sum(plan * cost64)),
                converged=bool(out.converged),
                pk_error=float(out.marginal_errors.sum()),
                pot_error=float(pot_error),
            )
        )
        print(rows[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="4 outer iterations instead of 10")
    args = parser.parse_args()
    load_before = os.getloadavg()
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    inference = trajectory_inference(outer_iterations=4 if args.quick else 10)
    speed = sinkhorn_speed([200, 1000, 2000], repeats=3)
    load_after = os.getloadavg()

    lines = [
        "# Schrödinger bridges benchmark",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs, "
        f"JAX {jax.__version__} on {jax.default_backend()}, POT {ot.__version__}. "
        f"Load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; the whole "
        f"script took {time.perf_counter() - wall_start:.0f} s wall, "
        f"{time.process_time() - cpu_start:.0f} s CPU. One process"
        + (" (--quick)." if args.quick else "."),
        "",
        "## Trajectory inference: held-out EMD (odd snapshots), sigma = 0.1",
        "",
        "Fit on the even snapshots; EMD = exact W1 to 50 held-out particles, mean over odd "
        "times and 4 blocks of 50 trajectories. Lower is better.",
        "",
        "| system | vanilla EMD | refinement EMD | ratio | first iteration (s, incl. compile) "
        "| s / outer iteration |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in inference:
        lines.append(
            f"| {row['system']} | {row['vanilla']:.4f} | {row['refined']:.4f} | "
            f"{row['refined'] / row['vanilla']:.2f} | {row['first']:.2f} | "
            f"{row['per_iteration']:.3f} |"
        )
    lines += ["", "Fitted reference parameters (truth in brackets):", ""]
    for row in inference:
        triples = zip(row["names"], row["theta"], row["truth"], strict=True)
        pairs = ", ".join(f"{n} = {v:.3f} ({t:g})" for n, v, t in triples)
        lines.append(f"- {row['system']}: {pairs}")
    lines += [
        "",
        "## Sinkhorn: probkit (OTT-JAX, jitted, float32) vs POT sinkhorn_log (NumPy, float64)",
        "",
        "n x n problems, 2-D Gaussian clouds, squared Euclidean cost, epsilon = 0.05, "
        "L1 marginal threshold 1e-3. Median wall and CPU seconds per solve (the machine is "
        "shared, so CPU seconds are the steadier comparison); speed-ups = POT / probkit.",
        "",
        "| n | probkit compile (s) | probkit run (s) | POT run (s) | speed-up (wall) | "
        "probkit CPU (s) | POT CPU (s) | speed-up (CPU) | "
        "probkit iterations | POT iterations | probkit <C,P> | POT <C,P> | "
        "probkit L1 marginal error | POT L1 marginal error |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in speed:
        lines.append(
            f"| {row['n']:,} | {row['compile']:.2f} | {row['probkit']:.4f} | {row['pot']:.4f} | "
            f"{row['ratio']:.1f}x | {row['pk_cpu']:.4f} | {row['pot_cpu']:.4f} | "
            f"{row['pot_cpu'] / row['pk_cpu']:.1f}x | {row['pk_iter']} | {row['pot_iter']} | "
            f"{row['pk_cost']:.4f} | {row['pot_cost']:.4f} | {row['pk_error']:.1e} | "
            f"{row['pot_error']:.1e} |"
        )
    out = Path(__file__).parent / "results" / "bridges.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
