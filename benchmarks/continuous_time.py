"""Continuous-time latent models: ELBO steps per second and MA-fBM accuracy.

1. ELBO gradient steps per second of a latent SDE driven by MA-fBM (H = 0.3, K = 5
   OU components, d = 1 latent, 8 Monte Carlo paths, 200 Euler steps on [0, 1], 11
   Gaussian observations): probkit's plain Euler-Maruyama loop (``lax.scan``, the
   default) against the same recursion solved by ``diffrax.diffeqsolve`` with
   ``diffrax.Euler()`` and checkpointed backpropagation (``solver=diffrax.Euler()``),
   on the same Brownian increments. Compile seconds apart from run seconds.
2. MA-fBM accuracy: RMS error of the approximation's covariance against the exact fBM
   covariance on a 50-point grid of (0, 1], by number of OU components.

Usage: ``python benchmarks/continuous_time.py [--steps 50]``; writes
``benchmarks/results/continuous_time.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import diffrax  # noqa: E402
import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _timing import timed  # noqa: E402

import probkit.sde as sde  # noqa: E402


def elbo_steps(solver, num_steps: int):
    model = sde.latent_sde(jax.random.key(0), 1, 1.0, hurst=0.3)
    times = jnp.linspace(0.0, 1.0, 11)
    y = jnp.sin(3 * times)[:, None]
    params, static = eqx.partition(model, eqx.is_inexact_array)

    @eqx.filter_jit
    def run(params, keys):
        def body(p, key):
            loss = lambda q: (
                -sde.elbo(
                    key, eqx.combine(q, static), times, y, num_samples=8, dt=1 / 200, solver=solver
                ).elbo
            )
            value, grads = jax.value_and_grad(loss)(p)
            return jax.tree.map(lambda a, g: a - 1e-3 * g, p, grads), value

        return jax.lax.scan(body, params, keys)[1]

    keys = jax.random.split(jax.random.key(1), num_steps)
    timed(lambda: run(params, keys[:1]))  # not timed: warms the tracing caches of diffrax
    _, compile_s, _ = timed(lambda: run(params, keys))
    _, _, run_s = timed(lambda: run(params, keys))
    return compile_s, run_s


def accuracy_table():
    grid = np.linspace(0.02, 1.0, 50)
    rows = []
    for kind in ("I", "II"):
        for hurst in (0.2, 0.3, 0.5, 0.7, 0.9):
            exact = sde.fbm_covariance(hurst, grid, grid, kind)
            errors = []
            for k in (1, 2, 4, 6, 8, 10):
                approx = np.asarray(
                    sde.markov_fbm_covariance(sde.markov_fbm(hurst, k, kind=kind), grid, grid)
                )
                errors.append(float(np.sqrt(np.mean((approx - exact) ** 2))))
            rows.append((kind, hurst, errors, float(np.max(np.diag(exact)))))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    plain = elbo_steps(None, args.steps)
    solved = elbo_steps(diffrax.Euler(), args.steps)
    rows = accuracy_table()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    lines = [
        "# Continuous-time latent models",
        "",
        f"`python benchmarks/continuous_time.py --steps {args.steps}` on {platform.machine()}, "
        f"{os.cpu_count()} CPU cores shared with other jobs (load average {load}), {now}.",
        "",
        "## ELBO gradient steps per second (latent SDE driven by MA-fBM)",
        "",
        "H = 0.3, K = 5 OU components, 1 latent dimension, 8 Monte Carlo paths x 200 Euler "
        f"steps, 11 observations; {args.steps} gradient steps in one jitted `lax.scan`. Both "
        "rows run the same Euler-Maruyama recursion on the same Brownian increments.",
        "",
        "| solver | compile s | run s | steps / s | speed-up |",
        "|---|---|---|---|---|",
    ]
    for name, (c, r) in (
        ("probkit plain Euler-Maruyama loop (default)", plain),
        ("diffrax.diffeqsolve, diffrax.Euler(), checkpointed adjoint", solved),
    ):
        lines.append(
            f"| {name} | {c:.2f} | {r:.3f} | {args.steps / r:.1f} | {solved[1] / r:.2f}x |"
        )
    lines += [
        "",
        "## MA-fBM accuracy vs number of OU components",
        "",
        "RMS over a 50 x 50 grid of (0.02, 1] of (approximate - exact) covariance; default "
        "rates (geometric, ratio 5, centred on 1/T), optimal weights for T = 1. Exact: "
        "type I `(s^2H + t^2H - |t-s|^2H)/2` (variance 1 at t = 1), type II the "
        "Riemann-Liouville closed form (variance at t = 1 in the last column).",
        "",
        "| type | H | K=1 | K=2 | K=4 | K=6 | K=8 | K=10 | Var B(1) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, hurst, errors, var1 in rows:
        lines.append(
            f"| {kind} | {hurst} | " + " | ".join(f"{e:.4f}" for e in errors) + f" | {var1:.3f} |"
        )
    out = Path(__file__).parent / "results" / "continuous_time.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
