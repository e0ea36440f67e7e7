"""Resampling schemes, all with the signature ``(key, log_weights, n) -> indices``.

``log_weights`` may be unnormalised; ``indices`` is an ``int32`` array of shape ``(n,)``
whose entry ``k`` is the ancestor of the ``k``-th new particle. Every scheme is
unbiased: the expected number of offspring of particle ``i`` is ``n * W_i``, with
``W`` the normalised weights. They differ in the variance of those offspring
numbers (smaller is better):

* ``multinomial``: ``n`` i.i.d. draws; variance ``n W_i (1 - W_i)``.
* ``residual``: ``floor(n W_i)`` copies, the rest multinomially.
* ``stratified``: one uniform per stratum ``[k/n, (k+1)/n)``.
* ``systematic``: one uniform shared by every stratum; each count is
  ``floor(n W_i)`` or ``floor(n W_i) + 1``. From 4096 particles the strata run
  through the particles in a fixed interleaved order (see :func:`systematic`).
* ``ssp``: the Srinivasan sampling process (Gerber, Chopin & Whiteley 2019):
  counts are ``floor`` or ``floor + 1`` like systematic, and the scheme is
  consistent whatever the particle order.
* ``killing``: particle ``i`` survives with probability ``W_i / max W`` and is
  otherwise replaced by a multinomial draw (Del Moral); needs ``n == len(log_weights)``.

Why not blackjax's schemes (``blackjax.smc.resampling``): they search
``jnp.cumsum(weights)`` without dividing it by its last entry, so in float32 the
round-off of the sum (~1e-4 at N = 10^5) goes to the last particle, and their
systematic scheme searches where the CDF gives the counts directly (measured 7.4 ms
vs 1.1 ms at N = 10^5 on CPU). Weights (normalising, ESS) live in
``probkit._weights``.

A particle of weight zero (log-weight ``-inf``) never gets an offspring.

Precision: the inverse-CDF schemes search a float32 cumulative sum. It is divided
by its last entry so that it ends exactly at 1, and indices are clipped to the
valid range; the relative error of the cumulative sum (~log2(N) float32 ulps for
XLA's tree reduction) changes no probability by more than ~1e-6.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from probkit._checks import check_key
from probkit._weights import (
    effective_sample_size,
    normalise_log_weights,
    normalised_weights,
    scaled_weights,
)

__all__ = [
    "ResamplingFn",
    "multinomial",
    "stratified",
    "systematic",
    "residual",
    "ssp",
    "killing",
    "RESAMPLING_SCHEMES",
    "get_resampling",
    "normalise_log_weights",
    "effective_sample_size",
]

ResamplingFn = Callable[[jax.Array, jax.Array, int], jax.Array]


def _weights_up_to_scale(log_weights: jax.Array) -> jax.Array:
    return scaled_weights(log_weights)[0]


# From this many entries the prefix sums run apart from their neighbours on CPU.
_APART_FROM = 4096


def _prefix_sum(x: jax.Array) -> jax.Array:
    # A parallel-prefix sum: O(N) work, ~log2(N) ulps of error, and on CPU several
    # times faster than jnp.cumsum (which XLA lowers to a reduce-window).
    return jax.lax.associative_scan(jnp.add, x)


def _apart(scan: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    """``scan(x)``, kept out of its neighbours' fusions on CPU.

    A conditional is a fusion boundary on XLA:CPU (optimization_barrier is removed
    before fusion). Left alone, XLA fuses a scan's last level (a strided interleave)
    into its consumer, such as the particles' gather, which then runs twice as long.
    Both branches are the same, so the predicate only places the scan; under vmap the
    cond becomes a select of two equal results. Only on CPU: a conditional on GPU
    waits for its predicate on the host.
    """
    return jax.lax.platform_dependent(
        x, cpu=lambda x: jax.lax.cond(x[0] >= 0, scan, scan, x), default=scan
    )


def _cumsum(x: jax.Array) -> jax.Array:
    if x.shape[0] < _APART_FROM:
        return _prefix_sum(x)
    return _apart(_prefix_sum, x)


def _running_max(x: jax.Array) -> jax.Array:
    scan = functools.partial(jax.lax.associative_scan, jnp.maximum)
    return scan(x) if x.shape[0] < _APART_FROM else _apart(scan, x)


# From this many particles (or offspring) systematic resampling runs in blocked order.
_BLOCKED_FROM = 4096
# Rows of the blocked layout; a power of two, so that ranks map to slots by shifts.
_BLOCK = 8


def _blocked_scan_here(x: jax.Array, op, identity) -> jax.Array:
    rows = x.reshape(_BLOCK, -1)
    # Column totals by row operations (one fused pass; a reduction over the rows went
    # to a library call, measured 3% slower in the filter), their scan, then the
    # running scan down each column.
    column = functools.reduce(op, [rows[r] for r in range(_BLOCK)])
    if op is jnp.add:
        scanned = _cumsum(column)
    else:
        scanned = _apart(functools.partial(jax.lax.associative_scan, op), column)
    running = jnp.concatenate([jnp.full((1,), identity, x.dtype), scanned[:-1]])
    out = []
    for r in range(_BLOCK):
        running = op(running, rows[r])
        out.append(running)
    return jnp.stack(out)


def _blocked_scan(x: jax.Array, op=jnp.add, identity=0) -> jax.Array:
    """Inclusive scan of ``x`` taken down the columns of ``x.reshape(B, -1)``.

    Entry ``(r, c)`` combines columns ``0..c-1`` and rows ``0..r`` of column ``c``: the
    scan in the order ``x[0], x[m], ..., x[(B-1) m], x[1], x[m+1], ...`` (``m``
    columns). Every pass reads whole rows and the one scan is over ``len(x) / B``
    entries: on CPU less than half the time of a natural-order prefix sum over
    ``len(x)``, whose strided levels XLA does not vectorise.
    """

    return _apart(functools.partial(_blocked_scan_here, op=op, identity=identity), x)


def _cdf(log_weights: jax.Array) -> jax.Array:
    weights = _weights_up_to_scale(log_weights)
    cdf = _cumsum(weights)
    # The tree-ordered float32 sums can leave a particle of weight zero an ulp above
    # its predecessor, and a uniform in that step would draw it. The running maximum
    # over the particles of positive weight is flat at every zero (a second scan: on
    # CPU ~0.2 ms at N = 10^5, beside the search's ~1 ms).
    cdf = _running_max(jnp.where(weights > 0, cdf, -jnp.inf))
    # Normalised by its last entry, the CDF needs no normalised weights.
    return cdf / cdf[-1]


def _inverse_cdf(uniforms: jax.Array, log_weights: jax.Array) -> jax.Array:
    """Indices ``i`` with ``cdf[i-1] <= u < cdf[i]`` for each uniform ``u`` in [0, 1)."""
    cdf = _cdf(log_weights)
    idx = jnp.searchsorted(cdf, uniforms, side="right")
    return jnp.clip(idx, 0, log_weights.shape[0] - 1).astype(jnp.int32)


def multinomial(key: jax.Array, log_weights: jax.Array, n: int) -> jax.Array:
    """Multinomial resampling: ``n`` independent draws from the weights.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.smc import multinomial
        >>> multinomial(jax.random.key(0), jnp.log(jnp.array([0.0, 1.0])), 3).tolist()
        [1, 1, 1]
    """
    check_key(key)
    # Sorted uniforms (normalised cumulative exponential spacings) make the search
    # monotone and the output ordered, as in Chopin & Papaspiliopoulos (2020, §9.4).
    spacings = jax.random.exponential(key, (n + 1,))
    uniforms = jnp.cumsum(spacings)[:-1] / jnp.sum(spacings)
    return _inverse_cdf(uniforms, log_weights)


def stratified(key: jax.Array, log_weights: jax.Array, n: int) -> jax.Array:
    """Stratified resampling: one uniform in each stratum ``[k/n, (k+1)/n)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.smc import stratified
        >>> stratified(jax.random.key(0), jnp.log(jnp.array([0.5, 0.5])), 2).tolist()
        [0, 1]
    """
    check_key(key)
    uniforms = (jnp.arange(n) + jax.random.uniform(key, (n,))) / n
    return _inverse_cdf(uniforms, log_weights)


def systematic(key: jax.Array, log_weights: jax.Array, n: int) -> jax.Array:
    """Systematic resampling: one uniform shared by all strata.

    Each particle gets ``floor(n W_i)`` or ``floor(n W_i) + 1`` offspring, and a
    particle of weight zero gets none.

    Below 4096 particles the strata run through the particles in their order
    ``0, 1, 2, ...``, and below 4096 offspring the indices come out in the order of
    the strata (sorted, when both are below 4096). From 4096 particles the strata run
    through a fixed interleaved order: particle ``i`` of ``N`` at rank
    ``(i % m) * 8 + i // m``, ``m = ceil(N / 8)``. From 4096 offspring the indices come
    out in a fixed interleaved order: with ``c = ceil(n / 8)`` and
    ``j = 8 c - 1 - k``, offspring ``k`` (of stratum ``k``) in slot
    ``(j % 8) * c + j // 8``, less the first slot of each row ``r < 8 c - n``. Any
    fixed order keeps the scheme unbiased with counts ``floor`` or ``floor + 1``; this
    one lets every pass read whole rows of memory, which makes a resampling at
    ``N = 10^5`` about a quarter cheaper on CPU.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.smc import systematic
        >>> systematic(jax.random.key(0), jnp.log(jnp.array([0.25, 0.75])), 4).tolist()
        [0, 1, 1, 1]
    """
    check_key(key)
    num = log_weights.shape[0]
    uniform = jax.random.uniform(key, ())
    weights = _weights_up_to_scale(log_weights)
    if num < _BLOCKED_FROM:
        cdf = _cumsum(weights)
        rank = jnp.arange(num, dtype=jnp.int32)
    else:
        columns = -(-num // _BLOCK)
        # Padding (zero weight, never drawn) completes the last row.
        weights = jnp.pad(weights, (0, _BLOCK * columns - num)).reshape(_BLOCK, columns)
        cdf = _blocked_scan(weights.reshape(-1))
        rank = (
            jnp.arange(columns, dtype=jnp.int32)[None, :] * _BLOCK
            + jnp.arange(_BLOCK, dtype=jnp.int32)[:, None]
        )
    positive = weights > 0
    total = cdf.reshape(-1)[-1]
    # Point k = (k + U) / n lies below cdf_p for k < ceil(n cdf_p - U): the counts
    # follow from the CDF in O(N), with no search. A rank whose CDF reaches the end
    # takes the last offspring: round-off (of the sums, of n - U) could otherwise
    # leave offspring n - 1 with no ancestor. Ranks of weight zero get no offspring,
    # even where round-off leaves their CDF above their predecessor's.
    below = jnp.clip(jnp.ceil(n * (cdf / total) - uniform), 0, n)
    below = jnp.where(positive, jnp.where(cdf >= total, n, below), 0).astype(jnp.int32)
    ranks = _first_rank_above(below.reshape(-1), rank.reshape(-1), n)
    if num < _BLOCKED_FROM:
        return jnp.minimum(ranks, num - 1)
    shift = _BLOCK.bit_length() - 1
    return jnp.minimum((ranks & (_BLOCK - 1)) * columns + (ranks >> shift), num - 1)


def _first_rank_above(below: jax.Array, rank: jax.Array, n: int) -> jax.Array:
    """For each offspring ``k < n``, the smallest ``rank`` whose ``below`` exceeds ``k``.

    ``below`` is the number of offspring of the ranks up to and including this one.
    In exact arithmetic it never decreases along the ranks, and the answer is
    ``#{p : below[p] <= k}``; the float32 sums it comes from may, by an ulp, leave a
    rank of weight zero a count above its predecessor. Taking the smallest rank with
    ``below > k`` (a scatter-min and a suffix minimum, O(N)) is exact in every case,
    and ranks of weight zero have ``below = 0``, so they are never drawn. From 4096
    offspring the suffix minimum runs blocked (:func:`_blocked_scan`), and offspring
    ``k`` comes out in slot ``(j % B) * ceil(n / B) + j // B`` with
    ``j = B ceil(n / B) - 1 - k`` (less one slot per row that ``j`` skips).
    """
    none = jnp.iinfo(jnp.int32).max
    if n < _BLOCKED_FROM:
        # below = 0 (no offspring) goes to index n and is dropped.
        first = jnp.full((n,), none, jnp.int32)
        first = first.at[jnp.where(below > 0, below - 1, n)].min(rank, mode="drop")
        first = jax.lax.associative_scan(jnp.minimum, first, reverse=True)
        return _fill_top(first, first)
    # The suffix minimum over k is a forward scan over j = size - 1 - k, laid out
    # blocked: slot (j % B) * columns + j // B holds offspring k.
    columns = -(-n // _BLOCK)
    size = _BLOCK * columns
    j = size - below  # = size - 1 - (below - 1)
    shift = _BLOCK.bit_length() - 1
    slot = jnp.where(below > 0, (j & (_BLOCK - 1)) * columns + (j >> shift), size)
    first = jnp.full((size,), none, jnp.int32).at[slot].min(rank, mode="drop")
    first = _blocked_scan(first, jnp.minimum, none)
    # The last offspring (j < B: the first column) are the ones round-off may leave
    # without an ancestor.
    first = _fill_top(first, first[:, 0])
    if size == n:
        return first.reshape(-1)
    # j < size - n (k >= n) are the first slot of rows 0, ..., size - n - 1.
    return jnp.concatenate([first[r, (r < size - n) :] for r in range(_BLOCK)])


def _fill_top(ranks: jax.Array, top: jax.Array) -> jax.Array:
    """``ranks`` with no-ancestor entries (the last offspring) given the largest rank
    drawn among ``top``: the rank of positive weight that ends the CDF, or its
    predecessor when round-off left it no offspring."""
    none = jnp.iinfo(jnp.int32).max
    largest = jnp.max(jnp.where(top == none, -1, top))
    return jnp.where(ranks == none, largest, ranks)


def _indices_from_cumulative_counts(below: jax.Array, n: int) -> jax.Array:
    """Ancestor indices from ``below[i]`` = number of offspring of particles ``0..i``.

    Offspring ``k`` belongs to the first ``i`` with ``below[i] > k``, so its index is
    ``#{i : below[i] <= k}``: a histogram and a prefix sum, O(N) with no search.
    """
    below = jnp.clip(below, 0, n).astype(jnp.int32)
    hist = jnp.bincount(below, length=n + 1)
    return _cumsum(hist)[:n].astype(jnp.int32)


def _counts_to_indices(counts: jax.Array, n: int) -> jax.Array:
    return _indices_from_cumulative_counts(_cumsum(counts.astype(jnp.int32)), n)


def residual(key: jax.Array, log_weights: jax.Array, n: int) -> jax.Array:
    """Residual resampling: ``floor(n W_i)`` copies, the remainder multinomially.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.smc import residual
        >>> residual(jax.random.key(0), jnp.log(jnp.array([0.5, 0.5])), 4).tolist()
        [0, 0, 1, 1]
    """
    check_key(key)
    num = log_weights.shape[0]
    scaled = n * normalised_weights(log_weights)
    deterministic = jnp.floor(scaled)
    remaining = n - jnp.sum(deterministic).astype(jnp.int32)
    fractional = scaled - deterministic
    # Draw n multinomial indices from the fractional parts and keep the first
    # `remaining` of them (a fixed-shape way to draw a random number of indices).
    log_fractional = jnp.where(fractional > 0, jnp.log(fractional), -jnp.inf)
    draws = _inverse_cdf(jax.random.uniform(key, (n,)), log_fractional)  # i.i.d., unsorted
    keep = (jnp.arange(n) < remaining).astype(jnp.int32)
    counts = deterministic.astype(jnp.int32) + jnp.bincount(draws, weights=keep, length=num)
    return _counts_to_indices(counts.astype(jnp.int32), n)


def _set(array: jax.Array, index: jax.Array, value: jax.Array) -> jax.Array:
    # dynamic_update_slice is updated in place inside XLA loops (a scatter is not, on CPU).
    return jax.lax.dynamic_update_slice(array, value[None].astype(array.dtype), (index,))


def ssp(key: jax.Array, log_weights: jax.Array, n: int) -> jax.Array:
    """Srinivasan sampling process resampling (Gerber, Chopin & Whiteley 2019).

    Pairs of fractional parts ``n W_i - floor(n W_i)`` are merged at random, keeping
    each expectation, until every one is 0 or 1. Counts are ``floor(n W_i)`` or
    ``floor(n W_i) + 1``. The merge is a sequential loop of ``len(log_weights) - 1``
    scalar steps, so this scheme is slower than systematic resampling on large N.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.smc import ssp
        >>> ssp(jax.random.key(0), jnp.log(jnp.array([0.25, 0.75])), 4).tolist()
        [0, 1, 1, 1]
    """
    check_key(key)
    num = log_weights.shape[0]
    scaled = n * normalised_weights(log_weights)
    counts = jnp.floor(scaled)
    fractional = scaled - counts
    counts = counts.astype(jnp.int32)
    if num == 1:
        return jnp.zeros((n,), jnp.int32)
    uniforms = jax.random.uniform(key, (num - 1,))

    def body(k, carry):
        # Only the open pair (i, j) has fractional parts that differ from
        # `fractional`; keeping them as scalars in the carry leaves one in-place
        # update per step (a loop that rewrote a whole array would be O(N^2)).
        counts, i, j, xi_i, xi_j = carry
        delta_i = jnp.minimum(xi_j, 1.0 - xi_i)  # increase i, decrease j
        delta_j = jnp.minimum(xi_i, 1.0 - xi_j)  # the opposite
        total = delta_i + delta_j
        prob_swap = jnp.where(total > 0, delta_i / jnp.where(total > 0, total, 1.0), 0.0)
        swap = uniforms[k] < prob_swap
        i, j = jnp.where(swap, j, i), jnp.where(swap, i, j)
        xi_i, xi_j = jnp.where(swap, xi_j, xi_i), jnp.where(swap, xi_i, xi_j)
        delta = jnp.where(swap, delta_j, delta_i)
        # Either j's fractional part goes to zero (i absorbs it, j is finished), or
        # i's reaches one (i gains a child and is finished).
        j_done = xi_j < 1.0 - xi_i
        counts = _set(counts, i, counts[i] + jnp.where(j_done, 0, 1).astype(counts.dtype))
        nxt = (k + 2).astype(i.dtype)
        xi_next = fractional[jnp.minimum(nxt, num - 1)]
        return (
            counts,
            jnp.where(j_done, i, nxt),
            jnp.where(j_done, nxt, j),
            jnp.where(j_done, xi_i + delta, xi_next),
            jnp.where(j_done, xi_next, xi_j - delta),
        )

    start = (counts, jnp.int32(0), jnp.int32(1), fractional[0], fractional[1])
    counts, i, j, _, _ = jax.lax.fori_loop(0, num - 1, body, start)
    # One index is still open; it takes whatever round-off left unassigned (0 or 1).
    last = jnp.where(j == num, i, j)
    counts = counts.at[last].add(n - jnp.sum(counts))
    return _counts_to_indices(counts, n)


def killing(key: jax.Array, log_weights: jax.Array, n: int) -> jax.Array:
    """Killing resampling: particle ``i`` survives with probability ``W_i / max W``.

    A killed particle is replaced by a multinomial draw. Unbiased, and it keeps
    particles in place when the weights are nearly even. Needs ``n`` equal to the
    number of weights.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.smc import killing
        >>> killing(jax.random.key(0), jnp.zeros(3), 3).tolist()
        [0, 1, 2]
    """
    check_key(key)
    num = log_weights.shape[0]
    if n != num:
        raise ValueError(
            f"killing resampling keeps the number of particles: n={n} must equal "
            f"len(log_weights)={num}. Use systematic or multinomial resampling to change it."
        )
    key_survive, key_replace = jax.random.split(key)
    log_w = normalise_log_weights(log_weights)
    survive = jnp.log(jax.random.uniform(key_survive, (num,))) < log_w - jnp.max(log_w)
    replacements = _inverse_cdf(jax.random.uniform(key_replace, (n,)), log_w)  # i.i.d.
    return jnp.where(survive, jnp.arange(num, dtype=jnp.int32), replacements)


RESAMPLING_SCHEMES: dict[str, ResamplingFn] = {
    "multinomial": multinomial,
    "stratified": stratified,
    "systematic": systematic,
    "residual": residual,
    "ssp": ssp,
    "killing": killing,
}


def get_resampling(resampling: str | ResamplingFn) -> ResamplingFn:
    """The resampling function named ``resampling`` (or ``resampling`` itself if callable).

    Example:
        >>> from probkit.smc import get_resampling, systematic
        >>> get_resampling("systematic") is systematic
        True
    """
    if callable(resampling):
        return resampling
    try:
        return RESAMPLING_SCHEMES[resampling]
    except (KeyError, TypeError):
        raise ValueError(
            f"resampling must be one of {sorted(RESAMPLING_SCHEMES)} or a function "
            f"(key, log_weights, n) -> indices, got {resampling!r}."
        ) from None
