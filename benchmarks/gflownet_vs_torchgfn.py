"""GFlowNets: probkit.models.gflownet vs torchgfn on the hypergrid, and FL-DB vs DB on sets.

Convergence (the default run): the summed L1 distance between the sampler's terminal
distribution and the exact target R(x)/Z against the number of training trajectories,
on hypergrids with D = 2, 3, 4 and several heights (R0, R1, R2 = 0.1, 0.5, 2.0),
trajectory balance. probkit runs at its DEFAULTS, one run per budget (its learning rate
decays over the run, so each budget is its own run). torchgfn runs as its tutorial
``train_hypergrid_simple.py`` does (batch 16, Adam 1e-3, log Z at 0.1, gradient norm
clipped at 1, a constant rate: its L1 after n trajectories is read from one long run).
Both use k-hot inputs, 2 x 256 ReLU MLPs and a uniform backward policy. The L1 is EXACT
for both libraries: each forward policy is evaluated on all H^D states and propagated
through the grid (no sampling noise). For reference the table gives the sampling-noise
floor of torchgfn's own measurement (the expected L1 of the empirical distribution of
N = 200,000 exact draws), and for the two smallest grids probkit's L1 measured that way
(N fresh samples of the final sampler).

The forward-looking comparison (probkit only) runs DB and FL-DB at equal numbers of
transitions on a 6-of-12 set task with additive energies.

Run: ``python benchmarks/gflownet_vs_torchgfn.py [--quick] [--no-torchgfn]``.
Writes benchmarks/results/gflownet.md and benchmarks/results/gflownet_convergence.png.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import probkit.models.gflownet as gflownet  # noqa: E402
from _timing import timed  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).parent / "results"
GRIDS = ((2, 8), (2, 16), (3, 5), (3, 8), (4, 5), (4, 8))
BUDGETS = (4000, 16_000, 32_000)
TORCHGFN_GRIDS = ((2, 8), (3, 5), (4, 5))  # torchgfn costs ~0.1 s per step here
VALIDATION_SAMPLES = 200_000  # torchgfn's validation_samples
EARLIER = "## Diagnosis"  # this section and the ones after it are carried over


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def noise_floor(env, n=VALIDATION_SAMPLES) -> float:
    """Expected summed L1 of the empirical distribution of n exact draws to the target."""
    p = np.asarray(gflownet.exact_target(env), np.float64)
    return float(np.sum(np.sqrt(2 * p * (1 - p) / (np.pi * n))))


def sampled_l1(gfn, env, n=VALIDATION_SAMPLES) -> float:
    """torchgfn's measurement: the empirical distribution of n fresh samples vs the target."""
    states, _ = gfn.sample(jax.random.key(123), n)
    index = np.asarray(jax.vmap(env.state_index)(states))
    counts = np.bincount(index, minlength=env.num_states)
    target = np.asarray(gflownet.exact_target(env), np.float64)
    return float(np.abs(counts / n - target).sum())


# ---------------------------------------------------------------------------- probkit
def run_probkit(env, num_trajectories, seed, sample=False):
    cpu0 = cpu_seconds()
    gfn, compile_s, run_s = timed(
        lambda: gflownet.fit(env, num_trajectories=num_trajectories, seed=seed)
    )
    cpu = cpu_seconds() - cpu0
    metrics = gflownet.evaluate_policy(gfn.policy, env, gfn.log_partition)
    return dict(
        l1=float(metrics.l1_sum),
        log_z_error=float(metrics.log_z_error),
        sampled_l1=sampled_l1(gfn, env) if sample else None,
        compile_s=compile_s,
        run_s=run_s,
        cpu_s=cpu,
    )


