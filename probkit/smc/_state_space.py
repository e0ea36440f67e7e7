"""State-space models as Feynman-Kac models: bootstrap, guided and auxiliary particle filters.

A state-space model is ``x_0 ~ p_0``, ``x_t ~ f_t(. | x_{t-1})``, ``y_t ~ g_t(. | x_t)``
for ``t = 0, ..., T - 1``. Its functions act on ONE state (no particle axis); the
filter vectorises them. Each particle filter is a Feynman-Kac model handed to
:func:`probkit.smc.loop` (Chopin & Papaspiliopoulos 2020, ch. 10):

* bootstrap: ``M_t = f_t``, ``G_t = g_t(y_t | x_t)``;
* guided: ``M_t = q_t(. | x_{t-1}, y_t)``, ``G_t = f_t g_t / q_t``;
* auxiliary: the guided model with potentials ``G_t eta_{t+1}(x_t) / eta_t(x_{t-1})``,
  ``eta_t(x_{t-1})`` a look-ahead approximation of ``p(y_t | x_{t-1})``. The product
  of potentials telescopes, so the final log-evidence is still ``log p(y_{0:T-1})``;
  filtering moments divide the weights by ``eta_{t+1}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp
from jax.sharding import Mesh

from probkit._checks import check_key, check_seed
from probkit._repr import summary_repr
from probkit.distributed import gather_across_processes
from probkit.smc._feynman_kac import FeynmanKac
from probkit.smc._resampling import ResamplingFn, get_resampling
from probkit.smc._result import SMCResult
from probkit.smc._run import (
    _check_run_arguments,
    _partial_smc,
    check_finite_log_evidence,
    loop,
    run_interruptible,
)

__all__ = [
    "StateSpaceModel",
    "ParticleFilterResult",
    "state_space_feynman_kac",
    "particle_filter",
    "particle_filter_loop",
    "ffbs",
]

Distribution = Any
PROPOSALS = ("bootstrap", "guided", "auxiliary")


class StateSpaceModel(NamedTuple):
    """A state-space model given by NumPyro distributions of one state.

    Attributes:
        initial: the law ``p_0`` of ``x_0`` (a distribution, or a function of no
            argument returning one).
        transition: ``(t, x_prev) -> f_t(. | x_prev)``.
        observation: ``(t, x) -> g_t(. | x)``.
        proposal_initial: ``(y_0) -> q_0`` for guided / auxiliary filters.
        proposal: ``(t, x_prev, y_t) -> q_t(. | x_prev, y_t)`` for guided filters.
        log_eta: ``(t, x_prev, y_t) -> log eta_t``, the auxiliary look-ahead; default
            ``log g_t(y_t | mean of f_t(. | x_prev))``.
        vectorized: ``True`` when the functions above take a whole batch of states
            (leading particle axis) and return distributions with that batch shape
            (``log_eta`` then returns one value per particle), as ``particles``'
            models do. The filter then draws all particles with one key instead of
            vmapping a function of one state, which is several times faster.

    Example:
        >>> import numpyro.distributions as dist
        >>> from probkit.smc import StateSpaceModel
        >>> ssm = StateSpaceModel(
        ...     initial=dist.Normal(0.0, 1.0),
        ...     transition=lambda t, x: dist.Normal(0.9 * x, 1.0),
        ...     observation=lambda t, x: dist.Normal(x, 0.5),
        ... )
        >>> ssm.proposal is None
        True
    """

    initial: Distribution | Callable[[], Distribution]
    transition: Callable[[jax.Array, jax.Array], Distribution]
    observation: Callable[[jax.Array, jax.Array], Distribution]
    proposal_initial: Callable[[jax.Array], Distribution] | None = None
    proposal: Callable[[jax.Array, jax.Array, jax.Array], Distribution] | None = None
    log_eta: Callable[[jax.Array, jax.Array, jax.Array], jax.Array] | None = None
    vectorized: bool = False


class ParticleFilterResult(NamedTuple):
    """Output of :func:`particle_filter`.

    Attributes:
        log_likelihood: estimate of ``log p(y_{0:T-1})`` (unbiased on the natural scale).
        filtering_mean: ``E[x_t | y_{0:t}]``, shape ``(T, *state_shape)``.
        filtering_var: the elementwise filtering variance, same shape.
        log_likelihood_path: estimates of ``log p(y_{0:t})``, shape ``(T,)``.
        filtering_log_weights: normalised filtering log-weights ``(T, N)`` when the
            history was stored (what :func:`ffbs` needs), else ``None``.
        smc: the underlying :class:`SMCResult` (particles, ESS, resampling flags...).
    """

    log_likelihood: jax.Array
    filtering_mean: jax.Array
    filtering_var: jax.Array
    log_likelihood_path: jax.Array
    filtering_log_weights: jax.Array | None
    smc: SMCResult

    def __repr__(self) -> str:
        return summary_repr(self)


def _initial(ssm: StateSpaceModel) -> Distribution:
    return (
        ssm.initial()
        if callable(ssm.initial) and not hasattr(ssm.initial, "sample")
        else (ssm.initial)
    )


def _sample(ssm: StateSpaceModel, law: Callable, key: jax.Array, x: jax.Array) -> jax.Array:
    """One draw per particle from ``law(x_i)`` (``law(x)`` at once when vectorised)."""
    if ssm.vectorized:
        return law(x).sample(key)
    n = jax.tree_util.tree_leaves(x)[0].shape[0]
    return jax.vmap(lambda k, xi: law(xi).sample(k))(jax.random.split(key, n), x)


def _per_particle(ssm: StateSpaceModel, fn: Callable, *batched: jax.Array) -> jax.Array:
    """``fn`` of each particle's arguments, shape ``(N,)``."""
    return fn(*batched) if ssm.vectorized else jax.vmap(fn)(*batched)


