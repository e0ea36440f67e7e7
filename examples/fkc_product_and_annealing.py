"""Feynman-Kac correctors: a product of two experts and an annealed mixture, with exact scores.

Both tasks use 2-D Gaussian mixtures noised by the VP SDE, whose scores are exact
(``probkit.sde.exact_score``), so the only errors are the samplers':

* product: expert A has four modes on a horizontal line, expert B three on a
  diagonal; their normalised product (a mixture in closed form) keeps mass only where
  both agree;
* annealing: ``p^3`` of a three-mode mixture (target normalised on a grid), which
  sharpens the modes and moves mass to the tallest one.

For each task the script runs the same SDE (combined score, 1000 steps) without
weights ("drift only") and as a Feynman-Kac corrector with adaptive resampling, in 8
independent runs of 2000 particles each (``probkit.smc.loop`` under ``vmap``). It
prints the mode masses (mean over the runs, with the standard error) and the energy
distance of the pooled weighted particles to exact target draws, and draws target /
drift only / FKC (one run, resampled to equal weights) side by side. The between-mode
masses of one FKC run vary far more than its ESS suggests (resampling makes particles
share early ancestors), hence several runs.

    python examples/fkc_product_and_annealing.py [--out fkc.png] [--particles 2000]
        [--steps 1000] [--runs 8]
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import probkit.fkc as fkc  # noqa: E402
import probkit.smc as smc  # noqa: E402
from probkit.sde import VPSDE, exact_score, gaussian_mixture, mixture_product, noised  # noqa: E402

SDE = VPSDE()
AXIS = np.arange(-6.0, 6.0, 0.03)
GRID = np.stack(np.meshgrid(AXIS, AXIS, indexing="ij"), -1).reshape(-1, 2)


@eqx.filter_jit
def independent_runs(fk, keys, num_particles):
    """One SMC run per key, all at once (the corrector and its unweighted twin share
    this compilation: only arrays differ between them)."""

    def one(key):
        return smc.loop(
            key, fk, num_particles=num_particles, resampling_fn=smc.systematic, ess_threshold=0.5
        )

    return jax.vmap(one)(keys)


def grid_log_density(gmm):
    return np.asarray(jax.jit(jax.vmap(gmm.log_prob))(jnp.asarray(GRID)))


def draws_from_grid(log_q, n, seed):
    """Exact-up-to-grid draws: pick cells by mass, jitter uniformly within the cell."""
    rng = np.random.default_rng(seed)
    q = np.exp(log_q - log_q.max())
    cells = rng.choice(len(GRID), size=n, p=q / q.sum())
    step = AXIS[1] - AXIS[0]
    return GRID[cells] + rng.uniform(-step / 2, step / 2, size=(n, 2))


def run_task(name, fk, fk_drift, log_q, centres, num_particles, num_runs):
    target = jnp.asarray(draws_from_grid(log_q, num_particles, 0))
    keys = jax.random.split(jax.random.key(1), num_runs)
    start = time.perf_counter()
    runs = {
        "drift only": independent_runs(fk_drift, keys, num_particles),
        "FKC": independent_runs(fk, keys, num_particles),
    }
    seconds = time.perf_counter() - start
    q = np.exp(log_q - log_q.max())
    cell = lambda x: np.argmin(((x[..., None, :] - centres) ** 2).sum(-1), -1)
    exact = np.bincount(cell(GRID), weights=q / q.sum(), minlength=len(centres))
    print(f"\n{name}: {num_runs} runs of {num_particles} particles each way ({seconds:.1f} s)")
    print(f"  mode masses, exact      {np.round(exact, 3)}")
    panels = {"target": np.asarray(target)}
    for label, res in runs.items():
        x = np.asarray(res.particles.x)
        w = np.exp(np.asarray(res.log_weights, np.float64))
        w /= w.sum(axis=1, keepdims=True)
        labels = cell(x)
        masses = np.stack([(w * (labels == k)).sum(1) for k in range(len(centres))], 1)
        se = masses.std(0, ddof=1) / np.sqrt(num_runs)
        # The runs pooled into one weighted sample (each run's weights divided by R).
        pooled_log_w = (res.log_weights - jnp.log(num_runs)).reshape(-1)
        distance = float(fkc.energy_distance(x.reshape(-1, 2), target, x_log_weights=pooled_log_w))
        error = np.abs(masses.mean(0) - exact).max()
        print(f"  mode masses, {label:10s} {np.round(masses.mean(0), 3)} (+- {se.max():.3f})")
        print(
            f"  {label:10s} largest mode-mass error {error:.3f}, "
            f"energy distance (pooled) {distance:.4f}"
        )
        idx = smc.systematic(jax.random.key(2), res.log_weights[0], num_particles)
        panels[label] = x[0][np.asarray(idx)]
    return panels


def main() -> None:
    parser = argparse.ArgumentParser(description="FKC product of experts and annealing")
    parser.add_argument("--out", default="fkc.png", help="where to write the figure")
    parser.add_argument("--particles", type=int, default=2000, help="particles of each run")
    parser.add_argument("--steps", type=int, default=1000, help="SDE steps")
    parser.add_argument("--runs", type=int, default=8, help="independent runs of each sampler")
    args = parser.parse_args()
    sizes = dict(num_particles=args.particles, num_runs=args.runs)
    t_min = SDE.t_min

    # Product of experts.
    expert_a = gaussian_mixture(
        jnp.ones(4), jnp.array([[-3.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [3.0, 0.0]]), 0.25
    )
    expert_b = gaussian_mixture(
        jnp.array([0.5, 0.3, 0.2]), jnp.array([[-3.0, -1.0], [0.0, 1.0], [3.0, 1.0]]), 0.5
    )
    exact = mixture_product(noised(expert_a, SDE, t_min), noised(expert_b, SDE, t_min))
    keep = np.asarray(jnp.exp(exact.log_weights)) > 0.01
    scores = [exact_score(expert_a, SDE), exact_score(expert_b, SDE)]
    options = dict(event_shape=(2,), num_steps=args.steps)
    product_panels = run_task(
        "product of two experts",
        fkc.product(scores, SDE, **options),
        fkc.product(scores, SDE, weighted=False, **options),
        grid_log_density(exact),
        np.asarray(exact.means)[keep],
        **sizes,
    )

    # Annealing p^3.
    beta = 3.0
    data = gaussian_mixture(
        jnp.array([0.25, 0.45, 0.3]),
        jnp.array([[-3.0, -2.0], [0.0, 2.5], [3.0, -1.0]]),
        jnp.array([[1.2, 0.8], [0.6, 0.6], [1.5, 0.5]]),
    )
    log_q = beta * grid_log_density(noised(data, SDE, t_min))
    score = exact_score(data, SDE)
    anneal_panels = run_task(
        f"annealing p^{beta:g}",
        fkc.anneal(score, SDE, beta, **options),
        fkc.anneal(score, SDE, beta, weighted=False, **options),
        log_q,
        np.asarray(data.means),
        **sizes,
    )

    fig, axes = plt.subplots(2, 3, figsize=(12, 8), sharex=True, sharey=True)
    for row, (task, panels) in enumerate(
        [("product", product_panels), (f"p^{beta:g}", anneal_panels)]
    ):
        for col, (label, x) in enumerate(panels.items()):
            ax = axes[row, col]
            ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4)
            ax.set_title(f"{task}: {label}", fontsize=10)
            ax.set_xlim(-6, 6)
            ax.set_ylim(-6, 6)
            ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
