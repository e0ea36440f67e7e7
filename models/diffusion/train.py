"""Train the shipped 2-D score network: ``python -m probkit.models.diffusion.train``.

A :class:`ScoreNetwork` (width 128, depth 3, 32 random Fourier input features) on 50,000
draws of the 4x4 checkerboard on
[-2, 2]^2, VP SDE, denoising score matching with the defaults of :func:`fit` but for the
step count and peak learning rate below. Writes ``models/data/diffusion/checkerboard.eqx``
(read by :func:`probkit.models.diffusion.load_pretrained`) and prints the fraction of
reverse-SDE samples that land on the checkerboard's dark squares.
"""

from __future__ import annotations

import argparse
import time

import jax
from probkit.models.diffusion._io import PRETRAINED_PATH, save
from probkit.models.diffusion._network import ScoreNetwork, score_fn
from probkit.models.diffusion._toy import checkerboard, in_checkerboard
from probkit.models.diffusion._training import fit

from probkit.progress import Interrupted
from probkit.sde import VPSDE, predictor_corrector_sample

DEFAULTS = {"num_steps": 8000, "learning_rate": 3e-3, "batch_size": 512, "seed": 0}


def train(num_steps: int, learning_rate: float, batch_size: int, seed: int) -> ScoreNetwork:
    sde = VPSDE()
    data = checkerboard(jax.random.key(seed), 50_000)
    # Random Fourier features of the input: a plain MLP blurs the squares' edges.
    net = ScoreNetwork(
        (2,), key=jax.random.key(seed + 1), width=128, depth=3, input_features=32, input_scale=1.0
    )
    result = fit(
        net,
        sde,
        data,
        num_steps=num_steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        progress_bar=True,
    )
    return result.model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--out", default=str(PRETRAINED_PATH))
    args = parser.parse_args()
    start = time.process_time()
    try:
        model = train(args.num_steps, args.learning_rate, args.batch_size, args.seed)
    except Interrupted as interrupt:
        partial = f"{args.out}.partial"
        save(partial, interrupt.partial_result.model)
        print(f"{interrupt}; the network so far is in {partial}")
        raise SystemExit(130) from None
    save(args.out, model)
    sde = VPSDE()
    samples = predictor_corrector_sample(jax.random.key(123), sde, score_fn(model, sde), 4000, (2,))
    on_board = float(in_checkerboard(samples).mean())
    print(f"wrote {args.out}: {time.process_time() - start:.0f} CPU-s, {on_board:.3f} on the board")


if __name__ == "__main__":
    main()
