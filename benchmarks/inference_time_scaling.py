"""Inference-time scaling at equal budget: every method on the same proposals.

1. Arithmetic (probkit.models.arithmetic_lm, the shipped transformer, exact process
   reward with error rate 0.05): accuracy against budget (particles n = 1, 2, ..., 64;
   the budget spent is n x steps for every method) for the particle filter (resampling
   every step), the same filter without resampling, best-of-n with the verifier,
   self-consistency (majority vote), reward-weighted self-consistency and beam search
   (4 expansions). Standard errors over problems.
2. Flow search on a 2-D Gaussian mixture with its exact velocity (linear path): the
   reward -|x - c|^2 (c the mean of a mixture component, so the optimum 0 is
   reachable) against the budget (particle-steps = velocity evaluations) for
   best-of-n with the ODE (the deterministic baseline), best-of-n with the SDE, SMC
   over the SDE and rollover budget forcing, on the linear path and converted to a
   variance-preserving path. Standard errors over seeds.
3. Wall time per proposal call: the jitted particle filter (probkit.smc.loop) against
   the host-side loop (host_particle_filter, each step a separately jitted call), on
   the arithmetic model.

    python benchmarks/inference_time_scaling.py [--problems 100] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import probkit.models.arithmetic_lm as alm
from _timing import timed

import probkit.scaling as sc
from probkit.sde import gaussian_mixture, linear_interpolant, trig_interpolant

RESULTS = Path(__file__).parent / "results" / "inference_time_scaling.md"


def arithmetic_table(num_problems: int, budgets: list[int]) -> list[str]:
    lm = alm.load_pretrained()
    problems = alm.make_problems(20_000, num_problems)
    prompts, refs = jnp.asarray(problems.prompt), jnp.asarray(problems.solution)

    def evaluate(method, n):
        def one(key, prompt, ref):
            return method(key, alm.step_model(lm, prompt, ref), n)

        keys = jax.random.split(jax.random.key(n), num_problems)
        return jax.jit(jax.vmap(one))(keys, prompts, refs)

    def indep(key, sm, n):
        # One set of independent generations serves all three independent baselines.
        bon = sc.best_of_n(key, sm, n)
        answers, log_w = bon.answers, bon.log_weights
        return (
            bon.answer,
            sc.majority_vote(answers),
            sc.weighted_majority_vote(answers, log_w),
            bon.num_proposals,
        )

    rows, curves = [], {}
    for n in budgets:
        pf = evaluate(sc.particle_filter, n)
        sis = evaluate(lambda k, sm, n: sc.particle_filter(k, sm, n, ess_threshold=0.0), n)
        bon, vote, wvote, spent = evaluate(indep, n)
        expansions = min(4, n)
        beam = evaluate(lambda k, sm, n, e=expansions: sc.beam_search(k, sm, n, expansions=e), n)
        for name, answer, used in [
            ("particle filter", pf.answer, pf.num_proposals),
            ("PF without resampling", sis.answer, sis.num_proposals),
            ("best-of-n (verifier)", bon, spent),
            ("self-consistency", vote, spent),
            ("weighted self-consistency", wvote, spent),
            ("beam search (4 expansions)", beam.answer, beam.num_proposals),
        ]:
            correct = np.asarray(answer) == problems.answer
            acc, se = correct.mean(), correct.std(ddof=1) / np.sqrt(num_problems)
            curves.setdefault(name, []).append(f"{acc:.2f} ± {se:.2f}")
            rows.append((name, n, acc, se, float(np.mean(used))))
        print(f"n={n}: " + ", ".join(f"{r[0]} {r[2]:.2f}" for r in rows[-6:]), flush=True)
    lines = [
        f"| method | {' | '.join(f'n={n}' for n in budgets)} |",
        "|---|" + "---|" * len(budgets),
    ]
    lines += [f"| {name} | {' | '.join(c)} |" for name, c in curves.items()]
    spent = {n: np.mean([r[4] for r in rows if r[1] == n]) for n in budgets}
    lines += [
        "",
        "Mean proposals (steps generated) per problem, all methods alike within 2%: "
        + ", ".join(f"n={n}: {spent[n]:.0f}" for n in budgets)
        + ".",
    ]
    return lines


def flow_table(budgets: list[int], num_seeds: int = 20, num_steps: int = 16) -> list[str]:
    gmm = gaussian_mixture(
        jnp.array([0.3, 0.7]),
        jnp.array([[-2.0, 0.0], [1.5, 1.0]]),
        jnp.array([[0.3, 0.5], [0.6, 0.2]]),
    )
    lin, trig = linear_interpolant("none"), trig_interpolant("none")
    v_lin = sc.gaussian_mixture_velocity(gmm, lin)
    v_vp = sc.convert_velocity(v_lin, lin, trig)  # the same model on a VP path
    centre = jnp.array([-2.0, 0.0])  # the rarer component (weight 0.3)

    def reward(x):
        return -jnp.sum((x - centre) ** 2)

    methods = {
        "best-of-n, ODE": lambda k, n: sc.flow_best_of_n(
            k, v_lin, lin, reward, 2, n, num_steps=num_steps
        ),
        "best-of-n, SDE": lambda k, n: sc.flow_best_of_n(
            k, v_lin, lin, reward, 2, n, num_steps=num_steps, epsilon=1.0
        ),
        "SMC, SDE (temperature 0.1)": lambda k, n: sc.flow_smc(
            k, v_lin, lin, reward, 2, n, num_steps=num_steps, temperature=0.1
        ),
        "RBF, linear SDE": lambda k, n: sc.rollover_budget_forcing(
            k, v_lin, lin, reward, 2, n * num_steps, num_steps=num_steps
        ),
        "RBF, VP SDE (converted)": lambda k, n: sc.rollover_budget_forcing(
            k, v_vp, trig, reward, 2, n * num_steps, num_steps=num_steps
        ),
    }
    lines = [
        f"| method | {' | '.join(f'n={n}' for n in budgets)} |",
        "|---|" + "---|" * len(budgets),
    ]
    for name, method in methods.items():
        cells = []
        for n in budgets:
            keys = jax.random.split(jax.random.key(n), num_seeds)
            r = jax.jit(jax.vmap(lambda k, n=n, method=method: method(k, n)))(keys)
            rewards = np.asarray(r.reward)
            cells.append(f"{rewards.mean():.3f} ± {rewards.std(ddof=1) / np.sqrt(num_seeds):.3f}")
        lines.append(f"| {name} | {' | '.join(cells)} |")
        print(lines[-1], flush=True)
    return lines


def timing_table(num_particles: int = 16) -> list[str]:
    lm = alm.load_pretrained()
    p = alm.make_problems(30_000, 1)
    jitted_sm = alm.step_model(lm, p.prompt[0], p.solution[0])
    pf = jax.jit(lambda k: sc.particle_filter(k, jitted_sm, num_particles))
    _, compile_jit, _ = timed(lambda: pf(jax.random.key(0)))
    runs = [timed(lambda i=i: pf(jax.random.key(i))) for i in range(1, 6)]
    jit_calls = [int(r[0].num_steps) for r in runs]
    jit_per_call = min(r[2] / c for r, c in zip(runs, jit_calls, strict=True))

    # The host loop calls each piece as its own compiled function, as it would a
    # PyTorch model.
    host_sm = sc.StepModel(
        init=jax.jit(jitted_sm.init, static_argnums=1),
        propose=jax.jit(jitted_sm.propose),
        score=jax.jit(jitted_sm.score),
        is_done=jax.jit(jitted_sm.is_done),
        answer=jax.jit(jitted_sm.answer),
        max_steps=jitted_sm.max_steps,
    )
    sc.host_particle_filter(jax.random.key(0), host_sm, num_particles)  # compile
    host_per_call = []
    for i in range(1, 6):
        start = time.perf_counter()
        r = sc.host_particle_filter(jax.random.key(i), host_sm, num_particles)
        host_per_call.append((time.perf_counter() - start) / int(r.num_steps))
    host = min(host_per_call)
    return [
        "| loop | wall time per proposal call (one step for all particles) | compile |",
        "|---|---|---|",
        f"| jitted (probkit.smc.loop) | {1e3 * jit_per_call:.2f} ms | {compile_jit:.1f} s |",
        f"| host-side (host_particle_filter) | {1e3 * host:.2f} ms | (per piece) |",
        "",
        f"Ratio host / jitted: {host / jit_per_call:.1f} (n = {num_particles} particles, best "
        "of 5 runs each).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--budgets", default="1,2,4,8,16,32,64")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    start = time.perf_counter()
    arithmetic = arithmetic_table(args.problems, budgets)
    flow = flow_table([b for b in budgets if b >= 2])
    timing = timing_table()
    header = [
        "# Inference-time scaling at equal budget",
        "",
        f"Run {datetime.date.today()} on {platform.machine()} ({platform.processor() or 'CPU'}),"
        f" JAX {jax.__version__} on CPU, a shared 2-core machine; "
        f"{time.perf_counter() - start:.0f} s in all. Command: "
        f"`python benchmarks/inference_time_scaling.py --problems {args.problems}`.",
        "",
        f"## Arithmetic: accuracy against budget ({args.problems} held-out problems)",
        "",
        "The shipped transformer (one-sample accuracy 0.40), the exact process reward with "
        "error rate 0.05, at most 6 steps. n particles; every method spends about n x "
        "(number of steps) proposals. Accuracy ± standard error over problems.",
        "",
    ]
    middle = [
        "",
        "## Flow search: reward against budget (2-D Gaussian mixture, exact velocity)",
        "",
        "Reward -|x - c|^2 with c the mean of the rarer component (optimum 0); 16 steps; "
        "budget n x 16 particle-steps (RBF: the same total, spread over its 17 steps, the "
        "initial noise being one). Mean best reward ± standard error over 20 seeds.",
        "",
    ]
    tail = ["", "## Wall time per proposal call", ""]
    text = "\n".join(header + arithmetic + middle + flow + tail + timing) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
