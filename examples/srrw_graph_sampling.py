"""Sampling a graph with self-repellent random walks: variance against alpha.

Estimate the average degree of a power-law graph (Barabasi-Albert, 500 nodes, m = 3,
seed 0) by walking on it: the Metropolis-Hastings walk to the uniform law makes
``(1/n) sum_k deg(X_k)`` an estimate of the mean degree. The self-repellent walk
SRRW(alpha) over that MH walk (Doshi, Hu & Eun, ICML 2023) avoids nodes it has
over-visited and cuts the asymptotic variance like O(1/alpha).

For each alpha, 256 independent walkers of 4000 steps give ``n Var(walker averages)``,
plotted with its 95% band against the exact asymptotic variance (fundamental matrix at
alpha = 0, Doshi et al.'s closed form for alpha > 0). Writes
``srrw_graph_sampling.png``.

The printed estimates also show the SRRW's finite-n bias: early on the walk chases
unvisited nodes, which shifts the average by O(1/n) (here about +0.1 at n = 4000
for alpha >= 5, many standard errors, shrinking fourfold when n grows fourfold).

Run: ``python examples/srrw_graph_sampling.py [--outdir DIR]`` (about 30 s on 2 cores).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402

import probkit.graph as pg  # noqa: E402

ALPHAS = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0)


def main():
    parser = argparse.ArgumentParser(description="SRRW variance against alpha.")
    parser.add_argument("--outdir", default=".", help="where to write the PNG")
    parser.add_argument("--walkers", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4000)
    args = parser.parse_args()
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    graph = pg.from_networkx(nx.barabasi_albert_graph(500, 3, seed=0))
    degree = np.asarray(graph.degree, float)
    base = pg.metropolis_hastings_walk(graph)  # uniform target
    rel_se = np.sqrt(2 / (args.walkers - 1))
    measured, exact = [], []
    print(f"mean degree {degree.mean():.3f}; {args.walkers} walkers x {args.steps} steps")
    print(f"{'alpha':>6s} {'estimate':>18s} {'n Var':>8s} {'exact':>8s}")
    for alpha in ALPHAS:
        walk = pg.self_repellent_walk(base, alpha)
        result = pg.sample(walk, degree, seed=1, num_steps=args.steps, num_walkers=args.walkers)
        var = args.steps * np.var(np.asarray(result.walker_means, float), ddof=1)
        measured.append(var)
        exact.append(float(pg.asymptotic_variance(walk, degree)))
        print(
            f"{alpha:6.1f} {float(result.mean):9.3f} +- {float(result.walker_mcse):.3f} "
            f"{var:8.2f} {exact[-1]:8.2f}"
        )
    measured, exact = np.array(measured), np.array(exact)

    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.array(ALPHAS) + 0.5  # alpha = 0 on a log axis
    ax.fill_between(x, measured * (1 - 2 * rel_se), measured * (1 + 2 * rel_se), alpha=0.25)
    ax.plot(x, measured, "o-", label=f"measured ({args.walkers} walkers, n = {args.steps})")
    ax.plot(x, exact, "k--", label="exact asymptotic (n -> infinity)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{a:g}" for a in ALPHAS])
    ax.set_xlabel("alpha (self-repellence)")
    ax.set_ylabel("asymptotic variance of the degree average")
    ax.set_title("SRRW over the MH walk, 500-node power-law graph")
    ax.legend()
    fig.tight_layout()
    path = outdir / "srrw_graph_sampling.png"
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
