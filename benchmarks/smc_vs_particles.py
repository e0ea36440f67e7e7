"""probkit SMC against Chopin's ``particles`` (bootstrap PF) and blackjax (tempered SMC).

Part 1 — bootstrap particle filter on the linear-Gaussian state-space model
``x_t = 0.9 x_{t-1} + N(0, 1)``, ``y_t = x_t + N(0, 0.5^2)``, ``T = 100``, at
``N = 10^3, 10^4, 10^5``; systematic resampling when ESS < N/2 on both sides. For
each N: compile time (probkit; ``particles`` is NumPy and compiles nothing), median
seconds per filter run over R runs, the variance of the log-likelihood estimates
over those runs, their mean minus the exact Kalman log-likelihood, and the speed-up
``particles`` seconds / probkit seconds.

Part 2 — adaptive tempered SMC on a conjugate Bayesian linear regression (d = 10,
n = 200, known noise; exact log-evidence in closed form) against blackjax's
``adaptive_tempered_smc``, N = 1000 particles and systematic resampling on both
sides. blackjax: target ESS 0.5, 10 HMC steps of 10 leapfrog steps per temperature,
a fixed step size and unit mass matrix (its documented usage). probkit: its defaults
(5 HMC steps per temperature of 2 leapfrog steps each, whitened by the particle
covariance, a jittered quarter-period trajectory, step size adapted between
temperatures) at target ESS 0.5 (the default) and 0.7. Reported: compile seconds,
median wall and CPU seconds per run, number of temperatures, log-evidence mean error
and variance.

Run with ``JAX_PLATFORMS=cpu python benchmarks/smc_vs_particles.py`` (``--quick`` for
fewer repeats); writes ``benchmarks/results/smc.md``.
"""

from __future__ import annotations

# probkit first: its XLA thread default (one thread on two cores or fewer) applies only
# before JAX's CPU backend starts, and `import blackjax` starts it. Both tools then run
# on the same thread pool, as in mcmc_vs_numpyro.py.
import probkit as pk

# isort: split
import argparse
import functools
import os
import platform
import time
from pathlib import Path

import blackjax
import blackjax.smc.resampling as bj_resampling
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import particles
from particles import distributions as pdists
from particles import state_space_models as pssm
from scipy import stats

import probkit.smc as smc

RHO, SIGMA_X, SIGMA_Y, T = 0.9, 1.0, 0.5, 100


# ----------------------------------------------------------------------------------------
# Part 1: bootstrap particle filter
# ----------------------------------------------------------------------------------------


class _ParticlesLG(pssm.StateSpaceModel):
    def PX0(self):  # noqa: N802 - particles' API
        return pdists.Normal(loc=0.0, scale=SIGMA_X / np.sqrt(1 - RHO**2))

    def PX(self, t, xp):  # noqa: N802
        return pdists.Normal(loc=RHO * xp, scale=SIGMA_X)

    def PY(self, t, xp, x):  # noqa: N802
        return pdists.Normal(loc=x, scale=SIGMA_Y)


def _probkit_ssm() -> smc.StateSpaceModel:
    return smc.StateSpaceModel(
        initial=dist.Normal(0.0, SIGMA_X / np.sqrt(1 - RHO**2)),
        transition=lambda t, x: dist.Normal(RHO * x, SIGMA_X),
        observation=lambda t, x: dist.Normal(x, SIGMA_Y),
        vectorized=True,  # functions of the whole particle array, as in particles
    )


