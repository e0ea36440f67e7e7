"""The hypergrid environment of Bengio et al. (2021), as in torchgfn.

States are points of ``{0, ..., H - 1}^D`` reached from the origin by incrementing one
coordinate at a time; every state can stop. With ``a_d = |s_d / (H - 1) - 0.5|``,

    R(s) = R0 + R1 prod_d 1[0.25 < a_d] + R2 prod_d 1[0.3 < a_d < 0.4],

so the modes (reward ``R0 + R1 + R2``) sit near the corners. The exact target is known
by enumerating the ``H^D`` states, up to :data:`MAX_ENUMERATED_STATES` of them; above
that, :meth:`HyperGrid.all_states` returns ``None`` (exact evaluation is refused with a
message, training still works) and ``log Z`` comes from its closed form: the indicators
factorise over the coordinates, so ``Z = R0 H^D + R1 c1^D + R2 c2^D`` with ``c1``, ``c2``
the numbers of coordinate values on the outer ring and in the band.
"""

from __future__ import annotations

import itertools
import math
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from probkit.models.gflownet._environment import Environment

__all__ = ["HyperGrid", "MAX_ENUMERATED_STATES"]

#: Largest ``H^D`` that :meth:`HyperGrid.all_states` enumerates (exact evaluation runs the
#: policy network on every state, ``max_length`` times through the DAG).
MAX_ENUMERATED_STATES = 2**18


def _whole(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return int(value)


class HyperGrid(Environment):
    """The ``D``-dimensional hypergrid of side ``H`` with the reward of Bengio et al. (2021).

    Actions ``d < D`` increment coordinate ``d``; action ``D`` stops. The network input
    is the concatenation of the ``D`` one-hot encodings of the coordinates (torchgfn's
    ``KHotPreprocessor``); the intermediate energy is ``E(s) = -log R(s)``.

    Args (of the constructor):
        ndim: the dimension ``D``.
        height: the side ``H`` (coordinates ``0 .. H - 1``).
        R0: the base reward (must be > 0).
        R1: the reward added on the outer ring (``>= 0``).
        R2: the reward added on the band of the modes (``>= 0``).

    Raises:
        ValueError: for ``ndim < 1``, ``height < 2``, ``R0 <= 0`` or negative ``R1``/``R2``
            (NumPy integers are accepted for ``ndim`` and ``height``).

    Example:
        >>> from probkit.models.gflownet import HyperGrid
        >>> env = HyperGrid(ndim=2, height=8)
        >>> env.num_actions, env.max_length
        (3, 15)
        >>> round(float(env.log_partition()), 4)
        3.1091
    """

    ndim: int = eqx.field(static=True)
    height: int = eqx.field(static=True)
    R0: float = eqx.field(static=True)
    R1: float = eqx.field(static=True)
    R2: float = eqx.field(static=True)
    num_actions: int = eqx.field(static=True)
    max_length: int = eqx.field(static=True)

    def __init__(
        self, ndim: int, height: int, R0: float = 0.1, R1: float = 0.5, R2: float = 2.0
    ) -> None:
        ndim = _whole(ndim, "ndim", 1)
        height = _whole(height, "height", 2)
        for name, value in (("R0", R0), ("R1", R1), ("R2", R2)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a real number, got {type(value).__name__}.")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value}.")
        if not R0 > 0:
            raise ValueError(f"R0 must be > 0 (rewards must be positive), got {R0}.")
        if R1 < 0 or R2 < 0:
            raise ValueError(f"R1 and R2 must be >= 0, got R1={R1}, R2={R2}.")
        self.ndim, self.height = ndim, height
        self.R0, self.R1, self.R2 = float(R0), float(R1), float(R2)
        self.num_actions = ndim + 1
        self.max_length = ndim * (height - 1) + 1

    def initial_state(self) -> Array:
        return jnp.zeros(self.ndim, jnp.int32)

    def forward_mask(self, state: Array) -> Array:
        return jnp.concatenate([state < self.height - 1, jnp.ones(1, bool)])

    def backward_mask(self, state: Array) -> Array:
        return state > 0

    def step(self, state: Array, action: Array) -> Array:
        return state.at[action].add(1)

    def backward_step(self, state: Array, action: Array) -> Array:
        return state.at[action].add(-1)

    def log_reward(self, state: Array) -> Array:
        # a_d = |s_d / n - 1/2| = d / (2 n) with n = H - 1 and the integer d = |2 s_d - n|:
        # the thresholds are compared exactly in integers (in float32, XLA's division by
        # a constant can put a state such as s = 12 of H = 16, a = 0.3, on either side).
        n = self.height - 1
        d = jnp.abs(2 * state - n)
        outer = jnp.all(2 * d > n)  # a > 0.25
        band = jnp.all((5 * d > 3 * n) & (5 * d < 4 * n))  # 0.3 < a < 0.4
        return jnp.log(self.R0 + self.R1 * outer + self.R2 * band)

    def energy(self, state: Array) -> Array:
        return -self.log_reward(state)

    def features(self, state: Array) -> Array:
        return jax.nn.one_hot(state, self.height).reshape(-1)

    @property
    def num_states(self) -> int:
        """``H^D``, the number of states (a Python int: it may be astronomically large)."""
        return self.height**self.ndim

    def all_states(self) -> Array | None:
        """All ``H^D`` states in row-major order, or ``None`` above
        :data:`MAX_ENUMERATED_STATES` (too many to enumerate)."""
        if self.num_states > MAX_ENUMERATED_STATES:
            return None
        grid = itertools.product(range(self.height), repeat=self.ndim)
        return jnp.asarray(np.array(list(grid), dtype=np.int32))

    def state_index(self, state: Array) -> Array:
        weights = self.height ** jnp.arange(self.ndim - 1, -1, -1)
        return jnp.sum(state * weights)

    def log_partition(self) -> Array:
        """The exact ``log Z = log sum_s R(s)``, in closed form (any size).

        The reward's indicators factorise over coordinates, so
        ``Z = R0 H^D + R1 c1^D + R2 c2^D`` where ``c1`` (``c2``) counts the coordinate
        values on the outer ring (in the band); computed in logs, so it does not overflow.
        """
        n = self.height - 1
        d = np.abs(2 * np.arange(self.height) - n)
        c1 = int(np.sum(2 * d > n))
        c2 = int(np.sum((5 * d > 3 * n) & (5 * d < 4 * n)))
        terms = [math.log(self.R0) + self.ndim * math.log(self.height)]
        for weight, count in ((self.R1, c1), (self.R2, c2)):
            if weight > 0 and count > 0:
                terms.append(math.log(weight) + self.ndim * math.log(count))
        return jnp.asarray(float(np.logaddexp.reduce(terms)), dtype=jnp.result_type(float))
