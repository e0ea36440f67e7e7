"""Feynman-Kac correctors: accuracy against exact targets, and throughput against NumPy.

Tasks (all 2-D, 1000 SDE steps, 10^4 particles unless ``--quick``):

1. annealing ``p^3`` of a 40-mode Gaussian mixture (means uniform in [-40, 40]^2, unit
   covariances, equal weights, as in the FKC paper's toy) with exact scores, VE SDE
   (sigma 0.01 -> 80). Target draws: sampling-importance-resampling from 2 * 10^6
   draws of ``sum_k N(mu_k, I / 2)`` (its ESS is printed);
2. product of that mixture with a broad Gaussian expert ``N((10, -10), 20^2 I)``:
   the normalised product is a mixture again (exact draws);
3. annealing ``p^2`` of the trained 2-D toy (three noisy rings, a score network trained
   by ``probkit.models.diffusion.fit``), VP SDE. The target is the data law squared,
   normalised on a grid (the rings' density is closed-form); the error includes the
   network's.

For each task: drift only (the SDE with the annealed / summed score, no weights),
FKC without resampling, FKC with adaptive resampling (ESS < N/2, systematic) and, for
tasks 1-2, both again with noise scale ``kappa = 8`` (drift ``-f + (1 + kappa)/2 g^2 S``,
noise ``sqrt(kappa) g``: same marginals, same weights, more mixing), each
scored by the energy distance and Gaussian-kernel MMD of the weighted particles to
10^4 target draws, the 2-Wasserstein distance (exact assignment, 2000 particles
resampled to equal weights against 2000 target draws) and the total-variation distance
between mode masses (nearest mean / nearest ring). A second, independent set of target
draws gives each metric's noise floor.

Throughput: the FKC sampler of task 1 with resampling, in probkit (compile time apart)
and in a plain NumPy implementation of the same algorithm (same score formula, Euler
step, left-point weights, ESS-triggered systematic resampling), both float32 and in
one process; reported as particle-steps per second and the ratio.

Run with ``JAX_PLATFORMS=cpu python benchmarks/fkc.py`` (``--quick``: 2000 particles,
no trained toy); writes ``benchmarks/results/fkc.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np
import probkit.models.diffusion as diffusion
from _timing import timed
from scipy.special import i0e, logsumexp

import probkit.fkc as fkc
import probkit.smc as smc
from probkit.sde import VESDE, VPSDE, exact_score, gaussian_mixture, mixture_product, noised

# --------------------------------------------------------------------------- targets


def gmm40(seed: int = 0):
    rng = np.random.default_rng(seed)
    means = rng.uniform(-40.0, 40.0, size=(40, 2))
    return gaussian_mixture(jnp.ones(40), jnp.asarray(means), 1.0)


def anneal_target_draws(gmm, sde, beta, n, seed):
    """SIR draws of p_{t_min}^beta with proposal sum_k N(mu_k, I / 2)."""
    at = noised(gmm, sde, sde.t_min)
    means = np.asarray(at.means)
    var = float(at.covariances[0, 0, 0])
    rng = np.random.default_rng(seed)
    m = 2_000_000
    comp = rng.integers(0, len(means), size=m)
    x = means[comp] + np.sqrt(0.5) * rng.standard_normal((m, 2))
    d2 = ((x[:, None, :] - means[None]) ** 2).sum(-1)
    log_p = logsumexp(-0.5 * d2 / var, axis=1)  # up to constants
    log_q = logsumexp(-d2, axis=1)  # N(mu, I/2) up to constants
    log_w = beta * log_p - log_q
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    ess = 1.0 / np.sum(w**2)
    idx = rng.choice(m, size=n, p=w)
    return x[idx], ess


def rings_log_density(x, radii=(1.0, 2.0, 3.0), sigma=0.08):
    """Exact log density of the rings toy: (1/3) sum_r of a circle blurred by N(0, s^2 I)."""
    r = np.linalg.norm(x, axis=-1)
    terms = []
    for radius in radii:
        z = r * radius / sigma**2
        terms.append(
            -((r - radius) ** 2) / (2 * sigma**2) + np.log(i0e(z)) - np.log(2 * np.pi * sigma**2)
        )
    return logsumexp(np.stack(terms), axis=0) - np.log(len(radii))


# --------------------------------------------------------------------------- metrics


def metrics(x, log_w, target, mode_of, num_modes, exact_masses, bandwidth, seed):
    x = np.asarray(x, np.float32)
    log_w = jnp.asarray(log_w)
    w = np.exp(np.asarray(log_w, np.float64))
    w /= w.sum()
    ed = float(jax.jit(fkc.energy_distance)(x, target, x_log_weights=log_w))
    mmd = float(
        jax.jit(lambda a, b, lw: fkc.mmd(a, b, bandwidth=bandwidth, x_log_weights=lw))(
            x, target, log_w
        )
    )
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x), size=2000, p=w)
    w2 = fkc.wasserstein2(x[idx], np.asarray(target)[:2000])
    masses = np.bincount(mode_of(x), weights=w, minlength=num_modes)
    tv = 0.5 * np.abs(masses - exact_masses).sum()
    return dict(energy=ed, mmd=mmd, w2=w2, tv=tv)


def run_samplers(make_fk, num_particles, kappa=None, seed=0):
    """drift only / FKC without resampling / FKC with resampling [/ both at noise scale kappa]."""
    configs = [
        ("drift only", False, 0.5, 1.0),
        ("FKC, no resampling", True, 0.0, 1.0),
        ("FKC, resampling", True, 0.5, 1.0),
    ]
    if kappa is not None:
        configs += [
            (f"drift only, kappa = {kappa:g}", False, 0.5, kappa),
            (f"FKC, resampling, kappa = {kappa:g}", True, 0.5, kappa),
        ]
    rows = {}
    for name, weighted, thr, noise_scale in configs:
        fk = make_fk(weighted, noise_scale)
        res, compile_s, run_s = timed(
            lambda fk=fk, thr=thr: smc.run(
                fk, num_particles=num_particles, seed=seed, ess_threshold=thr
            )
        )
        rows[name] = (res, compile_s, run_s)
    return rows


def nearest(centres):
    centres = np.asarray(centres)
    return lambda x: np.argmin(((np.asarray(x)[:, None, :] - centres) ** 2).sum(-1), axis=1)


# --------------------------------------------------------------------------- NumPy FKC


def numpy_fkc_anneal(gmm, sde, beta, num_steps, num_particles, seed, ess_threshold=0.5):
    """The FKC annealing sampler of probkit.fkc.anneal in plain NumPy (float32)."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    means = np.asarray(gmm.means, f32)
    covs = np.asarray(gmm.covariances, f32)
    log_wk = np.asarray(gmm.log_weights, f32)
    grid = np.linspace(sde.t_max, sde.t_min, num_steps + 1)
    sigma = lambda t: sde.sigma_min * (sde.sigma_max / sde.sigma_min) ** t
    log_ratio = np.log(sde.sigma_max / sde.sigma_min)
    n = num_particles
    x = (np.sqrt(sde.sigma_max**2 - sde.sigma_min**2) / np.sqrt(beta)) * rng.standard_normal(
        (n, 2)
    ).astype(f32)
    log_w = np.full(n, -np.log(n), f32)
    for k in range(1, num_steps + 1):
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        if 1.0 / np.sum(w**2) < ess_threshold * n:  # systematic resampling
            u = (rng.uniform() + np.arange(n)) / n
            idx = np.minimum(np.searchsorted(np.cumsum(w), u), n - 1)
            x, log_w = x[idx], np.full(n, -np.log(n), f32)
        t, h = grid[k - 1], grid[k - 1] - grid[k]
        var_add = sigma(t) ** 2 - sde.sigma_min**2
        cov = covs + f32(var_add) * np.eye(2, dtype=f32)
        inv_chol = np.linalg.inv(np.linalg.cholesky(cov)).astype(f32)
        diff = x[:, None, :] - means[None]
        white = np.einsum("kij,nkj->nki", inv_chol, diff)
        half_log_det = np.log(np.diagonal(np.linalg.cholesky(cov), axis1=1, axis2=2)).sum(-1)
        logits = log_wk - half_log_det - 0.5 * (white**2).sum(-1)
        resp = np.exp(logits - logits.max(1, keepdims=True))
        resp /= resp.sum(1, keepdims=True)
        score = -np.einsum("nk,nki->ni", resp, np.einsum("kji,nkj->nki", inv_chol, white))
        g2 = f32(2.0 * sigma(t) ** 2 * log_ratio)
        rate = 0.5 * g2 * beta * (beta - 1.0) * (score**2).sum(-1)
        x = x + beta * g2 * score * h + np.sqrt(g2 * h) * rng.standard_normal((n, 2)).astype(f32)
        log_w = log_w + (rate * h).astype(f32)
        log_w -= logsumexp(log_w)
    return x, log_w