def _default_log_eta(ssm: StateSpaceModel):
    def log_eta(t, x_prev, y):
        return ssm.observation(t, ssm.transition(t, x_prev).mean).log_prob(y)

    return log_eta


def state_space_feynman_kac(
    ssm: StateSpaceModel, observations: jax.Array, proposal: str = "bootstrap"
) -> tuple[FeynmanKac, Callable[[jax.Array, jax.Array, jax.Array], jax.Array]]:
    """The Feynman-Kac model of a particle filter, and its filtering-weight correction.

    Returns ``(fk, filtering_log_weights)`` where ``filtering_log_weights(t, x, log_w)``
    turns the loop's normalised log-weights after step ``t`` into those of the
    filter ``p(x_t | y_{0:t})``, and returns the log of the factor that turns the
    loop's running evidence into ``p(y_{0:t})`` (the identity and zero except for
    the auxiliary filter).

    Example:
        >>> import jax.numpy as jnp, numpyro.distributions as dist
        >>> from probkit.smc import StateSpaceModel, state_space_feynman_kac
        >>> ssm = StateSpaceModel(dist.Normal(0.0, 1.0), lambda t, x: dist.Normal(x, 1.0),
        ...                       lambda t, x: dist.Normal(x, 1.0))
        >>> fk, _ = state_space_feynman_kac(ssm, jnp.zeros(4))
        >>> fk.num_steps
        4
    """
    if proposal not in PROPOSALS:
        raise ValueError(f"proposal must be one of {PROPOSALS}, got {proposal!r}.")
    num_steps = int(jnp.shape(observations)[0])
    ys = observations
    y_at = lambda t: jax.tree_util.tree_map(lambda y: y[t], ys)
    p0 = _initial(ssm)
    guided = proposal == "guided" or (proposal == "auxiliary" and ssm.proposal is not None)
    if guided and (ssm.proposal is None or ssm.proposal_initial is None):
        raise ValueError(
            "proposal='guided' needs ssm.proposal(t, x_prev, y_t) and "
            "ssm.proposal_initial(y_0) returning distributions; use proposal='bootstrap' "
            "or add them to the StateSpaceModel."
        )
    log_eta = ssm.log_eta if ssm.log_eta is not None else _default_log_eta(ssm)

    def log_g(t, x):
        y = y_at(t)
        return _per_particle(ssm, lambda xi: ssm.observation(t, xi).log_prob(y), x)

    def init(key, n):
        if guided:
            q0 = ssm.proposal_initial(y_at(0))
            return q0.sample(key, (n,))
        return p0.sample(key, (n,))

    def move(key, t, x_prev):
        if guided:
            y = y_at(t)
            return _sample(ssm, lambda xp: ssm.proposal(t, xp, y), key, x_prev)
        return _sample(ssm, lambda xp: ssm.transition(t, xp), key, x_prev)

    def guided_log_potential(t, x_prev, x):
        if not guided:
            return log_g(t, x)
        y = y_at(t)

        def first():
            return p0.log_prob(x) + log_g(0, x) - ssm.proposal_initial(y).log_prob(x)

        def later():
            log_f = _per_particle(ssm, lambda xp, xi: ssm.transition(t, xp).log_prob(xi), x_prev, x)
            log_q = _per_particle(
                ssm, lambda xp, xi: ssm.proposal(t, xp, y).log_prob(xi), x_prev, x
            )
            return log_f + log_g(t, x) - log_q

        return jax.lax.cond(t == 0, first, later)

    def log_eta_next(t, x):
        # log eta_{t+1}(x_t); zero after the last observation.
        t_next = jnp.minimum(t + 1, num_steps - 1)
        y = y_at(t_next)
        value = _per_particle(ssm, lambda xi: log_eta(t_next, xi, y), x)
        return jnp.where(t + 1 < num_steps, value, 0.0)

    if proposal == "auxiliary":

        def log_potential(t, x_prev, x):
            base = guided_log_potential(t, x_prev, x) + log_eta_next(t, x)
            y = y_at(t)
            previous = _per_particle(ssm, lambda xi: log_eta(t, xi, y), x_prev)
            return base - jnp.where(t > 0, previous, 0.0)

        def filtering_log_weights(t, x, log_w):
            # The loop targets the filter times eta_{t+1}: divide it out. The
            # normaliser c = log sum_i W_i / eta_{t+1}(x_i) also turns the running
            # log-evidence into log p(y_{0:t}) (Chopin & Papaspiliopoulos 2020, §10.3.3).
            corrected = log_w - log_eta_next(t, x)
            c = logsumexp(corrected)
            return corrected - c, c

    else:
        log_potential = guided_log_potential

        def filtering_log_weights(t, x, log_w):
            return log_w, jnp.zeros((), log_w.dtype)

    return FeynmanKac(init, move, log_potential, num_steps), filtering_log_weights


