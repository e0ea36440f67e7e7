"""The particle filter as a host-side Python loop, for proposers that JAX cannot trace.

A PyTorch language model (see :func:`probkit.scaling.transformers_step_model`) cannot
run inside :func:`probkit.smc.loop`'s ``lax.scan``. :func:`host_particle_filter` runs
the same Feynman-Kac model step by step in Python and shares every numerical piece with
the jitted loop: the potentials and their masking for finished particles, the
reweighting and ESS of :mod:`probkit.smc` (:func:`probkit.smc.reweight`,
:func:`probkit.smc.effective_sample_size`), its resampling schemes, and the selection
rules. It also stops as soon as every particle has finished (a loop of unknown length).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import probkit.smc as smc
from probkit._checks import check_key
from probkit.scaling._feynman_kac import StepModel, check_step_model, masked_log_potential
from probkit.scaling._methods import ScalingResult
from probkit.scaling._potentials import PotentialFn, get_potential
from probkit.scaling._selection import SELECTIONS, select

__all__ = ["host_particle_filter", "gather_particles"]

PyTree = Any


def gather_particles(states: PyTree, indices: np.ndarray) -> PyTree:
    """Rows ``indices`` of every array leaf (NumPy, JAX or anything indexable by an array).

    Lists and tuples of per-particle objects are indexed element by element; give
    :func:`host_particle_filter` its own ``gather_fn`` for other containers. (Not
    :func:`probkit.distributed.gather`, which collects arrays across processes.)

    Example:
        >>> import numpy as np
        >>> from probkit.scaling import gather_particles
        >>> gather_particles({"x": np.arange(3), "text": ["a", "b", "c"]}, np.array([2, 2, 0]))
        {'text': ['c', 'c', 'a'], 'x': array([2, 2, 0])}
    """
    indices = np.asarray(indices)
    if isinstance(states, dict):
        return {k: gather_particles(v, indices) for k, v in sorted(states.items())}
    if isinstance(states, list):
        return [states[i] for i in indices]
    if isinstance(states, tuple) and not hasattr(states, "_fields"):
        return tuple(states[i] for i in indices)
    if hasattr(states, "_fields"):  # NamedTuple: gather each field
        return type(states)(*(gather_particles(v, indices) for v in states))
    if hasattr(states, "index_select"):  # a torch tensor, without importing torch
        import torch  # noqa: PLC0415 (only reached with torch already in use)

        return states.index_select(0, torch.as_tensor(indices, device=states.device))
    return states[indices]


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def host_particle_filter(
    key: jax.Array,
    model: StepModel,
    num_particles: int,
    *,
    potential: str | PotentialFn = "log",
    temperature: float = 1.0,
    resampling_fn: smc.ResamplingFn = smc.systematic,
    ess_threshold: float = 1.0,
    selection: str = "weighted_vote",
    gather_fn: Callable[[PyTree, np.ndarray], PyTree] = gather_particles,
) -> ScalingResult:
    """:func:`probkit.scaling.particle_filter` as a Python loop around any proposer.

    ``model``'s functions may be arbitrary Python (PyTorch, an API call); they must
    return per-particle rewards, ``done`` flags and answers as arrays of length ``n``.
    ``model.propose`` must return finished particles unchanged (the jitted loop restores
    them itself). Same arguments and result as the jitted :func:`particle_filter`, plus
    ``gather_fn`` to copy states at resampling (default :func:`gather_particles`). The
    loop stops early when every particle has finished; ``ess`` then has one entry per
    step run.

    Example:
        >>> import jax, numpy as np
        >>> from probkit.scaling import StepModel, host_particle_filter
        >>> def propose(key, t, x):  # plain NumPy, not traceable
        ...     rng = np.random.default_rng(np.asarray(jax.random.key_data(key)))
        ...     return np.where(x >= 3, x, x + rng.integers(0, 2, size=len(x)))
        >>> coin = StepModel(lambda k, n: np.zeros(n, int), propose,
        ...                  lambda t, x: np.where(x == t + 1, 0.9, 0.1),
        ...                  lambda x: x >= 3, lambda x: x, 10)
        >>> r = host_particle_filter(jax.random.key(0), coin, 16)
        >>> int(r.answer), int(r.num_proposals) <= 16 * 10  # stops once all reach 3
        (3, True)
    """
    check_key(key)
    check_step_model(model)
    if not isinstance(num_particles, int | np.integer) or num_particles < 1:
        raise ValueError(f"num_particles must be a positive int, got {num_particles!r}.")
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}.")
    if not 0.0 <= float(ess_threshold) <= 1.0:
        raise ValueError(f"ess_threshold must lie in [0, 1], got {ess_threshold!r}.")
    potential_fn = get_potential(potential, temperature)
    n = num_particles
    key_init, key_first, key_loop, key_select = jax.random.split(key, 4)

    states = model.init(key_init, n)
    states = model.propose(key_first, jnp.zeros((), jnp.int32), states)
    reward = _to_numpy(model.score(0, states)).astype(float)
    done = _to_numpy(model.is_done(states)).astype(bool)
    num_proposals = n
    log_g = masked_log_potential(potential_fn, 0, reward, reward, np.zeros(n, bool))
    log_weights, _ = smc.reweight(jnp.full(n, -np.log(n)), jnp.asarray(log_g))
    ess_history = [float(smc.effective_sample_size(log_weights))]

    for t in range(1, model.max_steps):
        if done.all():
            break
        key_loop, key_resample, key_move = jax.random.split(key_loop, 3)
        ess = ess_history[-1]
        if ess_threshold > 0 and (ess_threshold >= 1.0 or ess < ess_threshold * n):
            ancestors = np.asarray(resampling_fn(key_resample, log_weights, n))
            states = gather_fn(states, ancestors)
            reward, done = reward[ancestors], done[ancestors]
            log_weights = jnp.full(n, -np.log(n))
        proposed = model.propose(key_move, jnp.asarray(t, jnp.int32), states)
        num_proposals += int((~done).sum())
        # A host-side proposer must return finished particles unchanged (there is no
        # generic way to restore them); their reward and done flag are kept here.
        new_done = done | _to_numpy(model.is_done(proposed)).astype(bool)
        new_reward = np.where(done, reward, _to_numpy(model.score(t, proposed)).astype(float))
        log_g = masked_log_potential(potential_fn, t, reward, new_reward, done)
        log_weights, _ = smc.reweight(log_weights, jnp.asarray(log_g))
        states, reward, done = proposed, new_reward, new_done
        ess_history.append(float(smc.effective_sample_size(log_weights)))

    answers = jnp.asarray(_to_numpy(model.answer(states))).astype(jnp.int32)
    if not bool(jnp.any(jnp.isfinite(log_weights))):
        raise FloatingPointError(
            "every particle got zero weight (a reward of 0 or NaN for all): check score()."
        )
    answer = select(selection, key_select, answers, log_weights)
    return ScalingResult(
        answer=answer,
        answers=answers,
        log_weights=log_weights,
        rewards=jnp.asarray(reward),
        states=states,
        num_proposals=jnp.asarray(num_proposals),
        ess=jnp.asarray(ess_history),
        num_steps=jnp.asarray(len(ess_history)),
    )