# --------------------------------------------------------------------------- tasks


def task_rows(title, rows, target, floor, mode_of, num_modes, exact_masses, bandwidth):
    out = [f"### {title}", ""]
    out.append(
        "| sampler | energy distance | MMD^2 | W2 | mode-mass TV | final ESS | resampled steps "
        "| compile s | run s |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    errors = {}
    for name, (res, compile_s, run_s) in rows.items():
        m = metrics(
            res.particles.x,
            res.log_weights,
            target,
            mode_of,
            num_modes,
            exact_masses,
            bandwidth,
            0,
        )
        errors[name] = m
        out.append(
            f"| {name} | {m['energy']:.4f} | {m['mmd']:.5f} | {m['w2']:.3f} | {m['tv']:.3f} "
            f"| {float(res.ess[-1]):.0f} | {int(res.resampled.sum())} | {compile_s:.1f} "
            f"| {run_s:.2f} |"
        )
    m = metrics(
        floor, jnp.zeros(len(floor)), target, mode_of, num_modes, exact_masses, bandwidth, 0
    )
    out.append(
        f"| *independent target draws (noise floor)* | {m['energy']:.4f} | {m['mmd']:.5f} "
        f"| {m['w2']:.3f} | {m['tv']:.3f} | | | | |"
    )
    out.append("")
    pairs = [("drift only", "FKC, resampling", "kappa = 1")]
    kappa_rows = [name for name in errors if name.startswith("FKC, resampling, kappa")]
    if kappa_rows:
        kappa = kappa_rows[0].split("kappa = ")[1]
        pairs.append((f"drift only, kappa = {kappa}", kappa_rows[0], f"kappa = {kappa}"))
    for base_name, fkc_name, label in pairs:
        base, best = errors[base_name], errors[fkc_name]
        ratios = ", ".join(
            f"{key} {base[key] / max(best[key], 1e-12):.1f}x" for key in ("energy", "w2", "tv")
        )
        out.append(f"Error of drift only / FKC with resampling ({label}): {ratios}.")
        out.append("")
    return out, errors


# ------------------------------------------------------------ error against steps

STEPS_HEADER = "## Error against steps at the defaults (2-D mixtures, VP SDE, exact answers)"


def _grid_moments(log_density, half_width=12.0, num=961):
    """Mean and second moments of a 2-D density (log, unnormalised) by quadrature."""
    axis = np.linspace(-half_width, half_width, num)
    xx, yy = np.meshgrid(axis, axis, indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel()], -1)
    log_p = log_density(pts)
    p = np.exp(log_p - log_p.max())
    # The density must have decayed at the edge of the grid, or the moments are wrong.
    edge = np.concatenate(
        [p.reshape(num, num)[[0, -1]].ravel(), p.reshape(num, num)[:, [0, -1]].ravel()]
    )
    assert edge.max() < 1e-12 * p.max(), "grid too small for this target"
    p /= p.sum()
    mean = p @ pts
    second = np.einsum("n,ni,nj->ij", p, pts, pts)
    return mean, second