def _moments(x, log_w):
    w = jnp.exp(log_w)
    w = w.reshape(w.shape + (1,) * (x.ndim - 1))
    mean = jnp.sum(w * x, axis=0)
    return mean, jnp.sum(w * (x - mean) ** 2, axis=0)


def particle_filter_loop(
    key: jax.Array,
    ssm: StateSpaceModel,
    observations: jax.Array,
    *,
    num_particles: int,
    proposal: str = "bootstrap",
    resampling_fn: ResamplingFn,
    ess_threshold: float = 0.5,
    store_history: bool = False,
    progress_bar: bool = False,
    mesh: Mesh | None = None,
) -> ParticleFilterResult:
    """:func:`particle_filter` as a pure, jittable function of a key (for ``vmap``).

    Example:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist
        >>> import probkit.smc as smc
        >>> ssm = smc.StateSpaceModel(dist.Normal(0.0, 1.0), lambda t, x: dist.Normal(x, 1.0),
        ...                           lambda t, x: dist.Normal(x, 1.0))
        >>> pf = lambda k: smc.particle_filter_loop(k, ssm, jnp.zeros(5), num_particles=100,
        ...                                         resampling_fn=smc.systematic)
        >>> jax.vmap(pf)(jax.random.split(jax.random.key(0), 4)).log_likelihood.shape
        (4,)
    """
    check_key(key)
    fk, filtering_log_weights = state_space_feynman_kac(ssm, observations, proposal)

    def summary_fn(t, x, log_w):
        log_w_filter, log_correction = filtering_log_weights(t, x, log_w)
        mean, var = _moments(x, log_w_filter)
        out = {"mean": mean, "var": var, "log_correction": log_correction}
        if store_history:
            out["log_w"] = log_w_filter
        return out

    result = loop(
        key,
        fk,
        num_particles=num_particles,
        resampling_fn=resampling_fn,
        ess_threshold=ess_threshold,
        store_history=store_history,
        progress_bar=progress_bar,
        mesh=mesh,
        summary_fn=summary_fn,
    )
    summaries = result.info["summaries"]
    path = jnp.cumsum(result.log_evidence_increments) + summaries["log_correction"]
    return ParticleFilterResult(
        log_likelihood=result.log_evidence,
        filtering_mean=summaries["mean"],
        filtering_var=summaries["var"],
        log_likelihood_path=path,
        filtering_log_weights=summaries.get("log_w"),
        smc=result,
    )