def bench_particle_filter(num_particles: int, repeats: int, y: np.ndarray, exact: float) -> dict:
    ssm = _probkit_ssm()

    def one(key, ys):
        return smc.particle_filter_loop(
            key, ssm, ys, num_particles=num_particles, resampling_fn=smc.systematic
        ).log_likelihood

    ys = jnp.asarray(y, jnp.float32)
    start = time.perf_counter()
    compiled = jax.jit(one).lower(jax.random.key(0), ys).compile()
    compile_s = time.perf_counter() - start
    pk_times, pk_ll = [], []
    for r in range(repeats):
        start = time.perf_counter()
        ll = float(compiled(jax.random.key(r), ys))
        pk_times.append(time.perf_counter() - start)
        pk_ll.append(ll)

    model = _ParticlesLG()
    ch_times, ch_ll = [], []
    for r in range(repeats):
        np.random.seed(r)  # noqa: NPY002 - particles draws from NumPy's global generator
        fk = pssm.Bootstrap(ssm=model, data=list(y))
        alg = particles.SMC(
            fk=fk, N=num_particles, resampling="systematic", ESSrmin=0.5, store_history=False
        )
        start = time.perf_counter()
        alg.run()
        ch_times.append(time.perf_counter() - start)
        ch_ll.append(float(alg.logLt))
    pk_s, ch_s = float(np.median(pk_times)), float(np.median(ch_times))
    return {
        "N": num_particles,
        "compile_s": compile_s,
        "probkit_s": pk_s,
        "particles_s": ch_s,
        "speedup": ch_s / pk_s,
        "probkit_var": float(np.var(pk_ll, ddof=1)),
        "particles_var": float(np.var(ch_ll, ddof=1)),
        "probkit_err": float(np.mean(pk_ll) - exact),
        "particles_err": float(np.mean(ch_ll) - exact),
    }


# ----------------------------------------------------------------------------------------
# Part 2: adaptive tempered SMC
# ----------------------------------------------------------------------------------------

D, NOBS, SIGMA, TAU = 10, 200, 1.0, 1.0


def _regression_data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(NOBS, D))
    y = X @ rng.normal(size=D) + SIGMA * rng.normal(size=NOBS)
    exact = stats.multivariate_normal(
        np.zeros(NOBS), SIGMA**2 * np.eye(NOBS) + TAU**2 * X @ X.T
    ).logpdf(y)
    return X.astype(np.float32), y.astype(np.float32), float(exact)


def _regression_model(X, y):
    beta = numpyro.sample("beta", dist.Normal(0.0, TAU).expand([D]).to_event(1))
    numpyro.sample("y", dist.Normal(X @ beta, SIGMA), obs=y)


def bench_tempered(num_particles: int, repeats: int) -> list[dict]:
    X, y, exact = _regression_data()
    data = (jnp.asarray(X), jnp.asarray(y))
    rows = []

    # probkit: NumPyro model -> Target -> TemperedPath (an equinox Module: the data
    # are its array leaves, passed to the compiled sampler as an argument)
    target = pk.from_numpyro(_regression_model, X=data[0], y=data[1])
    path = smc.tempered_path(target)

    def probkit_run(key, path, target_ess):
        result = smc.tempered_loop(
            key,
            path,
            num_particles=num_particles,
            target_ess=target_ess,
            max_num_steps=200,
        )  # default moves: 5 whitened HMC steps of a quarter period per temperature
        return result.log_evidence, result.info["num_steps"]

    for target_ess in (0.5, 0.7):
        rows.append(
            _time_tempered(
                f"probkit.smc.tempered (defaults, target_ess={target_ess})",
                functools.partial(probkit_run, target_ess=target_ess),
                path,
                repeats,
                exact,
            )
        )

    # blackjax: hand-written log prior / likelihood on the same flat vector
    def log_prior(beta):
        return jnp.sum(dist.Normal(0.0, TAU).log_prob(beta))

    def blackjax_run(key, xy):
        Xd, yd = xy

        def log_likelihood(beta):
            return jnp.sum(dist.Normal(Xd @ beta, SIGMA).log_prob(yd))

        algo = blackjax.adaptive_tempered_smc(
            log_prior,
            log_likelihood,
            blackjax.hmc.build_kernel(),
            blackjax.hmc.init,
            blackjax.smc.extend_params(
                {
                    "step_size": 0.05,
                    "inverse_mass_matrix": jnp.ones(D),
                    "num_integration_steps": 10,
                }
            ),
            bj_resampling.systematic,
            target_ess=0.5,
            num_mcmc_steps=10,
        )
        key_init, key_loop = jax.random.split(key)
        state = algo.init(TAU * jax.random.normal(key_init, (num_particles, D)))

        def cond(carry):
            return carry[1].tempering_param < 1.0

        def body(carry):
            i, state, key, log_z = carry
            key, sub = jax.random.split(key)
            state, info = algo.step(sub, state)
            return i + 1, state, key, log_z + info.log_likelihood_increment

        n, _, _, log_z = jax.lax.while_loop(cond, body, (0, state, key_loop, 0.0))
        return log_z, n

    rows.append(
        _time_tempered("blackjax.adaptive_tempered_smc", blackjax_run, data, repeats, exact)
    )
    return rows


