"""Train the shipped Distribution Transformers and write their weights.

Usage::

    python -m probkit.models.distribution_transformer.train_tasks            # all tasks
    python -m probkit.models.distribution_transformer.train_tasks --tasks linear_gaussian_1d \
        --num-steps 2000 --out /tmp/dt
    python -m probkit.models.distribution_transformer.train_tasks --resume ...  # continue

The defaults (``DEFAULTS``: steps, batch size, peak learning rate and residual decay per
task, seed 0) are the settings of the shipped weights.

For each task it trains by amortised forward KL
(:func:`~probkit.models.distribution_transformer.fit`), then prints the mean
held-out ``-log q(z | prior, data)`` on fresh queries (and the prior's own). Ctrl-C stops
the training within about a second and writes the network of the steps done (and trains
no further task).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
from probkit.models.distribution_transformer._io import WEIGHTS_DIR, load, save
from probkit.models.distribution_transformer._tasks import TASKS
from probkit.models.distribution_transformer._training import fit, forward_kl_loss

from probkit._gaussian_mixture import log_prob_from_cholesky
from probkit.progress import Interrupted

__all__ = ["main", "DEFAULTS"]

#: Training settings of the shipped weights:
#: ``(num_steps, batch_size, learning_rate, residual_decay)``.
DEFAULTS: dict[str, tuple[int, int, float, float]] = {
    "linear_gaussian_1d": (3000, 128, 2e-3, 1.0),
    "linear_gaussian_2d": (5000, 128, 2e-3, 1.0),
    "logistic_regression_2d": (4000, 64, 2e-3, 0.0),
}


def _held_out(model, task, seed: int, num_queries: int = 2000) -> float:
    keys = jax.random.split(jax.random.key(seed + 12345), num_queries)
    queries = jax.vmap(task.sample_query)(keys)
    return float(forward_kl_loss(model, queries))


def _prior_nll(task, seed: int, num_queries: int = 2000) -> float:
    keys = jax.random.split(jax.random.key(seed + 12345), num_queries)
    q = jax.vmap(task.sample_query)(keys)
    return float(
        -jnp.mean(jax.vmap(log_prob_from_cholesky)(q.log_weights, q.means, q.cholesky, q.latent))
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring).

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).

    Example:
        >>> from probkit.models.distribution_transformer.train_tasks import main
        >>> main(["--tasks", "linear_gaussian_1d", "--num-steps", "3", "--batch-size", "4",
        ...       "--width", "16", "--out", "/tmp/dt_doctest"])  # doctest: +SKIP
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=sorted(TASKS), choices=sorted(TASKS))
    parser.add_argument("--num-steps", type=int, default=None, help="default: DEFAULTS")
    parser.add_argument("--batch-size", type=int, default=None, help="default: DEFAULTS")
    parser.add_argument("--learning-rate", type=float, default=None, help="default: DEFAULTS")
    parser.add_argument("--residual-decay", type=float, default=None, help="default: DEFAULTS")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--progress-bar", action="store_true")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the weights already in --out"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.tasks:
        task = TASKS[name]
        default_steps, default_batch, default_rate, default_decay = DEFAULTS[name]
        num_steps = default_steps if args.num_steps is None else args.num_steps
        batch_size = default_batch if args.batch_size is None else args.batch_size
        rate = default_rate if args.learning_rate is None else args.learning_rate
        decay = default_decay if args.residual_decay is None else args.residual_decay
        start = time.perf_counter()
        cpu_start = time.process_time()
        model = load(args.out / f"{name}.eqx") if args.resume else None
        try:
            result = fit(
                task,
                model=model,
                num_steps=num_steps,
                batch_size=batch_size,
                learning_rate=rate,
                residual_decay=decay,
                width=args.width,
                depth=args.depth,
                num_heads=args.num_heads,
                seed=args.seed,
                progress_bar=args.progress_bar,
            )
            stopped = None
        except Interrupted as err:  # Ctrl-C: keep the steps done, stop after this task
            result, stopped = err.partial_result, err
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        path = args.out / f"{name}.eqx"
        save(path, result.model)
        last = float(jnp.mean(result.losses[-100:]))
        held = _held_out(result.model, task, args.seed)
        print(
            f"{name}: {len(result.losses)} steps x {batch_size} (peak rate {rate:g}, residual "
            f"decay {decay:g}) in {elapsed:.1f} s wall, {cpu:.1f} s CPU; "
            f"train loss (last 100) {last:.4f}; held-out -log q(z) {held:.4f} "
            f"(prior: {_prior_nll(task, args.seed):.4f}); wrote {path} "
            f"({path.stat().st_size / 1024:.0f} KiB)",
            flush=True,
        )
        if stopped is not None:
            print(f"{name}: {stopped} Wrote the network after those steps.", flush=True)
            return


if __name__ == "__main__":
    main()
