"""Search over a flow model's samples for a reward: best-of-N, SMC over the SDE, and RBF.

All three take ``num_steps`` Euler(-Maruyama) steps of the flow's ODE or SDE (see
:mod:`probkit.scaling._flow`) on ``t in [0, 1]`` and count the same budget: one
*proposal* per particle (or candidate) per step, which is one evaluation of the
velocity (the evaluation at the new point serves both as the look-ahead for the reward
and as the next step's drift). A reward is any function of a final sample
(differentiable or not); intermediate particles are scored through the look-ahead
``E[x_1 | x_t]`` (:func:`probkit.scaling.posterior_means`).

* :func:`flow_best_of_n`: ``n`` independent samples (ODE: ``epsilon = 0``, the
  deterministic baseline; or SDE), the one with the largest reward.
* :func:`flow_feynman_kac` / :func:`flow_smc`: SMC over the SDE with the potential
  ``(r(x1_hat_k) - r(x1_hat_{k-1})) / temperature``. The potentials telescope, so the
  weighted particles target ``p(x) exp(r(x) / temperature)`` (up to time
  discretisation), the reward-tilted law.
* :func:`rollover_budget_forcing` (Kim et al. 2025): one current sample; at every
  step candidates are drawn from the SDE step until one's look-ahead reward beats the
  current one, within the step's quota (total budget / steps); the unused quota rolls
  over to the next step. If no candidate improves, the best one tried is kept. It is a
  Feynman-Kac model whose per-step *parameters* (the current sample, its reward, the
  budget carried over and spent) are computed from the candidates by the loop's
  ``update_parameters``. The candidates of a step are drawn as one batch of
  ``num_candidates`` and the first improving one (in draw order) is taken: the same
  law as drawing them one at a time, and the budget counts only those a sequential
  search would have drawn; wall time is that of the full batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import probkit.smc as smc
from probkit._checks import check_key
from probkit._repr import summary_repr
from probkit.scaling._flow import (
    FieldFn,
    diffusion_schedule,
    posterior_means,
    step_from_velocity,
)
from probkit.scaling._potentials import reward_difference
from probkit.sde import Interpolant

__all__ = [
    "FlowParticles",
    "FlowSearchResult",
    "flow_feynman_kac",
    "flow_smc",
    "flow_best_of_n",
    "rollover_budget_forcing",
]

RewardFn = Callable[[jax.Array], jax.Array]


class FlowParticles(NamedTuple):
    """Particles of the flow Feynman-Kac models.

    Attributes:
        x: ``(n, d)`` the samples at the current time.
        velocity: ``(n, d)`` the velocity at ``x`` (the next step's drift).
        reward: ``(n,)`` the reward of the look-ahead ``E[x_1 | x_t]`` (of ``x`` itself
            at ``t = 1``).
    """

    x: jax.Array
    velocity: jax.Array
    reward: jax.Array


class FlowSearchResult(NamedTuple):
    """A flow search's outcome.

    Attributes:
        sample: ``(d,)`` the selected sample (largest reward; RBF: its current sample).
        reward: its reward.
        samples: ``(n, d)`` the final particles (RBF: the last step's candidates).
        log_weights: ``(n,)`` their normalised log-weights (uniform where unweighted).
        rewards: ``(n,)`` their rewards.
        num_proposals: the budget spent (particle- or candidate-steps).
    """

    sample: jax.Array
    reward: jax.Array
    samples: jax.Array
    log_weights: jax.Array
    rewards: jax.Array
    num_proposals: jax.Array

    def __repr__(self) -> str:
        return summary_repr(self)


def _check(num_steps, dim):
    if not isinstance(num_steps, int | np.integer) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}.")
    if not isinstance(dim, int | np.integer) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}.")


class _Flow(NamedTuple):
    velocity: FieldFn
    path: Interpolant
    reward: RewardFn
    num_steps: int
    eps_fn: Callable

    def time(self, k):
        return jnp.asarray(k, float) / self.num_steps

    def evaluate(self, x, k):
        """Velocity at time k and the look-ahead reward (x itself at the last time)."""
        t = self.time(k)
        b = jax.vmap(self.velocity, in_axes=(0, None))(x, t)
        m1 = jax.vmap(lambda xi, bi: posterior_means(lambda *_: bi, self.path, xi, t)[1])(x, b)
        final = jnp.asarray(k) >= self.num_steps
        lookahead = jnp.where(final, x, m1)
        return b, jax.vmap(self.reward)(lookahead)

    def advance(self, key, k, particles: FlowParticles) -> FlowParticles:
        """One SDE step from time k - 1 to k for every particle."""
        x = step_from_velocity(
            key,
            self.path,
            particles.x,
            particles.velocity,
            self.time(k - 1),
            self.time(k),
            self.eps_fn,
        )
        b, r = self.evaluate(x, k)
        return FlowParticles(x, b, r)

    def start(self, key, n, dim):
        x = jax.random.normal(key, (n, dim))
        b, r = self.evaluate(x, 0)
        return FlowParticles(x, b, r)


def flow_feynman_kac(
    velocity: FieldFn,
    path: Interpolant,
    reward: RewardFn,
    dim: int,
    *,
    num_steps: int = 50,
    epsilon: float | Callable = 1.0,
    temperature: float = 1.0,
) -> smc.FeynmanKac:
    """SMC over a flow's SDE, tilted towards ``exp(reward / temperature)``.

    ``X_0 ~ N(0, I)`` at ``t = 0``; ``M_k`` is one Euler-Maruyama step of the SDE to
    ``t = k / num_steps``; ``log G_k`` is the difference of consecutive look-ahead
    rewards over ``temperature`` (:func:`probkit.scaling.reward_difference`). The
    product of potentials is ``exp(r(X_1) / temperature)``, so the weighted final
    particles target the reward-tilted law. ``num_steps + 1`` potentials.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import probkit.smc as smc
        >>> from probkit.sde import linear_interpolant
        >>> from probkit.scaling import flow_feynman_kac
        >>> fk = flow_feynman_kac(lambda x, t: -x, linear_interpolant("none"),
        ...                       lambda x: -jnp.sum(x**2), 2, num_steps=4)
        >>> smc.loop(jax.random.key(0), fk, num_particles=8,
        ...          resampling_fn=smc.systematic).particles.x.shape
        (8, 2)
    """
    _check(num_steps, dim)
    flow = _Flow(velocity, path, reward, num_steps, diffusion_schedule(path, epsilon))
    potential = reward_difference(temperature)

    def log_potential(k, previous: FlowParticles, particles: FlowParticles):
        return potential(k, previous.reward, particles.reward)

    return smc.FeynmanKac(
        init=lambda key, n: flow.start(key, n, dim),
        move=flow.advance,
        log_potential=log_potential,
        num_steps=num_steps + 1,
    )


def _best(samples, log_weights, rewards, num_proposals):
    best = jnp.argmax(jnp.where(jnp.isnan(rewards), -jnp.inf, rewards))
    return FlowSearchResult(
        samples[best], rewards[best], samples, log_weights, rewards, jnp.asarray(num_proposals)
    )


def flow_smc(
    key: jax.Array,
    velocity: FieldFn,
    path: Interpolant,
    reward: RewardFn,
    dim: int,
    num_particles: int,
    *,
    num_steps: int = 50,
    epsilon: float | Callable = 1.0,
    temperature: float = 1.0,
    resampling_fn: smc.ResamplingFn = smc.systematic,
    ess_threshold: float = 0.5,
) -> FlowSearchResult:
    """Run :func:`flow_feynman_kac` with :func:`probkit.smc.loop` (pure, jittable).

    ``sample`` is the final particle with the largest reward; ``samples`` with
    ``log_weights`` approximate the tilted law ``p(x) exp(r(x) / temperature)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import linear_interpolant
        >>> from probkit.scaling import flow_smc
        >>> r = flow_smc(jax.random.key(0), lambda x, t: -x, linear_interpolant("none"),
        ...              lambda x: -jnp.sum(x**2), 2, 16, num_steps=5)
        >>> int(r.num_proposals)  # 16 particles x 5 steps
        80
    """
    check_key(key)
    if not isinstance(num_particles, int | np.integer) or num_particles < 1:
        raise ValueError(f"num_particles must be a positive int, got {num_particles!r}.")
    fk = flow_feynman_kac(
        velocity, path, reward, dim, num_steps=num_steps, epsilon=epsilon, temperature=temperature
    )
    result = smc.loop(
        key,
        fk,
        num_particles=num_particles,
        resampling_fn=resampling_fn,
        ess_threshold=float(ess_threshold),
    )
    p = result.particles
    return _best(p.x, result.log_weights, p.reward, num_particles * num_steps)


def flow_best_of_n(
    key: jax.Array,
    velocity: FieldFn,
    path: Interpolant,
    reward: RewardFn,
    dim: int,
    num_particles: int,
    *,
    num_steps: int = 50,
    epsilon: float | Callable = 0.0,
) -> FlowSearchResult:
    """``n`` independent samples (ODE by default) and the one with the largest reward.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import linear_interpolant
        >>> from probkit.scaling import flow_best_of_n
        >>> r = flow_best_of_n(jax.random.key(0), lambda x, t: -x, linear_interpolant("none"),
        ...                    lambda x: -jnp.sum(x**2), 2, 16, num_steps=5)
        >>> bool(r.reward == r.rewards.max())
        True
    """
    check_key(key)
    if not isinstance(num_particles, int | np.integer) or num_particles < 1:
        raise ValueError(f"num_particles must be a positive int, got {num_particles!r}.")
    _check(num_steps, dim)
    flow = _Flow(velocity, path, reward, num_steps, diffusion_schedule(path, epsilon))
    key_init, key_steps = jax.random.split(key)
    particles = flow.start(key_init, num_particles, dim)
    keys = jax.random.split(key_steps, num_steps)

    def body(particles, inputs):
        k, key = inputs
        return flow.advance(key, k, particles), None

    particles, _ = jax.lax.scan(body, particles, (jnp.arange(1, num_steps + 1), keys))
    uniform = jnp.full(num_particles, -jnp.log(num_particles))
    return _best(particles.x, uniform, particles.reward, num_particles * num_steps)


class RBFParameters(NamedTuple):
    """The carried state of rollover budget forcing (per-step parameters of the loop)."""

    x: jax.Array
    velocity: jax.Array
    reward: jax.Array
    carry: jax.Array
    num_proposals: jax.Array


def rollover_budget_forcing(
    key: jax.Array,
    velocity: FieldFn,
    path: Interpolant,
    reward: RewardFn,
    dim: int,
    budget: int,
    *,
    num_steps: int = 50,
    epsilon: float | Callable = 1.0,
    num_candidates: int | None = None,
) -> FlowSearchResult:
    """Rollover Budget Forcing (Kim et al. 2025) on the Feynman-Kac loop (pure, jittable).

    Args:
        key: a ``jax.random`` key.
        velocity: the flow model's velocity field.
        path: its Gaussian path.
        reward: ``x -> scalar`` for one final sample.
        dim: sample dimension.
        budget: total proposals; each step's quota is ``budget // (num_steps + 1)``
            (the initial noise is a step too), plus what earlier steps left.
        num_steps: SDE steps.
        epsilon: diffusion level (see :func:`probkit.scaling.sde_step`).
        num_candidates: candidates drawn per step as one batch, the most a step can
            use (default ``4 * quota``, at most ``budget``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.sde import linear_interpolant
        >>> from probkit.scaling import rollover_budget_forcing
        >>> r = rollover_budget_forcing(jax.random.key(0), lambda x, t: -x,
        ...                             linear_interpolant("none"),
        ...                             lambda x: -jnp.sum(x**2), 2, 60, num_steps=5)
        >>> int(r.num_proposals) <= 60
        True
    """
    check_key(key)
    _check(num_steps, dim)
    quota = budget // (num_steps + 1) if isinstance(budget, int | np.integer) else 0
    if quota < 1:
        raise ValueError(
            f"budget must be an int of at least num_steps + 1 = {num_steps + 1} (one "
            f"proposal per step), got {budget!r}."
        )
    m = min(budget, 4 * quota) if num_candidates is None else int(num_candidates)
    if m < 1:
        raise ValueError(f"num_candidates must be a positive int, got {num_candidates!r}.")
    flow = _Flow(velocity, path, reward, num_steps, diffusion_schedule(path, epsilon))

    def move(key, k, candidates, params: RBFParameters):
        # Every candidate branches from the current sample.
        start = FlowParticles(
            jnp.broadcast_to(params.x, candidates.x.shape),
            jnp.broadcast_to(params.velocity, candidates.velocity.shape),
            candidates.reward,
        )
        return flow.advance(key, k, start)

    def update_parameters(k, candidates, log_weights, params: RBFParameters):
        # This step may use its quota plus what earlier steps left, up to m candidates;
        # the last step uses everything left.
        is_last = k >= num_steps
        allowed = jnp.where(is_last, budget - params.num_proposals, quota + params.carry)
        available = jnp.clip(allowed, 1, m)
        index = jnp.arange(m)
        tried = index < available
        rewards = jnp.where(jnp.isnan(candidates.reward), -jnp.inf, candidates.reward)
        improving = tried & (rewards > params.reward)
        first = jnp.argmax(improving)
        best = jnp.argmax(jnp.where(tried, rewards, -jnp.inf))
        found = jnp.any(improving)
        chosen = jnp.where(found, first, best)
        used = jnp.where(found, first + 1, available)
        return RBFParameters(
            x=candidates.x[chosen],
            velocity=candidates.velocity[chosen],
            reward=rewards[chosen],
            carry=jnp.maximum(quota + params.carry - used, 0),
            num_proposals=params.num_proposals + used,
        )

    initial = RBFParameters(
        x=jnp.zeros(dim),
        velocity=jnp.zeros(dim),
        reward=jnp.asarray(-jnp.inf),
        carry=jnp.zeros((), jnp.int32),
        num_proposals=jnp.zeros((), jnp.int32),
    )
    fk = smc.FeynmanKac(
        init=lambda key, n: flow.start(key, n, dim),
        move=move,
        log_potential=lambda k, previous, candidates, params: jnp.zeros(candidates.x.shape[0]),
        num_steps=num_steps + 1,
        parameters=initial,
        update_parameters=update_parameters,
    )
    result = smc.loop(key, fk, num_particles=m, resampling_fn=smc.systematic, ess_threshold=0.0)
    # The loop records the parameters after every step; the last are the outcome.
    params = jax.tree_util.tree_map(lambda a: a[-1], result.info["parameters"])
    return FlowSearchResult(
        params.x,
        params.reward,
        result.particles.x,
        result.log_weights,
        result.particles.reward,
        params.num_proposals,
    )
