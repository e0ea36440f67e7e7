"""Particle filtering of a stochastic-volatility model on simulated returns.

The model (Kim, Shephard & Chib 1998):

    x_0 ~ N(mu, sigma^2 / (1 - phi^2)),   x_t = mu + phi (x_{t-1} - mu) + sigma e_t,
    y_t ~ N(0, exp(x_t)),

with ``x_t`` the log-variance of the return ``y_t``. The script simulates T = 300
returns, runs a bootstrap particle filter (``probkit.smc.particle_filter``) and plots
the filtered log-volatility with 95% bands against the truth. It then runs 20
independent filters at each of N = 100 ... 10,000 particles and plots the spread of
the log-likelihood estimates, which shrinks like 1 / sqrt(N).

    python examples/particle_filter_stochastic_volatility.py [--out sv_filtering.png]
        [--particles 5000] [--sizes 100,300,1000,3000,10000]
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
import numpyro.distributions as dist  # noqa: E402

import probkit.smc as smc  # noqa: E402

MU, PHI, SIGMA, T = -1.0, 0.95, 0.25, 300


def stochastic_volatility() -> smc.StateSpaceModel:
    """The SV model as a vectorised state-space model (functions of all particles)."""
    return smc.StateSpaceModel(
        initial=dist.Normal(MU, SIGMA / np.sqrt(1 - PHI**2)),
        transition=lambda t, x: dist.Normal(MU + PHI * (x - MU), SIGMA),
        observation=lambda t, x: dist.Normal(0.0, jnp.exp(0.5 * x)),
        vectorized=True,
    )


def simulate(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.empty(T)
    x[0] = MU + SIGMA / np.sqrt(1 - PHI**2) * rng.normal()
    for t in range(1, T):
        x[t] = MU + PHI * (x[t - 1] - MU) + SIGMA * rng.normal()
    return x, np.exp(0.5 * x) * rng.normal(size=T)


def main() -> None:
    parser = argparse.ArgumentParser(description="Particle filter on a stochastic-volatility model")
    parser.add_argument("--out", default="sv_filtering.png", help="where to write the figure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--particles", type=int, default=5000, help="particles of the filter")
    parser.add_argument(
        "--sizes", default="100,300,1000,3000,10000", help="particle numbers of the spread plot"
    )
    args = parser.parse_args()

    x_true, returns = simulate(args.seed)
    ssm = stochastic_volatility()
    ys = jnp.asarray(returns, jnp.float32)

    start = time.perf_counter()
    pf = smc.particle_filter(ssm, ys, num_particles=args.particles, seed=args.seed)
    print(
        f"bootstrap filter, N = {args.particles}: log-likelihood {float(pf.log_likelihood):.2f} "
        f"({time.perf_counter() - start:.1f} s with compilation); "
        f"resampled at {int(pf.smc.resampled.sum())} of {T} steps"
    )
    mean = np.asarray(pf.filtering_mean)
    sd = np.sqrt(np.asarray(pf.filtering_var))
    inside = np.mean(np.abs(x_true - mean) < 1.96 * sd)
    print(f"true log-variance inside the 95% filtering band at {100 * inside:.0f}% of steps")

    # Log-likelihood estimates over N: 20 independent filters per N, one vmap each.
    sizes = [int(n) for n in args.sizes.split(",")]
    spreads = []
    for n in sizes:
        run = jax.jit(
            jax.vmap(
                lambda key, y, n=n: (
                    smc.particle_filter_loop(
                        key, ssm, y, num_particles=n, resampling_fn=smc.systematic
                    ).log_likelihood
                ),
                in_axes=(0, None),
            )
        )
        log_l = np.asarray(run(jax.random.split(jax.random.key(args.seed), 20), ys))
        spreads.append(log_l.std(ddof=1))
        print(f"N = {n:6d}: log-likelihood {log_l.mean():9.2f} +- {log_l.std(ddof=1):.3f} (sd)")

    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(9, 7), height_ratios=[2, 1])
    steps = np.arange(T)
    ax0.plot(steps, x_true, color="k", lw=1, label="true log-variance $x_t$")
    ax0.plot(steps, mean, color="C0", lw=1, label="filtering mean")
    ax0.fill_between(
        steps, mean - 1.96 * sd, mean + 1.96 * sd, color="C0", alpha=0.3, label="95% filtering band"
    )
    ax0.plot(steps, np.log(returns**2), ".", color="C3", ms=2, alpha=0.5, label="log $y_t^2$")
    ax0.set_xlabel("t")
    ax0.set_ylim(-8, 3)
    ax0.legend(loc="lower right", fontsize=8)
    ax0.set_title(f"Bootstrap particle filter, stochastic volatility (N = {args.particles})")
    ax1.loglog(sizes, spreads, "o-", label="sd of log-likelihood estimate (20 runs)")
    ax1.loglog(
        sizes,
        spreads[0] * np.sqrt(sizes[0] / np.asarray(sizes)),
        "--",
        color="gray",
        label="$\\propto 1/\\sqrt{N}$",
    )
    ax1.set_xlabel("number of particles N")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
