"""Feynman-Kac models and the pure ``init`` / ``step`` pair of the SMC loop.

A Feynman-Kac model (Del Moral 2004; Chopin & Papaspiliopoulos 2020, ch. 5) is a
Markov chain ``X_0 ~ M_0``, ``X_t ~ M_t(X_{t-1}, .)`` reweighted by potentials
``G_t(X_{t-1}, X_t)``. Its normalising constant

    Z_T = E[ G_0(X_0) prod_{t=1}^{T-1} G_t(X_{t-1}, X_t) ]

is the log-evidence that SMC estimates without bias (on the natural scale).
Particle filters, tempered and waste-free SMC samplers and Feynman-Kac correctors
for diffusion models are all such models, handed to the one loop
(:func:`probkit.smc.loop`).

Step ``t >= 1`` of the loop: resample if the ESS of the current weights is below
``ess_threshold * N``; move ``X_t = M_t(X_{t-1})``; reweight by ``G_t``; add
``log sum_i W_{t-1}^i G_t^i`` to the log-evidence.

Adaptive samplers add three optional pieces (as particles' ``FeynmanKac.done`` /
``AdaptiveTempering`` and blackjax's ``update_parameters`` do):

* **parameters** ``theta_t``, a pytree carried in the state and recomputed after each
  move from the moved particles (next temperature, MCMC step size, preconditioner).
  The move of step ``t`` uses ``theta_{t-1}``; the potential of step ``t`` uses
  ``theta_t``. Models that declare no parameters keep the three-argument ``move`` and
  ``log_potential``.
* **done(state)**, for loops of unknown length: the loop stops after the first step
  at which it is true (or after ``num_steps`` steps, then a maximum).
* **num_resampled** ``M < N``: each resampling draws ``M`` ancestors and the move
  turns them into ``N`` particles (waste-free SMC: ``M`` MCMC chains of ``N / M``
  states each).

Precision: each log-evidence increment is a log-sum-exp of normalised log-weights
(no overflow whatever the scale of the potentials). The running sum is kept with
Kahan compensation, so float32 runs lose no more than a few ulps of the total over
thousands of steps (plain float32 summation would drift by ~T ulps); with
``jax_enable_x64`` everything is float64 anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from probkit._weights import effective_sample_size, scaled_weights
from probkit.smc._resampling import ResamplingFn

__all__ = ["FeynmanKac", "SMCState", "SMCInfo", "init", "step", "reweight"]

PyTree = Any


class FeynmanKac(NamedTuple):
    """A Feynman-Kac model: initial law, Markov moves and log-potentials.

    Attributes:
        init: ``(key, n) -> particles``, a pytree whose leaves have a leading axis
            of size ``n`` (draws from ``M_0``).
        move: ``(key, t, particles) -> particles``, the kernel ``M_t`` applied to
            every particle (``t = 1, ..., num_steps - 1``); with parameters,
            ``(key, t, particles, parameters) -> particles`` (``parameters`` of step
            ``t - 1``).
        log_potential: ``(t, previous, particles) -> log G_t`` of shape ``(n,)``;
            with parameters, ``(t, previous, particles, parameters)`` (those of step
            ``t``). At ``t = 0``, ``previous`` is the initial particles themselves;
            with ``num_resampled``, ``previous`` holds the ``M`` resampled ancestors.
        num_steps: ``T``, the number of potentials ``G_0, ..., G_{T-1}`` (so
            ``T - 1`` moves); with ``done``, the largest number of steps.
        parameters: optional initial parameters ``theta`` (a pytree of arrays),
            handed to ``update_parameters`` at step 0. A model declares parameters
            by setting this or ``update_parameters``.
        update_parameters: optional ``(t, particles, log_weights, parameters) ->
            parameters``, called at every step after the move (at step 0 after
            ``init``), from the particles and their weights before reweighting,
            and the previous parameters. Without it the parameters stay constant.
        done: optional ``state -> bool`` (an :class:`SMCState`): the loop stops after
            the first step at which it is true, or after ``num_steps`` steps. Per-step
            arrays of such a run have length ``num_steps``; ``result.num_steps``
            counts the steps done (:func:`probkit.smc.run` trims to it).
        num_resampled: optional ``M``: every resampling draws ``M`` ancestors (not
            ``N``) and ``move`` must return ``N`` particles from them (waste-free
            SMC). The loop then resamples at every step, whatever ``ess_threshold``
            (``ess_threshold=0``, never resample, is refused).

    To pass arrays (data, parameters) to a jitted run as arguments rather than as
    compile-time constants, wrap the functions in :class:`jax.tree_util.Partial`
    (or make them methods of an ``equinox.Module``): :func:`probkit.smc.run` traces
    every array inside the model and compiles once per static structure.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.smc import FeynmanKac
        >>> fk = FeynmanKac(
        ...     init=lambda key, n: jax.random.normal(key, (n,)),
        ...     move=lambda key, t, x: x + jax.random.normal(key, x.shape),
        ...     log_potential=lambda t, prev, x: -0.5 * x**2,
        ...     num_steps=3,
        ... )
        >>> fk.num_steps
        3

        An adaptive model: the move's step size follows the particles' spread, and
        the loop stops once that spread is small.

        >>> fk = FeynmanKac(
        ...     init=lambda key, n: 3.0 * jax.random.normal(key, (n,)),
        ...     move=lambda key, t, x, sd: x + 0.5 * sd * jax.random.normal(key, x.shape),
        ...     log_potential=lambda t, prev, x, sd: -0.5 * x**2,
        ...     num_steps=50,
        ...     parameters=jnp.ones(()),
        ...     update_parameters=lambda t, x, log_w, sd: jnp.sqrt(
        ...         jnp.sum(jnp.exp(log_w) * x**2)),
        ...     done=lambda state: state.parameters < 0.7,
        ... )
        >>> import probkit.smc as smc
        >>> result = smc.run(fk, num_particles=1000)
        >>> int(result.num_steps) < 50, result.ess.shape == (int(result.num_steps),)
        (True, True)
    """

    init: Callable[[jax.Array, int], PyTree]
    move: Callable[..., PyTree]
    log_potential: Callable[..., jax.Array]
    num_steps: int
    parameters: PyTree = None
    update_parameters: Callable[[jax.Array, PyTree, jax.Array, PyTree], PyTree] | None = None
    done: Callable[[SMCState], jax.Array] | None = None
    num_resampled: int | None = None


class SMCState(NamedTuple):
    """The state of the SMC loop after step ``t``.

    Attributes:
        particles: pytree with leading axis ``N``.
        log_weights: normalised log-weights, shape ``(N,)``.
        log_evidence: running estimate of ``log Z_t``.
        log_evidence_error: Kahan compensation term of that running sum.
        t: the index of the step just done.
        ess: effective sample size of ``log_weights`` (kept so that the next step's
            resampling decision needs no second pass over the weights).
        parameters: the model's parameters ``theta_t`` (``None`` without any).
    """

    particles: PyTree
    log_weights: jax.Array
    log_evidence: jax.Array
    log_evidence_error: jax.Array
    t: jax.Array
    ess: jax.Array
    parameters: PyTree = None


class SMCInfo(NamedTuple):
    """What one step did.

    Attributes:
        ess: effective sample size of the weights after reweighting.
        resampled: whether the particles were resampled before the move.
        ancestors: index of each particle's parent (``arange(N)`` when not resampled;
            ``M`` entries with ``num_resampled``).
        log_evidence_increment: ``log sum_i W_{t-1}^i G_t^i``.
        num_nan: how many particles' log-potentials were NaN (counted as zero
            weight; :func:`probkit.smc.run` warns when any were).
    """

    ess: jax.Array
    resampled: jax.Array
    ancestors: jax.Array
    log_evidence_increment: jax.Array
    num_nan: jax.Array


def _kahan_add(total: jax.Array, error: jax.Array, value: jax.Array):
    y = value - error
    new_total = total + y
    # Once the sum is infinite (an overflow of finite increments, or a -inf one) the
    # compensation would be inf - inf = NaN: keep the infinite sum instead.
    new_error = jnp.where(jnp.isfinite(new_total), (new_total - total) - y, 0.0)
    return new_total, new_error


def _num_particles(particles: PyTree) -> int:
    leaves = jax.tree_util.tree_leaves(particles)
    if not leaves:
        raise ValueError("the particles pytree has no array leaves.")
    return int(jnp.shape(leaves[0])[0])


def _check_log_potential(log_g: jax.Array, n: int, where: str) -> jax.Array:
    if jnp.shape(log_g) != (n,):
        raise ValueError(
            f"log_potential must return one value per particle, shape ({n},), but {where} "
            f"it returned shape {jnp.shape(log_g)}. Sum over event dimensions "
            "(e.g. jnp.sum(..., axis=-1)) and keep the particle axis first."
        )
    return log_g


def _check_moved(particles: PyTree, n: int) -> None:
    """The move must return the N particles it is given (or M -> N for waste-free)."""
    for leaf in jax.tree_util.tree_leaves(particles):
        if jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] != n:
            raise ValueError(
                f"fk.move must return {n} particles (a pytree whose leaves have leading "
                f"size {n}), but it returned a leaf of shape {jnp.shape(leaf)}. Keep the "
                "particle axis first and map the move over it (e.g. with jax.vmap)."
            )


def has_parameters(fk: FeynmanKac) -> bool:
    """Whether ``fk`` declares parameters (its move and potential then take them)."""
    return fk.parameters is not None or fk.update_parameters is not None


def _move(fk: FeynmanKac, key, t, particles, parameters):
    if has_parameters(fk):
        return fk.move(key, t, particles, parameters)
    return fk.move(key, t, particles)


def _log_potential(fk: FeynmanKac, t, previous, particles, parameters):
    if has_parameters(fk):
        return fk.log_potential(t, previous, particles, parameters)
    return fk.log_potential(t, previous, particles)


def _update_parameters(fk: FeynmanKac, t, particles, log_weights, parameters):
    if fk.update_parameters is None:
        return parameters
    return fk.update_parameters(t, particles, log_weights, parameters)


def reweight(log_weights: jax.Array, log_potential: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Multiply normalised weights by potentials.

    Returns the new normalised log-weights and ``log sum_i W_i G_i`` (the
    log-evidence increment). A potential of NaN counts as zero weight (``-inf``);
    the loop counts such particles (``SMCInfo.num_nan``) and :func:`probkit.smc.run`
    warns about them.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.smc import reweight
        >>> log_w, inc = reweight(jnp.log(jnp.array([0.5, 0.5])), jnp.array([0.0, -jnp.inf]))
        >>> round(float(inc), 4), jnp.exp(log_w).tolist()
        (-0.6931, [1.0, 0.0])
    """
    log_weights, increment, _, _ = _reweight(log_weights, log_potential)
    return log_weights, increment


