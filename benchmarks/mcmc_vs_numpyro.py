"""probkit NUTS against NumPyro NUTS on the six posteriordb reference posteriors.

Both samplers run the same NumPyro model (``probkit.models.posteriordb``) with the same
number of chains, warm-up and draws, chains vectorised with ``vmap`` on one device
(``chain_method="vectorized"``), in one process. For each run the script records

* compile time: the seconds JAX reports spending on tracing, lowering and XLA
  compilation during the call (``jax.monitoring`` events), and
* sampling time: the call's wall time minus its compile time;
* the minimum bulk ESS (ArviZ) over the posterior's reference parameters, and ESS per
  second of sampling time; the ratio probkit / NumPyro of ESS per second;
* the largest |z| of a mean against the posteriordb reference draws (z = difference
  over the combined MCSE), as a check that the fast sampler is also right.

Each sampler runs once per seed (``--seeds``, default 0-9) and the table averages
over seeds. For each seed the samplers take turns, ``--repeats`` rounds (default 3),
and a run's time is its fastest round: on a shared machine the drift between minutes
moves one sampler's time by more than the differences measured, and taking turns puts
it on both sides. ESS per second is the mean minimum ESS over the mean sampling time,
and the last column is the ratio's bootstrap standard error over seeds. One seed's
warm-up can land on a step size 20% off another's (kidiq: 22.7 to 28.3 leapfrog steps
per draw across seeds for probkit, 23.3 to 28.0 for NumPyro), so a single seed
compares adaptation luck as much as samplers, and three seeds leave the ratio
uncertain by about 10%. Timing goes through
``benchmarks/_timing.py``, which turns off asynchronous dispatch so that compile time
(NumPyro compiles again on every ``MCMC.run``) never overlaps run time. probkit runs
with ``diagnose=False``: by default ``sample`` also computes ArviZ's R-hat and ESS
(about 0.1 s), and NumPyro's ``run`` computes no diagnostics; both sides' draws are
then diagnosed the same way by this script.

probkit uses a dense mass matrix on diamonds (the point of the comparison: its
posterior is strongly correlated) and NumPyro its default diagonal one; every other
posterior uses diagonal mass matrices on both sides. Run with

    JAX_PLATFORMS=cpu python benchmarks/mcmc_vs_numpyro.py

(``--names`` picks posteriors, ``--chains/--warmup/--samples`` the run length); it
prints a Markdown table and writes it to ``benchmarks/results/mcmc.md``. With
``--one-core`` the process first pins itself to one CPU core (so XLA:CPU runs every
computation on one thread) and writes ``benchmarks/results/mcmc_one_core.md``: on this
2-core machine the thread pool changes the two samplers' times differently (see the
notes of the results).
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import arviz as az
import jax
import jax.monitoring
import numpy as np
from _timing import timed
from numpyro.infer import MCMC, NUTS
from probkit.models import posteriordb

import probkit as pk


class Run(NamedTuple):
    compile_seconds: float
    sampling_seconds: float
    min_ess_bulk: float
    leapfrog_per_draw: float
    divergences: float
    max_abs_z: float
    # (min ESS, sampling seconds) of each seed's run, for the ratio's standard error
    per_seed: tuple = ()

    @property
    def ess_per_second(self) -> float:
        return self.min_ess_bulk / self.sampling_seconds


def _evaluate(posterior, samples, steps, diverging, compile_s, sampling_s) -> Run:
    reference = posterior.reference_draws()
    ours = posteriordb.to_posteriordb_names({k: np.asarray(samples[k]) for k in reference})
    theirs = posteriordb.to_posteriordb_names(reference)
    ess = [
        float(np.squeeze(az.ess(np.asarray(v, np.float64), method="bulk"))) for v in ours.values()
    ]
    zs = []
    for column, ref in theirs.items():
        draws = np.asarray(ours[column], np.float64)
        mcse = np.hypot(
            float(np.squeeze(az.mcse(draws, method="mean"))),
            float(np.squeeze(az.mcse(ref, method="mean"))),
        )
        zs.append(abs(draws.mean() - ref.mean()) / mcse)
    return Run(
        compile_seconds=compile_s,
        sampling_seconds=sampling_s,
        min_ess_bulk=min(ess),
        leapfrog_per_draw=float(np.mean(steps)),
        divergences=int(np.sum(diverging)),
        max_abs_z=float(max(zs)),
    )


def probkit_call(posterior, *, chains: int, warmup: int, samples: int, mass_matrix: str):
    def call(seed):
        result = pk.mcmc.sample(
            posterior.model,
            model_kwargs=posterior.data,
            kernel="nuts",
            num_chains=chains,
            num_warmup=warmup,
            num_samples=samples,
            seed=seed,
            chain_method="vectorized",
            mass_matrix=mass_matrix,
            diagnose=False,  # NumPyro's run computes no diagnostics either
        )
        return result.samples, result.stats["n_steps"], result.stats["diverging"]

    return call


def numpyro_call(posterior, *, chains: int, warmup: int, samples: int, dense: bool):
    def call(seed):
        mcmc = MCMC(
            NUTS(posterior.model, dense_mass=dense),
            num_warmup=warmup,
            num_samples=samples,
            num_chains=chains,
            chain_method="vectorized",
            progress_bar=False,
        )
        mcmc.run(
            jax.random.PRNGKey(seed), **posterior.data, extra_fields=("num_steps", "diverging")
        )
        draws = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
        extra = mcmc.get_extra_fields(group_by_chain=True)
        return draws, np.asarray(extra["num_steps"]), np.asarray(extra["diverging"])

    return call


def _same_draws(first, again) -> bool:
    leaves = jax.tree_util.tree_leaves
    return all(np.array_equal(a, b) for a, b in zip(leaves(first), leaves(again), strict=True))


def compare(posterior, calls: dict, seeds: list[int], repeats: int) -> dict[str, Run]:
    """Every sampler in ``calls`` on every seed, interleaved: ``{name: Run}``.

    For each seed the samplers take turns, ``repeats`` rounds (a, b, a, b, ...), and a
    run's time is the fastest of its rounds (timeit's rule: slower rounds measure the
    machine, not the code). Taking turns puts the machine's drift, which on a shared
    2-core machine exceeds the differences measured, on both sides alike. Every round
    of a seed must give the same draws: the draws are a function of the seed."""
    runs: dict[str, list[Run]] = {name: [] for name in calls}
    for seed in seeds:
        first, compile_s, run_s = {}, {}, collections.defaultdict(list)
        for _ in range(repeats):
            for name, call in calls.items():
                out, c, r = timed(lambda call=call, seed=seed: call(seed))
                if name not in first:
                    first[name], compile_s[name] = out, c
                elif not _same_draws(first[name][0], out[0]):
                    raise RuntimeError(f"{name}: seed {seed} gave different draws when repeated")
                run_s[name].append(r)
        for name in calls:
            runs[name].append(_evaluate(posterior, *first[name], compile_s[name], min(run_s[name])))
    return {name: _summary(name_runs) for name, name_runs in runs.items()}


def _summary(runs: list[Run]) -> Run:
    """Means over seeds; the first seed's compile time."""
    return Run(
        compile_seconds=runs[0].compile_seconds,
        sampling_seconds=float(np.mean([r.sampling_seconds for r in runs])),
        min_ess_bulk=float(np.mean([r.min_ess_bulk for r in runs])),
        leapfrog_per_draw=float(np.mean([r.leapfrog_per_draw for r in runs])),
        divergences=float(np.mean([r.divergences for r in runs])),
        max_abs_z=max(r.max_abs_z for r in runs),
        per_seed=tuple((r.min_ess_bulk, r.sampling_seconds) for r in runs),
    )


