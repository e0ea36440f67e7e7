"""GFlowNets: probkit.models.gflownet vs torchgfn on the hypergrid, and FL-DB vs DB on sets.

Same work for both libraries in one process: hypergrid (D=2, H=8) and (D=4, H=8) with
the original reward (R0=0.1, R1=0.5, R2=2.0); trajectory balance, detailed balance and
sub-trajectory balance (lambda=0.9, geometric_within); torchgfn's hypergrid defaults
for both (k-hot state encoding, separate 2 x 256 ReLU MLPs for P_F and log F, uniform
P_B, Adam 1e-3, log Z at 0.1, batch 128, on-policy). The summed L1 distance of the
sampler to the target is EXACT for both libraries: each forward policy is evaluated on
all H^D states and propagated through the grid (no sampling noise). probkit's wall
time includes its in-loop evaluations (10 per run); torchgfn's excludes them; compile
time is reported apart. The forward-looking comparison (probkit only) runs DB and FL-DB
at equal numbers of transitions on a 6-of-12 set task with additive energies.

Run: ``python benchmarks/gflownet_vs_torchgfn.py [--trajectories 32000] [--quick]``.
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
LOSSES = ("tb", "db", "subtb")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------- probkit
def run_probkit(env, loss, num_trajectories, batch_size, seed, num_evals=10):
    num_steps = num_trajectories // batch_size
    eval_every = max(1, num_steps // num_evals)

    def fit():
        return gflownet.train(
            env,
            loss=loss,
            num_trajectories=num_trajectories,
            batch_size=batch_size,
            seed=seed,
            eval_every=eval_every,
        )

    cpu0 = cpu_seconds()
    gfn, compile_s, run_s = timed(fit)
    cpu = cpu_seconds() - cpu0
    h = gfn.history
    curve = list(zip(np.asarray(h.trajectories).tolist(), np.asarray(h.l1).tolist(), strict=True))
    metrics = gflownet.evaluate_policy(gfn.policy, env, gfn.log_partition)
    return dict(
        l1=float(metrics.l1_sum),
        l1_mean=float(metrics.l1_mean),
        jsd=float(metrics.jsd),
        log_z_error=float(metrics.log_z_error),
        compile_s=compile_s,
        run_s=run_s,
        cpu_s=cpu,
        curve=curve,
    )


# ---------------------------------------------------------------------------- torchgfn
def run_torchgfn(env, loss, num_trajectories, batch_size, seed, num_evals=10):
    import torch
    from gfn.estimators import DiscretePolicyEstimator, ScalarEstimator
    from gfn.gflownet import DBGFlowNet, SubTBGFlowNet, TBGFlowNet
    from gfn.gym import HyperGrid as TorchHyperGrid
    from gfn.preprocessors import KHotPreprocessor
    from gfn.utils.modules import MLP

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
    if loss == "tb":
        gfn = TBGFlowNet(pf=pf, pb=pb, init_logZ=0.0)
    else:
        logf = ScalarEstimator(MLP(input_dim=D * H, output_dim=1), preprocessor=pre)
        if loss == "db":
            gfn = DBGFlowNet(pf=pf, pb=pb, logF=logf)
        else:
            gfn = SubTBGFlowNet(pf=pf, pb=pb, logF=logf, weighting="geometric_within", lamda=0.9)
    logz = [p for n, p in gfn.named_parameters() if n == "logZ"]
    others = [p for n, p in gfn.named_parameters() if n != "logZ"]
    groups = [{"params": others, "lr": 1e-3}]
    if logz:
        groups.append({"params": logz, "lr": 0.1})
    optimizer = torch.optim.Adam(groups)

    all_states = np.array(env.all_states())
    khot = torch.nn.functional.one_hot(torch.as_tensor(all_states).long(), H)
    khot = khot.reshape(len(all_states), D * H).float()
    target = gflownet.exact_target(env)

    def exact_l1():
        with torch.no_grad():
            logits = pf_module(khot).numpy()
        masks = jax.vmap(env.forward_mask)(env.all_states())
        log_pf = gflownet.masked_log_softmax(jnp.asarray(logits), masks)
        learned = gflownet.propagate_forward_policy(env, log_pf)
        return float(gflownet.l1_distance(learned, target)), learned

    num_steps = num_trajectories // batch_size
    eval_every = max(1, num_steps // num_evals)
    curve, train_s = [], 0.0
    cpu_train = 0.0
    for step in range(num_steps):
        start, cpu0 = time.perf_counter(), cpu_seconds()
        traj = gfn.sample_trajectories(tenv, n=batch_size, save_logprobs=True)
        optimizer.zero_grad()
        value = gfn.loss_from_trajectories(tenv, traj, recalculate_all_logprobs=False)
        value.backward()
        optimizer.step()
        train_s += time.perf_counter() - start
        cpu_train += cpu_seconds() - cpu0
        if (step + 1) % eval_every == 0:
            curve.append(((step + 1) * batch_size, exact_l1()[0]))
    l1, learned = exact_l1()
    if loss == "tb":
        log_z = float(gfn.logZ.detach())
    else:
        with torch.no_grad():
            log_z = float(logf.module(khot[:1]).squeeze())
    exact_log_z = float(env.log_partition())
    n_states = len(all_states)
    return dict(
        l1=l1,
        l1_mean=l1 / n_states,
        jsd=float(gflownet.jensen_shannon(learned, target)),
        log_z_error=abs(log_z - exact_log_z),
        compile_s=0.0,
        run_s=train_s,
        cpu_s=cpu_train,
        curve=curve,
    )


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
                lambda n=n, loss=loss, length=length: gflownet.train(
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
    parser.add_argument("--trajectories", type=int, default=32_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="D=2 only, TB only")
    args = parser.parse_args()
    grids = [(2, 8)] if args.quick else [(2, 8), (4, 8)]
    losses = ("tb",) if args.quick else LOSSES
    load_before = os.getloadavg()
    results = {}
    for ndim, height in grids:
        env = gflownet.HyperGrid(ndim=ndim, height=height)
        for loss in losses:
            for lib, fn in (("probkit", run_probkit), ("torchgfn", run_torchgfn)):
                r = fn(env, loss, args.trajectories, args.batch_size, args.seed)
                results[(ndim, height, loss, lib)] = r
                print(
                    f"D={ndim} H={height} {loss:5s} {lib:8s} L1={r['l1']:.4f} "
                    f"|dlogZ|={r['log_z_error']:.3f} compile={r['compile_s']:.1f}s "
                    f"run={r['run_s']:.1f}s cpu={r['cpu_s']:.1f}s",
                    flush=True,
                )
    set_rows = [] if args.quick else run_sets(args.seed)
    load_after = os.getloadavg()
    write_table(results, set_rows, args, load_before, load_after)
    plot(results, grids, losses)


def write_table(results, set_rows, args, load_before, load_after):
    lines = [
        "# GFlowNets: probkit vs torchgfn (hypergrid), FL-DB vs DB (sets)",
        "",
        f"{args.trajectories} trajectories, batch {args.batch_size}, seed {args.seed}; "
        "torchgfn hypergrid defaults for both (k-hot input, separate 2 x 256 MLPs, uniform "
        "P_B, Adam 1e-3, log Z lr 0.1, on-policy). L1 = exact summed L1 of the sampler's "
        "terminal distribution to the target (mean L1 = summed / H^D). Times on CPU "
        f"(JAX_PLATFORMS=cpu, torch {_torch_version()}); load average (1 min) "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (2 cores shared with "
        "other jobs: wall times are inflated, ratios less so). probkit run time includes "
        "10 in-loop exact evaluations; compile time is apart; CPU = process user+sys "
        "seconds of the training.",
        "",
        "| grid | loss | library | summed L1 | mean L1 | JSD | abs. log Z error | compile s "
        "| run s | CPU s | run-time ratio torchgfn/probkit |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (ndim, height, loss, lib), r in results.items():
        other = results.get((ndim, height, loss, "torchgfn"))
        ratio = f"{other['run_s'] / r['run_s']:.1f}x" if lib == "probkit" and other else ""
        lines.append(
            f"| D={ndim} H={height} | {loss} | {lib} | {r['l1']:.4f} | {r['l1_mean']:.2e} | "
            f"{r['jsd']:.2e} | {r['log_z_error']:.3f} | {r['compile_s']:.1f} | "
            f"{r['run_s']:.1f} | {r['cpu_s']:.1f} | {ratio} |"
        )
    if set_rows:
        lines += [
            "",
            "## Forward-looking DB vs DB on the set task (probkit)",
            "",
            "6 of 12 elements, energies U(0, 3) (seed 42), R(x) = exp(-sum of energies); "
            "exact target over the 924 sets. Equal numbers of transitions; the last FL-DB "
            "row trains on incomplete trajectories (first 3 of 7 transitions: it never "
            "sees a terminal reward, only energy differences). Batch 64, 2 x 256 MLPs.",
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
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gflownet.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _torch_version():
    import torch

    return torch.__version__


def plot(results, grids, losses):
    fig, axes = plt.subplots(1, len(grids), figsize=(6 * len(grids), 4), squeeze=False)
    colors = {"tb": "C0", "db": "C1", "subtb": "C2"}
    for ax, (ndim, height) in zip(axes[0], grids, strict=True):
        for loss in losses:
            for lib, style in (("probkit", "-"), ("torchgfn", "--")):
                r = results[(ndim, height, loss, lib)]
                x, y = zip(*r["curve"], strict=True)
                ax.plot(x, y, style, color=colors[loss], label=f"{loss} ({lib})")
        ax.set_yscale("log")
        ax.set_xlabel("trajectories")
        ax.set_ylabel("exact summed L1 to target")
        ax.set_title(f"hypergrid D={ndim}, H={height}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "gflownet_convergence.png", dpi=120)


if __name__ == "__main__":
    main()
