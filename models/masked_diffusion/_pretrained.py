"""The shipped denoiser and the known distribution it was trained on."""

from __future__ import annotations

from pathlib import Path

from probkit.models.masked_diffusion._io import load
from probkit.models.masked_diffusion._network import Denoiser
from probkit.models.masked_diffusion._toy import SequenceDistribution, random_markov_chain

__all__ = ["load_pretrained", "pretrained_distribution", "WEIGHTS_PATH", "PRETRAINED_CHAIN"]

WEIGHTS_PATH = (
    Path(__file__).resolve().parent.parent / "data" / "masked_diffusion" / "markov_chain.eqx"
)
# The Markov chain of the shipped weights: random_markov_chain(**PRETRAINED_CHAIN).
PRETRAINED_CHAIN = {"seed": 0, "vocab_size": 3, "length": 6, "concentration": 0.5}


def pretrained_distribution() -> SequenceDistribution:
    """The known distribution (a 3-token Markov chain of length 6) of the shipped weights.

    Example:
        >>> from probkit.models.masked_diffusion import pretrained_distribution
        >>> pretrained_distribution().sequences.shape
        (729, 6)
    """
    return random_markov_chain(**PRETRAINED_CHAIN)


def load_pretrained() -> Denoiser:
    """The shipped :class:`Denoiser` trained on :func:`pretrained_distribution`.

    Retrain with ``python -m probkit.models.masked_diffusion.train`` (see the README
    next to the weights, ``models/data/masked_diffusion/``).

    Example:
        >>> from probkit.models.masked_diffusion import load_pretrained
        >>> load_pretrained().vocab_size
        3
    """
    if not WEIGHTS_PATH.exists():
        raise FileNotFoundError(
            f"{WEIGHTS_PATH} is missing; run `python -m probkit.models.masked_diffusion.train`."
        )
    return load(WEIGHTS_PATH)