def ratio_standard_error(pk_run: Run, np_run: Run, resamples: int = 4000) -> float:
    """Bootstrap standard error of the ESS/s ratio over seeds.

    Each side's seeds are resampled with replacement (the two sides' runs are
    independent), and the ratio of mean ESS over mean time is recomputed. One seed's
    warm-up luck moves a 3-seed ratio by 10-20%: a ratio is "lower than before" only
    when the difference is large against this error."""
    if len(pk_run.per_seed) < 2 or len(np_run.per_seed) < 2:
        return float("nan")
    rng = np.random.default_rng(0)

    def ess_per_second(per_seed):
        runs = np.asarray(per_seed)
        pick = rng.integers(0, len(runs), size=(resamples, len(runs)))
        return runs[pick, 0].mean(axis=1) / runs[pick, 1].mean(axis=1)

    return float(np.std(ess_per_second(pk_run.per_seed) / ess_per_second(np_run.per_seed)))


def _row(name: str, label: str, pk_run: Run, np_run: Run) -> str:
    ratio = pk_run.ess_per_second / np_run.ess_per_second
    se = ratio_standard_error(pk_run, np_run)

    def cells(run: Run) -> str:
        return (
            f"{run.compile_seconds:.1f} | {run.sampling_seconds:.2f} | "
            f"{run.leapfrog_per_draw:.1f} | {run.divergences:.1f} | {run.min_ess_bulk:.0f} | "
            f"{run.ess_per_second:.0f} | "
            f"{run.max_abs_z:.1f}"
        )

    return f"| {name} | {label} | {cells(pk_run)} | {cells(np_run)} | **{ratio:.2f}** | {se:.2f} |"


