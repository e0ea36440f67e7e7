"""The same probkit code on the CPU and on an accelerator, in one process.

probkit's core is meant to run unchanged on a laptop and a GPU. This benchmark
runs three workloads at growing sizes on every backend JAX sees (``jax.devices()``
per platform; the CPU is always there) and prints seconds per run, compile time
apart, and the speed-up of the accelerator over the CPU:

1. bootstrap particle filter (``probkit.smc.particle_filter_loop``) on the
   linear-Gaussian state-space model of ``smc_vs_particles.py`` (T = 100, systematic
   resampling at ESS < N/2), N = 10^4 .. 10^6 particles; the mean log-likelihood
   error against the exact Kalman filter is printed so that a fast wrong answer shows;
2. Feynman-Kac annealing corrector (``probkit.fkc.anneal``, beta = 2) on the 40-mode
   2-D Gaussian mixture of ``fkc.py`` with exact scores, 500 steps, N = 10^4 .. 10^6;
3. NUTS with many chains: ``probkit.mcmc.sample`` against NumPyro's vectorised
   chains on the same device (posteriordb ``arK-arK``, 500 warm-up + 500 draws),
   1 .. 1024 chains, reporting total draws per second and min bulk ESS per second.

On a machine without an accelerator only the CPU rows appear. Run with
``python benchmarks/device_scaling.py`` (``--quick`` for small sizes); writes
``benchmarks/results/device_scaling.md`` (or ``--out``).
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


def nuts_rows(chains_list, devices, warmup=500, samples=500, name="arK-arK") -> list[str]:
    posterior = posteriordb.load(name)
    rows = []
    for chains in chains_list:
        for dev_name, device in devices.items():
            with jax.default_device(device):
                result, pk_compile, pk_run = timed(
                    lambda chains=chains: pk.mcmc.sample(
                        posterior.model,
                        model_kwargs=posterior.data,
                        num_chains=chains,
                        num_warmup=warmup,
                        num_samples=samples,
                        seed=0,
                        diagnose=False,
                    )
                )
                pk_ess = _min_ess({k: result.samples[k] for k in posterior.reference_draws()})

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

                draws, np_compile, np_run = timed(numpyro_run)
                np_ess = _min_ess({k: draws[k] for k in posterior.reference_draws()})
            total = chains * samples
            ratio = (pk_ess / pk_run) / (np_ess / np_run)
            rows.append(
                f"| NUTS {name} | {chains} chains | {dev_name} | {pk_compile:.1f} / "
                f"{np_compile:.1f} | {pk_run:.2f} / {np_run:.2f} | draws/s "
                f"{total / pk_run:.0f} / {total / np_run:.0f}; min ESS/s {pk_ess / pk_run:.0f} / "
                f"{np_ess / np_run:.0f} | ESS/s ratio pk/np **{ratio:.2f}** |"
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
    "| workload | chains | device | compile s (probkit / NumPyro) | run s (probkit / NumPyro) "
    "| throughput | ratio |\n|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--parts", nargs="*", default=["pf", "fkc", "nuts"])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "device_scaling.md"
    )
    args = parser.parse_args(argv)
    devices = _devices()
    print("devices:", {k: str(v) for k, v in devices.items()}, flush=True)
    pf_sizes = [10**3, 10**4] if args.quick else [10**4, 10**5, 10**6]
    fkc_sizes = [10**3] if args.quick else [10**4, 10**5, 10**6]
    chains_list = [4] if args.quick else [4, 64, 256]
    rows = []
    if "pf" in args.parts:
        rows += particle_filter_rows(pf_sizes, devices)
    if "fkc" in args.parts:
        rows += fkc_rows(fkc_sizes, devices, num_steps=100 if args.quick else 500)
    nuts = []
    if "nuts" in args.parts:
        # NUTS on the CPU with 1024 chains takes minutes: the accelerator only, plus
        # the CPU at the smallest size for reference.
        nuts_devices = {k: v for k, v in devices.items() if k != "cpu"} or devices
        nuts = nuts_rows(
            chains_list,
            nuts_devices,
            warmup=100 if args.quick else 500,
            samples=100 if args.quick else 500,
        )
    cpu = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores"
    names = ", ".join(f"{k}: {v.device_kind}" for k, v in devices.items())
    text = (
        "# The same code on CPU and accelerator\n\n"
        f"`python benchmarks/device_scaling.py`; jax {jax.__version__}; devices {names} "
        f"({cpu}). Compile time is JAX's reported compile time of the first call; run "
        "time is the median (particle filter, 3 runs) or a second call (others).\n\n"
        f"{HEADER}\n" + "\n".join(rows) + "\n"
    )
    if nuts:
        text += f"\n{NUTS_HEADER}\n" + "\n".join(nuts) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return text


if __name__ == "__main__":
    main()
