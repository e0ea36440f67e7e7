"""FKC annealing against exact answers, across the noise scale ``kappa`` and step counts.

``fkc.anneal``'s default ``noise_scale=1`` is the published sampler. Any ``kappa > 0`` is
exact in continuous time (the extra drift and noise are Langevin dynamics for the
annealed ``q_t``, and the weights do not change), while a larger ``kappa`` gives a
stiffer SDE to discretise. This script measures both sides of that trade on targets
with exact answers: for each ``(task, kappa, num_steps)`` it runs ``R`` independent SMC
runs of ``N`` particles (``smc.loop`` defaults: systematic resampling when ESS < N/2) and
reports, per moment, the bias (mean over runs - exact, with its standard error) and one
run's spread (what a user sees from one run).

Tasks (exact answers):
- ``N(0, 1)`` data under VP, ``beta = 2`` and ``4``: ``E[x^2] = 1 / beta``.
- a 3-component 2-D mixture under VP, ``beta = 2``: moments by quadrature of
  ``p_{t_min}^beta`` on a grid.
- the same mixture under VE (``sigma_max = 20``), ``beta = 3``.

Run: ``python benchmarks/fkc_noise_scale.py [--runs R] [--particles N]``.
"""

import argparse
import platform
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import multivariate_normal

import probkit.fkc as fkc
import probkit.smc as smc
from probkit.sde import VESDE, VPSDE, exact_score, gaussian_mixture

WEIGHTS = np.array([0.2, 0.5, 0.3])
MEANS = np.array([[-3.0, 0.0], [0.0, 2.5], [3.0, -1.0]])
COVS = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.6, 0.3], [0.3, 0.8]], [[1.5, 0.0], [0.0, 0.5]]])
MOMENTS_2D = ("E x", "E y", "E x^2", "E y^2", "E xy")


@eqx.filter_jit
def replicated(fk, keys, num_particles):
    def one(key):
        return smc.loop(
            key, fk, num_particles=num_particles, resampling_fn=smc.systematic, ess_threshold=0.5
        )

    return jax.vmap(one)(keys)


def moments(x, weights):
    if x.shape[-1] == 1:
        return np.sum(weights * x[..., 0] ** 2, axis=1)[:, None]
    a, b = x[..., 0], x[..., 1]
    return np.stack([np.sum(weights * v, axis=1) for v in (a, b, a * a, b * b, a * b)], 1)


def grid_truth(sde, beta):
    m, s = (float(v) for v in sde.marginal(sde.t_min))
    axis = np.arange(-10.0, 10.0, 0.025)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    density = sum(
        w * multivariate_normal(m * mu, m**2 * c + s**2 * np.eye(2)).pdf(grid)
        for w, mu, c in zip(WEIGHTS, MEANS, COVS, strict=True)
    )
    q = density**beta
    q /= q.sum()
    a, b = grid[:, 0], grid[:, 1]
    return np.array([q @ a, q @ b, q @ a**2, q @ b**2, q @ (a * b)])


def tasks():
    mixture = gaussian_mixture(jnp.asarray(WEIGHTS), jnp.asarray(MEANS), jnp.asarray(COVS))
    ve = VESDE(sigma_min=0.01, sigma_max=20.0)
    for beta in (2.0, 4.0):
        yield (
            f"N(0, 1)^{beta:g}, VP",
            lambda x, t: -x,
            VPSDE(),
            beta,
            (1,),
            np.array([1.0 / beta]),
            ("E x^2",),
        )
    yield (
        "3-mode 2-D mixture ^2, VP",
        exact_score(mixture, VPSDE()),
        VPSDE(),
        2.0,
        (2,),
        grid_truth(VPSDE(), 2.0),
        MOMENTS_2D,
    )
    yield (
        "3-mode 2-D mixture ^3, VE (sigma_max 20)",
        exact_score(mixture, ve),
        ve,
        3.0,
        (2,),
        grid_truth(ve, 3.0),
        MOMENTS_2D,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--particles", type=int, default=4000)
    parser.add_argument("--kappas", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--steps", type=int, nargs="+", default=[500, 1000])
    args = parser.parse_args()
    keys = jax.random.split(jax.random.key(0), args.runs)
    print(
        f"Machine: {platform.machine()}, JAX {jax.__version__} on {jax.default_backend()}. "
        f"{args.runs} runs of {args.particles} particles per row, seed 0.\n"
        "Per moment: bias (mean over runs - exact) ± its standard error / one run's sd. "
        "**worst |z|**: the largest |bias| / standard error over the moments; "
        "**worst rmse**: the largest sqrt(bias^2 + sd^2), one run's error.\n"
    )
    for name, score, sde, beta, shape, truth, labels in tasks():
        print(f"### {name}\n")
        print("| kappa | steps | " + " | ".join(labels) + " | worst abs z | worst rmse | s |")
        print("|---:|---:|" + "---|" * len(labels) + "---:|---:|---:|")
        for steps in args.steps:
            for kappa in args.kappas:
                fk = fkc.anneal(
                    score, sde, beta, event_shape=shape, num_steps=steps, noise_scale=kappa
                )
                start = time.perf_counter()
                out = replicated(fk, keys, args.particles)
                log_w = np.asarray(out.log_weights, np.float64)
                seconds = time.perf_counter() - start
                w = np.exp(log_w - log_w.max(1, keepdims=True))
                w /= w.sum(1, keepdims=True)
                est = moments(np.asarray(out.particles.x, np.float64), w)
                bias = est.mean(0) - truth
                sd = est.std(0, ddof=1)
                se = sd / np.sqrt(args.runs)
                cells = [
                    f"{b:+.4f} ± {e:.4f} / {d:.4f}" for b, e, d in zip(bias, se, sd, strict=True)
                ]
                z = np.max(np.abs(bias) / se)
                rmse = np.max(np.sqrt(bias**2 + sd**2))
                print(
                    f"| {kappa:g} | {steps} | " + " | ".join(cells) + f" | {z:.1f} | {rmse:.4f} | "
                    f"{seconds:.1f} |",
                    flush=True,
                )
        print()


if __name__ == "__main__":
    main()
