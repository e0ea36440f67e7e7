"""Sequential Bayesian inference for continual learning on split 2-D Gaussian blobs.

A small Bayesian MLP learns three tasks (two new classes each, one shared head) in order;
each task's posterior is sampled with probkit's NUTS and propagated as the next prior by
a full-covariance Gaussian. The joint posterior on all the data is the reference, and
the prototype baseline (class-conditional Gaussians with exact conjugate updates) the
alternative Kessler et al. (2023) propose. Writes the accuracy matrices to
``continual_accuracy.png``.

Run: ``python examples/continual_learning_sequential_bayes.py [--out continual_accuracy.png]
[--draws 300]`` (about a minute on 2 CPU cores).
"""

import argparse

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
import probkit.models.continual as cl  # noqa: E402

NUM_TASKS = 3
LAYERS = (2, 8, 2 * NUM_TASKS)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="continual_accuracy.png", help="where to write the figure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=300, help="NUTS warm-up and draws per chain")
    args = parser.parse_args()
    seed, out = args.seed, args.out
    tasks = cl.split_gaussian_blobs(jax.random.key(seed), NUM_TASKS, num_train=50)
    d = cl.mlp_num_params(LAYERS)
    seq = cl.sequential_posterior(
        cl.mlp_classifier_model,
        tasks,
        dist.MultivariateNormal(jnp.zeros(d), jnp.eye(d)),
        propagator="gaussian",
        predict=cl.mlp_predict(LAYERS),
        joint=True,
        model_kwargs={"layer_sizes": LAYERS},
        num_chains=2,
        num_warmup=args.draws,
        num_samples=args.draws,
        seed=seed,
        max_num_doublings=6,
        diagnose=False,  # a BNN posterior is multimodal: R-hat warnings are expected
    )
    proto = cl.prototype_baseline(tasks, 2 * NUM_TASKS)
    joint = np.full((NUM_TASKS, NUM_TASKS), np.nan)
    joint[:, -1] = seq.joint_accuracy
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    for ax, (title, acc) in zip(
        axes,
        [
            ("sequential NUTS + Gaussian prior", seq.accuracy),
            ("joint posterior", joint),
            ("prototype baseline", proto.accuracy),
        ],
        strict=True,
    ):
        ax.imshow(acc, vmin=0, vmax=1, cmap="viridis")
        for i in range(NUM_TASKS):
            for j in range(NUM_TASKS):
                if np.isfinite(acc[i, j]):
                    ax.text(j, i, f"{acc[i, j]:.2f}", ha="center", va="center", color="w")
        ax.set(
            title=title,
            xlabel="after learning task",
            ylabel="accuracy on task",
            xticks=range(NUM_TASKS),
            yticks=range(NUM_TASKS),
        )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print("sequential accuracy matrix (row: task, column: after task)\n", seq.accuracy.round(3))
    print("sequential metrics", {k: round(v, 3) for k, v in seq.metrics.items()})
    print("joint accuracy per task", seq.joint_accuracy.round(3))
    print("prototype metrics", {k: round(v, 3) for k, v in proto.metrics.items()})
    print(f"wrote {out}")
    return {"sequential": seq, "prototype": proto}


if __name__ == "__main__":
    main()
