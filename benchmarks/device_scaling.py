"""The same probkit code on the CPU and on an accelerator, in one process.

probkit's core is meant to run unchanged on a laptop and a GPU. This benchmark
runs four workloads at growing sizes on every backend JAX sees (``jax.devices()``
per platform; the CPU is always there) and prints seconds per run, compile time
apart, and the speed-up of the accelerator over the CPU:

1. bootstrap particle filter (``probkit.smc.particle_filter_loop``) on the
   linear-Gaussian state-space model of ``smc_vs_particles.py`` (T = 100, systematic
   resampling at ESS < N/2), N = 10^4 .. 10^6 particles; the mean log-likelihood
   error against the exact Kalman filter is printed so that a fast wrong answer shows;
2. Feynman-Kac annealing corrector (``probkit.fkc.anneal``, beta = 2) on the 40-mode
   2-D Gaussian mixture of ``fkc.py`` with exact scores, 500 steps, N = 10^4 .. 10^6;
3. the shipped 2-D Distribution Transformer, B = 10^2 .. 10^5 queries in one vmapped
   call, with the outputs' difference from the CPU's as the check;
4. NUTS and ChEES with many chains: ``probkit.mcmc.sample`` against NumPyro's
   vectorised NUTS on the same device (posteriordb ``arK-arK``, 500 warm-up + 500
   draws), 128 and 1024 chains, reporting draws per second and min bulk ESS per second.

On a machine without an accelerator only the CPU rows appear. Run with
``python benchmarks/device_scaling.py`` (``--quick`` for small sizes); writes
``benchmarks/results/device_scaling.md`` (or ``--out``) after each part, so that a
run stopped by a time limit keeps what it measured. ``--parts``, ``--pf-sizes``,
``--dt-sizes``, ``--chains``, ``--kernels``, ``--warmup`` and ``--samples`` choose what runs.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from _timing import timed
from numpyro.infer import MCMC, NUTS
from probkit.models import posteriordb

import probkit as pk
import probkit.fkc as fkc
import probkit.smc as smc
from probkit.sde import VPSDE, exact_score, gaussian_mixture

RHO, SIGMA_X, SIGMA_Y, T = 0.9, 1.0, 0.5, 100


def _devices() -> dict[str, jax.Device]:
    """One device per platform: the CPU and, where present, the accelerator."""
    found = {"cpu": jax.devices("cpu")[0]}
    for backend in ("cuda", "rocm", "tpu", "gpu"):
        try:
            found[backend] = jax.devices(backend)[0]
            break
        except RuntimeError:
            continue
    return found


def _lg_data(seed: int = 0) -> tuple[np.ndarray, float]:
    """Observations of the linear-Gaussian model and their exact (Kalman) log-likelihood."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, SIGMA_X / np.sqrt(1 - RHO**2))
    ys = []
    for _ in range(T):
        ys.append(x + SIGMA_Y * rng.normal())
        x = RHO * x + SIGMA_X * rng.normal()
    y = np.asarray(ys)
    mean, var, log_lik = 0.0, SIGMA_X**2 / (1 - RHO**2), 0.0
    for obs in y:
        s = var + SIGMA_Y**2
        log_lik += -0.5 * (np.log(2 * np.pi * s) + (obs - mean) ** 2 / s)
        gain = var / s
        mean, var = mean + gain * (obs - mean), (1 - gain) * var
        mean, var = RHO * mean, RHO**2 * var + SIGMA_X**2
    return y, float(log_lik)


