"""Train and save the shipped denoiser: ``python -m probkit.models.masked_diffusion.train``.

Trains a :class:`Denoiser` (width 64, depth 2, 4 heads) by the time-agnostic loss on
fresh exact draws of :func:`pretrained_distribution`, then reports the exact gap
``E_p[-ELBO(x)] - H(p)``, an upper bound on ``KL(p || model)`` (all ``3**6``
sequences and all ``2**6 - 1`` masks enumerated), and writes the weights to
``models/data/masked_diffusion/markov_chain.eqx``.
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from probkit.models.masked_diffusion._io import save
from probkit.models.masked_diffusion._likelihood import negative_elbo
from probkit.models.masked_diffusion._network import Denoiser
from probkit.models.masked_diffusion._pretrained import WEIGHTS_PATH, pretrained_distribution
from probkit.models.masked_diffusion._toy import SequenceDistribution, sample_sequences
from probkit.models.masked_diffusion._training import fit

DEFAULTS = {
    "num_steps": 3000,
    "batch_size": 128,
    "learning_rate": 2e-3,
    "width": 64,
    "depth": 2,
    "num_heads": 4,
    "num_data": 200_000,
    "seed": 0,
}


def elbo_gap(model, distribution: SequenceDistribution) -> float:
    """``E_p[-ELBO(x)] - H(p) >= KL(p || p_model)``, exact by enumeration (nats)."""
    nelbo = eqx.filter_jit(
        lambda m, xs: jax.lax.map(lambda x: negative_elbo(m, x, m.vocab_size), xs, batch_size=81)
    )(model, jnp.asarray(distribution.sequences))
    return float(np.sum(distribution.probs * np.asarray(nelbo, np.float64)) - distribution.entropy)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--out", default=str(WEIGHTS_PATH))
    args = parser.parse_args(argv)
    dist = pretrained_distribution()
    data = sample_sequences(jax.random.key(args.seed + 1), dist, args.num_data)
    model = Denoiser(
        dist.vocab_size,
        dist.length,
        key=jax.random.key(args.seed),
        width=args.width,
        depth=args.depth,
        num_heads=args.num_heads,
    )
    start = time.process_time()
    result = fit(
        model,
        data,
        num_steps=args.num_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
    )
    jax.block_until_ready(result.model)
    cpu = time.process_time() - start
    gap = elbo_gap(result.model, dist)
    print(f"trained in {cpu:.0f} CPU-s; final loss {float(result.losses[-200:].mean()):.4f} nats")
    print(f"entropy {dist.entropy:.4f} nats; E_p[-ELBO] - H = {gap:.5f} nats (>= KL)")
    save(args.out, result.model, elbo_gap=gap, cpu_seconds=round(cpu), **vars(args) | {"out": None})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
