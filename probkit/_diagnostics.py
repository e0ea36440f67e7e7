"""Convergence diagnostics in NumPy: rank-normalised split R-hat, bulk and tail ESS.

The definitions are ArviZ's (``arviz.rhat(method="rank")``, ``arviz.ess(method="bulk")``
and ``arviz.ess(method="tail")``), which follow Vehtari, Gelman, Simpson, Carpenter and
Bürkner (2021), "Rank-normalization, folding, and localization: an improved R-hat for
assessing convergence of MCMC", Bayesian Analysis 16(2). They are computed here, step
for step as ArviZ does, because importing ArviZ costs seconds in a fresh process (more
than sampling a small model) and ArviZ evaluates one array element at a time, which
takes minutes on a site of thousands of elements. Here every element of a site is done
at once (vectorised over elements, in blocks that bound the memory).

Conventions, as in ArviZ: draws have shape ``(chain, draw, *element_shape)``; an
element with a NaN draw, fewer than 4 draws, or (R-hat only) fewer than 2 chains gets
NaN; an element that is constant gets R-hat NaN (no variance to compare) and ESS equal
to its number of (split) draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["convergence", "rhat", "ess_bulk", "ess_tail"]

# Elements processed together: bounds the FFT work arrays to a few tens of MB for
# 4 chains x 1000 draws.
_BLOCK = 256

# Blom's offset for turning ranks into normal scores (ArviZ's default).
_BLOM = 3 / 8


def rhat(draws) -> np.ndarray:
    """Rank-normalised split R-hat of every element (ArviZ's ``rhat(method="rank")``).

    The larger of the R-hat of the rank-normalised split chains ("bulk") and of the
    rank-normalised absolute deviations from the median ("tail").

    Args:
        draws: array of shape ``(num_chains, num_draws, *element_shape)``.

    Returns:
        An array of shape ``element_shape``: NaN where an element has a NaN draw or is
        constant, and everywhere when there are fewer than 2 chains or 4 draws.

    Example:
        >>> import numpy as np
        >>> from probkit.results import rhat
        >>> draws = np.random.default_rng(0).normal(size=(4, 1000, 2))
        >>> bool(np.all(rhat(draws) < 1.01))
        True
    """
    return convergence(draws, ("rhat",))["rhat"]


def ess_bulk(draws) -> np.ndarray:
    """Bulk effective sample size of every element (ArviZ's ``ess(method="bulk")``).

    The ESS of the rank-normalised split chains: how many independent draws the
    chains are worth for the centre of the distribution (means, medians).

    Args:
        draws: array of shape ``(num_chains, num_draws, *element_shape)``.

    Returns:
        An array of shape ``element_shape``; NaN where an element has a NaN draw, and
        everywhere when there are fewer than 4 draws.

    Example:
        >>> import numpy as np
        >>> from probkit.results import ess_bulk
        >>> draws = np.random.default_rng(0).normal(size=(4, 1000))
        >>> 3000 < float(ess_bulk(draws)) < 5000
        True
    """
    return convergence(draws, ("ess_bulk",))["ess_bulk"]


def ess_tail(draws, prob: float | Sequence[float] = (0.05, 0.95)) -> np.ndarray:
    """Tail effective sample size of every element (ArviZ's ``ess(method="tail")``).

    The smaller of the ESS of the indicators ``draw <= q`` for the 5% and 95%
    quantiles ``q``: how many independent draws the chains are worth for the tails
    (intervals).

    Args:
        draws: array of shape ``(num_chains, num_draws, *element_shape)``.
        prob: the two quantile levels, or one level ``p`` for ``(p, 1 - p)``.

    Returns:
        An array of shape ``element_shape``; NaN where an element has a NaN draw, and
        everywhere when there are fewer than 4 draws.

    Example:
        >>> import numpy as np
        >>> from probkit.results import ess_tail
        >>> draws = np.random.default_rng(0).normal(size=(4, 1000))
        >>> 2000 < float(ess_tail(draws)) < 6000
        True
    """
    return convergence(draws, ("ess_tail",), prob=prob)["ess_tail"]


_STATISTICS = ("rhat", "ess_bulk", "ess_tail")


def convergence(
    draws,
    statistics: Sequence[str] = _STATISTICS,
    *,
    prob: float | Sequence[float] = (0.05, 0.95),
) -> dict[str, np.ndarray]:
    """Several diagnostics of every element at once, sharing their rank normalisation.

    Args:
        draws: array of shape ``(num_chains, num_draws, *element_shape)``.
        statistics: any of ``"rhat"`` (:func:`rhat`), ``"ess_bulk"``
            (:func:`ess_bulk`), ``"ess_tail"`` (:func:`ess_tail`).
        prob: the quantile levels of the tail ESS.

    Returns:
        ``{statistic: array of shape element_shape}``.

    Example:
        >>> import numpy as np
        >>> from probkit.results import convergence
        >>> draws = np.random.default_rng(0).normal(size=(4, 500, 3))
        >>> sorted(convergence(draws))
        ['ess_bulk', 'ess_tail', 'rhat']
    """
    unknown = sorted(set(statistics) - set(_STATISTICS))
    if unknown or isinstance(statistics, str):
        raise ValueError(
            f"statistics must be a sequence of names among {_STATISTICS}, got {statistics!r}."
        )
    if not isinstance(prob, Sequence):
        prob = (prob, 1 - prob)
    if len(prob) != 2 or not all(0.0 < float(p) < 1.0 for p in prob):
        raise ValueError(f"prob must be one level in (0, 1) or two of them, got {prob!r}.")
    x, element_shape = _as_elements(draws, "draws")
    num_chains, num_draws = x.shape[1], x.shape[2]
    out = {name: np.full(x.shape[0], np.nan) for name in statistics}
    for rows in _blocks(x) if num_draws >= 4 else ():
        block = x[rows]
        split = _split_chains(block)
        if "rhat" in out or "ess_bulk" in out:
            z = _z_scale(split)
        if "ess_bulk" in out:
            out["ess_bulk"][rows] = _ess(z)
        if "rhat" in out and num_chains >= 2:
            bulk = _rhat_split(z)
            median = np.median(split.reshape(split.shape[0], -1), axis=1)
            tail = _rhat_split(_z_scale(np.abs(split - median[:, None, None])))
            out["rhat"][rows] = np.where(tail > bulk, tail, bulk)  # Python's max(bulk, tail)
        if "ess_tail" in out:
            low = _ess_quantile(block, float(prob[0]))
            high = _ess_quantile(block, float(prob[1]))
            out["ess_tail"][rows] = np.where(high < low, high, low)  # Python's min(low, high)
    nan = _has_nan(x)
    return {
        name: np.where(nan, np.nan, value).reshape(element_shape) for name, value in out.items()
    }


# --------------------------------------------------------------------------------------
# Shapes: every function below works on (elements, chains, draws) arrays, contiguous
# along draws, so that each element's reductions run in the order ArviZ's do on its
# (chains, draws) array.
# --------------------------------------------------------------------------------------


def _as_elements(draws, name: str) -> tuple[np.ndarray, tuple]:
    x = np.asarray(draws)
    if x.ndim < 2:
        raise ValueError(
            f"{name} must have shape (num_chains, num_draws, ...), got shape {x.shape}; "
            "add a chain axis for a single chain (x[None])."
        )
    if x.dtype == bool:
        x = x.astype(np.int8)
    elif not np.issubdtype(x.dtype, np.number):
        try:  # e.g. bfloat16 (ml_dtypes), which numpy does not class as a number
            x = x.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be numeric, got dtype {x.dtype}.") from None
    element_shape = x.shape[2:]
    x = x.reshape(x.shape[0], x.shape[1], -1)
    return np.ascontiguousarray(np.moveaxis(x, 2, 0)), element_shape


def _blocks(x: np.ndarray):
    for start in range(0, x.shape[0], _BLOCK):
        yield slice(start, start + _BLOCK)


def _has_nan(x: np.ndarray) -> np.ndarray:
    if not np.issubdtype(x.dtype, np.floating):
        return np.zeros(x.shape[0], bool)
    return np.isnan(x).any(axis=(1, 2))


def _split_chains(x: np.ndarray) -> np.ndarray:
    """First and last halves of every chain as separate chains (first halves first)."""
    half = x.shape[2] // 2
    return np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half :]], axis=1)


def _doubled_ranks(values: np.ndarray) -> np.ndarray:
    """``2 * rank - 2`` along the last axis of a 2-d array, as integers, where ranks
    run 1..n and ties share their average (scipy's ``rankdata(method="average")``)."""
    rows, n = values.shape
    # Ties get the average of their positions, so the order among them is irrelevant
    # and the (faster) unstable sort serves.
    order = np.argsort(values, axis=-1)
    ordered = np.take_along_axis(values, order, axis=-1)
    differs = ordered[:, 1:] != ordered[:, :-1]
    doubled_in_order = np.broadcast_to(2 * np.arange(n), (rows, n))
    tied = ~differs.all(axis=1)
    if tied.any():  # rows with ties (or NaN): runs of equal values share their average
        differs = differs[tied]
        edge = np.ones((differs.shape[0], 1), bool)
        first = np.concatenate([edge, differs], axis=1)  # starts a run of ties
        last = np.concatenate([differs, edge], axis=1)  # ends one
        position = np.arange(n)
        start = np.maximum.accumulate(np.where(first, position, 0), axis=1)
        stop = np.minimum.accumulate(np.where(last, position, n)[:, ::-1], axis=1)[:, ::-1]
        doubled_in_order = doubled_in_order.copy()
        # The run start..stop (0-based) has average rank (start + stop + 2) / 2.
        doubled_in_order[tied] = start + stop
    doubled = np.empty((rows, n), np.int64)
    np.put_along_axis(doubled, order, doubled_in_order, axis=-1)
    return doubled


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Normal scores of the ranks pooled over chains and draws (Blom's offset)."""
    from scipy.special import ndtri  # scipy.stats.norm.ppf is ndtri; scipy.stats is slow to import

    elements, chains, draws = x.shape
    size = chains * draws
    # Average ranks are multiples of 1/2 in 1..size: one normal score per possible
    # rank, computed as (rank - c) / (size - 2c + 1) like ArviZ, then looked up.
    ranks = 0.5 * (np.arange(2 * size - 1) + 2)
    scores = ndtri((ranks - _BLOM) / (size - 2 * _BLOM + 1))
    return scores[_doubled_ranks(x.reshape(elements, size))].reshape(x.shape)


def _rhat_split(z: np.ndarray) -> np.ndarray:
    """Gelman-Rubin R-hat of (elements, chains, draws) arrays."""
    num_draws = z.shape[2]
    chain_mean = np.mean(z, axis=2)
    chain_var = np.var(z, axis=2, ddof=1)
    between = num_draws * np.var(chain_mean, axis=1, ddof=1)
    within = np.mean(chain_var, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + num_draws - 1) / num_draws)


def _quantile(x: np.ndarray, prob: float) -> np.ndarray:
    """R's type-7 quantile of each element's pooled draws (``scipy.stats.mstats.mquantiles``
    with ``alphap = betap = 1``, as ArviZ computes it)."""
    pooled = x.reshape(x.shape[0], -1)
    n = pooled.shape[1]
    # float64 arithmetic whatever the draws' dtype, as mquantiles does it.
    p = np.float64(prob)
    m = 1 + p * (1.0 - 1 - 1)
    aleph = n * p + m
    k = int(np.floor(np.clip(aleph, 1, n - 1)))
    gamma = np.clip(aleph - k, 0, 1)
    ordered = np.partition(pooled, (k - 1, k), axis=1)  # the two order statistics needed
    return (1.0 - gamma) * ordered[:, k - 1] + gamma * ordered[:, k]


def _ess_quantile(x: np.ndarray, prob: float) -> np.ndarray:
    below = x <= _quantile(x, prob)[:, None, None]
    return _ess(_split_chains(below))


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of (elements, chains, draws) arrays: Geyer's initial monotone sequence
    estimator on the multi-chain autocorrelation, as ``arviz.stats.diagnostics._ess``."""
    from scipy.fft import next_fast_len

    x = np.asarray(x, dtype=float)
    elements, num_chains, num_draws = x.shape
    total = num_chains * num_draws
    constant = (np.max(x, axis=(1, 2)) - np.min(x, axis=(1, 2))) < np.finfo(float).resolution

    # Autocovariance of each chain at every lag, by FFT (ArviZ's autocov: zero-padded
    # to a 5-smooth length).
    size = next_fast_len(2 * num_draws, real=True)
    centred = x - x.mean(axis=2, keepdims=True)
    spectrum = np.fft.rfft(centred, n=size, axis=2)
    spectrum *= np.conjugate(spectrum)
    acov = np.fft.irfft(spectrum, n=size, axis=2)[:, :, :num_draws]
    acov /= num_draws

    chain_mean = x.mean(axis=2)
    # Means over chains with the chains contiguous, as ArviZ's np.mean(acov[:, t]).
    mean_acov = np.ascontiguousarray(np.swapaxes(acov, 1, 2)).mean(axis=2)
    mean_var = mean_acov[:, 0] * num_draws / (num_draws - 1.0)
    var_plus = mean_var * (num_draws - 1.0) / num_draws
    if num_chains > 1:
        var_plus = var_plus + np.var(chain_mean, axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var[:, None] - mean_acov) / var_plus[:, None]
    rho[:, 0] = 1.0

    # Geyer's initial positive sequence. ArviZ's loop reads the pair of lags
    # (t + 1, t + 2) for t = 1, 3, ... while t < num_draws - 3 and the previous pair's
    # sum was positive; `num_pairs` such reads at most. Pair j is lags (2j, 2j + 1).
    num_pairs = len(range(1, num_draws - 3, 2))
    pair_sum = rho[:, 0 : 2 * num_pairs + 1 : 2] + rho[:, 1 : 2 * num_pairs + 2 : 2]
    stops = ~(pair_sum[:, :num_pairs] > 0)
    # `read`: pairs 1..read were read (a pair with a non-positive sum ends the loop).
    first_stop = np.argmax(stops, axis=1) if num_pairs else np.zeros(elements, int)
    read = np.where(stops.any(axis=1), first_stop, num_pairs)

    rho_t = np.zeros_like(rho)
    rho_t[:, 0] = 1.0
    rho_t[:, 1] = rho[:, 1]
    lag = np.arange(num_draws)
    pair_of_lag = lag // 2
    last_sum = np.take_along_axis(pair_sum, read[:, None], axis=1)[:, 0]
    keep = (pair_of_lag[None, :] >= 1) & (
        (pair_of_lag[None, :] < read[:, None])
        | ((pair_of_lag[None, :] == read[:, None]) & (last_sum[:, None] >= 0))
    )
    rho_t = np.where(keep, rho, rho_t)
    rows = np.arange(elements)
    even = np.where(read >= 1, rho[rows, 2 * read], 1.0)
    rho_t[rows, 2 * read] = np.where(even > 0, even, rho_t[rows, 2 * read])

    # Geyer's initial monotone sequence on pairs 1 .. read - 1: a pair whose sum exceeds
    # the previous pair's (possibly lowered) sum takes half of that sum at both lags.
    # Sequentially applied this is a running minimum of the pair sums.
    if num_pairs >= 2:
        sums = rho_t[:, 0 : 2 * num_pairs : 2] + rho_t[:, 1 : 2 * num_pairs : 2]
        running = np.minimum.accumulate(sums, axis=1)
        pair = np.arange(1, num_pairs)
        lowered = (pair[None, :] < read[:, None]) & (sums[:, 1:] > running[:, :-1])
        half = running[:, :-1] / 2.0
        rho_t[:, 2 : 2 * num_pairs : 2] = np.where(lowered, half, rho_t[:, 2 : 2 * num_pairs : 2])
        rho_t[:, 3 : 2 * num_pairs : 2] = np.where(lowered, half, rho_t[:, 3 : 2 * num_pairs : 2])

    # tau = -1 + 2 * (sum of lags 0 .. 2 read - 1) + rho_t[2 read]; summed per length so
    # that each sum runs in numpy's order for that length.
    tau = np.empty(elements)
    for count in np.unique(read):
        which = read == count
        body = np.sum(rho_t[which, : 2 * count], axis=1)
        tau[which] = -1.0 + 2.0 * body + rho_t[which, 2 * count]
    floor = 1 / np.log10(total)
    tau = np.where(floor > tau, floor, tau)  # Python's max(tau, floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        ess = total / tau
    ess = np.where(np.isnan(rho_t).any(axis=1), np.nan, ess)
    return np.where(constant, float(total), ess)