_particle_filter_jit = eqx.filter_jit(particle_filter_loop)


def _partial_filter(result: ParticleFilterResult, done: int) -> ParticleFilterResult:
    """A filter stopped after ``done`` moves: its outputs for the observations seen."""
    keep = done + 1

    def cut(a):
        return None if a is None else a[:keep]

    return result._replace(
        filtering_mean=cut(result.filtering_mean),
        filtering_var=cut(result.filtering_var),
        log_likelihood_path=cut(result.log_likelihood_path),
        filtering_log_weights=cut(result.filtering_log_weights),
        smc=_partial_smc(result.smc, done),
    )


def _check_observation_shape(fk: FeynmanKac, observations) -> None:
    """Shapes only (no compilation): one log-density per particle at ``y_0``."""
    particles = jax.eval_shape(lambda key: fk.init(key, 2), jax.random.key(0))
    log_g = jax.eval_shape(lambda x: fk.log_potential(0, x, x), particles)
    if log_g.shape != (2,):
        y0 = jax.tree_util.tree_map(lambda y: y.shape[1:], observations)
        raise ValueError(
            f"ssm.observation(t, x).log_prob(y_t) must give one value per particle, but "
            f"with observations[t] of shape {y0} it gave shape {log_g.shape[1:]} per "
            "particle. Give observations of shape (T, *event_shape), where event_shape "
            "is the observation distribution's (e.g. (T,) for a scalar Normal, (T, d) "
            "for a d-dimensional MultivariateNormal)."
        )


def particle_filter(
    ssm: StateSpaceModel,
    observations: jax.Array,
    *,
    num_particles: int,
    proposal: str = "bootstrap",
    seed: int = 0,
    resampling: str | ResamplingFn = "systematic",
    ess_threshold: float = 0.5,
    store_history: bool = False,
    progress_bar: bool = False,
    mesh: Mesh | None = None,
) -> ParticleFilterResult:
    """Particle filter for a state-space model: likelihood estimate and filtering moments.

    Args:
        ssm: the :class:`StateSpaceModel`.
        observations: ``y_0, ..., y_{T-1}`` stacked on a leading time axis (passed to
            the compiled filter as an argument, so new data does not recompile).
        num_particles: ``N``.
        proposal: ``"bootstrap"`` (propose from the transition), ``"guided"`` (from
            ``ssm.proposal``) or ``"auxiliary"`` (auxiliary PF with look-ahead
            ``ssm.log_eta``; guided proposal when the model has one).
        seed: seed of the ``jax.random`` key.
        resampling: scheme name or function (see :func:`probkit.smc.run`).
        ess_threshold: resample when ESS/N falls below it.
        store_history: keep every step's particles and filtering weights (needed by
            :func:`ffbs`).
        progress_bar: draw a progress bar.
        mesh: shard the particle axis over this device mesh.

    Returns:
        a :class:`ParticleFilterResult`.

    Raises:
        probkit.progress.Interrupted: on Ctrl-C, within about a second;
            ``partial_result`` is the filter's result for the observations seen.

    Example:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist
        >>> import probkit.smc as smc
        >>> ssm = smc.StateSpaceModel(
        ...     initial=dist.Normal(0.0, 1.0),
        ...     transition=lambda t, x: dist.Normal(0.9 * x, 1.0),
        ...     observation=lambda t, x: dist.Normal(x, 1.0),
        ... )
        >>> pf = smc.particle_filter(ssm, jnp.array([0.3, -0.1, 1.2]), num_particles=500)
        >>> pf.filtering_mean.shape
        (3,)
    """
    if proposal not in PROPOSALS:
        raise ValueError(f"proposal must be one of {PROPOSALS}, got {proposal!r}.")
    if not isinstance(ssm, StateSpaceModel):
        raise TypeError(f"ssm must be a probkit.smc.StateSpaceModel, got {type(ssm).__name__}.")
    leaves = jax.tree_util.tree_leaves(observations)
    if isinstance(observations, list | tuple) and leaves and all(jnp.ndim(v) == 0 for v in leaves):
        # A plain list of numbers is one series, not a pytree of T scalar series.
        observations = jnp.asarray(observations)
        leaves = [observations]
    if not leaves or jnp.ndim(leaves[0]) == 0 or jnp.shape(leaves[0])[0] < 1:
        raise ValueError(
            "observations must have a leading time axis with at least one step, e.g. "
            f"shape (T,) or (T, obs_dim); got {jnp.shape(leaves[0]) if leaves else 'nothing'}."
        )
    observations = jax.tree_util.tree_map(jnp.asarray, observations)
    fk, _ = state_space_feynman_kac(ssm, observations, proposal)
    _check_run_arguments(fk, num_particles, ess_threshold, mesh)
    _check_observation_shape(fk, observations)
    result = run_interruptible(
        particle_filter_loop,
        jax.random.key(check_seed(seed)),
        (ssm, observations),
        {
            "num_particles": int(num_particles),
            "proposal": proposal,
            "resampling_fn": get_resampling(resampling),
            "ess_threshold": float(ess_threshold),
            "store_history": bool(store_history),
            "progress_bar": bool(progress_bar),
            "mesh": mesh,
        },
        num_moves=fk.num_steps - 1,
        what="particle filter",
        partial=_partial_filter,
    )
    check_finite_log_evidence(result.smc)
    return gather_across_processes(result)