def particle_filter_rows(sizes, devices, repeats=3) -> list[str]:
    y, exact = _lg_data()
    ssm = smc.StateSpaceModel(
        initial=dist.Normal(0.0, SIGMA_X / np.sqrt(1 - RHO**2)),
        transition=lambda t, x: dist.Normal(RHO * x, SIGMA_X),
        observation=lambda t, x: dist.Normal(x, SIGMA_Y),
        vectorized=True,
    )
    rows = []
    for n in sizes:
        seconds = {}
        for name, device in devices.items():
            ys = jax.device_put(jnp.asarray(y, jnp.float32), device)
            run = jax.jit(
                lambda key, ys, n=n: (
                    smc.particle_filter_loop(
                        key, ssm, ys, num_particles=n, resampling_fn=smc.systematic
                    ).log_likelihood
                )
            )
            with jax.default_device(device):
                _, compile_s, _ = timed(lambda run=run, ys=ys: run(jax.random.key(0), ys))
                times, errors = [], []
                for r in range(repeats):
                    ll, _, run_s = timed(lambda r=r, run=run, ys=ys: run(jax.random.key(r), ys))
                    times.append(run_s)
                    errors.append(float(ll) - exact)
            seconds[name] = float(np.median(times))
            rows.append(
                f"| particle filter | N = {n:.0e} | {name} | {compile_s:.1f} | "
                f"{seconds[name]:.4f} | {np.mean(errors):+.3f} |" + _speedup(seconds, name)
            )
            print(rows[-1], flush=True)
    return rows


def fkc_rows(sizes, devices, num_steps=500, cpu_limit=10**5) -> list[str]:
    rng = np.random.default_rng(0)
    gmm = gaussian_mixture(jnp.ones(40), jnp.asarray(rng.uniform(-40, 40, (40, 2))), 1.0)
    sde = VPSDE()
    score = exact_score(gmm, sde)
    fk = fkc.anneal(score, sde, 2.0, event_shape=(2,), num_steps=num_steps)
    rows = []
    for n in sizes:
        seconds = {}
        for name, device in devices.items():
            if name == "cpu" and n > cpu_limit:
                continue  # 10^6 particles x 500 steps: over two minutes on 16 CPU cores
            with jax.default_device(device):
                res, compile_s, run_s = timed(lambda n=n: smc.run(fk, num_particles=n, seed=0))
                res, _, run_s = timed(lambda n=n: smc.run(fk, num_particles=n, seed=1))
            seconds[name] = run_s
            ess = float(res.ess[-1]) / n
            rows.append(
                f"| FKC anneal (40 modes, {num_steps} steps) | N = {n:.0e} | {name} | "
                f"{compile_s:.1f} | {run_s:.4f} | final ESS/N {ess:.2f} |" + _speedup(seconds, name)
            )
            print(rows[-1], flush=True)
    return rows


def _min_ess(draws: dict) -> float:
    """Smallest bulk ESS over every scalar of ``draws`` (arrays shaped (chain, draw, ...))."""
    dataset = az.convert_to_dataset({k: np.asarray(v, np.float64) for k, v in draws.items()})
    return float(min(np.min(v.values) for v in az.ess(dataset, method="bulk").data_vars.values()))


