"""Building a set of fixed size with an additive energy (Pan et al., 2023).

States are subsets of ``{0, ..., N - 1}`` (binary vectors), built by adding one element
at a time; a set of ``size`` elements must stop. Each element ``e`` carries an energy
``u_e``, the energy of a (partial) set is ``E(S) = sum_{e in S} u_e`` and the reward of a
full set is ``R(x) = exp(-E(x))``. Because ``E`` is defined along the way, the
forward-looking parameterisation ``log F(s) = log F~(s) - E(s)`` gets credit at every
step. The partition function is the elementary symmetric polynomial
``Z = e_size(exp(-u))``, computed exactly by dynamic programming.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from probkit.models.gflownet._environment import Environment

__all__ = ["SetBuilding"]

_MAX_ENUMERATED = 20  # all_states() enumerates 2^N states up to N = 20


class SetBuilding(Environment):
    """Sets of ``size`` elements out of ``N = len(energies)``, ``R(x) = exp(-sum_{e in x} u_e)``.

    Action ``e < N`` adds element ``e``; action ``N`` stops (valid only at full sets).
    The network input is the binary membership vector.

    Args (of the constructor):
        energies: ``(N,)`` per-element energies ``u_e`` (finite).
        size: the number of elements of a terminal set, ``1 <= size <= N``.

    Raises:
        ValueError: for non-finite energies or a size outside ``[1, N]``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.gflownet import SetBuilding
        >>> env = SetBuilding(jnp.zeros(4), size=2)
        >>> round(float(env.log_partition()), 4)  # log C(4, 2) = log 6
        1.7918
    """

    energies: Array
    size: int = eqx.field(static=True)
    num_actions: int = eqx.field(static=True)
    max_length: int = eqx.field(static=True)

    def __init__(self, energies: Array, size: int) -> None:
        energies = np.asarray(energies, dtype=np.float32)
        if energies.ndim != 1 or len(energies) < 1:
            raise ValueError(f"energies must be a non-empty vector, got shape {energies.shape}.")
        if not np.all(np.isfinite(energies)):
            raise ValueError("energies must be finite (rewards exp(-E) must be > 0).")
        if not isinstance(size, int | np.integer) or not 1 <= size <= len(energies):
            raise ValueError(f"size must be an int in [1, {len(energies)}], got {size!r}.")
        self.energies = jnp.asarray(energies)
        self.size = size
        self.num_actions = len(energies) + 1
        self.max_length = size + 1

    def initial_state(self) -> Array:
        return jnp.zeros(self.num_actions - 1, jnp.int32)

    def forward_mask(self, state: Array) -> Array:
        count = state.sum()
        return jnp.concatenate([(state == 0) & (count < self.size), (count == self.size)[None]])

    def backward_mask(self, state: Array) -> Array:
        return state == 1

    def step(self, state: Array, action: Array) -> Array:
        return state.at[action].set(1)

    def backward_step(self, state: Array, action: Array) -> Array:
        return state.at[action].set(0)

    def energy(self, state: Array) -> Array:
        return jnp.sum(self.energies * state)

    def log_reward(self, state: Array) -> Array:
        return -self.energy(state)

    def features(self, state: Array) -> Array:
        return state.astype(jnp.float32)

    def all_states(self) -> Array | None:
        n = self.num_actions - 1
        if n > _MAX_ENUMERATED:
            return None
        codes = np.arange(2**n, dtype=np.int64)[:, None]
        bits = (codes >> np.arange(n - 1, -1, -1)) & 1
        return jnp.asarray(bits.astype(np.int32))

    def state_index(self, state: Array) -> Array:
        n = self.num_actions - 1
        return jnp.sum(state * 2 ** jnp.arange(n - 1, -1, -1))

    def log_partition(self) -> Array:
        """The exact ``log Z = log e_size(exp(-u))`` (elementary symmetric polynomial, by DP)."""
        log_w = -self.energies

        def add_element(log_e, lw):
            shifted = jnp.concatenate([jnp.full(1, -jnp.inf), log_e[:-1] + lw])
            return jnp.logaddexp(log_e, shifted), None

        log_e0 = jnp.full(self.size + 1, -jnp.inf).at[0].set(0.0)
        log_e, _ = jax.lax.scan(add_element, log_e0, log_w)
        return log_e[self.size]