def ffbs(
    key: jax.Array,
    ssm: StateSpaceModel,
    filtered: ParticleFilterResult,
    num_trajectories: int,
) -> jax.Array:
    """Forward-filtering backward-sampling smoother (Godsill, Doucet & West 2004).

    Draws ``num_trajectories`` paths from the particle approximation of
    ``p(x_{0:T-1} | y_{0:T-1})``: ``J_{T-1} ~ W_{T-1}``, then backwards
    ``J_t ~ W_t^j f_{t+1}(x_{t+1}^{J_{t+1}} | x_t^j)``. Cost ``O(T N M)`` transition
    densities, so for moderate ``N`` (a few thousand). Needs a filter run with
    ``store_history=True``.

    Returns:
        trajectories of shape ``(T, num_trajectories, *state_shape)``.

    Example:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist
        >>> import probkit.smc as smc
        >>> ssm = smc.StateSpaceModel(dist.Normal(0.0, 1.0), lambda t, x: dist.Normal(x, 1.0),
        ...                           lambda t, x: dist.Normal(x, 1.0))
        >>> pf = smc.particle_filter(ssm, jnp.zeros(4), num_particles=64, store_history=True)
        >>> smc.ffbs(jax.random.key(1), ssm, pf, 10).shape
        (4, 10)
    """
    check_key(key)
    if filtered.filtering_log_weights is None or filtered.smc.history is None:
        raise ValueError(
            "ffbs needs every step's particles: run particle_filter(..., store_history=True)."
        )
    xs = filtered.smc.history.particles
    log_ws = filtered.filtering_log_weights
    num_steps = log_ws.shape[0]
    key_last, key_back = jax.random.split(key)
    last = jax.random.categorical(key_last, log_ws[-1], shape=(num_trajectories,))
    x_last = jnp.take(xs[-1], last, axis=0)

    def backward(x_next, inputs):
        t, x_t, log_w_t, k = inputs
        log_f = jax.vmap(
            lambda xn: _per_particle(ssm, lambda xj: ssm.transition(t + 1, xj).log_prob(xn), x_t)
        )(x_next)
        idx = jax.random.categorical(k, log_w_t[None, :] + log_f, axis=-1)
        x_new = jnp.take(x_t, idx, axis=0)
        return x_new, x_new

    if num_steps == 1:
        return x_last[None]
    ts = jnp.arange(num_steps - 2, -1, -1)
    keys = jax.random.split(key_back, num_steps - 1)
    _, back = jax.lax.scan(backward, x_last, (ts, xs[:-1][::-1], log_ws[:-1][::-1], keys))
    return jnp.concatenate([back[::-1], x_last[None]], axis=0)
