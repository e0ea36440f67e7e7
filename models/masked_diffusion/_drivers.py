"""Top-level drivers: validate, build the initial sequences, scope float64, jit, run."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from probkit.models.masked_diffusion._categorical import Precision
from probkit.models.masked_diffusion._edlm import EnergyCorrectedResult, energy_corrected_loop
from probkit.models.masked_diffusion._sampling import (
    SampleResult,
    check_sampler_arguments,
    first_hitting_loop,
    stepwise_loop,
)
from probkit.models.masked_diffusion._schedules import MaskingSchedule, get_schedule

from probkit._checks import check_int, check_seed

__all__ = ["initial_sequences", "sample", "energy_corrected_sample"]

METHODS = ("first_hitting", "stepwise", "tau_leaping")


def initial_sequences(
    num_samples: int, length: int, mask_token: int, prompt=None, prompt_positions=None
) -> np.ndarray:
    """Starting sequences ``(num_samples, length)``: all masked, or a prompt revealed.

    Args:
        num_samples: number of chains.
        length: sequence length ``L``.
        mask_token: the mask id ``V``.
        prompt: token values to reveal: ``(len(prompt_positions),)`` values, or ``(L,)``
            with ``mask_token`` elsewhere (then ``prompt_positions`` is not needed).
        prompt_positions: positions of ``prompt`` (default: a prefix ``0..len-1``).

    Example:
        >>> from probkit.models.masked_diffusion import initial_sequences
        >>> initial_sequences(2, 5, 3, prompt=[0, 1]).tolist()
        [[0, 1, 3, 3, 3], [0, 1, 3, 3, 3]]
        >>> initial_sequences(1, 4, 3, prompt=[2, 2], prompt_positions=[0, 3]).tolist()
        [[2, 3, 3, 2]]
    """
    num_samples = check_int(num_samples, "num_samples")
    length = check_int(length, "length")
    mask_token = check_int(mask_token, "mask_token", minimum=0)
    x = np.full((num_samples, length), mask_token, np.int32)
    if prompt is None:
        return x
    prompt = np.asarray(prompt, np.int32)
    if prompt_positions is None:
        prompt_positions = np.arange(prompt.shape[0]) if prompt.shape[0] < length else None
    if prompt_positions is None:
        row = prompt
    else:
        positions = np.asarray(prompt_positions, np.int64)
        if positions.shape != prompt.shape or np.any(positions < 0) or np.any(positions >= length):
            raise ValueError(
                "prompt_positions must match prompt's shape and lie in [0, length); got "
                f"{positions.tolist()} for a prompt of shape {prompt.shape}."
            )
        row = np.full(length, mask_token, np.int32)
        row[positions] = prompt
    if row.shape != (length,) or np.any(row < 0) or np.any(row > mask_token):
        raise ValueError(f"prompt tokens must lie in [0, {mask_token}] and fit length {length}.")
    x[:] = row
    return x


@eqx.filter_jit
def _run_first_hitting(key, denoiser, x, mask_token, tokens_per_call, precision):
    return first_hitting_loop(
        key,
        denoiser,
        x,
        mask_token=mask_token,
        tokens_per_call=tokens_per_call,
        precision=precision,
    )


@eqx.filter_jit
def _run_stepwise(key, denoiser, x, mask_token, num_steps, schedule, method, cache, precision):
    return stepwise_loop(
        key,
        denoiser,
        x,
        mask_token=mask_token,
        num_steps=num_steps,
        schedule=schedule,
        method=method,
        cache=cache,
        precision=precision,
    )


def _check_finished(sequences, mask_token):
    if bool(jnp.any(sequences >= mask_token)):
        raise FloatingPointError(
            "some tokens were never drawn: the denoiser (or the energy) returned NaN logits "
            "or weights for them. Check its output with `jnp.isfinite` on a masked input."
        )


def _x64_scope(precision: str):
    # float64 for the sampling call only: the loop is traced with 64-bit types on, and
    # every denoiser / energy call inside it with them off again, so the networks stay
    # float32; only the Gumbel noise and the logits it is added to are float64.
    return jax.enable_x64(True) if precision == "float64" else contextlib.nullcontext()


def sample(
    denoiser: Callable[[jax.Array], jax.Array],
    x_init,
    *,
    mask_token: int,
    method: str = "first_hitting",
    num_steps: int = 1000,
    schedule: str | MaskingSchedule = "linear",
    cache: bool = True,
    tokens_per_call: int = 1,
    precision: Precision = "float64",
    seed: int = 0,
) -> SampleResult:
    """Generate sequences from a masked denoiser, starting from ``x_init``.

    Args:
        denoiser: ``x (L,) -> logits (L, V)`` (e.g. a trained :class:`Denoiser`, an
            :func:`exact_denoiser`, a :func:`classifier_free_guidance` wrapper).
        x_init: ``(n, L)`` int array, ``mask_token`` where tokens are to be generated
            (see :func:`initial_sequences`).
        mask_token: the mask id ``V``.
        method: ``"first_hitting"`` (default: exact, ``L`` calls, see
            :func:`first_hitting_loop`), ``"stepwise"`` (ancestral on ``num_steps``
            steps) or ``"tau_leaping"``.
        num_steps: steps of the step-wise samplers.
        schedule: masking schedule of the step-wise samplers.
        cache: step-wise samplers skip the network when nothing changed.
        tokens_per_call: first-hitting tokens revealed per call (> 1 is biased).
        precision: ``"float64"`` (default), ``"float32"`` or ``"float32_highest"``.
        seed: seed of the ``jax.random`` key.

    Example:
        >>> import numpy as np
        >>> from probkit.models.masked_diffusion import (exact_denoiser, initial_sequences,
        ...     markov_chain, sample)
        >>> d = markov_chain(np.array([1.0, 0.0]), np.array([[0.0, 1.0], [1.0, 0.0]]), 4)
        >>> out = sample(exact_denoiser(d), initial_sequences(3, 4, 2), mask_token=2)
        >>> out.sequences.tolist()
        [[0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1]]
    """
    seed = check_seed(seed)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if not np.issubdtype(np.asarray(x_init).dtype, np.integer):
        raise ValueError(
            f"x_init must be an integer array of tokens (n, L), got dtype "
            f"{np.asarray(x_init).dtype}; build it with initial_sequences(...)."
        )
    x_init = jnp.asarray(x_init, jnp.int32)
    check_sampler_arguments(x_init, mask_token, tokens_per_call, num_steps, precision)
    schedule = get_schedule(schedule)
    key = jax.random.key(seed)
    with _x64_scope(precision):
        if method == "first_hitting":
            out = _run_first_hitting(key, denoiser, x_init, mask_token, tokens_per_call, precision)
        else:
            kind = "ancestral" if method == "stepwise" else "tau_leaping"
            out = _run_stepwise(
                key, denoiser, x_init, mask_token, num_steps, schedule, kind, bool(cache), precision
            )
    _check_finished(out.sequences, mask_token)
    return SampleResult(
        out.sequences.astype(jnp.int32),
        out.num_network_calls.astype(jnp.int32),
        out.calls_per_chain.astype(jnp.int32),
    )


@eqx.filter_jit
def _run_energy(key, denoiser, energy, x, mask_token, num_steps, num_candidates, schedule,
                proposal_correction, correct_above, precision):  # fmt: skip
    return energy_corrected_loop(
        key,
        denoiser,
        energy,
        x,
        mask_token=mask_token,
        num_steps=num_steps,
        num_candidates=num_candidates,
        schedule=schedule,
        proposal_correction=proposal_correction,
        correct_above=correct_above,
        precision=precision,
    )


def energy_corrected_sample(
    denoiser: Callable[[jax.Array], jax.Array],
    energy: Callable[[jax.Array], jax.Array],
    x_init,
    *,
    mask_token: int,
    num_steps: int = 16,
    num_candidates: int = 16,
    schedule: str | MaskingSchedule = "linear",
    proposal_correction: bool = False,
    correct_above: float = 0.0,
    precision: Precision = "float64",
    seed: int = 0,
) -> EnergyCorrectedResult:
    """EDLM sampling: step-wise with an importance-sampling correction by ``energy``.

    See :func:`energy_corrected_loop` for the arguments.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.masked_diffusion import energy_corrected_sample, initial_sequences
        >>> uniform = lambda x: jnp.zeros((x.shape[0], 2))
        >>> prefer_ones = lambda x0: -4.0 * jnp.sum(x0)
        >>> out = energy_corrected_sample(uniform, prefer_ones, initial_sequences(64, 3, 2),
        ...                               mask_token=2, num_steps=2, num_candidates=32)
        >>> float(out.sequences.mean()) > 0.9
        True
    """
    seed = check_seed(seed)
    x_init = jnp.asarray(x_init, jnp.int32)
    check_sampler_arguments(x_init, mask_token, num_candidates, num_steps, precision)
    if not callable(energy):
        raise ValueError("energy must be a callable x_0 (L,) -> scalar energy.")
    schedule = get_schedule(schedule)
    with _x64_scope(precision):
        out = _run_energy(
            jax.random.key(seed),
            denoiser,
            energy,
            x_init,
            mask_token,
            num_steps,
            num_candidates,
            schedule,
            bool(proposal_correction),
            float(correct_above),
            precision,
        )
    _check_finished(out.sequences, mask_token)
    if not bool(jnp.all(jnp.isfinite(out.ess))):
        raise FloatingPointError(
            "every candidate of some step got weight zero or NaN: the energy returned NaN or "
            "+inf on all of them. Check that energy(x0) is finite on clean sequences."
        )
    return EnergyCorrectedResult(
        out.sequences.astype(jnp.int32),
        out.ess.astype(jnp.float32),
        out.log_normaliser.astype(jnp.float32),
        out.num_network_calls.astype(jnp.int32),
    )
