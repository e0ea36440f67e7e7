"""Fractional Brownian motion and its Markov approximation by Ornstein-Uhlenbeck mixtures.

Fractional Brownian motion (fBM) ``B_H`` with Hurst index ``H`` in (0, 1) is not
Markov, so an SDE driven by it cannot be solved or conditioned with the usual tools.
Daems et al. (ICLR 2024, "Variational inference for SDEs driven by fractional noise"),
after Harms and Stefanovits (2019), write it as an integral over a continuum of
Ornstein-Uhlenbeck (OU) processes ``dY_g = -g Y_g dt + dW`` sharing ONE Brownian motion
``W``, and keep ``K`` of them:

``B_H(t) ~ sum_k w_k (Y_k(t) - Y_k(0))``   (type I: Mandelbrot-Van Ness fBM, stationary OU)
``B_H(t) ~ sum_k w_k Y_k(t)``               (type II: Riemann-Liouville fBM, ``Y_k(0) = 0``)

The rates ``g_k`` lie on a geometric grid and the weights ``w`` minimise the mean
squared error ``E int_0^T (B_H(t) - approximation(t))^2 dt``, a quadratic in ``w``
whose Gram matrix and cross terms are closed forms (incomplete gamma functions):
:func:`optimal_weights`. The weights are differentiable in ``H``, which is how the
Hurst index is learned (see :mod:`probkit.sde._latent`).

Normalisation. Type I is the standard fBM, ``Cov(B_H(s), B_H(t)) =
(s^2H + t^2H - |t - s|^2H) / 2``; type II is ``B_H(t) = int_0^t (t - s)^(H - 1/2) dW_s /
Gamma(H + 1/2)``, whose variance is ``t^2H / (2H Gamma(H + 1/2)^2)``.

Exact oracles: :func:`fbm_covariance` (closed forms, type II through a hypergeometric
function, in float64 NumPy) and :func:`sample_fbm` (Cholesky, or Davies-Harte circulant
embedding for type I on a regular grid).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probkit._checks import check_int, check_key

__all__ = [
    "MarkovFBM",
    "ou_rates",
    "optimal_weights",
    "markov_fbm",
    "markov_fbm_covariance",
    "fbm_covariance",
    "sample_fbm",
    "sample_markov_fbm",
    "stationary_ou_covariance",
]

FBMKind = Literal["I", "II"]

# Above this argument e^z Q(a, z) is evaluated by its asymptotic series (the product of a
# vanishing Q and an overflowing e^z is lost in float32 long before). With a in (0.5, 1.5)
# the n-th term is ~ n!/z^n, so 12 terms at z >= 25 leave a relative error below 1e-8.
_ASYMPTOTIC_FROM = 25.0
_ASYMPTOTIC_TERMS = 12


class MarkovFBM(NamedTuple):
    """A Markov (OU-mixture) approximation of fBM: rates, weights and what they were fit to.

    Attributes:
        hurst: the Hurst index ``H`` the weights were optimised for.
        rates: the OU mean-reversion rates ``g_k``, shape ``(K,)``.
        weights: the optimal weights ``w_k``, shape ``(K,)``.
        time_horizon: the ``T`` of the squared error ``int_0^T``.
        kind: ``"I"`` (Mandelbrot-Van Ness, stationary OU started at ``t = 0``) or
            ``"II"`` (Riemann-Liouville, OU started at zero).
    """

    hurst: jax.Array
    rates: jax.Array
    weights: jax.Array
    time_horizon: float
    kind: str


def _check_kind(kind: str) -> None:
    if kind not in ("I", "II"):
        raise ValueError(
            f"kind must be 'I' (Mandelbrot-Van Ness) or 'II' (Riemann-Liouville), got {kind!r}."
        )


def _check_hurst(hurst) -> None:
    # Only concrete values can be checked; traced ones (learning H) are the caller's business.
    try:
        h = float(hurst)
    except (TypeError, jax.errors.ConcretizationTypeError):
        return
    if not 0.0 < h < 1.0:
        raise ValueError(f"hurst must lie in the open interval (0, 1), got {h}.")


def ou_rates(
    num_components: int,
    time_horizon: float = 1.0,
    ratio: float = 5.0,
    gamma_max: float | None = None,
) -> jax.Array:
    """A geometric grid of ``num_components`` OU rates, centred (geometrically) on ``1/T``.

    ``g_k = ratio^(k - (K + 1)/2) / T`` for ``k = 1..K``. With ``gamma_max`` the grid is
    the paper's instead, ``[1/gamma_max, gamma_max]`` whatever ``K`` and ``T``. A fixed
    ratio widens the grid as ``K`` grows, which is what makes the error fall with ``K``;
    an explicit Euler step ``dt`` needs ``dt * max(rates) < 1``.

    Example:
        >>> from probkit.sde import ou_rates
        >>> [round(float(g), 3) for g in ou_rates(3, ratio=4.0)]
        [0.25, 1.0, 4.0]
    """
    if not isinstance(num_components, int | np.integer) or num_components < 1:
        raise ValueError(f"num_components must be a positive int, got {num_components!r}.")
    if not time_horizon > 0:
        raise ValueError(f"time_horizon must be positive, got {time_horizon}.")
    k = np.arange(1, num_components + 1) - (num_components + 1) / 2
    if gamma_max is not None:
        if not gamma_max > 1 or num_components < 2:
            raise ValueError("gamma_max must exceed 1 and needs num_components >= 2.")
        ratio = gamma_max ** (2.0 / (num_components - 1))
        return jnp.asarray(ratio**k, jnp.float32)
    if not ratio > 1:
        raise ValueError(f"ratio must exceed 1 (the grid's geometric spacing), got {ratio}.")
    return jnp.asarray(ratio**k / time_horizon, jnp.float32)


def _exp_gammaincc(a: float, z: np.ndarray) -> np.ndarray:
    """``e^z Q(a, z)`` (regularised upper incomplete gamma), stable for large ``z``."""
    from scipy import special

    z = np.asarray(z, np.float64)
    large = z >= _ASYMPTOTIC_FROM
    z_small = np.where(large, 1.0, z)
    z_large = np.where(large, z, _ASYMPTOTIC_FROM)
    small_value = np.exp(z_small) * special.gammaincc(a, z_small)
    term, total = np.ones_like(z_large), np.ones_like(z_large)
    for n in range(1, _ASYMPTOTIC_TERMS + 1):
        term = term * (a - n) / z_large
        total = total + term
    large_value = z_large ** (a - 1) * total / special.gamma(a)
    return np.where(large, large_value, small_value)


def stationary_ou_covariance(rates: jax.Array) -> jax.Array:
    """``Cov(Y_i, Y_j) = 1 / (g_i + g_j)`` of stationary OU processes driven by one ``W``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import stationary_ou_covariance
        >>> stationary_ou_covariance(jnp.array([1.0, 3.0])).tolist()
        [[0.5, 0.25], [0.25, 0.1666666716337204]]
    """
    rates = jnp.asarray(rates)
    return 1.0 / (rates[:, None] + rates[None, :])


def _gram(rates: np.ndarray, big_t: float, kind: str) -> np.ndarray:
    """Gram matrix ``A_ij = int_0^T E[Z_i(t) Z_j(t)] dt`` of the OU terms (float64)."""
    gi, gj = rates[None, :], rates[:, None]
    s = gi + gj
    if kind == "I":
        # Z_k = Y_k(t) - Y_k(0) with stationary Y: E[Z_i Z_j](t) = (2 - e^-g_i t - e^-g_j t) / s.
        return (2 * big_t + np.expm1(-gi * big_t) / gi + np.expm1(-gj * big_t) / gj) / s
    # Z_k = Y_k(t), Y_k(0) = 0: E[Z_i Z_j](t) = (1 - e^{-s t}) / s.
    return (big_t + np.expm1(-s * big_t) / s) / s


def _cross(hurst: float, rates: np.ndarray, big_t: float, kind: str) -> np.ndarray:
    """Cross terms ``b_k = int_0^T E[B_H(t) Z_k(t)] dt`` (float64)."""
    from scipy import special

    g = rates
    a = hurst + 0.5
    gt = g * big_t
    if kind == "I":
        # E[B_H(t) Z_k(t)] = c_H Gamma(a) g^-a (2 - e^{-g t} - e^{g t} Q(a, g t)), where
        # c_H Gamma(a) = sqrt(Gamma(2H + 1) sin(pi H)) makes Var B_H(t) = t^2H; integrated
        # in t with d/dz[e^z Q(a, z)] = e^z Q(a, z) - z^(a-1)/Gamma(a).
        scale = np.sqrt(special.gamma(2 * hurst + 1) * np.sin(np.pi * hurst))
        return scale * (
            2 * big_t * g**-a
            - big_t**a / (g * special.gamma(a + 1))
            + (np.exp(-gt) - _exp_gammaincc(a, gt)) / g ** (a + 1)
        )
    # E[B_H(t) Y_k(t)] = g^-a P(a, g t); int_0^T P(a, g t) dt = T P(a, gT) - a/g P(a+1, gT).
    return g**-a * (big_t * special.gammainc(a, gt) - a / g * special.gammainc(a + 1, gt))


# The Gram matrix is Hilbert-like: its condition number grows geometrically with K
# (1e4 at K = 6, 1e8 at K = 10 on the default grid), beyond what float32 resolves. The
# weights are therefore computed in float64 NumPy, and H enters JAX through a callback
# whose derivative is A^-1 db/dH (A does not depend on H), by central differences in
# float64. Eigen-directions of A below _RCOND times its largest eigenvalue carry no
# squared error worth fitting and are dropped (a pseudo-inverse), which keeps w bounded.
_RCOND = 1e-13
_DH = 1e-6


def _weights64(hurst: float, rates: np.ndarray, big_t: float, kind: str):
    gram = _gram(rates, big_t, kind)
    vals, vecs = np.linalg.eigh(gram)
    keep = vals > _RCOND * vals.max()
    pinv = (vecs[:, keep] / vals[keep]) @ vecs[:, keep].T
    weights = pinv @ _cross(hurst, rates, big_t, kind)
    dh = min(_DH, hurst / 2, (1 - hurst) / 2)
    db = (_cross(hurst + dh, rates, big_t, kind) - _cross(hurst - dh, rates, big_t, kind)) / (
        2 * dh
    )
    return weights, pinv @ db


def optimal_weights(
    hurst,
    rates: jax.Array,
    time_horizon: float = 1.0,
    kind: FBMKind = "I",
) -> jax.Array:
    """Weights minimising ``E int_0^T (B_H(t) - sum_k w_k Z_k(t))^2 dt`` (Daems et al., 2024).

    The minimiser solves ``A w = b``: ``A`` is the OU terms' Gram matrix, ``b`` their
    cross-covariance with fBM, both closed forms (``Z_k = Y_k(t) - Y_k(0)`` for type I,
    ``Y_k(t)`` for type II). ``A`` is badly conditioned, so the solve runs in float64
    (NumPy, through ``jax.pure_callback``); ``hurst`` may be a traced value, and the
    result is differentiable in it (``dw/dH = A^-1 db/dH``). ``rates`` must be concrete.

    Example:
        >>> from probkit.sde import optimal_weights, ou_rates
        >>> w = optimal_weights(0.5, ou_rates(4), kind="II")
        >>> w.shape
        (4,)
    """
    _check_kind(kind)
    _check_hurst(hurst)
    try:
        rates64 = np.asarray(rates, np.float64)
    except (TypeError, jax.errors.TracerArrayConversionError) as err:
        raise TypeError(
            "rates must be concrete (a fixed grid, e.g. ou_rates(K)); only hurst may be traced."
        ) from err
    if rates64.ndim != 1 or np.any(rates64 <= 0):
        raise ValueError("rates must be a 1-D array of positive OU rates.")
    big_t = float(time_horizon)
    if not big_t > 0:
        raise ValueError(f"time_horizon must be positive, got {time_horizon}.")
    out_type = jax.ShapeDtypeStruct(rates64.shape, jnp.float32)

    def host(h):
        w, dw = _weights64(float(h), rates64, big_t, kind)
        return w.astype(np.float32), dw.astype(np.float32)

    @jax.custom_jvp
    def weights_of(h):
        return jax.pure_callback(host, (out_type, out_type), h, vmap_method="sequential")[0]

    @weights_of.defjvp
    def _jvp(primals, tangents):
        (h,), (dh,) = primals, tangents
        w, dw = jax.pure_callback(host, (out_type, out_type), h, vmap_method="sequential")
        return w, dw * dh

    return weights_of(jnp.asarray(hurst, jnp.float32))


def markov_fbm(
    hurst,
    num_components: int = 5,
    time_horizon: float = 1.0,
    kind: FBMKind = "I",
    ratio: float = 5.0,
    gamma_max: float | None = None,
) -> MarkovFBM:
    """The Markov approximation (MA-fBM) of fBM with ``num_components`` OU processes.

    Rates from :func:`ou_rates`, weights from :func:`optimal_weights`.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import markov_fbm, markov_fbm_covariance
        >>> approx = markov_fbm(0.5, num_components=8)
        >>> t = jnp.array([0.5, 1.0])
        >>> [round(float(v), 2) for v in jnp.diag(markov_fbm_covariance(approx, t, t))]
        [0.5, 1.0]
    """
    _check_kind(kind)
    _check_hurst(hurst)
    rates = ou_rates(num_components, time_horizon, ratio=ratio, gamma_max=gamma_max)
    weights = optimal_weights(hurst, rates, time_horizon, kind)
    return MarkovFBM(jnp.asarray(hurst), rates, weights, float(time_horizon), kind)


def _ou_cross(rates, s, t, kind):
    """``E[Y_i(s) Y_j(t)]`` for all ``i, j`` and grid points: shape ``(S, T, K, K)``."""
    g_i = rates[:, None]
    g_j = rates[None, :]
    s = s[:, None, None, None]
    t = t[None, :, None, None]
    total = g_i + g_j
    # Y_i(s) Y_j(t): the later one has decayed from the earlier one's time.
    later_s = jnp.exp(-g_i * jnp.maximum(s - t, 0.0))
    later_t = jnp.exp(-g_j * jnp.maximum(t - s, 0.0))
    if kind == "I":
        return later_s * later_t / total
    first = jnp.minimum(s, t)
    return later_s * later_t * (-jnp.expm1(-total * first)) / total


def markov_fbm_covariance(approx: MarkovFBM, s: jax.Array, t: jax.Array) -> jax.Array:
    """``Cov(B(s_i), B(t_j))`` of the Markov approximation, exactly (closed form).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.sde import markov_fbm, markov_fbm_covariance
        >>> markov_fbm_covariance(markov_fbm(0.3), jnp.ones(1), jnp.ones(1)).shape
        (1, 1)
    """
    s = jnp.atleast_1d(jnp.asarray(s, jnp.float32))
    t = jnp.atleast_1d(jnp.asarray(t, jnp.float32))
    w = approx.weights
    ww = w[:, None] * w[None, :]
    cross = _ou_cross(approx.rates, s, t, approx.kind)
    if approx.kind == "I":
        zero = jnp.zeros(1, s.dtype)
        cross = (
            cross
            - _ou_cross(approx.rates, s, zero, "I")
            - _ou_cross(approx.rates, zero, t, "I")
            + _ou_cross(approx.rates, zero, zero, "I")
        )
    return jnp.einsum("stij,ij->st", cross, ww)


def fbm_covariance(hurst: float, s, t, kind: FBMKind = "I") -> np.ndarray:
    """The exact covariance ``Cov(B_H(s_i), B_H(t_j))`` in float64 (NumPy): the oracle.

    Type I: ``(s^2H + t^2H - |t - s|^2H) / 2``. Type II (Riemann-Liouville):
    ``s^a t^(a-1) 2F1(1 - a, 1; 1 + a; s/t) / (a Gamma(a)^2)`` for ``s <= t``, ``a = H + 1/2``.

    Example:
        >>> from probkit.sde import fbm_covariance
        >>> float(fbm_covariance(0.5, [1.0], [2.0])[0, 0])
        1.0
    """
    from scipy import special

    _check_kind(kind)
    _check_hurst(hurst)
    s = np.atleast_1d(np.asarray(s, np.float64))[:, None]
    t = np.atleast_1d(np.asarray(t, np.float64))[None, :]
    if kind == "I":
        h2 = 2 * hurst
        return 0.5 * (np.abs(s) ** h2 + np.abs(t) ** h2 - np.abs(t - s) ** h2)
    a = hurst + 0.5
    lo, hi = np.minimum(s, t), np.maximum(s, t)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(hi > 0, lo / np.where(hi > 0, hi, 1.0), 0.0)
        value = (
            lo**a
            * np.where(hi > 0, hi, 1.0) ** (a - 1)
            * special.hyp2f1(1 - a, 1.0, 1 + a, ratio)
            / (a * special.gamma(a) ** 2)
        )
    return np.where(lo > 0, value, 0.0)


def _davies_harte(key, hurst, num_steps, num_paths):
    """Exact fractional Gaussian noise (unit steps) by circulant embedding."""
    k = jnp.arange(num_steps + 1, dtype=jnp.float32)
    h2 = 2 * hurst
    acov = 0.5 * (jnp.abs(k + 1) ** h2 - 2 * k**h2 + jnp.abs(k - 1) ** h2)
    row = jnp.concatenate([acov, acov[-2:0:-1]])  # length 2n
    eig = jnp.fft.fft(row).real
    # The embedding of fGn is non-negative definite for every H (Craigmile 2003); clip
    # float32 round-off only.
    eig = jnp.maximum(eig, 0.0)
    m = row.shape[0]
    z = jax.random.normal(key, (num_paths, 2, m))
    w = jnp.fft.fft((z[:, 0] + 1j * z[:, 1]) * jnp.sqrt(eig / m), axis=-1)
    return w.real[:, :num_steps]


def sample_fbm(
    key: jax.Array,
    hurst: float,
    times,
    num_paths: int,
    kind: FBMKind = "I",
    method: Literal["cholesky", "davies-harte"] = "cholesky",
) -> jax.Array:
    """Exact fBM paths ``B_H(times)``, shape ``(num_paths, len(times))``: the oracle.

    ``"cholesky"`` factorises :func:`fbm_covariance` (float64, any positive times, both
    kinds, O(n^3)); ``"davies-harte"`` embeds fractional Gaussian noise in a circulant
    matrix (type I only, ``times`` a regular grid ``dt, 2 dt, ...``, O(n log n)).

    Example:
        >>> import jax, numpy as np
        >>> from probkit.sde import sample_fbm
        >>> paths = sample_fbm(jax.random.key(0), 0.7, np.linspace(0.1, 1, 10), 16_000)
        >>> round(float(paths[:, -1].var()), 1)
        1.0
    """
    check_key(key)
    num_paths = check_int(num_paths, "num_paths")
    _check_kind(kind)
    _check_hurst(hurst)
    times_np = np.asarray(times, np.float64)
    if times_np.ndim != 1 or times_np.size == 0 or np.any(times_np <= 0):
        raise ValueError("times must be a non-empty 1-D array of positive times (B_H(0) = 0).")
    if method == "cholesky":
        cov = fbm_covariance(hurst, times_np, times_np, kind)
        chol = np.linalg.cholesky(cov + 1e-12 * np.eye(len(times_np)))
        z = jax.random.normal(key, (num_paths, len(times_np)))
        return z @ jnp.asarray(chol.T, jnp.float32)
    if method == "davies-harte":
        if kind != "I":
            raise ValueError("method='davies-harte' samples type I fBM only; use 'cholesky'.")
        dt = times_np[0]
        if not np.allclose(times_np, dt * np.arange(1, len(times_np) + 1), rtol=1e-5):
            raise ValueError("method='davies-harte' needs times = dt, 2 dt, ..., n dt.")
        noise = _davies_harte(key, float(hurst), len(times_np), num_paths)
        return jnp.cumsum(noise, axis=-1) * dt**hurst
    raise ValueError(f"method must be 'cholesky' or 'davies-harte', got {method!r}.")


def _psd_sqrt(cov: jax.Array) -> jax.Array:
    """A square root ``L L^T = cov`` of a (numerically) singular covariance."""
    # The OU increments over a short step are nearly perfectly correlated (one shared W):
    # Cholesky fails in float32, the symmetric root with clipped eigenvalues does not.
    vals, vecs = jnp.linalg.eigh(cov)
    return vecs * jnp.sqrt(jnp.maximum(vals, 0.0))


def sample_markov_fbm(
    key: jax.Array, approx: MarkovFBM, times, num_paths: int
) -> tuple[jax.Array, jax.Array]:
    """Exact paths of the Markov approximation on ``times`` (no time-stepping error).

    The OU components move by their exact Gaussian transitions (correlated through the
    shared Brownian motion). Returns ``(B, Y)`` of shapes ``(num_paths, n)`` and
    ``(num_paths, n, K)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import markov_fbm, sample_markov_fbm
        >>> times = jnp.linspace(0.1, 1, 10)
        >>> b, y = sample_markov_fbm(jax.random.key(0), markov_fbm(0.3), times, 3)
        >>> b.shape, y.shape
        ((3, 10), (3, 10, 5))
    """
    check_key(key)
    num_paths = check_int(num_paths, "num_paths")
    times = jnp.asarray(times, jnp.float32)
    if times.ndim != 1:
        raise ValueError("times must be a 1-D array.")
    rates = approx.rates
    k = rates.shape[0]
    total = rates[:, None] + rates[None, :]
    key_init, key_steps = jax.random.split(key)
    if approx.kind == "I":
        y0 = jax.random.normal(key_init, (num_paths, k)) @ _psd_sqrt(1.0 / total).T
    else:
        y0 = jnp.zeros((num_paths, k))
    dts = jnp.diff(jnp.concatenate([jnp.zeros(1), times]))

    def step(y, inputs):
        dt, step_key = inputs
        root = _psd_sqrt(-jnp.expm1(-total * dt) / total)
        y = jnp.exp(-rates * dt) * y + jax.random.normal(step_key, (num_paths, k)) @ root.T
        return y, y

    keys = jax.random.split(key_steps, times.shape[0])
    _, ys = jax.lax.scan(step, y0, (dts, keys))
    ys = jnp.moveaxis(ys, 0, 1)
    base = y0[:, None, :] if approx.kind == "I" else 0.0
    return (ys - base) @ approx.weights, ys
