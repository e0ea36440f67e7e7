"""Final selection rules: from weighted particles to one answer.

Answers are integers (an index into whatever the task's answers are); ``-1`` marks a
particle without a valid answer (unfinished or malformed). Invalid answers are left
out of every rule unless no particle has a valid one, in which case -1 is returned.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from probkit._checks import check_key

__all__ = ["weighted_majority_vote", "majority_vote", "max_weight", "sample_answer"]


def _valid_log_weights(answers: jax.Array, log_weights: jax.Array) -> jax.Array:
    log_weights = jnp.where(jnp.isnan(log_weights), -jnp.inf, log_weights)
    return jnp.where(answers >= 0, log_weights, -jnp.inf)


def weighted_majority_vote(answers: jax.Array, log_weights: jax.Array) -> jax.Array:
    """The answer with the largest total weight (ties: the one held by the earliest particle).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.scaling import weighted_majority_vote
        >>> answers = jnp.array([3, 5, 5, -1])
        >>> int(weighted_majority_vote(answers, jnp.log(jnp.array([0.5, 0.2, 0.2, 0.1]))))
        3
    """
    answers = jnp.asarray(answers)
    log_w = _valid_log_weights(answers, jnp.asarray(log_weights))
    top = jnp.max(log_w)
    w = jnp.where(jnp.isfinite(log_w), jnp.exp(log_w - jnp.where(jnp.isfinite(top), top, 0.0)), 0)
    # Total weight of each particle's answer: an (N, N) comparison, cheap for the N of
    # inference-time scaling (up to a few thousand) and free of any bound on answers.
    same = answers[:, None] == answers[None, :]
    totals = jnp.where(answers >= 0, same @ w, -1.0)
    best = jnp.argmax(totals)
    return jnp.where(totals[best] > 0, answers[best], -1)


def majority_vote(answers: jax.Array) -> jax.Array:
    """The most frequent valid answer (self-consistency).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.scaling import majority_vote
        >>> int(majority_vote(jnp.array([1, 2, 2, -1, -1, -1])))
        2
    """
    answers = jnp.asarray(answers)
    return weighted_majority_vote(answers, jnp.zeros(answers.shape[0]))


def max_weight(answers: jax.Array, log_weights: jax.Array) -> jax.Array:
    """The answer of the heaviest particle with a valid answer (best-of-N with a verifier).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.scaling import max_weight
        >>> int(max_weight(jnp.array([4, -1, 7]), jnp.array([0.0, 5.0, 1.0])))
        7
    """
    answers = jnp.asarray(answers)
    log_w = _valid_log_weights(answers, jnp.asarray(log_weights))
    best = jnp.argmax(log_w)
    return jnp.where(jnp.isfinite(log_w[best]), answers[best], -1)


def sample_answer(key: jax.Array, answers: jax.Array, log_weights: jax.Array) -> jax.Array:
    """One answer drawn with probability proportional to its particles' weights.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.scaling import sample_answer
        >>> int(sample_answer(jax.random.key(0), jnp.array([2, 9]), jnp.array([0.0, -jnp.inf])))
        2
    """
    check_key(key)
    answers = jnp.asarray(answers)
    log_w = _valid_log_weights(answers, jnp.asarray(log_weights))
    any_valid = jnp.any(jnp.isfinite(log_w))
    index = jax.random.categorical(key, jnp.where(any_valid, log_w, 0.0))
    return jnp.where(any_valid, answers[index], -1)


SELECTIONS = ("weighted_vote", "vote", "max_weight", "sample")


def select(selection: str, key: jax.Array, answers: jax.Array, log_weights: jax.Array) -> jax.Array:
    """Dispatch on a selection rule's name (checked by the drivers before compiling)."""
    check_key(key)
    if selection == "weighted_vote":
        return weighted_majority_vote(answers, log_weights)
    if selection == "vote":
        return majority_vote(answers)
    if selection == "max_weight":
        return max_weight(answers, log_weights)
    if selection == "sample":
        return sample_answer(key, answers, log_weights)
    raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}.")