def dt_rows(batch_sizes, devices, dim=2, pool=256, cpu_limit=10**4) -> list[str]:
    """The shipped 2-D Distribution Transformer, ``batch`` queries in one vmapped call.

    Queries are prepared once (``prepare_query``, random priors, data and noise from the
    task's ranges) and tiled to the batch size. The check column says that every real
    component's output is finite (padded ones have log weight -inf) and gives the largest
    absolute difference of the outputs from the CPU's on the same queries.
    """
    import equinox as eqx
    import probkit.models.distribution_transformer as dt

    network = dt.load_pretrained(f"linear_gaussian_{dim}d")
    params, static = eqx.partition(network, eqx.is_array)
    apply = jax.jit(jax.vmap(lambda p, q: dt.apply_model(eqx.combine(p, static), q), (None, 0)))
    rng = np.random.default_rng(0)
    queries = []
    for _ in range(pool):
        k = int(rng.integers(1, 5))
        prior = dt.gaussian_mixture(
            rng.dirichlet(np.ones(k)).astype(np.float32),
            rng.uniform(-4, 4, (k, dim)).astype(np.float32),
            np.stack([np.diag(rng.uniform(0.3, 2.0, dim)) for _ in range(k)]).astype(np.float32),
        )
        n = int(rng.integers(1, 21))
        h = rng.uniform(-1, 1, (dim, dim)).astype(np.float32)
        y = rng.normal(0, 2, (n, dim)).astype(np.float32)
        queries.append(dt.prepare_query(prior, y, obs_matrix=h, noise_std=0.5)[1])
    base = jax.tree.map(lambda *x: np.stack([np.asarray(v) for v in x]), *queries)
    rows, reference = [], {}
    for b in batch_sizes:
        batch = jax.tree.map(lambda x, b=b: np.resize(x, (b,) + x.shape[1:]), base)
        seconds = {}
        for name, device in devices.items():
            if name == "cpu" and b > cpu_limit:
                continue
            p_dev = jax.device_put(params, device)
            q_dev = jax.device_put(batch, device)
            out, compile_s, _ = timed(lambda p=p_dev, q=q_dev: apply(p, q))
            run_s = float(
                np.median([timed(lambda p=p_dev, q=q_dev: apply(p, q))[2] for _ in range(9)])
            )
            log_w, means, chol = (np.asarray(x, np.float64) for x in out)
            # padded components carry log weight -inf by design; anything else non-finite
            # is a failure
            real = np.asarray(batch.component_mask, bool)
            finite = (
                np.array_equal(np.isfinite(log_w), real)
                and np.isfinite(means[real]).all()
                and np.isfinite(chol[real]).all()
            )
            flat = np.concatenate([log_w[real], means[real].ravel(), chol[real].ravel()])
            if not finite:
                check = "NON-FINITE outputs at real components"
            elif name == "cpu":
                reference[b] = flat
                check = "finite (reference)"
            elif b in reference:
                check = f"finite; max abs diff from CPU {np.max(np.abs(flat - reference[b])):.1e}"
            else:
                check = "finite"
            seconds[name] = run_s
            rows.append(
                f"| DT 2-D, one vmapped call | B = {b:.0e} | {name} | {compile_s:.1f} | "
                f"{run_s:.4f} ({1e3 * run_s / b:.4f} ms/query) | {check} |"
                + _speedup(seconds, name)
            )
            print(rows[-1], flush=True)
    return rows


def nuts_rows(
    chains_list, devices, warmup=500, samples=500, name="arK-arK", kernels=("nuts", "chees")
) -> list[str]:
    """probkit's kernels and NumPyro's vectorised NUTS at each number of chains.

    NumPyro runs last at each size (its lock-step vectorised NUTS is the slowest run);
    the last column is each run's min bulk ESS per second over NumPyro NUTS's.
    """
    posterior = posteriordb.load(name)
    params = list(posterior.reference_draws())
    rows = []
    for chains in chains_list:
        for dev_name, device in devices.items():
            runs = []
            with jax.default_device(device):
                for kernel in kernels:
                    result, c, r = timed(
                        lambda chains=chains, kernel=kernel: pk.mcmc.sample(
                            posterior.model,
                            model_kwargs=posterior.data,
                            kernel=kernel,
                            num_chains=chains,
                            num_warmup=warmup,
                            num_samples=samples,
                            seed=0,
                            diagnose=False,
                        )
                    )
                    ess = _min_ess({k: result.samples[k] for k in params})
                    runs.append((f"probkit {kernel.upper()}", c, r, ess))
                    print(f"  {runs[-1]}", flush=True)

                def numpyro_run(chains=chains):
                    mcmc = MCMC(
                        NUTS(posterior.model),
                        num_warmup=warmup,
                        num_samples=samples,
                        num_chains=chains,
                        chain_method="vectorized",
                        progress_bar=False,
                    )
                    mcmc.run(jax.random.key(0), **posterior.data)
                    return mcmc.get_samples(group_by_chain=True)

                draws, c, r = timed(numpyro_run)
                runs.append(("NumPyro NUTS", c, r, _min_ess({k: draws[k] for k in params})))
            np_ess_per_s = runs[-1][3] / runs[-1][2]
            for tool, c, r, ess in runs:
                rows.append(
                    f"| {name} | {chains} | {dev_name} | {tool} | {c:.1f} | {r:.2f} | "
                    f"{chains * samples / r:.0f} | {ess:.0f} | {ess / r:.0f} | "
                    f"**{(ess / r) / np_ess_per_s:.2f}** |"
                )
                print(rows[-1], flush=True)
    return rows