# ---------------------------------------------------------------------------- torchgfn
def run_torchgfn(env, budgets, seed, batch_size=16):
    """torchgfn's train_hypergrid_simple.py settings; exact L1 after each budget."""
    import torch
    from gfn.estimators import DiscretePolicyEstimator
    from gfn.gflownet import TBGFlowNet
    from gfn.gym import HyperGrid as TorchHyperGrid
    from gfn.preprocessors import KHotPreprocessor
    from gfn.utils.modules import MLP

    torch.set_num_threads(1)  # several threads on 2 shared cores run ~10x slower
    torch.manual_seed(seed)
    D, H = env.ndim, env.height
    tenv = TorchHyperGrid(
        ndim=D,
        height=H,
        reward_fn_kwargs={"R0": env.R0, "R1": env.R1, "R2": env.R2},
        validate_modes=False,
    )
    pre = KHotPreprocessor(height=H, ndim=D)
    pf_module = MLP(input_dim=D * H, output_dim=D + 1)
    pf = DiscretePolicyEstimator(pf_module, tenv.n_actions, preprocessor=pre)
    pb = DiscretePolicyEstimator.uniform(tenv.n_actions, preprocessor=pre)
    gfn = TBGFlowNet(pf=pf, pb=pb, init_logZ=0.0)
    optimizer = torch.optim.Adam(gfn.pf_pb_parameters(), lr=1e-3)
    optimizer.add_param_group({"params": gfn.logz_parameters(), "lr": 0.1})

    all_states = np.array(env.all_states())
    khot = torch.nn.functional.one_hot(torch.as_tensor(all_states).long(), H)
    khot = khot.reshape(len(all_states), D * H).float()
    target = gflownet.exact_target(env)
    masks = jax.vmap(env.forward_mask)(env.all_states())

    def exact_l1():
        with torch.no_grad():
            logits = pf_module(khot).numpy()
        log_pf = gflownet.masked_log_softmax(jnp.asarray(logits), masks)
        learned = gflownet.propagate_forward_policy(env, log_pf)
        return float(gflownet.l1_distance(learned, target))

    rows, train_s, cpu_train, done = {}, 0.0, 0.0, 0
    for budget in sorted(budgets):
        while done + batch_size <= budget:
            start, cpu0 = time.perf_counter(), cpu_seconds()
            traj = gfn.sample_trajectories(tenv, n=batch_size, save_logprobs=True)
            optimizer.zero_grad()
            value = gfn.loss_from_trajectories(tenv, traj, recalculate_all_logprobs=False)
            value.backward()
            torch.nn.utils.clip_grad_norm_(gfn.parameters(), 1.0)
            optimizer.step()
            train_s += time.perf_counter() - start
            cpu_train += cpu_seconds() - cpu0
            done += batch_size
        log_z = float(gfn.logZ.detach())
        rows[budget] = dict(
            l1=exact_l1(),
            log_z_error=abs(log_z - float(env.log_partition())),
            run_s=train_s,
            cpu_s=cpu_train,
        )
        print(f"  torchgfn D={D} H={H} n={budget}: L1={rows[budget]['l1']:.4f}", flush=True)
    return rows


# ---------------------------------------------------------------------------- sets
def run_sets(seed):
    energies = jax.random.uniform(jax.random.key(42), (12,), minval=0.0, maxval=3.0)
    env = gflownet.SetBuilding(energies, size=6)
    rows = []
    common = dict(batch_size=64, seed=seed, eval_every=1000)
    for budget in (14_336, 57_344):  # transitions
        for name, loss, length in (("DB", "db", None), ("FL-DB", "fldb", None),
                                   ("FL-DB, 3 of 7 steps", "fldb", 3)):  # fmt: skip
            steps_per = env.max_length if length is None else length
            n = budget // steps_per
            gfn, compile_s, run_s = timed(
                lambda n=n, loss=loss, length=length: gflownet.fit(
                    env, loss=loss, num_trajectories=n, trajectory_length=length, **common
                )
            )
            m = gflownet.evaluate_policy(gfn.policy, env, gfn.log_partition)
            states = env.all_states()
            log_r = jnp.where(
                jax.vmap(env.is_terminal)(states), jax.vmap(env.log_reward)(states), 0.0
            )
            mean_log_r = float(gflownet.terminal_distribution(gfn.policy, env) @ log_r)
            target_log_r = float(gflownet.exact_target(env) @ log_r)
            rows.append((budget, name, n, float(m.l1_sum), float(m.jsd), mean_log_r,
                         target_log_r, run_s))  # fmt: skip
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="D=2 H=8 and D=3 H=5 only")
    parser.add_argument("--no-torchgfn", action="store_true")
    args = parser.parse_args()
    grids = ((2, 8), (3, 5)) if args.quick else GRIDS
    load_before = os.getloadavg()
    probkit, torchgfn = {}, {}
    for ndim, height in grids:
        env = gflownet.HyperGrid(ndim=ndim, height=height)
        for budget in BUDGETS:
            sample = budget == BUDGETS[-1] and env.num_states <= 125
            r = run_probkit(env, budget, args.seed, sample=sample)
            probkit[(ndim, height, budget)] = r
            print(
                f"probkit D={ndim} H={height} n={budget}: L1={r['l1']:.4f} "
                f"|dlogZ|={r['log_z_error']:.3f} compile={r['compile_s']:.1f}s "
                f"run={r['run_s']:.1f}s cpu={r['cpu_s']:.1f}s",
                flush=True,
            )
        if not args.no_torchgfn and (ndim, height) in TORCHGFN_GRIDS:
            for budget, r in run_torchgfn(env, BUDGETS[:2], args.seed).items():
                torchgfn[(ndim, height, budget)] = r
    set_rows = [] if args.quick else run_sets(args.seed)
    load_after = os.getloadavg()
    write_table(probkit, torchgfn, grids, set_rows, load_before, load_after)
    plot(probkit, torchgfn, grids)


