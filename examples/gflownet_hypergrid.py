"""Train a GFlowNet on the hypergrid and compare what it samples with the exact target.

A trajectory-balance GFlowNet at probkit's defaults (k-hot input, 2 x 256 MLP, batch 16,
Adam 1e-2 decayed along a cosine to 0) learns to sample the 16 x 16 grid with the reward
of Bengio et al. (2021). The script prints the exact L1 distance of the sampler to the
target as training proceeds (the sampler's distribution is computed exactly by
propagating its policy over the grid), the learned log Z against the exact one, and
an importance-weighted estimate of a target expectation from fresh samples (with its
effective sample size), then draws the learned and exact distributions as heat maps.
About 75 s on 2 CPU cores (compilation included); the final exact L1 is about 0.001.

    python examples/gflownet_hypergrid.py [--out gflownet_hypergrid.png] [--height 16]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import probkit.models.gflownet as gflownet  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description="GFlowNet on the 2-D hypergrid")
    parser.add_argument("--out", default="gflownet_hypergrid.png", help="figure path")
    parser.add_argument("--height", type=int, default=16, help="side H of the grid")
    parser.add_argument("--trajectories", type=int, default=64_000, help="training budget")
    parser.add_argument("--loss", default="tb", choices=["tb", "db", "subtb", "fm"])
    args = parser.parse_args()

    env = gflownet.HyperGrid(ndim=2, height=args.height)
    start = time.perf_counter()
    gfn = gflownet.fit(
        env, loss=args.loss, num_trajectories=args.trajectories, seed=0, progress_bar=True
    )
    print(f"trained in {time.perf_counter() - start:.1f} s (compilation included)")
    history = gfn.history
    print("trajectories   exact summed L1   modes found")
    for n, l1, found in zip(history.trajectories, history.l1, history.modes_found, strict=True):
        print(
            f"{int(n):12d}   {float(l1):15.4f}   {int(found)} of {int(gflownet.modes(env).sum())}"
        )

    metrics = gflownet.evaluate_policy(gfn.policy, env, gfn.log_partition)
    print(
        f"final: summed L1 {float(metrics.l1_sum):.4f}, mean L1 {float(metrics.l1_mean):.2e}, "
        f"JSD {float(metrics.jsd):.2e}"
    )
    print(f"log Z: learned {float(gfn.log_partition):.4f}, exact {float(env.log_partition()):.4f}")

    # Debiasing with importance weights R(x) P_B(tau|x) / P_F(tau): E_target[s_0 + s_1].
    states = env.all_states()
    target = gflownet.exact_target(env)
    exact = float(target @ states.sum(1))
    estimate, ess = gflownet.reweighted_expectation(
        jax.random.key(1), gfn.policy, env, lambda x: x.sum().astype(jnp.float32), 10_000
    )
    print(
        f"E_target[s_0 + s_1]: exact {exact:.4f}, importance-weighted {float(estimate.value):.4f}"
        f" +- {float(estimate.std_error):.4f} (ESS {float(ess):.0f} of 10000)"
    )

    learned = np.asarray(gflownet.terminal_distribution(gfn.policy, env))
    shape = (args.height, args.height)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    vmax = float(target.max())
    for ax, probs, title in (
        (axes[0], np.asarray(target), "exact target R(x) / Z"),
        (axes[1], learned, f"GFlowNet ({args.loss}), exact sampler distribution"),
    ):
        im = ax.imshow(probs.reshape(shape).T, origin="lower", vmin=0, vmax=vmax)
        ax.set_title(title)
        ax.set_xlabel("s_0")
        ax.set_ylabel("s_1")
        fig.colorbar(im, ax=ax)
    axes[2].plot(history.trajectories, history.l1, marker="o")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("trajectories")
    axes[2].set_ylabel("exact summed L1")
    axes[2].set_title("convergence")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