HEADER = (
    "| posterior | mass matrix (probkit / NumPyro) "
    "| pk compile s | pk sampling s | pk leapfrog/draw | pk div | pk min ESS | pk ESS/s "
    "| pk max abs z | np compile s | np sampling s | np leapfrog/draw | np div | np min ESS "
    "| np ESS/s | np max abs z | ESS/s ratio pk/np | ratio's bootstrap SE |\n|" + "---|" * 18
)


_NOTES = "## Notes"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="*", default=posteriordb.names())
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(range(10)),
        help="one run per seed and sampler (timed --repeats times); the table shows the "
        "first run's compile time, "
        "means over the seeds and the ratio's bootstrap standard error over seeds "
        "(NumPyro's later runs load their executables from a temporary compilation cache)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="rounds per seed, the samplers taking turns; a run's time is its fastest round",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--one-core",
        action="store_true",
        help="pin the process to one CPU core (re-executes itself: XLA sizes its thread "
        "pool when the backend starts, at import)",
    )
    args = parser.parse_args(argv)
    if args.one_core and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        os.execv(sys.executable, [sys.executable, *sys.argv])
    if args.out is None:
        name = "mcmc_one_core.md" if args.one_core else "mcmc.md"
        args.out = Path(__file__).parent / "results" / name

    if len(args.seeds) > 1:
        # NumPyro compiles on every MCMC.run: later seeds reuse the executable.
        jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="pk-bench-"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

    rows = []
    for name in args.names:
        # Each NumPyro run leaves its executables in JAX's caches (about 720 memory maps
        # on eight schools); some 90 runs exhaust the kernel's map limit and LLVM fails
        # with "Cannot allocate memory". Clear them between posteriors (probkit compiles
        # every posterior anew anyway); a posterior's own runs stay in one cache.
        jax.clear_caches()
        posterior = posteriordb.load(name)
        dense = name == "diamonds-diamonds"
        common = dict(chains=args.chains, warmup=args.warmup, samples=args.samples)
        calls = {
            "probkit": probkit_call(posterior, mass_matrix="dense" if dense else "diag", **common),
            "numpyro": numpyro_call(posterior, dense=False, **common),
        }
        if dense:  # the same mass matrix on both sides, for reference
            calls["numpyro dense"] = numpyro_call(posterior, dense=True, **common)
        runs = compare(posterior, calls, args.seeds, args.repeats)
        rows.append(
            _row(name, "dense / diag" if dense else "diag / diag", runs["probkit"], runs["numpyro"])
        )
        print(rows[-1], flush=True)
        if dense:
            rows.append(_row(name, "dense / dense", runs["probkit"], runs["numpyro dense"]))
            print(rows[-1], flush=True)

    cores = len(os.sched_getaffinity(0))
    cpu = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores"
    if cores < (os.cpu_count() or cores):
        cpu += f", this process pinned to {cores}"
    # one process, one XLA CPU client: both samplers run on the thread pool probkit chose
    cpu += f", XLA CPU threads: {os.environ.get('NPROC', 'XLA default')} for both"
    table = "\n".join([HEADER, *rows])
    text = (
        "# MCMC: probkit NUTS vs NumPyro NUTS on posteriordb\n\n"
        f"`python benchmarks/mcmc_vs_numpyro.py`: {args.chains} chains (vectorized), "
        f"{args.warmup} warm-up + {args.samples} draws each, seeds "
        f"{', '.join(map(str, args.seeds))} (one run per seed, timed in {args.repeats} rounds "
        "with the samplers taking turns, the fastest round kept; table entries are means "
        "over seeds, compile time is the first run's); "
        f"jax {jax.__version__} on {jax.default_backend()} ({cpu}). "
        "Compile time is JAX's reported tracing + lowering + XLA compile time during the "
        "first call; sampling time is the rest of the wall time, with asynchronous dispatch "
        "off (warm-up + sampling + conversion of the draws). ESS is ArviZ's minimum bulk "
        "ESS over the posteriordb parameters; max abs z compares each mean with the "
        "reference draws (difference / combined MCSE). The last column is the ratio's "
        "bootstrap standard error over seeds (each side's seeds resampled).\n\n"
        f"{table}\n"
    )
    print(table)
    # Hand-written notes below a "## Notes" heading survive a re-run.
    if args.out.exists() and _NOTES in (previous := args.out.read_text()):
        text += "\n" + previous[previous.index(_NOTES) :]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return table


if __name__ == "__main__":
    main()