def write_table(probkit, torchgfn, grids, set_rows, load_before, load_after):
    lines = [
        "# GFlowNets: probkit vs torchgfn (hypergrid), FL-DB vs DB (sets)",
        "",
        f"Run on {time.strftime('%Y-%m-%d')}, CPU (JAX_PLATFORMS=cpu, torch "
        f"{_torch_version()}, one torch thread), 2 cores shared with other jobs: load "
        f"average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after, so wall "
        "times are inflated. Seed 0, one run per cell.",
        "",
        "## Summed L1 to the exact target against training trajectories (trajectory balance)",
        "",
        "probkit: `gflownet.fit(env, num_trajectories=n)` at its defaults (batch 16, Adam "
        "1e-2 for the networks and 0.1 for log Z, both decayed to 0 along a cosine; 2 x 256 "
        "MLPs), one run per budget. torchgfn 2.4: its tutorial `train_hypergrid_simple.py` "
        "(batch 16, Adam 1e-3, log Z at 0.1, gradient norm clipped at 1, constant rate), "
        f"one run read after n trajectories; only on {len(TORCHGFN_GRIDS)} grids and up to "
        f"{BUDGETS[1]} trajectories (it costs ~0.1 s per step here). **L1 is exact** for "
        "both (the learned forward policy propagated over all H^D states: no sampling "
        "noise). *Noise floor*: the expected summed L1 of the empirical distribution of "
        f"N = {VALIDATION_SAMPLES:,} exact draws (torchgfn's `validation_samples`): a "
        "sampler below it cannot be told from the target by torchgfn's validation. "
        "*Sampled*: probkit's L1 measured as torchgfn measures it (empirical distribution "
        f"of N = {VALIDATION_SAMPLES:,} fresh samples of the final sampler; expected "
        "about floor + exact L1).",
        "",
        "| grid | states | noise floor (N=200k) | trajectories | probkit L1 | torchgfn L1 "
        "| probkit abs. log Z error | probkit compile s | probkit run s | torchgfn run s "
        "| probkit sampled L1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ndim, height in grids:
        env = gflownet.HyperGrid(ndim=ndim, height=height)
        floor = noise_floor(env)
        for budget in BUDGETS:
            p = probkit[(ndim, height, budget)]
            t = torchgfn.get((ndim, height, budget))
            t_l1 = "" if t is None else f"{t['l1']:.4f}"
            t_run = "" if t is None else f"{t['run_s']:.1f}"
            sampled = "" if p["sampled_l1"] is None else f"{p['sampled_l1']:.4f}"
            lines.append(
                f"| D={ndim} H={height} | {env.num_states} | {floor:.4f} | {budget} | "
                f"{p['l1']:.4f} | {t_l1} | {p['log_z_error']:.3f} | {p['compile_s']:.1f} | "
                f"{p['run_s']:.1f} | {t_run} | {sampled} |"
            )
    if set_rows:
        lines += [
            "",
            "## Forward-looking DB vs DB on the set task (probkit)",
            "",
            "6 of 12 elements, energies U(0, 3) (seed 42), R(x) = exp(-sum of energies); "
            "exact target over the 924 sets. Equal numbers of transitions; the last FL-DB "
            "row trains on incomplete trajectories (first 3 of 7 transitions: it never "
            "sees a terminal reward, only energy differences). Batch 64, 2 x 256 MLPs, "
            "the default learning rates and schedule.",
            "",
            "| transitions | loss | trajectories | summed L1 | JSD | E_sampler[log R] | "
            "E_target[log R] | run s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for budget, name, n, l1, jsd, mlr, tlr, run_s in set_rows:
            lines.append(
                f"| {budget} | {name} | {n} | {l1:.3f} | {jsd:.2e} | {mlr:.3f} | {tlr:.3f} | "
                f"{run_s:.1f} |"
            )
    path = RESULTS / "gflownet.md"
    earlier = ""
    if path.exists() and EARLIER in path.read_text():
        earlier = path.read_text()[path.read_text().index(EARLIER) :]
    RESULTS.mkdir(exist_ok=True)
    text = "\n".join(lines) + "\n" + ("\n" + earlier if earlier else "")
    path.write_text(text)
    print(text)


def _torch_version():
    import torch

    return torch.__version__


def plot(probkit, torchgfn, grids):
    fig, axes = plt.subplots(1, len(grids), figsize=(3.2 * len(grids), 3.4), squeeze=False)
    for ax, (ndim, height) in zip(axes[0], grids, strict=True):
        env = gflownet.HyperGrid(ndim=ndim, height=height)
        x = list(BUDGETS)
        ax.plot(x, [probkit[(ndim, height, b)]["l1"] for b in x], "o-", label="probkit")
        tx = [b for b in x if (ndim, height, b) in torchgfn]
        if tx:
            ax.plot(tx, [torchgfn[(ndim, height, b)]["l1"] for b in tx], "s--", label="torchgfn")
        ax.axhline(noise_floor(env), color="grey", lw=0.8, label="noise floor, N=200k")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("trajectories")
        ax.set_title(f"D={ndim}, H={height}")
    axes[0][0].set_ylabel("exact summed L1 to target")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "gflownet_convergence.png", dpi=110)


if __name__ == "__main__":
    main()