def _numpy_log_mixture(gmm, sde, t):
    at = noised(gmm, sde, t)
    w, m, c = (
        np.asarray(a, np.float64) for a in (jnp.exp(at.log_weights), at.means, at.covariances)
    )

    def log_density(x):
        out = []
        for k in range(len(w)):
            diff = x - m[k]
            prec = np.linalg.inv(c[k])
            quad = np.einsum("ni,ij,nj->n", diff, prec, diff)
            out.append(np.log(w[k]) - 0.5 * quad - 0.5 * np.linalg.slogdet(2 * np.pi * c[k])[1])
        return np.logaddexp.reduce(np.stack(out), axis=0)

    return log_density


def steps_tasks():
    """(name, builder(num_steps) -> FeynmanKac, exact (mean, second moments)) on a VP SDE."""
    sde = VPSDE()
    p1 = gaussian_mixture(
        jnp.array([0.5, 0.5]), jnp.array([[-2.0, 0.0], [2.0, 0.0]]), jnp.array([0.3, 0.6])
    )
    p2 = gaussian_mixture(
        jnp.array([0.3, 0.7]),
        jnp.array([[0.0, -2.0], [0.5, 2.0]]),
        jnp.array([[0.5, 0.2], [0.3, 0.3]]),
    )
    three = gaussian_mixture(
        jnp.array([0.2, 0.5, 0.3]),
        jnp.array([[-3.0, 0.0], [0.0, 2.5], [3.0, -1.0]]),
        jnp.array([[[1.0, 0.0], [0.0, 1.0]], [[0.6, 0.3], [0.3, 0.8]], [[1.5, 0.0], [0.0, 0.5]]]),
    )
    cond = gaussian_mixture(jnp.ones(1), three.means[1:2], three.covariances[1:2])
    lp1, lp2 = _numpy_log_mixture(p1, sde, sde.t_min), _numpy_log_mixture(p2, sde, sde.t_min)
    l3, lc = _numpy_log_mixture(three, sde, sde.t_min), _numpy_log_mixture(cond, sde, sde.t_min)
    beta, w = 2.0, 2.0
    return [
        (
            "product of two 2-component mixtures",
            lambda k: fkc.product(
                [exact_score(p1, sde), exact_score(p2, sde)], sde, event_shape=(2,), num_steps=k
            ),
            _grid_moments(lambda x: lp1(x) + lp2(x)),
        ),
        (
            f"annealing p^{beta:g} of a 3-component mixture",
            lambda k: fkc.anneal(exact_score(three, sde), sde, beta, event_shape=(2,), num_steps=k),
            _grid_moments(lambda x: beta * l3(x)),
        ),
        (
            f"guidance w = {w:g} (conditional: one component of the 3-component mixture)",
            lambda k: fkc.guidance(
                exact_score(cond, sde),
                exact_score(three, sde),
                sde,
                w,
                event_shape=(2,),
                num_steps=k,
            ),
            _grid_moments(lambda x: (1 - w) * l3(x) + w * lc(x)),
        ),
    ]


