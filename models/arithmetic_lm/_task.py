"""Chained addition and subtraction written as steps: problems, tokens and an exact checker.

A problem is a start value and 2-5 operations with one-digit operands, chosen so that
every running value stays in ``[0, 99]``. Question and solution, as characters::

    37+8-5+9?37+8=45;45-5=40;40+9=49.

A step is the text up to and including ``;`` (more steps follow) or ``.`` (the
solution ends). The solution of a problem is unique in this format, so a partial
solution is correct exactly when it is a prefix of the reference solution: that is the
exact process reward (:func:`prefix_correct`), and the final answer is the number after
the last ``=`` (:func:`extract_answer`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_seed

__all__ = [
    "VOCAB",
    "PAD",
    "BOS",
    "Problems",
    "make_problems",
    "encode",
    "decode",
    "extract_answer",
    "prefix_correct",
]

#: Characters of the vocabulary; token ``i`` is ``VOCAB[i]``, then PAD and BOS.
VOCAB = "0123456789+-=;?."
PAD = len(VOCAB)
BOS = PAD + 1
VOCAB_SIZE = BOS + 1
PLUS, MINUS, EQUALS, SEMICOLON, QUESTION, STOP = (VOCAB.index(c) for c in "+-=;?.")

#: Longest question ``BOS dd(+d)*5 ?`` and longest solution ``(dd+d=dd;)*5``.
MAX_OPS = 5
PROMPT_LENGTH = 1 + 2 + 2 * MAX_OPS + 1
MAX_STEP_TOKENS = 8
SEQUENCE_LENGTH = PROMPT_LENGTH + MAX_OPS * MAX_STEP_TOKENS


class Problems(NamedTuple):
    """A batch of problems as fixed-size token arrays.

    Attributes:
        prompt: ``(B, PROMPT_LENGTH)`` tokens ``BOS question ?``, left-padded with PAD.
        solution: ``(B, SEQUENCE_LENGTH - PROMPT_LENGTH)`` reference solution, PAD after.
        answer: ``(B,)`` the final value.
        num_ops: ``(B,)`` number of operations (= number of steps).
    """

    prompt: np.ndarray
    solution: np.ndarray
    answer: np.ndarray
    num_ops: np.ndarray


def encode(text: str) -> list[int]:
    """Tokens of a string over :data:`VOCAB`.

    Example:
        >>> from probkit.models.arithmetic_lm import decode, encode
        >>> decode(encode("12+3=15;"))
        '12+3=15;'
    """
    return [VOCAB.index(c) for c in text]


def decode(tokens) -> str:
    """The string of tokens (PAD and BOS dropped)."""
    return "".join(VOCAB[int(t)] for t in np.asarray(tokens).ravel() if int(t) < len(VOCAB))


def _problem_text(rng: np.random.Generator, min_ops: int, max_ops: int) -> tuple[str, str, int]:
    value = int(rng.integers(0, 100))
    question, steps = str(value), []
    num_ops = int(rng.integers(min_ops, max_ops + 1))
    for k in range(num_ops):
        d = int(rng.integers(1, 10))
        # Keep the running value in [0, 99]: add when subtracting would go below 0
        # and subtract when adding would pass 99; otherwise a fair coin.
        plus = value - d < 0 or (value + d <= 99 and rng.random() < 0.5)
        new = value + d if plus else value - d
        op = "+" if plus else "-"
        question += f"{op}{d}"
        steps.append(f"{value}{op}{d}={new}" + ("." if k == num_ops - 1 else ";"))
        value = new
    return question, "".join(steps), value


def make_problems(seed: int, num_problems: int, min_ops: int = 2, max_ops: int = MAX_OPS):
    """``num_problems`` random problems as :class:`Problems` (NumPy, reproducible from ``seed``).

    Example:
        >>> from probkit.models.arithmetic_lm import decode, make_problems
        >>> p = make_problems(0, 2)
        >>> p.prompt.shape, decode(p.solution[0]).endswith("=" + str(p.answer[0]) + ".")
        ((2, 14), True)
    """
    seed = check_seed(seed)
    if not 1 <= min_ops <= max_ops <= MAX_OPS:
        raise ValueError(f"need 1 <= min_ops <= max_ops <= {MAX_OPS}, got {min_ops}, {max_ops}.")
    rng = np.random.default_rng(seed)
    sol_len = SEQUENCE_LENGTH - PROMPT_LENGTH
    prompt = np.full((num_problems, PROMPT_LENGTH), PAD, np.int32)
    solution = np.full((num_problems, sol_len), PAD, np.int32)
    answer = np.zeros(num_problems, np.int32)
    num_ops = np.zeros(num_problems, np.int32)
    for i in range(num_problems):
        question, steps, value = _problem_text(rng, min_ops, max_ops)
        q = [BOS] + encode(question + "?")
        prompt[i, PROMPT_LENGTH - len(q) :] = q  # left-padded: generation starts at one place
        s = encode(steps)
        solution[i, : len(s)] = s
        answer[i] = value
        num_ops[i] = steps.count(";") + 1
    return Problems(prompt, solution, answer, num_ops)


def prefix_correct(solution: jax.Array, reference: jax.Array, length: jax.Array) -> jax.Array:
    """Whether the first ``length`` generated solution tokens equal the reference's.

    The exact process reward of a partial solution (one problem; vmap for more).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.arithmetic_lm import encode, prefix_correct
        >>> ref = jnp.array(encode("1+2=3."))
        >>> bool(prefix_correct(jnp.array(encode("1+2=4.")), ref, 3)), bool(
        ...     prefix_correct(jnp.array(encode("1+2=4.")), ref, 5))
        (True, False)
    """
    positions = jnp.arange(solution.shape[-1])
    same = (solution == reference) | (positions >= length)
    return jnp.all(same)


def extract_answer(solution: jax.Array, length: jax.Array) -> jax.Array:
    """The integer after the last ``=`` of a finished solution, or -1 if there is none.

    A solution is finished when its last token is ``.``; the answer must be one or two
    digits between the last ``=`` and that ``.`` (one solution; vmap for more).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.arithmetic_lm import encode, extract_answer
        >>> s = jnp.array(encode("4+5=9;9+3=12.") + [16, 16])
        >>> int(extract_answer(s, 13)), int(extract_answer(s, 6))
        (12, -1)
    """
    positions = jnp.arange(solution.shape[-1])
    last = jnp.take(solution, jnp.maximum(length - 1, 0))
    finished = (length > 0) & (last == STOP)
    is_eq = (solution == EQUALS) & (positions < length)
    eq = jnp.max(jnp.where(is_eq, positions, -1))
    num_digits = length - 1 - eq - 1
    d1 = jnp.take(solution, jnp.clip(eq + 1, 0, solution.shape[-1] - 1))
    d2 = jnp.take(solution, jnp.clip(eq + 2, 0, solution.shape[-1] - 1))
    one = (num_digits == 1) & (d1 < 10)
    two = (num_digits == 2) & (d1 < 10) & (d2 < 10) & (d1 > 0)
    value = jnp.where(one, d1, 10 * d1 + d2)
    return jnp.where(finished & (eq >= 0) & (one | two), value, -1).astype(jnp.int32)
