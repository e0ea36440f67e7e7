"""Bayesian optimisation of the 6-D Hartmann function, against random search.

Hartmann6 on [0, 1]^6 has one global minimum, -3.32237, among six local ones. This
script minimises it with ``probkit.bayesopt.minimize``: 10 scrambled-Sobol' points,
then batches of 5 points chosen jointly by BoTorch's qLogNEI on a GP surrogate (the
batch is what a lab or a cluster evaluates in parallel). It prints the best value
after every batch and writes a plot of the simple regret (best value found minus the
minimum) against the number of evaluations, next to random search with the same
budget.

``--bnn`` adds the BNN surrogate whose weights are sampled by NUTS in JAX
(``surrogate="bnn-hmc"``): its first fit compiles the sampler (about 20 s on a CPU).

Run: ``python examples/bayesopt_hartmann6.py [--out FILE] [--batches 8] [--bnn]``
(about a minute of CPU time for the GP run).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from botorch.test_functions import Hartmann  # noqa: E402

from probkit import bayesopt  # noqa: E402

# BoTorch's matrices are tiny here (tens of points): torch's intra-op threads cost more
# in synchronisation than they gain, several times over on a busy 2-core machine.
torch.set_num_threads(1)

HARTMANN = Hartmann(dim=6)
MINIMUM = HARTMANN.optimal_value  # -3.32237
BOUNDS = [(0.0, 1.0)] * 6


def hartmann6(x: np.ndarray) -> float:
    return float(HARTMANN(torch.as_tensor(x)))


def run_bo(surrogate: str, batches: int, seed: int, **options) -> np.ndarray:
    start = time.perf_counter()

    def report(result):
        regret = result.y_best - MINIMUM
        print(
            f"  {surrogate:8s} {result.num_evaluations:3d} evaluations: best {result.y_best:+.4f} "
            f"(regret {regret:.4f}), {time.perf_counter() - start:5.1f} s"
        )

    result = bayesopt.minimize(
        hartmann6,
        BOUNDS,
        budget=10 + 5 * batches,
        initial_design=10,
        batch_size=5,
        surrogate=surrogate,
        acquisition="qlognei",
        seed=seed,
        callback=report,
        progress_bar=False,
        **options,
    )
    print(f"  {surrogate}: x_best = {np.round(result.x_best, 3)}")
    return result.best_so_far - MINIMUM


def random_search(budget: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).random((budget, 6))
    y = np.array([hartmann6(x) for x in X])
    return np.minimum.accumulate(y) - MINIMUM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bayesopt_hartmann6_regret.png", help="the plot")
    parser.add_argument("--batches", type=int, default=8, help="batches of 5 after 10 initial")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bnn", action="store_true", help="also run the HMC BNN surrogate")
    args = parser.parse_args()

    budget = 10 + 5 * args.batches
    curves = {"random search": random_search(budget, args.seed)}
    print(
        f"Hartmann6, minimum {MINIMUM:.5f}; random search best regret "
        f"{curves['random search'][-1]:.4f} after {budget} evaluations"
    )
    print("GP + qLogNEI, batches of 5:")
    curves["GP + qLogNEI"] = run_bo("gp", args.batches, args.seed)
    if args.bnn:
        print("BNN (NUTS) + qLogNEI, batches of 5:")
        curves["BNN-HMC + qLogNEI"] = run_bo(
            "bnn-hmc",
            args.batches,
            args.seed,
            surrogate_options={"hidden": (32, 32), "num_warmup": 200, "num_samples": 100},
        )

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, regret in curves.items():
        ax.semilogy(np.arange(1, budget + 1), regret, label=label)
    ax.axvline(10.5, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("simple regret (best - minimum)")
    ax.set_title("Hartmann6: 10 Sobol' points, then batches of 5")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