def _replicated(fk, keys, num_particles):
    def one(key):
        return smc.loop(
            key, fk, num_particles=num_particles, resampling_fn=smc.systematic, ess_threshold=0.5
        )

    return jax.vmap(one)(keys)


_replicated_jit = None


def steps_study(num_particles: int, replicates: int, steps_list: list[int]) -> list[str]:
    """Error of the weighted mean and second moments against the number of steps."""
    import equinox as eqx

    global _replicated_jit
    if _replicated_jit is None:
        _replicated_jit = eqx.filter_jit(_replicated)
    lines = [
        STEPS_HEADER,
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} CPU cores "
        f"(shared; load average {os.getloadavg()[0]:.1f} at the start), JAX {jax.__version__}. "
        f"{num_particles:,} particles, `smc.loop` defaults (systematic resampling when ESS < N/2), "
        f"{replicates} independent runs per row. *bias*: mean over the runs of (weighted "
        "estimate - exact), with its standard error (spread of the runs / sqrt(runs)); "
        "*MC sd*: the spread "
        "of one run's estimate, i.e. the Monte Carlo error a user gets from one run at this "
        "many particles. Exact moments by quadrature of the exact noised densities at t_min "
        "on a 961 x 961 grid over [-12, 12]^2. Columns: mean x, mean y, E[x^2], E[y^2].",
        "",
    ]
    for name, build, (mean, second) in steps_tasks():
        truth = np.array([mean[0], mean[1], second[0, 0], second[1, 1]])
        sd = np.sqrt(np.diag(second) - mean**2)
        lines += [
            f"### {name}: target mean ({mean[0]:.3f}, {mean[1]:.3f}), "
            f"sd ({sd[0]:.3f}, {sd[1]:.3f})",
            "",
            "| steps | bias (± s.e.) | MC sd of one run | max abs(bias) / MC sd | run s / run |",
            "|---:|---|---|---:|---:|",
        ]
        for k in steps_list:
            fk = build(k)
            keys = jax.random.split(jax.random.key(2026), replicates)
            start = time.perf_counter()
            res = jax.block_until_ready(_replicated_jit(fk, keys, num_particles))
            run_s = (time.perf_counter() - start) / replicates
            log_w = np.asarray(res.log_weights, np.float64)
            wts = np.exp(log_w - log_w.max(1, keepdims=True))
            wts /= wts.sum(1, keepdims=True)
            x = np.asarray(res.particles.x, np.float64)
            est = np.stack(
                [
                    np.sum(wts * x[..., 0], 1),
                    np.sum(wts * x[..., 1], 1),
                    np.sum(wts * x[..., 0] ** 2, 1),
                    np.sum(wts * x[..., 1] ** 2, 1),
                ],
                1,
            )
            bias = est.mean(0) - truth
            mc_sd = est.std(0, ddof=1)
            se = mc_sd / np.sqrt(replicates)
            cells = ", ".join(f"{b:+.3f} ± {e:.3f}" for b, e in zip(bias, se, strict=True))
            sds = ", ".join(f"{v:.3f}" for v in mc_sd)
            ratio = float(np.max(np.abs(bias) / mc_sd))
            row = f"| {k} | {cells} | {sds} | {ratio:.2f} | {run_s:.1f} |"
            print(row, flush=True)
            lines.append(row)
        lines.append("")
    return lines


