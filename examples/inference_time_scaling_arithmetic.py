"""Inference-time scaling on chained arithmetic: accuracy against budget, four methods.

The shipped transformer of ``probkit.models.arithmetic_lm`` solves about 40% of the
problems in one sample. Spending n samples' worth of steps, the particle filter
(Puri et al. 2025: resample on the process reward at every step), best-of-n with the
verifier, self-consistency (majority vote) and beam search are compared on the same
held-out problems; the process reward is the exact checker with error rate 0.05.
Writes a plot of accuracy (± standard error over problems) against n.

    python examples/inference_time_scaling_arithmetic.py [--problems 40] [--out PATH]
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
import probkit.models.arithmetic_lm as alm  # noqa: E402

import probkit.scaling as sc  # noqa: E402

METHODS = {
    "particle filter": sc.particle_filter,
    "best-of-n (verifier)": sc.best_of_n,
    "self-consistency": sc.self_consistency,
    "beam search": lambda k, sm, n: sc.beam_search(k, sm, n, expansions=min(4, n)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=40)
    parser.add_argument("--budgets", default="1,4,16")
    parser.add_argument("--out", default="inference_time_scaling_arithmetic.png")
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    start = time.perf_counter()
    lm = alm.load_pretrained()
    problems = alm.make_problems(20_000, args.problems)
    prompts, refs = jnp.asarray(problems.prompt), jnp.asarray(problems.solution)

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, method in METHODS.items():
        accs, ses = [], []
        for n in budgets:

            def one(key, prompt, ref, n=n, method=method):
                return method(key, alm.step_model(lm, prompt, ref), n).answer

            keys = jax.random.split(jax.random.key(n), args.problems)
            correct = np.asarray(jax.jit(jax.vmap(one))(keys, prompts, refs)) == problems.answer
            accs.append(correct.mean())
            ses.append(correct.std(ddof=1) / np.sqrt(args.problems))
        print(
            f"{name:>22}: "
            + "  ".join(f"n={n} {a:.2f}" for n, a in zip(budgets, accs, strict=True))
        )
        ax.errorbar(budgets, accs, yerr=ses, marker="o", capsize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("particles n (budget: n x steps proposals)")
    ax.set_ylabel("accuracy")
    ax.set_title("Chained arithmetic: accuracy against budget")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
