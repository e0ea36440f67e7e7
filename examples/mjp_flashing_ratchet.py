"""The discrete flashing ratchet: simulate, infer the rates three ways, plot.

300 stationary paths of the six-state flashing ratchet (V = r = b = 1; Berghaus et al.,
NeurIPS 2024) are simulated with Gillespie's algorithm and observed at 50 times on
[0, 10]. The rates are then inferred (1) by maximum likelihood from the complete paths
(an oracle that sees every jump), (2) by NUTS on the snapshots with the exact
forward-algorithm likelihood, and (3) by the shipped amortised network in milliseconds
(rates and the initial distribution).
The figure shows true vs inferred rates (log-log) and the posterior of (V, r, b);
the script also prints the entropy production rate and relaxation times of each estimate.

    python examples/mjp_flashing_ratchet.py [--out mjp_flashing_ratchet.png]
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
import probkit.models.mjp as mjp  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="mjp_flashing_ratchet.png")
    parser.add_argument("--draws", type=int, default=200)
    args = parser.parse_args()

    q = mjp.flashing_ratchet(1.0, 1.0, 1.0)
    adjacency = mjp.flashing_ratchet_adjacency()
    process = mjp.MJP(q, mjp.stationary_distribution(q))
    times = jnp.linspace(0.0, 10.0, 50)
    key_paths, key_obs = jax.random.split(jax.random.key(0))
    paths = jax.jit(mjp.simulate_paths, static_argnums=2, static_argnames="max_jumps")(
        key_paths, process, 300, 10.0, max_jumps=200
    )
    y = mjp.observe(key_obs, paths, times, num_states=6)

    estimates = {"MLE (complete paths)": np.asarray(mjp.maximum_likelihood(paths, 6))}
    start = time.perf_counter()
    post = mjp.posterior(
        times,
        y,
        6,
        adjacency=adjacency,
        num_chains=2,
        num_warmup=args.draws,
        num_samples=args.draws,
        diagnose=False,
    )
    print(f"NUTS: {time.perf_counter() - start:.1f} s (compile included)")
    estimates["NUTS posterior mean"] = post.mean()
    mjp.amortized_posterior(times, y, 6, adjacency=adjacency)  # compile once
    start = time.perf_counter()
    net = mjp.amortized_posterior(times, y, 6, adjacency=adjacency)
    print(f"amortised network: {1e3 * (time.perf_counter() - start):.1f} ms")
    estimates["amortised network"] = net.rate_matrix
    pi = np.asarray(mjp.stationary_distribution(q))
    print(
        f"initial distribution (stationary) {np.round(pi, 3)}; network "
        f"{np.round(net.initial, 3)} +- {np.round(net.initial_sd, 3)}"
    )

    truth = np.asarray(q)
    mask = adjacency
    print(
        f"true entropy production {float(mjp.entropy_production_rate(q)):.3f}, "
        f"relaxation times {np.round(np.asarray(mjp.relaxation_times(q)), 3)}"
    )
    for name, est in estimates.items():
        rmse = np.sqrt(np.mean((est[mask] - truth[mask]) ** 2))
        vrb = np.asarray(mjp.flashing_ratchet_parameters(jnp.asarray(est)))
        sigma = float(mjp.entropy_production_rate(jnp.asarray(est)))
        print(
            f"{name:22s} rate RMSE {rmse:.3f}  (V, r, b) = {np.round(vrb, 3)}  "
            f"entropy production {sigma:.3f}"
        )

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    ax = axes[0]
    for (name, est), marker in zip(estimates.items(), "os^", strict=True):
        ax.scatter(truth[mask], est[mask], label=name, marker=marker, alpha=0.75)
    sd = net.log_rate_sd[mask]
    ax.errorbar(
        truth[mask],
        net.rate_matrix[mask],
        yerr=[net.rate_matrix[mask] * (1 - np.exp(-sd)), net.rate_matrix[mask] * (np.exp(sd) - 1)],
        fmt="none",
        ecolor="C2",
        alpha=0.5,
    )
    lims = [0.2, 4.0]
    ax.plot(lims, lims, "k--", lw=1)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="true rate",
        ylabel="inferred rate",
        title="flashing ratchet: 18 rates",
    )
    ticks = [0.1, 0.2, 0.5, 1.0, 2.0, 4.0]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks], minor=False)
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks], minor=False)
    ax.minorticks_off()
    ax.legend(fontsize=8)
    ax = axes[1]
    vrb = np.asarray(mjp.flashing_ratchet_parameters(jnp.asarray(post.draws)))
    for i, name in enumerate(["V", "r", "b"]):
        ax.hist(vrb[:, i], bins=30, alpha=0.6, density=True, label=f"NUTS: {name}")
    net_vrb = np.asarray(mjp.flashing_ratchet_parameters(jnp.asarray(net.rate_matrix)))
    for i, v in enumerate(net_vrb):
        ax.axvline(v, color=f"C{i}", ls=":", label="network" if i == 0 else None)
    ax.axvline(1.0, color="k", lw=1, label="truth")
    ax.set(xlabel="value", title="posterior of (V, r, b) (projected draws)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