def _time_tempered(name, fn, data, repeats, exact) -> dict:
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(jax.random.key(0), data).compile()
    compile_s = time.perf_counter() - start
    times, cpu_times, log_z, steps = [], [], [], []
    for r in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        z, n = compiled(jax.random.key(100 + r), data)
        z = float(z)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        log_z.append(z)
        steps.append(int(n))
    var = float(np.var(log_z, ddof=1))
    return {
        "sampler": name,
        "compile_s": compile_s,
        "run_s": float(np.median(times)),
        "cpu_s": float(np.median(cpu_times)),
        "steps": float(np.mean(steps)),
        "err": float(np.mean(log_z) - exact),
        "var": var,
        # standard error of a sample variance, assuming near-Gaussian log Z
        "var_se": var * float(np.sqrt(2.0 / (repeats - 1))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "smc.md"))
    args = parser.parse_args()
    repeats = 5 if args.quick else 20

    lg = smc.LinearGaussian.scalar(RHO, SIGMA_X, SIGMA_Y)
    _, y = lg.simulate(jax.random.key(2024), T)
    y = y[:, 0]
    exact = smc.kalman_filter(lg, y[:, None]).log_likelihood

    pf_rows = [bench_particle_filter(n, repeats, y, exact) for n in (1_000, 10_000, 100_000)]
    tempered_repeats = 10 if args.quick else 40
    tempered_rows = bench_tempered(1000, tempered_repeats)

    lines = [
        "# SMC benchmark: probkit vs particles (bootstrap PF) and blackjax (tempered SMC)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"JAX {jax.__version__} on {jax.devices()[0].platform}, particles "
        f"{getattr(particles, '__version__', '?')}, blackjax {blackjax.__version__}. "
        f"XLA CPU threads: {os.environ.get('NPROC', 'XLA default')} for both tools. "
        f"Median of {repeats} runs per cell, one process.",
        "",
        f"## Bootstrap particle filter, linear-Gaussian SSM, T = {T}",
        "",
        f"Exact (Kalman) log-likelihood {exact:.3f}. Error = mean estimate - exact.",
        "",
        "| N | probkit compile (s) | probkit run (s) | particles run (s) | speed-up "
        "| probkit var(logL) | particles var(logL) | probkit error | particles error |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in pf_rows:
        lines.append(
            f"| {r['N']:,} | {r['compile_s']:.2f} | {r['probkit_s']:.4f} | {r['particles_s']:.4f} "
            f"| {r['speedup']:.1f}x | {r['probkit_var']:.4f} | {r['particles_var']:.4f} "
            f"| {r['probkit_err']:+.3f} | {r['particles_err']:+.3f} |"
        )
    lines += [
        "",
        f"## Adaptive tempered SMC, Bayesian linear regression (d = {D}, n = {NOBS}), N = 1000",
        "",
        f"Median of {tempered_repeats} runs per sampler; var(log Z) ± its standard error.",
        "",
        "| sampler | compile (s) | run (s) | run CPU (s) | temperatures | log Z error "
        "| var(log Z) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in tempered_rows:
        lines.append(
            f"| {r['sampler']} | {r['compile_s']:.1f} | {r['run_s']:.3f} | {r['cpu_s']:.3f} "
            f"| {r['steps']:.1f} | {r['err']:+.3f} | {r['var']:.4f} ± {r['var_se']:.4f} |"
        )
    blackjax_row = tempered_rows[-1]
    lines.append("")
    for r in tempered_rows[:-1]:
        lines.append(
            f"Run-time ratio blackjax / {r['sampler']}: {blackjax_row['run_s'] / r['run_s']:.2f}x "
            f"(CPU time: {blackjax_row['cpu_s'] / r['cpu_s']:.2f}x)."
        )
    lines.append("")
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    # Hand-written notes below a "## Notes" heading survive a re-run.
    if out.exists() and "## Notes" in (previous := out.read_text()):
        table += "\n" + previous[previous.index("## Notes") :]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)


if __name__ == "__main__":
    main()
