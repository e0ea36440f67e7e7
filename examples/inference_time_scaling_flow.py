"""Inference-time scaling for a flow model: reward against budget, on a trained 2-D model.

The shipped score network of the checkerboard
(``probkit.models.diffusion.load_pretrained``, VP SDE; ``--train-steps N`` trains a
smaller one here instead) is turned into a flow velocity on its variance-preserving path
(``velocity_from_score``) and converted to the linear path (``convert_velocity``).
The reward is ``-|x - c|^2`` with ``c`` the centre of a dark square, so the best
reachable reward is 0. Best-of-n with the ODE, best-of-n with the SDE, SMC over the
SDE and rollover budget forcing are compared at equal numbers of velocity
evaluations. Writes a plot of the mean best reward against the budget.

    python examples/inference_time_scaling_flow.py [--out PATH] [--train-steps N]
        [--seeds 8] [--budgets 4,16]
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
import probkit.models.diffusion as diffusion  # noqa: E402

import probkit.scaling as sc  # noqa: E402
from probkit.sde import VPSDE, linear_interpolant  # noqa: E402

CENTRE = jnp.array([-1.5, -1.5])  # a dark square of the checkerboard


def reward(x):
    return -jnp.sum((x - CENTRE) ** 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="inference_time_scaling_flow.png")
    parser.add_argument("--train-steps", type=int, default=0, help="0: the shipped network")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--budgets", default="4,16", help="particles n (n x 10 evaluations)")
    args = parser.parse_args()
    start = time.perf_counter()
    sde = VPSDE()
    if args.train_steps > 0:
        data = diffusion.checkerboard(jax.random.key(0), 20_000)
        net = diffusion.ScoreNetwork((2,), key=jax.random.key(1), width=64, depth=2)
        fit = diffusion.fit(
            net, sde, data, num_steps=args.train_steps, batch_size=256, learning_rate=3e-3
        )
        model = fit.model
        fit.losses.block_until_ready()
        print(f"trained in {time.perf_counter() - start:.0f} s")
    else:
        model = diffusion.load_pretrained()
    velocity_vp, vp_path = sc.velocity_from_score(diffusion.score_fn(model, sde), sde)
    linear = linear_interpolant("none")
    velocity = sc.convert_velocity(velocity_vp, vp_path, linear)

    steps, budgets = 10, [int(n) for n in args.budgets.split(",")]
    methods = {
        "best-of-n, ODE": lambda k, n: sc.flow_best_of_n(
            k, velocity, linear, reward, 2, n, num_steps=steps
        ),
        "best-of-n, SDE": lambda k, n: sc.flow_best_of_n(
            k, velocity, linear, reward, 2, n, num_steps=steps, epsilon=1.0
        ),
        "SMC, SDE": lambda k, n: sc.flow_smc(
            k, velocity, linear, reward, 2, n, num_steps=steps, temperature=0.1
        ),
        "RBF, SDE": lambda k, n: sc.rollover_budget_forcing(
            k, velocity, linear, reward, 2, n * steps, num_steps=steps
        ),
    }
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, method in methods.items():
        means, ses = [], []
        for n in budgets:
            keys = jax.random.split(jax.random.key(n), args.seeds)
            r = np.asarray(jax.jit(jax.vmap(lambda k, n=n, m=method: m(k, n).reward))(keys))
            means.append(r.mean())
            ses.append(r.std(ddof=1) / np.sqrt(args.seeds))
        print(
            f"{name:>15}: "
            + "  ".join(f"n={n} {m:.3f}" for n, m in zip(budgets, means, strict=True))
        )
        ax.errorbar(
            [n * steps for n in budgets], means, yerr=ses, marker="o", capsize=3, label=name
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("velocity evaluations")
    ax.set_ylabel("best reward  -|x - c|^2  (optimum 0)")
    ax.set_title("Checkerboard flow: reward against budget")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