def _speedup(seconds: dict[str, float], name: str) -> str:
    if name == "cpu" or "cpu" not in seconds:
        return " |"
    return f" **{seconds['cpu'] / seconds[name]:.1f}x** |"


HEADER = (
    "| workload | size | device | compile s | run s | check | speed-up over CPU |\n"
    "|---|---|---|---|---|---|---|"
)
NUTS_HEADER = (
    "| posterior | chains | device | sampler | compile s | run s | draws/s | min bulk ESS "
    "| min ESS/s | ESS/s over NumPyro NUTS |\n|---|---|---|---|---|---|---|---|---|---|"
)


def _sizes(text: str) -> list[int]:
    return [int(float(v)) for v in text.split(",") if v]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--parts", nargs="*", default=["pf", "fkc", "dt", "nuts"])
    parser.add_argument("--pf-sizes", type=_sizes, default=None, help="e.g. 1e4,1e5,1e6")
    parser.add_argument("--fkc-sizes", type=_sizes, default=None)
    parser.add_argument("--dt-sizes", type=_sizes, default=None, help="queries per call")
    parser.add_argument("--chains", type=_sizes, default=None, help="e.g. 128,1024")
    parser.add_argument("--kernels", default="nuts,chees", help="probkit kernels to run")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "device_scaling.md"
    )
    args = parser.parse_args(argv)
    devices = _devices()
    print("devices:", {k: str(v) for k, v in devices.items()}, flush=True)
    pf_sizes = args.pf_sizes or ([10**3, 10**4] if args.quick else [10**4, 10**5, 10**6])
    fkc_sizes = args.fkc_sizes or ([10**3] if args.quick else [10**4, 10**5, 10**6])
    dt_sizes = args.dt_sizes or ([10, 100] if args.quick else [10**2, 10**3, 10**4, 10**5])
    chains_list = args.chains or ([4] if args.quick else [128, 1024])
    warmup = args.warmup or (100 if args.quick else 500)
    samples = args.samples or (100 if args.quick else 500)
    cpu = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores"
    names = ", ".join(f"{k}: {v.device_kind}" for k, v in devices.items())
    head = (
        "# The same code on CPU and accelerator\n\n"
        f"`python benchmarks/device_scaling.py`; jax {jax.__version__}; devices {names} "
        f"({cpu}). Compile time is JAX's reported compile time of the first call; run "
        "time is the median (particle filter, 3 runs; DT, 9 calls) or a second call "
        "(others).\n\n"
    )
    rows, nuts = [], []

    def write() -> str:
        # after every part, so that a run stopped by a time limit keeps its rows
        text = head + f"{HEADER}\n" + "\n".join(rows) + "\n"
        if nuts:
            text += f"\nNUTS and ChEES, {warmup} warm-up + {samples} draws per chain:\n\n"
            text += f"{NUTS_HEADER}\n" + "\n".join(nuts) + "\n"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        return text

    if "pf" in args.parts:
        rows += particle_filter_rows(pf_sizes, devices)
        write()
    if "fkc" in args.parts:
        rows += fkc_rows(fkc_sizes, devices, num_steps=100 if args.quick else 500)
        write()
    if "dt" in args.parts:
        rows += dt_rows(dt_sizes, devices)
        write()
    if "nuts" in args.parts:
        # Many chains on the CPU take minutes: the accelerator only where there is one.
        nuts_devices = {k: v for k, v in devices.items() if k != "cpu"} or devices
        for chains in chains_list:
            nuts += nuts_rows(
                [chains],
                nuts_devices,
                warmup=warmup,
                samples=samples,
                kernels=tuple(args.kernels.split(",")),
            )
            write()
    text = write()
    print(text)
    return text


if __name__ == "__main__":
    main()
