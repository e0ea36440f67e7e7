"""The particle axis over several local processes: what the collectives cost.

``probkit.smc.particle_filter`` and ``probkit.smc.tempered`` with
``mesh=probkit.distributed.chain_mesh()`` run unchanged on 1, 2 and 4 processes of
one machine (JAX's multi-controller runtime, gloo CPU collectives over 127.0.0.1,
one CPU device per process), the way the same script runs on a cluster. For every
process count it prints and writes:

1. bootstrap particle filter on a scalar linear-Gaussian model (``T = 100`` steps and
   ``N = 10^6`` particles by default): compile and run seconds of one run at the
   default ``ess_threshold=0.5``, seconds per step, and the share of a step that
   resampling takes, from runs that resample at every step (``ess_threshold=1``) and
   never (``ess_threshold=0``): ``(t_every - t_never) / t_every``. Across processes
   resampling is where particles move between processes (an all-gather of the
   particles), so the growth of that share over the 1-process row is the cost of
   the collective; the error of the log-likelihood against the Kalman filter is the
   check that the answer is right;
2. the collectives themselves, timed alone on the same mesh: the resampling
   gather ``x[ancestors]`` of ``N`` sharded particles, and a scalar all-reduce (what
   each log-sum-exp and ESS costs), as a fraction of a particle-filter step;
3. adaptive tempered SMC (HMC moves) on a conjugate Bayesian linear regression
   (d = 10, 50 observations), ``N = 10^5`` particles: compile and run seconds, the
   number of temperatures, seconds per temperature, the particle gather
   (``N x d``) as a fraction of a temperature step, and the log-evidence error
   against the exact value.

The baseline is the same code on one process (the natural one: there is no other
tool to compare with that runs these samplers across processes). On one machine the
processes share its cores, so this measures overhead, not speed-up. Run with
``python benchmarks/scale_out.py`` (``--particles``, ``--tempered-particles``,
``--processes`` to change the sizes); writes ``benchmarks/results/scale_out.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RHO, SIGMA_X, SIGMA_Y = 0.9, 1.0, 0.5
D, NOBS, SIGMA, TAU = 10, 50, 1.0, 1.0


# ----------------------------------------------------------------------------------------
# One process of a run (started by main below, once per process)
# ----------------------------------------------------------------------------------------
def worker(num_processes: int, process_id: int, port: int, args) -> dict:
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    import _timing  # noqa: F401  (before the backend starts: synchronous CPU dispatch)

    import probkit as pk

    if num_processes > 1:
        pk.distributed.initialize(f"127.0.0.1:{port}", num_processes, process_id)
    import jax
    import jax.numpy as jnp
    import numpy as np
    import numpyro
    import numpyro.distributions as dist
    from _timing import timed
    from scipy import stats

    import probkit.smc as smc

    mesh = pk.distributed.chain_mesh()
    out = {"processes": jax.process_count(), "devices": len(jax.devices())}

    # 1. particle filter
    lg = smc.LinearGaussian.scalar(RHO, SIGMA_X, SIGMA_Y)
    _, ys = lg.simulate(jax.random.key(0), args.steps)
    exact = smc.kalman_filter(lg, ys).log_likelihood
    ssm = smc.StateSpaceModel(
        initial=dist.Normal(0.0, SIGMA_X / np.sqrt(1 - RHO**2)),
        transition=lambda t, x: dist.Normal(RHO * x, SIGMA_X),
        observation=lambda t, x: dist.Normal(x, SIGMA_Y),
        vectorized=True,
    )
    ys = jnp.asarray(ys[:, 0], jnp.float32)
    n = args.particles

    def pf(seed, ess_threshold):
        return smc.particle_filter(
            ssm, ys, num_particles=n, seed=seed, ess_threshold=ess_threshold, mesh=mesh
        ).log_likelihood

    for name, threshold in (("default", 0.5), ("every", 1.0), ("never", 0.0)):
        _, compile_s, _ = timed(lambda threshold=threshold: pf(0, threshold))
        log_likelihood, _, run_s = timed(lambda threshold=threshold: pf(1, threshold))
        out[f"pf_{name}"] = {
            "compile_s": compile_s,
            "run_s": run_s,
            "error": float(log_likelihood) - exact,
        }

    # 2. the collectives alone
    sharding = pk.distributed.leading_axis_sharding(mesh)
    x = jax.device_put(jnp.arange(n, dtype=jnp.float32), sharding)
    ancestors = jax.device_put(
        jax.random.randint(jax.random.key(1), (n,), 0, n, dtype=jnp.int32), sharding
    )
    resample = jax.jit(lambda x, i: x[i], out_shardings=sharding)
    reduce = jax.jit(lambda x: jax.nn.logsumexp(x))
    for name, fn, arg in (("gather", resample, (x, ancestors)), ("reduce", reduce, (x,))):
        timed(lambda fn=fn, arg=arg: fn(*arg))
        out[name + "_s"] = min(timed(lambda fn=fn, arg=arg: fn(*arg))[2] for _ in range(5))

    # 3. tempered SMC
    rng = np.random.default_rng(1)
    X = rng.normal(size=(NOBS, D))
    y = X @ rng.normal(size=D) + SIGMA * rng.normal(size=NOBS)
    cov = SIGMA**2 * np.eye(NOBS) + TAU**2 * X @ X.T
    exact_evidence = float(stats.multivariate_normal(np.zeros(NOBS), cov).logpdf(y))

    def model(X, y):
        beta = numpyro.sample("beta", dist.Normal(0.0, TAU).expand([D]).to_event(1))
        numpyro.sample("y", dist.Normal(X @ beta, SIGMA), obs=y)

    target = pk.from_numpyro(model, X=jnp.asarray(X, jnp.float32), y=jnp.asarray(y, jnp.float32))
    m = args.tempered_particles

    def tempered(seed):
        result = smc.tempered(target, num_particles=m, seed=seed, mesh=mesh)
        return pk.distributed.gather_result(result, to="first")

    _, compile_s, _ = timed(lambda: tempered(0))
    result, _, run_s = timed(lambda: tempered(1))
    particles = jax.device_put(jnp.zeros((m, D), jnp.float32), sharding)
    m_ancestors = jax.device_put(
        jax.random.randint(jax.random.key(2), (m,), 0, m, dtype=jnp.int32), sharding
    )
    timed(lambda: resample(particles, m_ancestors))
    gather_s = min(timed(lambda: resample(particles, m_ancestors))[2] for _ in range(5))
    out["tempered"] = {"compile_s": compile_s, "run_s": run_s, "gather_s": gather_s}
    if result is not None:  # process 0
        out["tempered"]["steps"] = int(result.info["num_steps"])
        out["tempered"]["error"] = float(result.log_evidence) - exact_evidence
    return out


# ----------------------------------------------------------------------------------------
# The launcher
# ----------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(num_processes: int, args) -> tuple[dict, float]:
    """Start ``num_processes`` workers; process 0's measurements and the wall seconds."""
    port = _free_port()
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    procs, files = [], []
    start = time.perf_counter()
    for i in range(num_processes):
        f = tempfile.TemporaryFile("w+")  # not a pipe: a full pipe would block the run
        cmd = [sys.executable, "-u", __file__, "--worker", str(num_processes), str(i), str(port)]
        cmd += ["--particles", str(args.particles), "--steps", str(args.steps)]
        cmd += ["--tempered-particles", str(args.tempered_particles)]
        procs.append(subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, text=True, env=env))
        files.append(f)
    results = []
    for proc, f in zip(procs, files, strict=True):
        proc.wait()
        f.seek(0)
        text = f.read()
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed (exit {proc.returncode}):\n{text[-3000:]}")
        results.append(json.loads(text.split("RESULT", 1)[1]))
    return results[0], time.perf_counter() - start


