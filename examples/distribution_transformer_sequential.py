"""Sequential Bayesian inference with a Distribution Transformer vs the exact filter.

A static 2-D latent ``z`` is observed through ``y = H z + 0.8 eps`` in a stream of 8
batches of 2 observations. The prior is a 3-component Gaussian mixture. After each batch
the Distribution Transformer's posterior (one forward pass of the shipped network,
fed back as the next prior) is drawn next to the exact posterior given all data so
far (closed form), with the Monte Carlo KL(exact || DT) in each panel title.

Run: ``python examples/distribution_transformer_sequential.py [--out FOLDER]`` (a few
seconds after JAX compiles the network once); writes
``distribution_transformer_sequential.png``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import probkit.models.distribution_transformer as dt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="folder for the PNG")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()

    prior = dt.gaussian_mixture(
        jnp.array([0.3, 0.4, 0.3]),
        jnp.array([[-2.5, 1.0], [0.5, -2.0], [2.5, 2.0]]),
        jnp.array([[[1.0, 0.4], [0.4, 0.8]], [[0.6, 0.0], [0.0, 1.2]], [[0.9, -0.3], [-0.3, 0.7]]]),
    )
    obs_matrix = jnp.array([[1.0, 0.3], [-0.2, 0.8]])
    noise_std = 0.8
    z_true = jnp.array([2.0, 1.2])
    key = jax.random.key(0)
    batches = [
        z_true @ obs_matrix.T + noise_std * jax.random.normal(jax.random.fold_in(key, t), (2, 2))
        for t in range(args.steps)
    ]

    start = time.perf_counter()
    approx = dt.sequential_posterior(prior, batches, obs_matrix=obs_matrix, noise_std=noise_std)
    print(
        f"DT: {args.steps} sequential updates in {time.perf_counter() - start:.2f} s "
        "(including the one-off compilation)"
    )
    start = time.perf_counter()
    approx = dt.sequential_posterior(prior, batches, obs_matrix=obs_matrix, noise_std=noise_std)
    print(
        f"DT: again, compiled: {1e3 * (time.perf_counter() - start) / args.steps:.2f} ms per update"
    )

    grid = np.linspace(-5, 5, 160)
    xx, yy = np.meshgrid(grid, grid)
    points = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], -1), jnp.float32)
    cols = min(4, args.steps + 1)
    rows = int(np.ceil((args.steps + 1) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    panels = [(prior, prior, "prior")]
    for t in range(args.steps):
        exact = dt.linear_gaussian_posterior(
            prior, jnp.concatenate(batches[: t + 1]), obs_matrix, noise_std
        )
        kl, se = dt.kl_divergence_mc(jax.random.key(t), exact, approx[t], 4000)
        panels.append((exact, approx[t], f"after {2 * (t + 1)} obs: KL {float(kl):.3f}"))
        print(f"step {t + 1}: KL(exact || DT) = {float(kl):.4f} +- {float(se):.4f}")
    for ax, (exact, approximation, title) in zip(axes.ravel()[: len(panels)], panels, strict=True):
        pe = np.exp(np.asarray(exact.log_prob(points))).reshape(xx.shape)
        pa = np.exp(np.asarray(approximation.log_prob(points))).reshape(xx.shape)
        ax.contour(xx, yy, pe, levels=6, colors="k", linewidths=1.0)
        ax.contour(xx, yy, pa, levels=6, colors="tab:red", linewidths=1.0, linestyles="--")
        ax.plot(*np.asarray(z_true), "b*", ms=10)
        ax.set_title(title, fontsize=9)
        ax.set_aspect("equal")
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    fig.suptitle("exact posterior (black) vs Distribution Transformer (red dashed); * true z")
    fig.tight_layout()
    path = os.path.join(args.out, "distribution_transformer_sequential.png")
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
