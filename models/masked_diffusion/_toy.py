"""Known distributions over short token sequences, enumerated exactly.

A :class:`SequenceDistribution` lists every sequence of length ``L`` over ``V`` tokens
(``V**L`` of them, in base-``V`` order) with its probability. From that table every
conditional of clean data given any set of revealed tokens is a finite sum, so
:func:`exact_denoiser` is the ideal denoiser of masked diffusion and the samplers can be
checked against the enumerated distribution.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

from probkit._checks import check_int, check_key, check_seed

__all__ = [
    "SequenceDistribution",
    "markov_chain",
    "random_markov_chain",
    "exact_denoiser",
    "sample_sequences",
    "sequence_index",
    "empirical_distribution",
    "total_variation",
    "tv_noise_floor",
]


class SequenceDistribution(NamedTuple):
    """Every sequence of a small space with its probability (NumPy, float64).

    Attributes:
        sequences: all ``V**L`` sequences, shape ``(V**L, L)``, int32, base-``V`` order
            (row ``k`` spells ``k`` in base ``V``, most significant token first).
        probs: their probabilities, shape ``(V**L,)``, summing to one.
        vocab_size: ``V``; the mask token is ``V``.

    Example:
        >>> import numpy as np
        >>> from probkit.models.masked_diffusion import markov_chain
        >>> d = markov_chain(np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.2, 0.8]]), 3)
        >>> d.sequences.shape, round(float(d.probs.sum()), 12)
        ((8, 3), 1.0)
    """

    sequences: np.ndarray
    probs: np.ndarray
    vocab_size: int

    @property
    def length(self) -> int:
        """Sequence length ``L``."""
        return int(self.sequences.shape[1])

    @property
    def entropy(self) -> float:
        """Shannon entropy in nats."""
        p = self.probs[self.probs > 0]
        return float(-np.sum(p * np.log(p)))


def _all_sequences(vocab_size: int, length: int) -> np.ndarray:
    grids = np.indices((vocab_size,) * length).reshape(length, -1).T
    return grids.astype(np.int32)


def markov_chain(initial: np.ndarray, transition: np.ndarray, length: int) -> SequenceDistribution:
    """The law of ``length`` steps of a Markov chain, enumerated.

    Args:
        initial: initial distribution, shape ``(V,)``.
        transition: row-stochastic matrix ``(V, V)``.
        length: number of tokens ``L`` (``V**L`` should stay below about ``10**6``).

    Example:
        >>> import numpy as np
        >>> from probkit.models.masked_diffusion import markov_chain
        >>> d = markov_chain(np.array([1.0, 0.0]), np.array([[0.0, 1.0], [1.0, 0.0]]), 4)
        >>> d.sequences[d.probs.argmax()].tolist()
        [0, 1, 0, 1]
    """
    initial = np.asarray(initial, np.float64)
    transition = np.asarray(transition, np.float64)
    v = initial.shape[0]
    if initial.ndim != 1 or transition.shape != (v, v):
        raise ValueError(
            f"initial must be (V,) and transition (V, V); got {initial.shape} and "
            f"{transition.shape}."
        )
    if not np.allclose(initial.sum(), 1.0) or not np.allclose(transition.sum(1), 1.0):
        raise ValueError("initial and the rows of transition must each sum to one.")
    if np.any(initial < 0) or np.any(transition < 0):
        raise ValueError("initial and transition must be non-negative.")
    if not isinstance(length, int | np.integer) or length < 1 or v**length > 4_000_000:
        raise ValueError(f"length must be a positive int with V**length <= 4e6, got {length!r}.")
    seqs = _all_sequences(v, length)
    probs = initial[seqs[:, 0]]
    for i in range(1, length):
        probs = probs * transition[seqs[:, i - 1], seqs[:, i]]
    return SequenceDistribution(seqs, probs / probs.sum(), v)


def random_markov_chain(
    seed: int, vocab_size: int = 3, length: int = 6, concentration: float = 0.5
) -> SequenceDistribution:
    """A Markov chain with Dirichlet(``concentration``) initial law and transition rows.

    Small concentrations give sparse, strongly dependent chains (the interesting case
    for parallel decoding, whose error comes from dependence between tokens).

    Example:
        >>> from probkit.models.masked_diffusion import random_markov_chain
        >>> random_markov_chain(0, 3, 5).sequences.shape
        (243, 5)
    """
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    initial = rng.dirichlet(np.full(vocab_size, concentration))
    transition = rng.dirichlet(np.full(vocab_size, concentration), size=vocab_size)
    # Keep every sequence possible (the KL tests need full support).
    initial = 0.98 * initial + 0.02 / vocab_size
    transition = 0.98 * transition + 0.02 / vocab_size
    return markov_chain(initial, transition / transition.sum(1, keepdims=True), length)


def _exact_logits(sequences, probs, x):
    # V from the static shapes (K = V**L), so the table's arrays are the only leaves.
    vocab_size = round(sequences.shape[0] ** (1.0 / sequences.shape[1]))
    revealed = x != vocab_size
    consistent = jnp.all((sequences == x) | ~revealed, axis=1)
    weights = jnp.where(consistent, probs, 0.0)
    one_hot = jax.nn.one_hot(sequences, vocab_size, dtype=probs.dtype)  # (K, L, V)
    marginals = jnp.einsum("k,klv->lv", weights, one_hot)
    return jnp.log(marginals / jnp.sum(weights)).astype(jnp.float32)


def exact_denoiser(distribution: SequenceDistribution) -> Partial:
    """The ideal denoiser: ``x -> log p(x_0^i = v | revealed tokens of x)`` for all ``i, v``.

    ``x`` is one sequence of shape ``(L,)`` with mask token ``V``; the output has shape
    ``(L, V)`` (float32 log-probabilities). Returned as a :class:`jax.tree_util.Partial`
    over the enumeration table, so jitted samplers take the table as an argument.

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> from probkit.models.masked_diffusion import exact_denoiser, markov_chain
        >>> d = markov_chain(np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.2, 0.8]]), 3)
        >>> out = exact_denoiser(d)(jnp.array([0, 2, 2]))
        >>> [round(float(p), 3) for p in jnp.exp(out[1])]
        [0.9, 0.1]
    """
    return Partial(
        _exact_logits,
        jnp.asarray(distribution.sequences),
        jnp.asarray(distribution.probs, jnp.float32),
    )


def sample_sequences(
    key: jax.Array, distribution: SequenceDistribution, num_samples: int
) -> jax.Array:
    """Exact draws, shape ``(num_samples, L)`` (int32).

    Example:
        >>> import jax
        >>> from probkit.models.masked_diffusion import random_markov_chain, sample_sequences
        >>> sample_sequences(jax.random.key(0), random_markov_chain(0), 4).shape
        (4, 6)
    """
    check_key(key)
    num_samples = check_int(num_samples, "num_samples")
    log_p = jnp.log(jnp.asarray(distribution.probs, jnp.float32))
    idx = jax.random.categorical(key, log_p, shape=(num_samples,))
    return jnp.asarray(distribution.sequences)[idx]


def sequence_index(samples, vocab_size: int) -> np.ndarray:
    """Row index of each sequence in the enumeration (base-``V`` value).

    Example:
        >>> import numpy as np
        >>> from probkit.models.masked_diffusion import sequence_index
        >>> sequence_index(np.array([[0, 1, 1]]), 2).tolist()
        [3]
    """
    samples = np.asarray(samples)
    if np.any(samples < 0) or np.any(samples >= vocab_size):
        raise ValueError("samples contain mask tokens or values outside [0, vocab_size).")
    powers = vocab_size ** np.arange(samples.shape[1] - 1, -1, -1)
    return (samples.astype(np.int64) * powers).sum(1)


def empirical_distribution(samples, distribution: SequenceDistribution) -> np.ndarray:
    """Frequencies of ``samples`` over the enumeration, shape ``(V**L,)``.

    Example:
        >>> import numpy as np
        >>> from probkit.models.masked_diffusion import empirical_distribution, markov_chain
        >>> d = markov_chain(np.array([0.5, 0.5]), np.eye(2), 2)
        >>> empirical_distribution(np.array([[1, 1], [1, 1]]), d).tolist()
        [0.0, 0.0, 0.0, 1.0]
    """
    idx = sequence_index(samples, distribution.vocab_size)
    counts = np.bincount(idx, minlength=distribution.probs.shape[0])
    return counts / counts.sum()


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """``0.5 * sum |p - q|``.

    Example:
        >>> import numpy as np
        >>> from probkit.models.masked_diffusion import total_variation
        >>> total_variation(np.array([1.0, 0.0]), np.array([0.5, 0.5]))
        0.5
    """
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum())


def tv_noise_floor(
    distribution: SequenceDistribution, num_samples: int, replicates: int = 200, seed: int = 0
) -> tuple[float, float]:
    """Mean and standard deviation of the TV between ``num_samples`` exact draws and truth.

    This is the Monte Carlo floor of :func:`total_variation` for a sampler that is exact:
    measured by NumPy multinomial draws (no probkit code involved).

    Example:
        >>> from probkit.models.masked_diffusion import random_markov_chain, tv_noise_floor
        >>> mean, sd = tv_noise_floor(random_markov_chain(0), 1000, replicates=20)
        >>> 0 < sd < mean < 1
        True
    """
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(num_samples, distribution.probs, size=replicates)
    tv = 0.5 * np.abs(counts / num_samples - distribution.probs).sum(1)
    return float(tv.mean()), float(tv.std(ddof=1))