def write_section(path: Path, header: str, section: list[str]) -> None:
    """Replace (or append) the section starting at ``header`` in the results file."""
    text = path.read_text() if path.exists() else ""
    if header in text:
        before, rest = text.split(header, 1)
        following = rest.find("\n## ")
        after = rest[following + 1 :] if following >= 0 else ""
        text = before + "\n".join(section) + "\n" + after
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(section) + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2000 particles, no trained toy")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "fkc.md"))
    parser.add_argument(
        "--steps-only",
        action="store_true",
        help="only the error-against-steps section (replaced in place in the results file)",
    )
    parser.add_argument("--replicates", type=int, default=8)
    parser.add_argument("--steps", default="250,500,1000,2000")
    parser.add_argument("--particles", type=int, default=20_000)
    args = parser.parse_args(argv)
    if args.steps_only:
        section = steps_study(
            args.particles, args.replicates, [int(k) for k in args.steps.split(",")]
        )
        write_section(Path(args.out), STEPS_HEADER, section)
        print(f"wrote {args.out}")
        return "\n".join(section)
    n = 2000 if args.quick else 10_000
    steps = 1000
    lines = [
        "# Feynman-Kac correctors: accuracy and throughput",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared; load average "
        f"{os.getloadavg()[0]:.1f} at the start), JAX {jax.__version__} on "
        f"{jax.default_backend()}. {n} particles, {steps} steps, one run per cell "
        "(seed 0), one process. Distances are to 10^4 exact target draws (W2: 2000 vs "
        "2000). MMD bandwidth: 1 (mixture tasks), 0.2 (rings).",
        "",
    ]

    # Task 1: annealing the 40-mode mixture.
    sde = VESDE(sigma_min=0.01, sigma_max=80.0)
    gmm = gmm40(0)
    beta = 3.0
    target, sir_ess = anneal_target_draws(gmm, sde, beta, 10_000, 1)
    floor, _ = anneal_target_draws(gmm, sde, beta, 10_000, 7)
    mode_of = nearest(gmm.means)
    exact_masses = np.bincount(mode_of(target), minlength=40) / len(target)
    score = exact_score(gmm, sde)
    rows = run_samplers(
        lambda weighted, kappa: fkc.anneal(
            score,
            sde,
            beta,
            event_shape=(2,),
            num_steps=steps,
            weighted=weighted,
            noise_scale=kappa,
        ),
        n,
        kappa=8.0,
    )
    task1_compile_s = rows["drift only"][1]
    block, _ = task_rows(
        f"1. Annealing p^3, 40-mode mixture, exact scores, VE SDE (target by SIR, ESS "
        f"{sir_ess:,.0f} of 2,000,000)",
        rows,
        target,
        floor,
        mode_of,
        40,
        exact_masses,
        1.0,
    )
    lines += block
    print("\n".join(block))

    # Task 2: product with a broad Gaussian expert.
    broad = gaussian_mixture(jnp.ones(1), jnp.array([[10.0, -10.0]]), 400.0)
    exact = mixture_product(noised(gmm, sde, sde.t_min), noised(broad, sde, sde.t_min))
    ew = np.asarray(jnp.exp(exact.log_weights), np.float64)
    rng = np.random.default_rng(2)
    chol = np.linalg.cholesky(np.asarray(exact.covariances, np.float64))

    def product_draws():
        comp = rng.choice(len(ew), size=10_000, p=ew / ew.sum())
        z = rng.standard_normal((10_000, 2))
        return np.asarray(exact.means)[comp] + np.einsum("nij,nj->ni", chol[comp], z)

    target2, floor2 = product_draws(), product_draws()
    mode_of2 = nearest(exact.means)
    rows = run_samplers(
        lambda weighted, kappa: fkc.product(
            [score, exact_score(broad, sde)],
            sde,
            event_shape=(2,),
            num_steps=steps,
            weighted=weighted,
            noise_scale=kappa,
        ),
        n,
        kappa=8.0,
    )
    block, _ = task_rows(
        "2. Product of the 40-mode mixture and N((10, -10), 20^2 I), exact scores, VE SDE",
        rows,
        target2,
        floor2,
        mode_of2,
        len(ew),
        ew / ew.sum(),
        1.0,
    )
    lines += block
    print("\n".join(block))

    # Task 3: the trained rings toy, annealed p^2.
    if not args.quick:
        vp = VPSDE()
        data, _ = diffusion.rings(jax.random.key(0), 50_000)
        net = diffusion.ScoreNetwork(
            (2,), key=jax.random.key(1), width=128, depth=3, input_features=32
        )
        start = time.perf_counter()
        model = diffusion.fit(
            net, vp, data, num_steps=8000, batch_size=512, learning_rate=3e-3
        ).model
        train_s = time.perf_counter() - start
        learned = diffusion.score_fn(model, vp)
        axis = np.arange(-4.0, 4.0, 0.01)
        grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
        log_q = 2.0 * rings_log_density(grid)
        q = np.exp(log_q - log_q.max())

        def grid_draws(seed):
            rng = np.random.default_rng(seed)
            cells = rng.choice(len(grid), size=10_000, p=q / q.sum())
            return grid[cells] + rng.uniform(-0.005, 0.005, (10_000, 2))

        target3, floor3 = grid_draws(3), grid_draws(4)
        ring_of = lambda x: np.argmin(
            np.abs(np.linalg.norm(np.asarray(x), axis=-1)[:, None] - np.array([1.0, 2, 3])), 1
        )
        ring_masses = np.bincount(ring_of(grid), weights=q / q.sum(), minlength=3)
        rows = run_samplers(
            lambda weighted, kappa: fkc.anneal(
                learned,
                vp,
                2.0,
                event_shape=(2,),
                num_steps=steps,
                weighted=weighted,
                noise_scale=kappa,
            ),
            n,
        )
        block, _ = task_rows(
            f"3. Annealing p^2 of the trained rings toy (network trained in {train_s:.0f} s), "
            f"VP SDE; exact ring masses {np.round(ring_masses, 3).tolist()}",
            rows,
            target3,
            floor3,
            ring_of,
            3,
            ring_masses,
            0.2,
        )
        lines += block
        print("\n".join(block))

    # Throughput: task 1 with resampling.
    # The executable is the one task 1 compiled (its first call's compile time is shown).
    fk = fkc.anneal(score, sde, beta, event_shape=(2,), num_steps=steps)
    compile_s = task1_compile_s
    _, _, run_s = timed(lambda: smc.run(fk, num_particles=n, seed=6, ess_threshold=0.5))
    start = time.perf_counter()
    numpy_fkc_anneal(gmm, sde, beta, steps, n, seed=0)
    numpy_s = time.perf_counter() - start
    block = [
        "### Throughput (task 1, FKC with resampling)",
        "",
        "| implementation | compile s | run s | particle-steps / s |",
        "|---|---:|---:|---:|",
        f"| probkit (jit, lax.scan) | {compile_s:.1f} | {run_s:.2f} | {n * steps / run_s:,.0f} |",
        f"| NumPy (same algorithm) | 0 | {numpy_s:.2f} | {n * steps / numpy_s:,.0f} |",
        "",
        f"probkit / NumPy speed-up (run time): {numpy_s / run_s:.1f}x.",
        "",
    ]
    lines += block
    print("\n".join(block))
    text = "\n".join(lines)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    previous = Path(args.out).read_text() if Path(args.out).exists() else ""
    Path(args.out).write_text(text + "\n")
    if STEPS_HEADER in previous:  # keep the error-against-steps section (run apart)
        kept = STEPS_HEADER + previous.split(STEPS_HEADER, 1)[1]
        write_section(Path(args.out), STEPS_HEADER, kept.rstrip("\n").split("\n"))
    print(f"wrote {args.out}")
    return text


if __name__ == "__main__":
    main()
