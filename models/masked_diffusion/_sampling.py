"""Samplers of masked diffusion: first-hitting, step-wise (with caching), guidance.

A denoiser is any callable ``x -> logits`` on ONE sequence ``x`` of shape ``(L,)``
(token ids in ``[0, V)``, mask token ``V``) returning ``(L, V)`` logits of the clean
tokens given the revealed ones; its time-free form is the conditional of clean data
(Ou et al. 2024), so no time enters. Every sampler starts from ``x_init`` (masked
where tokens are to be generated): all-mask for unconditional generation, a prefix or
any pattern of revealed tokens for conditional generation and infilling.

* :func:`first_hitting_loop` (Zheng et al. 2024): in the reverse process each masked
  token is revealed at an independent time; with ``n`` masked tokens at time ``t`` the
  next reveal happens at ``tau`` with ``1 - alpha(tau) = (1 - alpha(t)) u**(1/n)``
  (:func:`first_hitting_times`), at a uniformly chosen masked position, with its value
  drawn from the denoiser. With a time-free denoiser the times do not change the law:
  the sampler reveals the tokens one by one in a uniformly random order, one network
  call per token, and is exact in distribution (for the exact denoiser it draws the
  data distribution exactly). ``tokens_per_call=k`` reveals ``k`` tokens per call,
  each from its own marginal given the revealed tokens: the ``k`` tokens are drawn
  independently although the data may couple them, which biases the draws unless they
  are conditionally independent (the bias grows with ``k`` and with the dependence).
* :func:`stepwise_loop`: ancestral sampling on a grid of ``T`` steps from ``t = 1`` to
  0 as in MDLM: each masked token is revealed in the step ``t -> s`` with probability
  ``(alpha(s) - alpha(t)) / (1 - alpha(t))`` (``"ancestral"``, the exact transition of
  the reverse process) or ``w(t) (t - s)`` (``"tau_leaping"``, its first-order form),
  the revealed value and the "stay masked" event drawn jointly from one categorical.
  Tokens revealed in the same step are drawn independently: the error shrinks as
  ``T`` grows. With ``cache=True`` the network is called only when the sequences
  changed since the last call (Ou et al. 2024): a time-free network's output depends
  on nothing else, so the draws are identical with and without the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial
from probkit.models.masked_diffusion._categorical import Precision, categorical, check_precision
from probkit.models.masked_diffusion._schedules import MaskingSchedule, get_schedule

from probkit._checks import _as_integer, check_key
from probkit._repr import summary_repr
from probkit._threefry import cpu_fast_key

__all__ = [
    "SampleResult",
    "first_hitting_loop",
    "stepwise_loop",
    "first_hitting_times",
    "classifier_free_guidance",
]

Denoiser = Callable[[jax.Array], jax.Array]


class SampleResult(NamedTuple):
    """Generated sequences and the network calls spent on them.

    Attributes:
        sequences: shape ``(n, L)``, int32, no mask tokens left.
        num_network_calls: batched calls of the denoiser (one evaluates every chain).
        calls_per_chain: calls a sampler running that chain alone would make, ``(n,)``
            (with the cache: the steps at which that chain had changed).
    """

    sequences: jax.Array
    num_network_calls: jax.Array
    calls_per_chain: jax.Array

    def __repr__(self) -> str:
        return summary_repr(self)


def _log_probs(denoiser: Denoiser, x: jax.Array) -> jax.Array:
    """Normalised float32 log-probabilities of the denoiser on a batch ``x (n, L)``.

    Under a float64 sampling scope the network is still traced with 64-bit types off,
    so its own arrays (defaults included) stay float32: only the categorical draws are
    float64.
    """
    with jax.enable_x64(False):
        logits = jax.vmap(denoiser)(x.astype(jnp.int32)).astype(jnp.float32)
        return jax.nn.log_softmax(logits, axis=-1)


def first_hitting_loop(
    key: jax.Array,
    denoiser: Denoiser,
    x_init: jax.Array,
    *,
    mask_token: int,
    tokens_per_call: int = 1,
    precision: Precision = "float64",
) -> SampleResult:
    """The first-hitting sampler from ``x_init`` (pure, jittable; see the module doc).

    Args:
        key: a ``jax.random`` key.
        denoiser: ``x (L,) -> logits (L, V)``.
        x_init: int array ``(n, L)``; ``mask_token`` where tokens are to be generated.
        mask_token: the mask id ``V``.
        tokens_per_call: tokens revealed per network call (1: exact; more: faster and
            biased, see the module doc).
        precision: of the categorical draws (see :func:`categorical`).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.masked_diffusion import first_hitting_loop
        >>> uniform = lambda x: jnp.zeros((x.shape[0], 3))
        >>> out = first_hitting_loop(jax.random.key(0), uniform, jnp.full((2, 4), 3),
        ...                          mask_token=3, precision="float32")
        >>> out.sequences.shape, int(out.num_network_calls)
        ((2, 4), 4)
    """
    check_key(key)
    n, length = x_init.shape
    k = int(tokens_per_call)
    key_order, key_loop = jax.random.split(cpu_fast_key(key))
    masked = x_init == mask_token
    # A uniformly random order of the masked positions: ranks of uniform priorities.
    priority = jnp.where(masked, jax.random.uniform(key_order, (n, length)), 2.0)
    rank = jnp.argsort(jnp.argsort(priority, axis=1), axis=1)
    num_calls = -(-length // k)

    def body(carry, inputs):
        x, calls, per_chain = carry
        key, j = inputs
        active = (rank >= j * k) & (rank < (j + 1) * k) & (x == mask_token)

        def reveal(x):
            tokens = categorical(key, _log_probs(denoiser, x), precision)
            return jnp.where(active, tokens, x)

        # Skip the call when no chain has a token left to reveal (prompts, k > 1).
        any_active = jnp.any(active)
        x = jax.lax.cond(any_active, reveal, lambda x: x, x)
        return (x, calls + any_active, per_chain + jnp.any(active, axis=1)), None

    keys = jax.random.split(key_loop, num_calls)
    init = (x_init, jnp.zeros((), jnp.int32), jnp.zeros((n,), jnp.int32))
    (x, calls, per_chain), _ = jax.lax.scan(body, init, (keys, jnp.arange(num_calls)))
    return SampleResult(x, calls, per_chain)


def stepwise_loop(
    key: jax.Array,
    denoiser: Denoiser,
    x_init: jax.Array,
    *,
    mask_token: int,
    num_steps: int,
    schedule: str | MaskingSchedule = "linear",
    method: str = "ancestral",
    cache: bool = True,
    precision: Precision = "float64",
) -> SampleResult:
    """Step-wise ancestral / tau-leaping sampling on ``num_steps`` uniform steps (pure).

    Args:
        key: a ``jax.random`` key.
        denoiser: ``x (L,) -> logits (L, V)``.
        x_init: int array ``(n, L)``; ``mask_token`` where tokens are to be generated.
        mask_token: the mask id ``V``.
        num_steps: ``T``, steps of the grid ``t_j = 1 - j / T``.
        schedule: the masking schedule (name or :class:`MaskingSchedule`).
        method: ``"ancestral"`` (exact transition per step) or ``"tau_leaping"``.
        cache: call the network only when some sequence changed since the last call.
        precision: of the joint "reveal which token or stay masked" categorical.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.masked_diffusion import stepwise_loop
        >>> uniform = lambda x: jnp.zeros((x.shape[0], 3))
        >>> out = stepwise_loop(jax.random.key(0), uniform, jnp.full((2, 4), 3),
        ...                     mask_token=3, num_steps=100, precision="float32")
        >>> out.sequences.shape, int(out.num_network_calls) <= 8
        ((2, 4), True)
    """
    check_key(key)
    schedule = get_schedule(schedule)
    n, _ = x_init.shape
    times = 1.0 - jnp.arange(num_steps + 1, dtype=jnp.float32) / num_steps
    t, s = times[:-1], times[1:]
    if method == "ancestral":
        alpha_t, alpha_s = schedule.alpha(t), schedule.alpha(s)
        reveal_prob = (alpha_s - alpha_t) / (1.0 - alpha_t)
    else:
        reveal_prob = jnp.minimum(schedule.weight(t) * (t - s), 1.0)
    reveal_prob = reveal_prob.at[-1].set(1.0)  # at t = 0 every token is clean
    v = mask_token

    def body(carry, inputs):
        x, log_p, stale, calls, per_chain = carry
        key, p = inputs
        changed = jnp.any(stale)
        if cache:
            log_p = jax.lax.cond(changed, lambda: _log_probs(denoiser, x), lambda: log_p)
            calls, per_chain = calls + changed, per_chain + stale
        else:
            log_p = _log_probs(denoiser, x)
            calls, per_chain = calls + 1, per_chain + 1
        # One categorical over V tokens and "stay masked" (index V), as in MDLM: this is
        # where float32 Gumbel noise truncates the rare tokens.
        stay = jnp.broadcast_to(jnp.log1p(-p), log_p.shape[:-1] + (1,))
        joint = jnp.concatenate([log_p + jnp.log(p), stay], axis=-1)
        draw = categorical(key, joint, precision)
        new = jnp.where((x == v) & (draw < v), draw, x)
        # A new call is due once something changed, unless nothing is left to reveal.
        stale = jnp.any(new != x, axis=1) & jnp.any(new == v, axis=1)
        return (new, log_p, stale, calls, per_chain), None

    keys = jax.random.split(cpu_fast_key(key), num_steps)
    log_p0 = jnp.zeros(x_init.shape + (mask_token,), jnp.float32)
    init = (
        x_init,
        log_p0,
        jnp.ones((n,), bool),
        jnp.zeros((), jnp.int32),
        jnp.zeros((n,), jnp.int32),
    )
    (x, _, _, calls, per_chain), _ = jax.lax.scan(body, init, (keys, reveal_prob))
    return SampleResult(x, calls, per_chain)


def first_hitting_times(
    key: jax.Array, num_masked: int, schedule: str | MaskingSchedule = "linear"
) -> jax.Array:
    """The reveal times ``1 > tau_1 > ... > tau_n > 0`` of ``n`` tokens masked at ``t = 1``.

    Given ``m`` masked tokens at time ``t``, each stays masked until ``s < t`` with
    probability ``(1 - alpha(s)) / (1 - alpha(t))``, independently, so the first of them
    is revealed at ``tau`` with ``1 - alpha(tau) = (1 - alpha(t)) u**(1/m)``. The
    first-hitting sampler needs these times only for a time-conditioned network.

    Example:
        >>> import jax
        >>> from probkit.models.masked_diffusion import first_hitting_times
        >>> tau = first_hitting_times(jax.random.key(0), 5)
        >>> tau.shape, bool((tau[1:] < tau[:-1]).all())
        ((5,), True)
    """
    check_key(key)
    schedule = get_schedule(schedule)
    u = jax.random.uniform(key, (num_masked,), minval=1e-30)
    remaining = jnp.arange(num_masked, 0, -1, dtype=jnp.float32)
    # log(1 - alpha(tau_j)) = log(1 - alpha(1)) + sum_{i <= j} log(u_i) / m_i
    log_masked = jnp.log1p(-schedule.alpha(1.0)) + jnp.cumsum(jnp.log(u) / remaining)
    return schedule.time_at(-jnp.expm1(log_masked))


def _guided(denoiser, prompt_mask, scale, mask_token, x):
    conditional = jax.nn.log_softmax(denoiser(x).astype(jnp.float32), axis=-1)
    unconditional = jax.nn.log_softmax(
        denoiser(jnp.where(prompt_mask, mask_token, x)).astype(jnp.float32), axis=-1
    )
    return (1.0 + scale) * conditional - scale * unconditional


def classifier_free_guidance(
    denoiser: Denoiser, prompt_mask: jax.Array, scale: float, *, mask_token: int
) -> Partial:
    """Unsupervised classifier-free guidance of a masked denoiser (Nie et al. 2025).

    The guided logits are ``(1 + w) log p(x_0 | x) - w log p(x_0 | x with the prompt
    masked)``: the same network conditioned on the prompt and on nothing, so no extra
    training is needed. ``w = 0`` is the plain denoiser; ``w > 0`` sharpens the
    dependence on the prompt (the draws then follow ``p(x | c) (p(c | x))**w``
    approximately, not the data law).

    Args:
        denoiser: ``x (L,) -> logits (L, V)``.
        prompt_mask: bool ``(L,)``, the prompt positions.
        scale: the guidance weight ``w >= 0``.
        mask_token: the mask id ``V``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.masked_diffusion import classifier_free_guidance
        >>> den = lambda x: jnp.zeros((x.shape[0], 3))
        >>> g = classifier_free_guidance(den, jnp.array([True, False]), 1.5, mask_token=3)
        >>> g(jnp.array([0, 3])).shape
        (2, 3)
    """
    if not scale >= 0.0:
        raise ValueError(f"scale must be >= 0, got {scale!r}.")
    return Partial(_guided, denoiser, jnp.asarray(prompt_mask, bool), float(scale), mask_token)


def check_sampler_arguments(
    x_init, mask_token, tokens_per_call=1, num_steps=1, precision="float64"
):
    """Validation shared by the drivers (before any compilation)."""
    check_precision(precision)
    if x_init.ndim != 2:
        raise ValueError(f"x_init must have shape (num_samples, length), got {x_init.shape}.")
    if _as_integer(mask_token) is None:
        raise ValueError(f"mask_token must be an int (the vocabulary size), got {mask_token!r}.")
    if int(mask_token) < 1:
        raise ValueError(
            f"mask_token must be >= 1: it is the vocabulary size V (tokens are 0 .. V-1 and "
            f"the mask is V), got {mask_token}."
        )
    if int(jnp.min(x_init)) < 0 or int(jnp.max(x_init)) > mask_token:
        raise ValueError(
            f"x_init must hold tokens in [0, {mask_token}) and the mask token {mask_token}."
        )
    for name, value in (("tokens_per_call", tokens_per_call), ("num_steps", num_steps)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
