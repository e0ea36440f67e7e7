"""Train the amortised MJP recognition network and write the shipped weights.

Run ``python -m probkit.models.mjp.train_amortized`` (defaults reproduce the shipped file
``models/data/mjp/amortized_mjp.eqx``: 6000 steps of 16 data sets, 980 CPU-s, about 8
minutes on two idle cores). Prints the held-out Gaussian NLL, the RMSE of the log-rates
and the coverage of the +-2 sd intervals, and the RMSE and +-2 sd coverage of the
initial probabilities, on fresh synthetic data sets.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from probkit.models.mjp._amortized import PRETRAINED_PATH, save_network
from probkit.models.mjp._network import AmortizedMJPNetwork
from probkit.models.mjp._training import fit, sample_synthetic

from probkit.progress import Interrupted


def evaluate(network: AmortizedMJPNetwork, seed: int, num_sets: int = 256) -> dict:
    """Held-out metrics on fresh synthetic data sets: log-rate RMSE, NLL and +-2 sd coverage;
    initial distribution: RMSE of the Dirichlet mean and +-2 sd coverage of its marginals."""
    keys = jax.random.split(jax.random.key(seed), num_sets)
    sample = jax.jit(jax.vmap(sample_synthetic))
    apply = jax.jit(jax.vmap(network))
    # chunks of 64 data sets (one XLA program of 256 at once stalled on 2 cores)
    batches = [sample(chunk) for chunk in jnp.split(keys, max(1, num_sets // 64))]
    outs = [apply(b.times, b.observations, b.path_mask, b.num_states, b.adjacency) for b in batches]
    batch = jax.tree.map(lambda *x: jnp.concatenate(x), *batches)
    out = jax.tree.map(lambda *x: jnp.concatenate(x), *outs)
    w = np.asarray(batch.adjacency)
    err = (np.asarray(out.log_rate_mean) - np.asarray(batch.log_rates))[w]
    sd = np.exp(np.asarray(out.log_rate_log_sd))[w]
    z = err / sd
    alpha = np.asarray(out.initial_concentration, float)
    real = alpha > 0
    total = alpha.sum(-1, keepdims=True)
    p_mean = alpha / total
    p_sd = np.sqrt(p_mean * (1 - p_mean) / (total + 1))  # Dirichlet marginal sd
    p_err = (p_mean - np.asarray(batch.initial))[real]
    return {
        "log_rate_rmse": float(np.sqrt(np.mean(err**2))),
        "nll": float(np.mean(0.5 * z**2 + np.log(sd) + 0.5 * np.log(2 * np.pi))),
        "coverage_2sd": float(np.mean(np.abs(z) < 2.0)),
        "num_rates": int(w.sum()),
        "initial_rmse": float(np.sqrt(np.mean(p_err**2))),
        "initial_coverage_2sd": float(np.mean(np.abs(p_err) < 2 * p_sd[real])),
    }


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(PRETRAINED_PATH))
    args = parser.parse_args(argv)

    network = AmortizedMJPNetwork(jax.random.key(args.seed), width=args.width)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        result = fit(
            network,
            num_steps=args.steps,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed + 1,
            progress_bar=True,
        )
    except Interrupted as interrupt:
        partial = f"{args.out}.partial"
        save_network(partial, interrupt.partial_result.network, steps=interrupt.steps_done)
        print(f"{interrupt}; the network so far is in {partial}")
        raise SystemExit(130) from None
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    losses = result.losses
    print(f"trained {args.steps} steps in {wall:.0f} s wall, {cpu:.0f} s CPU")
    chunks = np.array_split(losses, 10)
    print("loss per tenth of training:", " ".join(f"{c.mean():.3f}" for c in chunks))
    metrics = evaluate(result.network, seed=10_000 + args.seed)
    print("held-out synthetic data:", metrics)
    save_network(
        args.out,
        result.network,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        cpu_seconds=round(cpu, 1),
        final_loss=float(jnp.mean(losses[-100:])),
        **metrics,
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
