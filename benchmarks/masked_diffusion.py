"""Masked diffusion: network calls and time to a fixed TV error; float32 vs float64 draws.

    python benchmarks/masked_diffusion.py  # writes benchmarks/results/masked_diffusion.md

Part 1 (samplers). The shipped time-free denoiser (a transformer trained on a 3-token
Markov chain of length 6, 729 sequences enumerated exactly) generates N sequences with
the first-hitting sampler (FHS), the step-wise ancestral sampler of MDLM (the natural
baseline: a network call at every step) and the same step-wise sampler with caching.
"Fixed TV error": the TV between the N draws and the enumerated chain must reach the
level of N exact draws (mean + 3 sd of the NumPy multinomial floor); for the step-wise
samplers the smallest number of steps on a doubling grid that reaches it is reported.
Calls per sequence are those of one chain run alone (with caching: the steps at which
it changed); batched calls are those of the N chains run together.

Part 2 (precision). (a) One categorical over a dominant class and 7 classes 17 nats
below it (a masked token's "stay masked" class against its tokens): tail draws per
10^8 rows in float32, float64 and JAX's float32 mode="highest", against the exact
7 e^-17. (b) The step-wise sampler with many steps and the exact denoiser: per-token
entropy of the generated tokens and generative perplexity (mean -log p(x) / L under the
true chain), float32 vs float64.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _timing  # noqa: E402  (turns off asynchronous dispatch first)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import probkit.models.masked_diffusion as md  # noqa: E402

from probkit._threefry import cpu_fast_key  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "masked_diffusion.md"


def _tv(samples, dist):
    return md.total_variation(md.empirical_distribution(np.asarray(samples), dist), dist.probs)


def samplers(num_samples: int):
    dist = md.pretrained_distribution()
    net = md.load_pretrained()
    v, length = dist.vocab_size, dist.length
    x0 = md.initial_sequences(num_samples, length, v)
    mean, sd = md.tv_noise_floor(dist, num_samples)
    target = mean + 3 * sd
    rows = []

    def run(x, **kw):
        return _timing.timed(lambda: md.sample(net, x, mask_token=v, **kw))

    def one_chain(**kw):
        # latency of one sequence alone (a fresh seed per repeat, best of 5 runs)
        times = [run(x0[:1], seed=seed, **kw)[2] for seed in range(6)]
        return min(times[1:])

    out, c, r = run(x0)
    fhs_calls = float(out.calls_per_chain.mean())
    tv = _tv(out.sequences, dist)
    rows.append(("first-hitting", length, tv, fhs_calls, int(out.num_network_calls), c, r,
                 one_chain()))  # fmt: skip
    for cache in (False, True):
        for steps in (4, 8, 16, 32, 64, 128, 256, 512):
            kw = {"method": "stepwise", "num_steps": steps, "cache": cache}
            out, c, r = run(x0, **kw)
            tv = _tv(out.sequences, dist)
            if tv < target or steps == 512:
                name = "step-wise + cache" if cache else "step-wise (MDLM, baseline)"
                rows.append((name, steps, tv, float(out.calls_per_chain.mean()),
                             int(out.num_network_calls), c, r, one_chain(**kw)))  # fmt: skip
                break
    return rows, (mean, sd, target)


def tail_counts(rows_total: int, chunk_rows: int = 2**19):
    gap, tail = 17.0, 7
    logits = jnp.concatenate([jnp.zeros(1), jnp.full(tail, -gap)])
    out = {}  # tail draws, rows, compile s, run s per precision
    for precision in ("float32", "float64", "float32_highest"):
        chunks = rows_total // chunk_rows

        @jax.jit
        def count(key, precision=precision, chunks=chunks):
            def body(total, key):
                draws = md.categorical(
                    key, jnp.broadcast_to(logits, (chunk_rows, tail + 1)), precision
                )
                return total + jnp.sum(draws != 0, dtype=jnp.int32), None

            return jax.lax.scan(body, jnp.zeros((), jnp.int32), jax.random.split(key, chunks))[0]

        ctx = jax.enable_x64(True) if precision == "float64" else _null()
        with ctx:
            key = cpu_fast_key(jax.random.key(0))
            n, c, r = _timing.timed(lambda count=count, key=key: count(key))
        out[precision] = (int(n), chunks * chunk_rows, c, r)
    return out, tail * np.exp(-gap) / (1 + tail * np.exp(-gap))


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def sampler_entropy(num_samples: int, steps: int):
    dist = md.pretrained_distribution()
    den = md.exact_denoiser(dist)
    v, length = dist.vocab_size, dist.length
    x0 = md.initial_sequences(num_samples, length, v)
    log_p = np.log(dist.probs)
    rows = []
    for precision in ("float64", "float32"):
        out, c, r = _timing.timed(
            lambda precision=precision: md.sample(
                den, x0, mask_token=v, method="stepwise", num_steps=steps, precision=precision
            )
        )
        seqs = np.asarray(out.sequences)
        nll = -log_p[md.sequence_index(seqs, v)] / length
        freq = np.bincount(seqs.ravel(), minlength=v) / seqs.size
        entropy = float(-(freq * np.log(freq)).sum())
        rows.append(
            (
                precision,
                float(nll.mean()),
                float(nll.std(ddof=1) / np.sqrt(len(nll))),
                entropy,
                c,
                r,
            )
        )
    marg = np.bincount(dist.sequences.ravel(), np.repeat(dist.probs, length), v) / length
    exact_token_entropy = float(-(marg * np.log(marg)).sum())
    return rows, dist.entropy / length, exact_token_entropy


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--tail-rows", type=int, default=2**19 * 100)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--entropy-samples", type=int, default=2000)
    args = parser.parse_args()
    rows, (mean, sd, target) = samplers(args.num_samples)
    tails, exact_tail = tail_counts(args.tail_rows)
    ent_rows, exact_nll, exact_token_entropy = sampler_entropy(args.entropy_samples, args.steps)
    load = os.getloadavg()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Masked diffusion benchmark",
        "",
        f"`python benchmarks/masked_diffusion.py` on {platform.machine()}, {os.cpu_count()} "
        f"CPU cores shared with other jobs, load average {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} at the end ({now}). Compile seconds apart from run seconds "
        "(`benchmarks/_timing.py`).",
        "",
        "## Samplers: calls and time to the TV of exact draws",
        "",
        "Shipped denoiser (transformer, width 64, depth 2) on the 3-token Markov chain of "
        f"length 6; N = {args.num_samples} sequences; target TV < {target:.4f} (floor of N "
        f"exact draws: {mean:.4f} +- {sd:.4f}, target = mean + 3 sd). float64 categorical "
        "draws (the default). Baseline: the step-wise sampler without cache (MDLM).",
        "",
        "| sampler | steps | TV | calls per sequence | batched calls | compile s | run s (N) "
        "| speed-up (N) | run ms (1 sequence) | speed-up (1) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = next(r for r in rows if "baseline" in r[0])
    for name, steps, tv, per_seq, batched, c, r, single in rows:
        lines.append(
            f"| {name} | {steps} | {tv:.4f} | {per_seq:.2f} | {batched} | {c:.2f} | {r:.3f} "
            f"| {base[6] / r:.2f}x | {1e3 * single:.2f} | {base[7] / single:.2f}x |"
        )
    lines += [
        "",
        "## Precision (a): one categorical, 7 tail classes 17 nats below the top class",
        "",
        f"Exact tail probability {exact_tail:.3e}; expected counts are rows x that.",
        "",
        "| precision | rows | tail draws | expected (exact) | draws / expected | compile s "
        "| run s | ns per row |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for precision, (n, rows_done, c, r) in tails.items():
        exp = rows_done * exact_tail
        lines.append(
            f"| {precision} | {rows_done:.3e} | {n} | {exp:.1f} | {n / exp:.2f} | {c:.2f} "
            f"| {r:.2f} | {1e9 * r / rows_done:.1f} |"
        )
    lines += [
        "",
        f"## Precision (b): step-wise sampler, {args.steps} steps, exact denoiser, "
        f"{args.entropy_samples} sequences",
        "",
        f"True per-token entropy rate H/L = {exact_nll:.4f} nats; true token-marginal "
        f"entropy {exact_token_entropy:.4f}.",
        "",
        "| precision | gen. NLL per token (mean -log p(x) / L) | s.e. | token entropy "
        "| compile s | run s |",
        "|---|---|---|---|---|---|",
    ]
    for precision, nll, se, ent, c, r in ent_rows:
        lines.append(f"| {precision} | {nll:.4f} | {se:.4f} | {ent:.4f} | {c:.2f} | {r:.2f} |")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