def _reweight(
    log_weights: jax.Array, log_potential: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """:func:`reweight` plus the new ESS and the NaN count, from one ``exp`` pass."""
    nan = jnp.isnan(log_potential)
    log_potential = jnp.where(nan, -jnp.inf, log_potential)
    unnormalised = log_weights + log_potential
    w, top = scaled_weights(unnormalised)
    # The weights are stored once and both sums read them: left to itself, XLA
    # recomputes exp for each sum (the square as exp(2 x)), 5% of a particle filter's
    # time at N = 10^5 on CPU.
    w = jax.lax.optimization_barrier(w)
    total = jnp.sum(w)
    log_total = jnp.log(total)
    ess = total**2 / jnp.sum(w * w)
    # Shift by the largest weight before the log-sum: with potentials of a large common
    # offset (1e6 + x in float32), unnormalised - (log_total + top) would round the
    # offset away from the weights and leave them summing to 0.98 or 1.5.
    log_weights = (unnormalised - top) - log_total
    return log_weights, log_total + top, ess, jnp.sum(nan, dtype=jnp.int32)


def init(key: jax.Array, fk: FeynmanKac, num_particles: int) -> tuple[SMCState, SMCInfo]:
    """Draw ``X_0 ~ M_0``, set the parameters, weight by ``G_0``: step 0 of the loop.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.smc import FeynmanKac, init
        >>> fk = FeynmanKac(lambda k, n: jnp.zeros(n), lambda k, t, x: x,
        ...                 lambda t, p, x: jnp.zeros(x.shape[0]), 2)
        >>> state, info = init(jax.random.key(0), fk, 4)
        >>> float(state.log_evidence), float(info.ess)
        (0.0, 4.0)
    """
    particles = fk.init(key, num_particles)
    n = _num_particles(particles)
    if n != num_particles:
        raise ValueError(
            f"fk.init(key, {num_particles}) returned {n} particles on the leading axis; "
            "it must return a pytree whose leaves have leading size n."
        )
    t0 = jnp.zeros((), jnp.int32)
    uniform = jnp.full((n,), -jnp.log(n), dtype=jnp.result_type(float))
    parameters = _update_parameters(fk, t0, particles, uniform, fk.parameters)
    log_g = _log_potential(fk, t0, particles, particles, parameters)
    log_g = _check_log_potential(log_g, n, "at step t=0")
    log_weights, increment, ess, num_nan = _reweight(uniform, log_g)
    state = SMCState(
        particles, log_weights, increment, jnp.zeros_like(increment), t0, ess, parameters
    )
    info = SMCInfo(
        ess=ess,
        resampled=jnp.asarray(False),
        ancestors=jnp.arange(n, dtype=jnp.int32),
        log_evidence_increment=increment,
        num_nan=num_nan,
    )
    return state, info


def _gather(particles: PyTree, indices: jax.Array) -> PyTree:
    return jax.tree_util.tree_map(lambda x: jnp.take(x, indices, axis=0), particles)


def _gather_apart(particles: PyTree, indices: jax.Array) -> PyTree:
    """:func:`_gather` into buffers of its own, for resampling outside a ``lax.cond``.

    Left alone, XLA:CPU fuses the gather (with the resampler's last index arithmetic)
    into the move's elementwise loop, and the gather then keeps the whole loop from
    being vectorised (a filter that resampled at every step ran 3x slower). A
    conditional is a fusion boundary (and ``optimization_barrier`` is not: XLA:CPU
    removes it before fusing); both branches compute the same gather, so the predicate
    only places it.
    """
    return jax.lax.cond(indices[0] >= 0, _gather, _gather, particles, indices)


def _ancestors(resampling_fn: ResamplingFn, key, log_weights, num: int) -> jax.Array:
    ancestors = resampling_fn(key, log_weights, num)
    integer = jnp.issubdtype(jnp.result_type(ancestors), jnp.integer)
    if jnp.shape(ancestors) != (num,) or not integer:
        raise ValueError(
            f"the resampling function must return {num} integer ancestor indices, shape "
            f"({num},), but it returned {jnp.result_type(ancestors)} of shape "
            f"{jnp.shape(ancestors)}. Call it as resampling(key, log_weights, num)."
        )
    return ancestors.astype(jnp.int32)


def resample_if_needed(
    key: jax.Array,
    particles: PyTree,
    log_weights: jax.Array,
    resampling_fn: ResamplingFn,
    ess_threshold: float,
    ess: jax.Array | None = None,
    num_resampled: int | None = None,
) -> tuple[PyTree, jax.Array, jax.Array, jax.Array]:
    """Resample when ESS < ``ess_threshold * N``; returns (particles, log_w, resampled, ancestors).

    ``ess_threshold >= 1`` resamples at every step and ``<= 0`` never (decided in
    Python, so the other branch is not even compiled). ``ess``, if known, saves
    recomputing it from ``log_weights``. ``num_resampled`` draws that many ancestors
    (always, whatever ``ess_threshold``); the returned log-weights are then the
    uniform weights of the ``N`` particles the move will make from them.
    """
    n = log_weights.shape[0]
    identity = jnp.arange(n, dtype=jnp.int32)
    uniform = jnp.full_like(log_weights, -jnp.log(n))
    if num_resampled is not None:
        ancestors = _ancestors(resampling_fn, key, log_weights, num_resampled)
        return _gather_apart(particles, ancestors), uniform, jnp.asarray(True), ancestors
    if ess_threshold <= 0.0:
        return particles, log_weights, jnp.asarray(False), identity
    if ess_threshold >= 1.0:
        ancestors = _ancestors(resampling_fn, key, log_weights, n)
        return _gather_apart(particles, ancestors), uniform, jnp.asarray(True), ancestors
    if ess is None:
        ess = effective_sample_size(log_weights)
    do_resample = ess < ess_threshold * n

    def resample():
        ancestors = _ancestors(resampling_fn, key, log_weights, n)
        return _gather(particles, ancestors), ancestors

    # Under vmap the cond becomes a select and both branches run.
    particles, ancestors = jax.lax.cond(do_resample, resample, lambda: (particles, identity))
    log_weights = jnp.where(do_resample, uniform, log_weights)
    return particles, log_weights, do_resample, ancestors


def step(
    key: jax.Array,
    fk: FeynmanKac,
    state: SMCState,
    *,
    resampling_fn: ResamplingFn,
    ess_threshold: float = 0.5,
    constrain: Callable[[PyTree], PyTree] | None = None,
) -> tuple[SMCState, SMCInfo]:
    """One step ``t = state.t + 1``: resample if needed, move, update parameters, reweight.

    Args:
        key: a ``jax.random`` key.
        fk: the Feynman-Kac model.
        state: the state after step ``t - 1``.
        resampling_fn: ``(key, log_weights, n) -> indices``.
        ess_threshold: resample when ESS < ``ess_threshold * N``.
        constrain: optional function applied to the particles after resampling and
            after the move (used to pin the particle axis's sharding).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.smc import FeynmanKac, init, step, systematic
        >>> fk = FeynmanKac(lambda k, n: jnp.zeros(n), lambda k, t, x: x + 1.0,
        ...                 lambda t, p, x: -x, 3)
        >>> state, _ = init(jax.random.key(0), fk, 4)
        >>> state, info = step(jax.random.key(1), fk, state, resampling_fn=systematic)
        >>> int(state.t), float(state.log_evidence)
        (1, -1.0)
    """
    constrain = (lambda x: x) if constrain is None else constrain
    key_resample, key_move = jax.random.split(key)
    n = state.log_weights.shape[0]
    t = state.t + 1
    previous, log_weights, resampled, ancestors = resample_if_needed(
        key_resample,
        state.particles,
        state.log_weights,
        resampling_fn,
        ess_threshold,
        state.ess,
        fk.num_resampled,
    )
    previous = constrain(previous)
    particles = _move(fk, key_move, t, previous, state.parameters)
    _check_moved(particles, n)
    particles = constrain(particles)
    parameters = _update_parameters(fk, t, particles, log_weights, state.parameters)
    log_g = _log_potential(fk, t, previous, particles, parameters)
    log_g = _check_log_potential(log_g, n, "after a move (a step t >= 1)")
    log_weights, increment, ess, num_nan = _reweight(log_weights, log_g)
    log_evidence, error = _kahan_add(state.log_evidence, state.log_evidence_error, increment)
    new_state = SMCState(particles, log_weights, log_evidence, error, t, ess, parameters)
    info = SMCInfo(ess, resampled, ancestors, increment, num_nan)
    return new_state, info
