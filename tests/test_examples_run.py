"""The examples still run, on a reduced size, and the gallery pages match the scripts.

Every script in examples/ takes command-line options that size its work (training
steps, draws, particles, problems, ...), whose defaults give the gallery's run. Here
each runs with small values, in a fresh folder as its working directory (so that its
PNG goes there, not over the committed picture), in its own process, and must exit
cleanly, write a PNG and print numbers that still say what the example shows (checked
by ``CHECKS``, with tolerances wide enough for the small sizes).

A reduced run is mostly compilation: probkit's drivers (NUTS warm-up and sampling,
tempered SMC, the training loops) compile the same programs whatever the number of
steps, and that sets the cost of each run. XLA's backend optimisation is turned down
for these runs (``--xla_backend_optimization_level=0``: the same programs, less
optimised machine code), which cuts a reduced run's CPU time by about a quarter; the
numbers they print then differ from an optimised run's in the last digits.

The gallery pages (``docs/examples/*.md``) are generated from the scripts by
``scripts/gallery.py``; the last test (not slow) checks that they are up to date.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# example -> the options of its reduced run
REDUCED = {
    "bayesopt_hartmann6": ["--batches", "1"],
    "continual_learning_sequential_bayes": ["--draws", "50"],
    "diffusion_2d": ["--steps", "50", "--samples", "200"],
    "distribution_transformer_sequential": ["--steps", "1"],
    "fewshot_hierarchical_niw": [
        *("--episodes", "100", "--fit-steps", "100", "--test-episodes", "100"),
        *("--shots", "1"),
    ],
    "fkc_product_and_annealing": ["--particles", "200", "--steps", "100", "--runs", "4"],
    "fractional_sde_vi": ["--steps", "5"],
    "gflownet_hypergrid": ["--height", "4", "--trajectories", "1280"],
    "inference_time_scaling_arithmetic": ["--problems", "4", "--budgets", "2"],
    "inference_time_scaling_flow": ["--seeds", "2", "--budgets", "2"],
    "masked_diffusion_text": [
        *("--steps", "20", "--gaps", "3"),
        *("--check-sequences", "16", "--check-steps", "50"),
    ],
    "mjp_flashing_ratchet": ["--draws", "20"],
    "particle_filter_stochastic_volatility": ["--particles", "500", "--sizes", "100,300"],
    "pvrnn_online_prediction": ["--steps", "20"],
    "sa_srrw_distributed_optimisation": ["--runs", "4", "--steps", "200"],
    "schrodinger_bridge_lotka_volterra": ["--iterations", "1"],
    "sobol_ishigami": ["--budget", "1280", "--budgets", "1280", "--repeats", "2"],
    "srrw_graph_sampling": ["--walkers", "8", "--steps", "200"],
    "tempered_smc_mixture": ["--draws", "200", "--particles", "2000"],
}

NUMBER = r"[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?"


def numbers(pattern: str, text: str) -> list[float]:
    """The numbers captured by ``pattern`` (groups named or not) at its first match."""
    match = re.search(pattern.replace("NUM", f"({NUMBER})"), text)
    assert match, f"no line matches {pattern!r} in:\n{text[-3000:]}"
    return [float(group) for group in match.groups()]


def vector(pattern: str, text: str) -> np.ndarray:
    """The numbers of the ``[...]`` that follows ``pattern``."""
    match = re.search(re.escape(pattern) + r"\s*\[([^\]]*)\]", text)
    assert match, f"no {pattern!r} [...] in:\n{text[-3000:]}"
    return np.array([float(v) for v in match.group(1).split()])


def check_continual(out: str) -> None:
    rows = out.split("column: after task)")[1].splitlines()[1:4]
    accuracy = np.array([row.strip(" []").split() for row in rows], float)
    # Each task learned, then forgotten: the example's finding (forgetting 0.74 at full size).
    assert np.all(np.diag(accuracy) > 0.9), accuracy
    (forgetting,) = numbers(r"sequential metrics .*'forgetting': NUM", out)
    assert forgetting > 0.2
    assert np.all(vector("joint accuracy per task", out) > 0.9)
    (prototype_forgetting,) = numbers(r"prototype metrics .*'forgetting': NUM", out)
    assert prototype_forgetting < 0.1


def check_fewshot(out: str) -> None:
    kappa, dof = numbers(r"learned kappa NUM \(truth 0.3\), dof NUM", out)
    assert abs(kappa - 0.3) < 0.1 and abs(dof - 13.0) < 2.0
    niw = numbers(r"1-shot NIW +accuracy NUM +ECE NUM", out)
    prototype = numbers(r"1-shot prototype accuracy NUM +ECE NUM", out)
    # 5000 queries: accuracies have standard errors of about 0.005.
    assert niw[0] > prototype[0] + 0.03 and niw[1] < prototype[1]


def check_fkc(out: str) -> None:
    product = out.split("annealing")[0]
    (drift,) = numbers(r"drift only largest mode-mass error NUM", product)
    (corrected,) = numbers(r"FKC +largest mode-mass error NUM", product)
    # The drift-only sampler is biased (0.15 here); the corrector is within the spread of
    # its 4 runs (standard error 0.05 of the largest mode).
    assert corrected < 0.1 < drift


def check_fractional(out: str) -> None:
    hurst, sigma = numbers(r"learned H = NUM \(true 0.3\), sigma = NUM", out)
    assert 0 < hurst < 1 and 0 < sigma < 10


def check_arithmetic(out: str) -> None:
    accuracy = {
        name: numbers(rf"{name}: n=2 NUM", out)[0]
        for name in ("particle filter", r"\(verifier\)", "self-consistency", "beam search")
    }
    assert all(0 <= a <= 1 for a in accuracy.values()), accuracy
    assert max(accuracy.values()) > 0, accuracy  # one sample solves about 40% of problems


def check_flow(out: str) -> None:
    rewards = [
        numbers(rf"{name}: n=2 NUM", out)[0]
        for name in ("best-of-n, ODE", "best-of-n, SDE", "SMC, SDE", "RBF, SDE")
    ]
    # -|x - c|^2 for x on the checkerboard [-4, 4]^2 lies in [-61, 0].
    assert all(-61 < r <= 0 for r in rewards), rewards


def check_masked(out: str) -> None:
    infilled = re.search(r"infill .*-> (\[.*\])", out).group(1)
    assert infilled.count("sees a red fox.'") == 4, infilled  # the given characters kept
    continued = re.search(r"prefix  'zoe ' -> (\[.*\])", out).group(1)
    assert continued.count("'zoe ") == 4, continued
    exact, *float32 = numbers(
        r"exact NUM nats; float32 law at T = 1e3 / 1e4 / 1e5: NUM / NUM / NUM", out
    )
    # The float32 law loses entropy, more as T grows (exact enumeration, no Monte Carlo).
    assert float32[2] < float32[0] <= exact


def check_mjp(out: str) -> None:
    for name, bound in (("MLE", 0.1), ("NUTS posterior mean", 0.3), ("amortised network", 0.3)):
        (rmse,) = numbers(rf"{name}.* rate RMSE NUM", out)
        assert rmse < bound, (name, rmse)
    # The oracle sees every jump of 300 paths: (V, r, b) within a few hundredths of 1.
    assert np.all(np.abs(vector("(V, r, b) =", out) - 1.0) < 0.1)


def check_particle_filter(out: str) -> None:
    (inside,) = numbers(r"inside the 95% filtering band at NUM%", out)
    assert inside >= 85
    (log_l,) = numbers(r"N = 500: log-likelihood NUM", out)
    mean_100, sd_100 = numbers(r"N = +100: log-likelihood +NUM \+- NUM", out)
    mean_300, sd_300 = numbers(r"N = +300: log-likelihood +NUM \+- NUM", out)
    # One estimate at N = 500 has a standard deviation of about 0.4 nats.
    assert abs(log_l - mean_100) < 2 and abs(log_l - mean_300) < 2
    assert sd_300 < sd_100  # the spread shrinks like 1 / sqrt(N) (ratio 0.58)


def check_sobol(out: str) -> None:
    exact = vector("", "[" + re.search(r"\nexact +(.*)", out).group(1) + "]")
    for method in ("pick-freeze", "iscv", "saltelli"):
        pairs = re.search(rf"\n{method} +(.*)", out).group(1).split()
        estimate, error = np.array([[float(v) for v in p.split("+-")] for p in pairs]).T
        # 18 estimates, each within 4 of its own standard errors of the exact index.
        assert np.all(np.abs(estimate - exact) < 4 * error), (method, estimate, error)


def check_tempered(out: str) -> None:
    per_chain = vector("fraction in the 0.7 mode per chain", out)
    assert set(per_chain) <= {0.0, 1.0}, per_chain  # no NUTS chain crosses
    weight, log_z = numbers(r"fraction in the 0.7 mode NUM; log Z = NUM", out)
    assert abs(weight - 0.7) < 0.15 and abs(log_z) < 0.3


CHECKS = {
    "continual_learning_sequential_bayes": check_continual,
    "fewshot_hierarchical_niw": check_fewshot,
    "fkc_product_and_annealing": check_fkc,
    "fractional_sde_vi": check_fractional,
    "inference_time_scaling_arithmetic": check_arithmetic,
    "inference_time_scaling_flow": check_flow,
    "masked_diffusion_text": check_masked,
    "mjp_flashing_ratchet": check_mjp,
    "particle_filter_stochastic_volatility": check_particle_filter,
    "sobol_ishigami": check_sobol,
    "tempered_smc_mixture": check_tempered,
}


def test_every_example_has_a_reduced_run():
    assert sorted(REDUCED) == sorted(p.stem for p in (ROOT / "examples").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("example", sorted(REDUCED))
def test_example_runs_on_a_reduced_size(example, tmp_path):
    xla_flags = " ".join(
        filter(
            None,
            [
                os.environ.get("XLA_FLAGS"),
                "--xla_backend_optimization_level=0",
                "--xla_llvm_disable_expensive_passes=true",
            ],
        )
    )
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "MPLBACKEND": "Agg",
        "PYTHONPATH": str(ROOT),
        "XLA_FLAGS": xla_flags,
    }
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{example}.py"), *REDUCED[example]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{example}:\n{proc.stderr[-4000:]}"
    assert list(tmp_path.rglob("*.png")), f"{example} wrote no PNG:\n{proc.stdout[-2000:]}"
    if example in CHECKS:
        CHECKS[example](proc.stdout)


def _gallery():
    spec = importlib.util.spec_from_file_location("gallery", ROOT / "scripts" / "gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gallery_pages_match_the_examples():
    gallery = _gallery()
    scripts = sorted((ROOT / "examples").glob("*.py"))
    stale = [
        script.stem
        for script in scripts
        if not (gallery.PAGES / f"{script.stem}.md").exists()
        or (gallery.PAGES / f"{script.stem}.md").read_text() != gallery.page_text(script)
    ]
    index = (gallery.PAGES / "index.md").read_text() == gallery.index_text(scripts)
    assert not stale and index, (
        f"gallery pages out of date: {stale or 'index.md'}; run "
        "`python scripts/gallery.py --pages-only` (or `python scripts/gallery.py NAME` to "
        "refresh a picture too) and commit docs/examples/."
    )
