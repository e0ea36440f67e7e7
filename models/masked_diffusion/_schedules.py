"""Masking schedules of absorbing-state (masked) diffusion and their ELBO weights.

The forward process masks every token independently: at time ``t in [0, 1]`` a token is
still clean with probability ``alpha(t)`` (``alpha(0) = 1``, decreasing). The
continuous-time negative ELBO of a sequence ``x`` (Shi et al. 2024; Sahoo et al. 2024)
is

    -ELBO(x) = int_0^1 w(t) E_{x_t ~ q(. | x)} [ sum_{i masked} -log p(x^i | x_t) ] dt,

with weight ``w(t) = -alpha'(t) / (1 - alpha(t))``. Substituting ``u = 1 - alpha(t)``
turns the integral into a sum over the number ``n`` of masked tokens with weights
``1 / n``, the same for every schedule with ``alpha(1) = 0`` (Zheng et al. 2024): the
loss does not need the time (see :func:`time_agnostic_loss`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp

__all__ = ["MaskingSchedule", "linear", "cosine", "log_linear", "get_schedule", "SCHEDULES"]


class MaskingSchedule(NamedTuple):
    """A masking schedule ``alpha(t)``: the probability that a token is still clean.

    Attributes:
        name: ``"linear"`` (``1 - t``), ``"cosine"`` (``1 - cos(pi/2 (1 - t))``) or
            ``"log_linear"`` (``1 - (1 - eps) t``, the schedule of SEDD and MDLM,
            whose total noise ``-log alpha`` is log-linear in ``t``).
        eps: the clean probability left at ``t = 1`` (``log_linear`` only; 0 otherwise).
            Samplers start from the fully masked sequence, so ``eps > 0`` leaves out the
            ELBO's prior term, of order ``eps`` per token.

    Example:
        >>> from probkit.models.masked_diffusion import cosine
        >>> s = cosine()
        >>> float(s.alpha(0.0)), round(float(s.alpha(1.0)), 6)
        (1.0, 0.0)
    """

    name: str
    eps: float = 0.0

    def alpha(self, t):
        """``alpha(t)``, the probability that a token is clean at time ``t``."""
        t = jnp.asarray(t, jnp.float32)
        if self.name == "linear":
            return 1.0 - t
        if self.name == "cosine":
            return 1.0 - jnp.cos(0.5 * jnp.pi * (1.0 - t))
        return 1.0 - (1.0 - self.eps) * t

    def alpha_derivative(self, t):
        """``d alpha / dt`` (negative)."""
        t = jnp.asarray(t, jnp.float32)
        if self.name == "linear":
            return -jnp.ones_like(t)
        if self.name == "cosine":
            return -0.5 * jnp.pi * jnp.sin(0.5 * jnp.pi * (1.0 - t))
        return -(1.0 - self.eps) * jnp.ones_like(t)

    def weight(self, t):
        """The ELBO weight ``w(t) = -alpha'(t) / (1 - alpha(t))`` (``1/t`` when linear)."""
        t = jnp.asarray(t, jnp.float32)
        if self.name == "linear" or self.name == "log_linear":
            return 1.0 / t
        # 1 - alpha = cos(pi/2 (1 - t)), so w = (pi/2) tan(pi/2 (1 - t)).
        return 0.5 * jnp.pi * jnp.tan(0.5 * jnp.pi * (1.0 - t))

    def time_at(self, alpha):
        """The inverse: the time ``t`` with ``alpha(t) = alpha`` (clipped to ``[0, 1]``)."""
        alpha = jnp.asarray(alpha, jnp.float32)
        if self.name == "linear":
            t = 1.0 - alpha
        elif self.name == "cosine":
            t = 1.0 - jnp.arccos(jnp.clip(1.0 - alpha, 0.0, 1.0)) / (0.5 * jnp.pi)
        else:
            t = (1.0 - alpha) / (1.0 - self.eps)
        return jnp.clip(t, 0.0, 1.0)


def linear() -> MaskingSchedule:
    """``alpha(t) = 1 - t``; ELBO weight ``1 / t``.

    Example:
        >>> from probkit.models.masked_diffusion import linear
        >>> float(linear().weight(0.5))
        2.0
    """
    return MaskingSchedule("linear")


def cosine() -> MaskingSchedule:
    """``alpha(t) = 1 - cos(pi/2 (1 - t))`` (MD4's cosine); weight ``pi/2 tan(pi/2 (1 - t))``.

    Example:
        >>> from probkit.models.masked_diffusion import cosine
        >>> round(float(cosine().weight(0.5)), 4)
        1.5708
    """
    return MaskingSchedule("cosine")


def log_linear(eps: float = 1e-3) -> MaskingSchedule:
    """``alpha(t) = 1 - (1 - eps) t``: total noise ``-log alpha`` log-linear in ``t``.

    Example:
        >>> from probkit.models.masked_diffusion import log_linear
        >>> round(float(log_linear(1e-3).alpha(1.0)), 6)
        0.001
    """
    if not 0.0 <= eps < 1.0 or not math.isfinite(eps):
        raise ValueError(f"eps must lie in [0, 1), got {eps!r}.")
    return MaskingSchedule("log_linear", float(eps))


SCHEDULES = ("linear", "cosine", "log_linear")


def get_schedule(schedule: str | MaskingSchedule) -> MaskingSchedule:
    """A schedule from its name (``"linear"``, ``"cosine"``, ``"log_linear"``) or itself.

    Example:
        >>> from probkit.models.masked_diffusion import get_schedule
        >>> get_schedule("cosine").name
        'cosine'
    """
    if isinstance(schedule, MaskingSchedule):
        if schedule.name not in SCHEDULES:
            raise ValueError(f"schedule.name must be one of {SCHEDULES}, got {schedule.name!r}.")
        return schedule
    if schedule == "linear":
        return linear()
    if schedule == "cosine":
        return cosine()
    if schedule == "log_linear":
        return log_linear()
    raise ValueError(f"schedule must be one of {SCHEDULES} or a MaskingSchedule, got {schedule!r}.")
