"""Energy-based correction of masked diffusion (EDLM, Xu et al. 2025) on probkit's SMC.

A masked denoiser proposes the clean sequence factorised over positions,
``q(x_0 | x_t) = prod_i p(x_0^i | x_t)``, which ignores the dependence between the
tokens revealed together. EDLM corrects each denoising step with a residual energy
``E`` on full sequences: the step's target is ``q(x_0 | x_t) exp(-E(x_0)) / Z(x_t)``.
Sampling it by importance sampling is a one-step Feynman-Kac model handed to
:func:`probkit.smc.loop`: ``K`` candidates ``x_0 ~ q(. | x_t)`` (``init``) weighted by
``G = exp(-E(x_0))`` (``log_potential``); one candidate is then drawn by its
normalised weight, and the step reveals each masked token with probability
``(alpha(s) - alpha(t)) / (1 - alpha(t))``, taking its value from that candidate (the
posterior ``q(x_s | x_t, x_0)``).

With ``proposal_correction=True`` the weight is ``exp(-E(x_0)) / q(x_0 | x_t)`` and
the step's target becomes ``exp(-E(x_0))`` restricted to the revealed tokens: with
``E = -log p_AR`` of an autoregressive model (EDLM's "AR" energy) each step draws from
``p_AR(x_0 | revealed tokens)``, whatever the denoiser. The correction is
self-normalised importance sampling: exact as ``K -> infinity``, biased by ``O(1/K)``
for finite ``K``. EDLM applies it in the early (high-noise) steps only, where tokens
are revealed from the least information: ``correct_above`` sets that time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from probkit.models.masked_diffusion._categorical import Precision, categorical
from probkit.models.masked_diffusion._sampling import _log_probs
from probkit.models.masked_diffusion._schedules import MaskingSchedule, get_schedule

from probkit._checks import check_key
from probkit._repr import summary_repr
from probkit._threefry import cpu_fast_key

__all__ = ["EnergyCorrectedResult", "energy_corrected_loop", "step_feynman_kac"]

Denoiser = Callable[[jax.Array], jax.Array]
Energy = Callable[[jax.Array], jax.Array]


class EnergyCorrectedResult(NamedTuple):
    """Sequences drawn with the energy correction and its diagnostics.

    Attributes:
        sequences: ``(n, L)``, int32.
        ess: effective sample size of the ``K`` candidates' weights per step and chain,
            ``(num_steps, n)`` (1 in the steps left uncorrected by ``correct_above``,
            which draw one candidate).
        log_normaliser: SMC's estimate of ``log E_q[exp(-E)]`` per step and chain (0
            in uncorrected steps).
        num_network_calls: denoiser calls (batched over chains).
    """

    sequences: jax.Array
    ess: jax.Array
    log_normaliser: jax.Array
    num_network_calls: jax.Array

    def __repr__(self) -> str:
        return summary_repr(self)


def _candidates(log_p, x, mask_token, precision, key, num):
    tokens = categorical(key, jnp.broadcast_to(log_p, (num,) + log_p.shape), precision)
    return jnp.where(x == mask_token, tokens, x)


def _log_weight(energy, log_p, x, mask_token, proposal_correction, t, previous, x0):
    del t, previous
    with jax.enable_x64(False):  # the energy's own arithmetic stays float32
        log_g = -jax.vmap(energy)(x0.astype(jnp.int32)).astype(jnp.float32)
    if proposal_correction:
        token_log_p = jnp.take_along_axis(log_p[None], x0[..., None], axis=-1)[..., 0]
        log_g = log_g - jnp.sum(jnp.where(x == mask_token, token_log_p, 0.0), axis=-1)
    return log_g


def step_feynman_kac(
    log_probs: jax.Array,
    x: jax.Array,
    energy: Energy,
    *,
    mask_token: int,
    proposal_correction: bool = False,
    precision: Precision = "float64",
):
    """The one-step Feynman-Kac model of one chain's correction at one denoising step.

    Particles are candidate clean sequences ``(K, L)`` drawn from the factorised
    proposal ``log_probs (L, V)`` at the masked positions of ``x (L,)``; the potential
    is ``exp(-E(x_0))`` (divided by the proposal with ``proposal_correction``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import probkit.smc as smc
        >>> from probkit.models.masked_diffusion import step_feynman_kac
        >>> fk = step_feynman_kac(jnp.log(jnp.full((3, 2), 0.5)), jnp.array([0, 2, 2]),
        ...                       lambda x0: -jnp.sum(x0), mask_token=2, precision="float32")
        >>> out = smc.loop(jax.random.key(0), fk, num_particles=8,
        ...                resampling_fn=smc.multinomial, ess_threshold=0.0)
        >>> out.particles.shape
        (8, 3)
    """
    import probkit.smc as smc  # imported when used: keeps this package's import light

    return smc.FeynmanKac(
        init=jax.tree_util.Partial(_candidates, log_probs, x, mask_token, precision),
        move=lambda key, t, particles: particles,
        log_potential=jax.tree_util.Partial(
            _log_weight, energy, log_probs, x, mask_token, proposal_correction
        ),
        num_steps=1,
    )


def energy_corrected_loop(
    key: jax.Array,
    denoiser: Denoiser,
    energy: Energy,
    x_init: jax.Array,
    *,
    mask_token: int,
    num_steps: int,
    num_candidates: int,
    schedule: str | MaskingSchedule = "linear",
    proposal_correction: bool = False,
    correct_above: float = 0.0,
    precision: Precision = "float64",
) -> EnergyCorrectedResult:
    """Step-wise sampling with EDLM's importance-sampling correction (pure, jittable).

    Args:
        key: a ``jax.random`` key.
        denoiser: ``x (L,) -> logits (L, V)``.
        energy: ``x_0 (L,) -> E(x_0)``, any function of a full clean sequence (e.g.
            minus the log-probability of an autoregressive model).
        x_init: int array ``(n, L)``, ``mask_token`` where tokens are to be generated.
        mask_token: the mask id ``V``.
        num_steps: steps of the uniform time grid from 1 to 0.
        num_candidates: ``K`` candidates per step and chain.
        schedule: the masking schedule.
        proposal_correction: weight by ``exp(-E) / q`` instead of ``exp(-E)`` (module doc).
        correct_above: correct only the steps that start at ``t > correct_above``.
        precision: of the categorical draws.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.masked_diffusion import energy_corrected_loop
        >>> uniform = lambda x: jnp.zeros((x.shape[0], 2))
        >>> out = energy_corrected_loop(jax.random.key(0), uniform, lambda x0: -5.0 * x0.sum(),
        ...                             jnp.full((4, 3), 2), mask_token=2, num_steps=3,
        ...                             num_candidates=16, precision="float32")
        >>> out.sequences.shape
        (4, 3)
    """
    check_key(key)
    schedule = get_schedule(schedule)
    n, _ = x_init.shape
    times = 1.0 - jnp.arange(num_steps + 1, dtype=jnp.float32) / num_steps
    t, s = times[:-1], times[1:]
    alpha_t, alpha_s = schedule.alpha(t), schedule.alpha(s)
    reveal_prob = ((alpha_s - alpha_t) / (1.0 - alpha_t)).at[-1].set(1.0)
    corrected = t > correct_above

    import probkit.smc as smc

    def corrected_chain(key, log_p, x):
        key_smc, key_pick = jax.random.split(key)
        fk = step_feynman_kac(
            log_p,
            x,
            energy,
            mask_token=mask_token,
            proposal_correction=proposal_correction,
            precision=precision,
        )
        out = smc.loop(
            key_smc,
            fk,
            num_particles=num_candidates,
            resampling_fn=smc.multinomial,
            ess_threshold=0.0,
        )
        pick = categorical(key_pick, out.log_weights, precision)
        ess, log_z = out.ess[-1].astype(jnp.float32), out.log_evidence.astype(jnp.float32)
        return out.particles[pick].astype(jnp.int32), ess, log_z

    def plain_chain(key, log_p, x):
        x0 = _candidates(log_p, x, mask_token, precision, key, 1)[0]
        return x0.astype(jnp.int32), jnp.ones((), jnp.float32), jnp.zeros((), jnp.float32)

    def body(carry, inputs):
        x, calls = carry
        key, p, use_correction = inputs
        key_chains, key_reveal = jax.random.split(key)
        log_p = _log_probs(denoiser, x)
        keys = jax.random.split(key_chains, n)
        # Steps left uncorrected (t <= correct_above) skip the candidates altogether.
        x0, ess, log_z = jax.lax.cond(
            use_correction,
            lambda: jax.vmap(corrected_chain)(keys, log_p, x),
            lambda: jax.vmap(plain_chain)(keys, log_p, x),
        )
        reveal = (jax.random.uniform(key_reveal, x.shape) < p) & (x == mask_token)
        return (jnp.where(reveal, x0, x), calls + 1), (ess, log_z)

    keys = jax.random.split(cpu_fast_key(key), num_steps)
    (x, calls), (ess, log_z) = jax.lax.scan(
        body, (x_init, jnp.zeros((), jnp.int32)), (keys, reveal_prob, corrected)
    )
    return EnergyCorrectedResult(x, ess, log_z, calls)
