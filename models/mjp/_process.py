"""The Markov jump process: a rate matrix and an initial distribution, with its long-time
properties (stationary distribution, mean first-passage times, relaxation times and the
entropy production rate)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "MJP",
    "check_rate_matrix",
    "rate_matrix_from_rates",
    "stationary_distribution",
    "mean_first_passage_times",
    "relaxation_times",
    "entropy_production_rate",
]


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_rate_matrix(rate_matrix, name: str = "rate_matrix", atol: float = 1e-5) -> np.ndarray:
    """Check that ``rate_matrix`` is a valid generator and return it as a numpy array.

    A generator (Q-matrix) is square, has finite non-negative off-diagonal rates and rows
    that sum to zero.

    Args:
        rate_matrix: the candidate ``(K, K)`` generator.
        name: the argument name used in error messages.
        atol: tolerance (relative to the largest exit rate) on the row sums.

    Returns:
        ``rate_matrix`` as a float numpy array.

    Raises:
        ValueError: a shape, sign, finiteness or row-sum violation, named in the message.

    Example:
        >>> from probkit.models.mjp import check_rate_matrix
        >>> check_rate_matrix([[-1.0, 1.0], [2.0, -2.0]]).shape
        (2, 2)
    """
    q = np.asarray(rate_matrix, dtype=float)
    if q.ndim != 2 or q.shape[0] != q.shape[1] or q.shape[0] < 2:
        raise ValueError(f"{name} must be a square (K, K) matrix with K >= 2, got shape {q.shape}.")
    if not np.all(np.isfinite(q)):
        raise ValueError(f"{name} has non-finite entries; every rate must be finite.")
    off = q - np.diag(np.diag(q))
    if np.any(off < 0):
        i, j = np.argwhere(off < 0)[0]
        raise ValueError(f"{name}[{i}, {j}] = {q[i, j]:.4g} < 0: off-diagonal rates must be >= 0.")
    scale = max(1.0, float(np.max(np.abs(np.diag(q)))))
    row_sums = q.sum(axis=1)
    if np.any(np.abs(row_sums) > atol * scale):
        i = int(np.argmax(np.abs(row_sums)))
        raise ValueError(
            f"row {i} of {name} sums to {row_sums[i]:.4g}, not 0: set the diagonal to minus "
            "the sum of the off-diagonal rates (rate_matrix_from_rates does this)."
        )
    return q


def _closed_classes(q: np.ndarray) -> list[np.ndarray]:
    """The closed communicating classes of a generator (those that no jump leaves)."""
    k = q.shape[0]
    reach = (q > 0) | np.eye(k, dtype=bool)
    for _ in range(max(1, int(np.ceil(np.log2(k))))):  # transitive closure by squaring
        reach = reach | ((reach.astype(np.int64) @ reach.astype(np.int64)) > 0)
    closed = []
    seen = np.zeros(k, bool)
    for i in range(k):
        if seen[i]:
            continue
        members = reach[i] & reach[:, i]
        seen |= members
        if not np.any(reach[i] & ~members):  # nothing outside the class is reachable
            closed.append(np.flatnonzero(members))
    return closed


def _check_stationary(rate_matrix, what: str, *, irreducible: bool = False) -> None:
    """A clear error, when the values are concrete, where ``what`` would be NaN or arbitrary."""
    if not _is_concrete(rate_matrix):
        return
    q = np.asarray(rate_matrix, dtype=float)
    if q.ndim != 2 or q.shape[0] != q.shape[1]:
        raise ValueError(f"rate_matrix must be a square (K, K) matrix, got shape {q.shape}.")
    if not np.all(np.isfinite(q)):
        raise ValueError("rate_matrix has non-finite entries; every rate must be finite.")
    if not np.any(q - np.diag(np.diag(q))):
        raise ValueError(
            f"rate_matrix is all zero (no state ever jumps), so {what} cannot be computed: "
            "every distribution is stationary. Give the process some positive off-diagonal rates."
        )
    closed = _closed_classes(q)
    if len(closed) > 1:
        shown = " and ".join(str(c.tolist()) for c in closed[:3])
        raise ValueError(
            f"rate_matrix has {len(closed)} closed classes of states ({shown}) that never "
            f"reach each other, so {what} cannot be computed: the stationary distribution is "
            "not unique. Add rates connecting them, or "
            "study each class on its own."
        )
    if irreducible and len(closed[0]) < q.shape[0]:
        transient = np.setdiff1d(np.arange(q.shape[0]), closed[0])
        raise ValueError(
            f"{what} needs an irreducible process, but states {transient.tolist()} are never "
            "visited in the long run (no jump leads back to them). Add rates back to them."
        )


def _check_initial(initial, num_states: int) -> np.ndarray:
    p = np.asarray(initial, dtype=float)
    if p.shape != (num_states,):
        raise ValueError(
            f"initial must be a probability vector of shape ({num_states},), got shape {p.shape}."
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0) or abs(p.sum() - 1.0) > 1e-5:
        raise ValueError(
            f"initial must be non-negative and sum to 1, got {p.tolist()} (sum {p.sum():.6g})."
        )
    return p


def rate_matrix_from_rates(rates: jax.Array) -> jax.Array:
    """A generator from a matrix of off-diagonal rates: the diagonal is set to minus the
    row sums (any diagonal input is ignored).

    Args:
        rates: ``(..., K, K)`` non-negative rates ``q_ij`` of jumps ``i -> j``.

    Returns:
        The ``(..., K, K)`` rate matrix with rows summing to zero.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.mjp import rate_matrix_from_rates
        >>> rate_matrix_from_rates(jnp.array([[0.0, 1.0], [2.0, 0.0]])).tolist()
        [[-1.0, 1.0], [2.0, -2.0]]
    """
    rates = jnp.asarray(rates)
    k = rates.shape[-1]
    off = rates * (1.0 - jnp.eye(k, dtype=rates.dtype))
    return off - jnp.eye(k, dtype=rates.dtype) * off.sum(-1, keepdims=True)


class MJP(eqx.Module):
    """A continuous-time Markov jump process on states ``0, ..., K-1``.

    Validated on construction (when given concrete arrays; under ``jit`` the fields are
    traced and taken as they are), so an invalid generator fails early with a message
    naming the argument. The module is a pytree: it can be passed through ``jit`` and
    ``vmap``.

    Attributes:
        rate_matrix: the ``(K, K)`` generator ``Q`` (off-diagonal rates ``q_ij >= 0``,
            rows summing to zero).
        initial: the ``(K,)`` distribution of the state at time 0.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.mjp import MJP
        >>> process = MJP(jnp.array([[-1.0, 1.0], [3.0, -3.0]]), jnp.array([1.0, 0.0]))
        >>> process.num_states
        2
    """

    rate_matrix: jax.Array
    initial: jax.Array

    def __init__(self, rate_matrix, initial=None):
        """Build and validate a process.

        Args:
            rate_matrix: ``(K, K)`` generator.
            initial: ``(K,)`` initial distribution (default: uniform).

        Raises:
            ValueError: an invalid generator or initial distribution (named).
        """
        if _is_concrete(rate_matrix):
            q = check_rate_matrix(rate_matrix)
            k = q.shape[0]
            if not np.any(q):
                raise ValueError(
                    "rate_matrix is all zero: no state ever jumps, so paths are constant and "
                    "the stationary distribution is undefined. Give the process some positive "
                    "off-diagonal rates (rate_matrix_from_rates sets the diagonal)."
                )
        else:
            k = rate_matrix.shape[-1]
        if initial is None:
            initial = jnp.full((k,), 1.0 / k)
        elif _is_concrete(initial):
            _check_initial(initial, k)
        self.rate_matrix = jnp.asarray(rate_matrix, dtype=jnp.result_type(float))
        self.initial = jnp.asarray(initial, dtype=jnp.result_type(float))

    @property
    def num_states(self) -> int:
        """``K``, the number of states."""
        return int(self.rate_matrix.shape[-1])

    def stationary_distribution(self) -> jax.Array:
        """See :func:`stationary_distribution`."""
        return stationary_distribution(self.rate_matrix)

    def mean_first_passage_times(self) -> jax.Array:
        """See :func:`mean_first_passage_times`."""
        return mean_first_passage_times(self.rate_matrix)

    def relaxation_times(self) -> jax.Array:
        """See :func:`relaxation_times`."""
        return relaxation_times(self.rate_matrix)

    def entropy_production_rate(self) -> jax.Array:
        """See :func:`entropy_production_rate`."""
        return entropy_production_rate(self.rate_matrix)

    def transition_matrix(self, dt) -> jax.Array:
        """``expm(Q dt)``, the probabilities ``P(X_{t+dt} = j | X_t = i)``."""
        return jax.scipy.linalg.expm(self.rate_matrix * dt)


def stationary_distribution(rate_matrix: jax.Array) -> jax.Array:
    """The stationary distribution ``pi`` with ``pi Q = 0``, ``sum(pi) = 1``.

    Solves the balance equations with one of them replaced by the normalisation; unique
    for an irreducible process.

    Args:
        rate_matrix: ``(K, K)`` generator.

    Returns:
        ``(K,)`` stationary probabilities.

    Raises:
        ValueError: (concrete input) an all-zero rate matrix, or one with more than one
            closed class of states: the stationary distribution is not unique.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.mjp import stationary_distribution
        >>> stationary_distribution(jnp.array([[-1.0, 1.0], [3.0, -3.0]])).tolist()
        [0.75, 0.25]
    """
    _check_stationary(rate_matrix, "the stationary distribution")
    q = jnp.asarray(rate_matrix)
    k = q.shape[-1]
    a = q.T.at[-1].set(jnp.ones(k, q.dtype))
    b = jnp.zeros(k, q.dtype).at[-1].set(1.0)
    return jnp.linalg.solve(a, b)


def mean_first_passage_times(rate_matrix: jax.Array) -> jax.Array:
    """Mean first-passage times ``m_ij``: the expected time to reach ``j`` from ``i``.

    Uses the fundamental matrix ``Z = (1 pi^T - Q)^{-1}``:
    ``m_ij = (Z_jj - Z_ij) / pi_j`` (``m_ii = 0``), valid for an irreducible process.

    Args:
        rate_matrix: ``(K, K)`` generator.

    Returns:
        ``(K, K)`` matrix of mean first-passage times.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.mjp import mean_first_passage_times
        >>> mean_first_passage_times(jnp.array([[-2.0, 2.0], [0.5, -0.5]])).round(3).tolist()
        [[0.0, 0.5], [2.0, 0.0]]
    """
    _check_stationary(rate_matrix, "mean first-passage times", irreducible=True)
    q = jnp.asarray(rate_matrix)
    k = q.shape[-1]
    pi = stationary_distribution(q)
    z = jnp.linalg.inv(jnp.outer(jnp.ones(k, q.dtype), pi) - q)
    return (jnp.diag(z)[None, :] - z) / pi[None, :]


def relaxation_times(rate_matrix: jax.Array) -> jax.Array:
    """Relaxation times ``-1 / Re(lambda_k)`` of the non-zero eigenvalues of ``Q``.

    The slowest mode first. Uses a general (non-symmetric) eigendecomposition, which
    JAX computes on CPU.

    Args:
        rate_matrix: ``(K, K)`` generator of an irreducible process.

    Returns:
        ``(K - 1,)`` relaxation times in decreasing order.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.mjp import relaxation_times
        >>> relaxation_times(jnp.array([[-1.0, 1.0], [3.0, -3.0]])).round(4).tolist()
        [0.25]
    """
    q = jnp.asarray(rate_matrix)
    rates = jnp.sort(-jnp.real(jnp.linalg.eigvals(q)))  # 0 first (the stationary mode)
    return 1.0 / rates[1:].astype(q.dtype)


def entropy_production_rate(rate_matrix: jax.Array) -> jax.Array:
    """Steady-state entropy production rate (Schnakenberg 1976), in units of ``k_B``.

    ``sigma = 1/2 sum_ij (pi_i q_ij - pi_j q_ji) log(pi_i q_ij / (pi_j q_ji))``: zero
    exactly when detailed balance holds, infinite when some jump ``i -> j`` has no reverse
    jump ``j -> i``.

    Args:
        rate_matrix: ``(K, K)`` generator of an irreducible process.

    Returns:
        A scalar, ``>= 0``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.mjp import entropy_production_rate
        >>> q = jnp.array([[-3.0, 2.0, 1.0], [1.0, -3.0, 2.0], [2.0, 1.0, -3.0]])
        >>> round(float(entropy_production_rate(q)), 4)  # (2 - 1) log 2 for a 3-cycle
        0.6931
    """
    _check_stationary(rate_matrix, "the entropy production rate")
    q = jnp.asarray(rate_matrix)
    k = q.shape[-1]
    pi = stationary_distribution(q)
    off = q * (1.0 - jnp.eye(k, dtype=q.dtype))
    flux = pi[:, None] * off
    reverse = flux.T
    both = (flux > 0) & (reverse > 0)
    one_sided = (flux > 0) & (reverse <= 0)
    safe = jnp.where(both, jnp.log(jnp.where(both, flux, 1.0) / jnp.where(both, reverse, 1.0)), 0)
    sigma = 0.5 * jnp.sum(jnp.where(both, (flux - reverse) * safe, 0.0))
    return jnp.where(jnp.any(one_sided), jnp.inf, sigma)