def _waiting(step: float, one_process_step: float | None, p: int) -> str:
    """The share of a step not explained by 1/p of the 1-process compute: collectives."""
    if one_process_step is None:
        return ""
    share = max(1 - one_process_step / p / step, 0.0)
    return f"; {100 * share:.0f}% of a step beyond 1/{p} of the 1-process step"


def _rows(out: dict, wall: float, args, baseline: dict | None = None) -> list[str]:
    p = out["processes"]
    d, e, never = out["pf_default"], out["pf_every"], out["pf_never"]
    T = args.steps
    step, step_every = d["run_s"] / T, e["run_s"] / T
    share = (e["run_s"] - never["run_s"]) / e["run_s"]
    tp = out["tempered"]
    t_step = tp["run_s"] / max(tp["steps"], 1)
    pf_1 = t_step_1 = None
    if baseline is not None and p > 1:
        pf_1 = baseline["pf_default"]["run_s"] / T
        t_step_1 = baseline["tempered"]["run_s"] / max(baseline["tempered"]["steps"], 1)
    return [
        f"| particle filter, N = {args.particles:.0e}, T = {T} | {p} | {d['compile_s']:.1f} | "
        f"{d['run_s']:.2f} | {1e3 * step:.1f} | resampling {100 * share:.0f}% of a step; "
        f"gather {1e3 * out['gather_s']:.1f} ms = {100 * out['gather_s'] / step_every:.0f}%, "
        f"all-reduce {1e3 * out['reduce_s']:.2f} ms{_waiting(step, pf_1, p)} | "
        f"{d['error']:+.3f} | {wall:.0f} |",
        f"| tempered SMC (HMC), N = {args.tempered_particles:.0e}, d = {D} | {p} | "
        f"{tp['compile_s']:.1f} | {tp['run_s']:.2f} | {1e3 * t_step:.0f} "
        f"({tp['steps']} temperatures) | gather {1e3 * tp['gather_s']:.1f} ms = "
        f"{100 * tp['gather_s'] / t_step:.1f}% of a step{_waiting(t_step, t_step_1, p)} | "
        f"{tp['error']:+.3f} | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=3, type=int, metavar=("P", "ID", "PORT"))
    parser.add_argument("--particles", type=lambda s: int(float(s)), default=10**6)
    parser.add_argument("--steps", type=int, default=100, help="particle filter's T")
    parser.add_argument("--tempered-particles", type=lambda s: int(float(s)), default=10**5)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "scale_out.md"))
    args = parser.parse_args()
    if args.worker:
        print("RESULT" + json.dumps(worker(*args.worker, args)), flush=True)
        return
    header = (
        f"# Scale-out over local processes\n\n`python benchmarks/scale_out.py "
        f"--particles {args.particles} --steps {args.steps} "
        f"--tempered-particles {args.tempered_particles} --processes {args.processes}` on "
        f"{datetime.date.today().isoformat()}, {platform.machine()} with {os.cpu_count()} "
        "CPU cores, one CPU device per process.\n\n"
        "| workload | processes | compile s | run s | ms per step | collectives | "
        "error vs exact | wall s (all) |\n|---|---|---|---|---|---|---|---|\n"
    )
    rows, baseline = [], None
    for p in map(int, args.processes.split(",")):
        out, wall = run_processes(p, args)
        baseline = out if p == 1 else baseline
        rows += _rows(out, wall, args, baseline)
        print("\n".join(rows[-2:]), flush=True)
        # Written after every process count: a run cut short keeps what it measured.
        Path(args.out).write_text(header + "\n".join(rows) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
