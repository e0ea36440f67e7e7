"""The GFlowNet's networks: forward policy, backward policy, state flow and ``log Z``.

As in torchgfn's hypergrid script, each estimator is its own MLP (ReLU, ``depth``
hidden layers of ``width`` units) on the environment's features: the forward policy
(``num_actions`` logits, which flow matching reads as edge log-flows), an optional
learned backward policy (``num_actions - 1`` logits; otherwise uniform over the valid
parents), an optional state log-flow (detailed and sub-trajectory balance; for
forward-looking training it is ``log F~``), and the scalar ``log Z`` of trajectory
balance.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from probkit.models.gflownet._environment import Environment

from probkit._checks import check_int, check_key

__all__ = ["Policy", "masked_log_softmax", "forward_log_probs", "backward_log_probs"]

# Logit given to invalid actions: finite (so that gradients stay finite), and exp() of it
# underflows to exactly 0 in float32.
_MASKED_LOGIT = -1e9


class Policy(eqx.Module):
    """The trainable part of a GFlowNet (the environment is kept apart, untrained).

    Args (of the constructor):
        env: the environment (fixes the input and output sizes).
        key: a ``jax.random`` key for the initial weights.
        width: hidden units per layer (torchgfn's default, 256).
        depth: hidden layers (torchgfn's default, 2).
        learned_backward: learn the backward policy (else uniform over valid parents).
        state_flow: add a state log-flow network (needed by DB, SubTB and FL-DB).

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import HyperGrid, Policy
        >>> env = HyperGrid(ndim=2, height=4)
        >>> policy = Policy(env, key=jax.random.key(0), width=16)
        >>> policy.forward_net(env.features(env.initial_state())).shape
        (3,)
    """

    forward_net: eqx.nn.MLP
    backward_net: eqx.nn.MLP | None
    flow_net: eqx.nn.MLP | None
    log_z: Array

    def __init__(
        self,
        env: Environment,
        *,
        key: Array,
        width: int = 256,
        depth: int = 2,
        learned_backward: bool = False,
        state_flow: bool = False,
    ) -> None:
        check_key(key)
        width, depth = check_int(width, "width"), check_int(depth, "depth")
        in_size = int(env.features(env.initial_state()).shape[0])
        key_f, key_b, key_s = jax.random.split(key, 3)

        def mlp(out_size, k):
            return eqx.nn.MLP(in_size, out_size, width, depth, activation=jax.nn.relu, key=k)

        self.forward_net = mlp(env.num_actions, key_f)
        self.backward_net = mlp(env.num_actions - 1, key_b) if learned_backward else None
        self.flow_net = mlp("scalar", key_s) if state_flow else None
        self.log_z = jnp.zeros(())


def masked_log_softmax(logits: Array, mask: Array) -> Array:
    """``log_softmax`` over the valid entries of ``mask``; invalid entries get ``~ -1e9``.

    Args:
        logits: ``(..., k)`` unnormalised log-probabilities.
        mask: boolean ``(..., k)``, at least one ``True`` per row.

    Returns:
        ``(..., k)`` log-probabilities (finite everywhere, so gradients stay finite).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.gflownet import masked_log_softmax
        >>> lp = masked_log_softmax(jnp.zeros(3), jnp.array([True, False, True]))
        >>> [round(float(x), 4) for x in jnp.exp(lp)]
        [0.5, 0.0, 0.5]
    """
    return jax.nn.log_softmax(jnp.where(mask, logits, _MASKED_LOGIT), axis=-1)


def forward_log_probs(policy: Policy, env: Environment, state: Array) -> Array:
    """``log P_F(. | state)`` over the ``num_actions`` actions of one state.

    Args:
        policy: the networks.
        env: the environment.
        state: one state.

    Returns:
        ``(num_actions,)`` log-probabilities (``~ -1e9`` at invalid actions).

    Example:
        >>> import jax
        >>> from probkit.models.gflownet import HyperGrid, Policy, forward_log_probs
        >>> env = HyperGrid(ndim=2, height=4)
        >>> policy = Policy(env, key=jax.random.key(0), width=16)
        >>> forward_log_probs(policy, env, env.initial_state()).shape
        (3,)
    """
    logits = policy.forward_net(env.features(state))
    return masked_log_softmax(logits, env.forward_mask(state))


def backward_log_probs(policy: Policy, env: Environment, state: Array) -> Array:
    """``log P_B(. | state)`` over the ``num_actions - 1`` backward actions of one state.

    Uniform over the valid parents without a learned backward network. At the root
    (no valid parent) the values are finite but meaningless; losses never read them.

    Args:
        policy: the networks.
        env: the environment.
        state: one state.

    Returns:
        ``(num_actions - 1,)`` log-probabilities.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.gflownet import HyperGrid, Policy, backward_log_probs
        >>> env = HyperGrid(ndim=2, height=4)
        >>> policy = Policy(env, key=jax.random.key(0), width=16)
        >>> log_pb = backward_log_probs(policy, env, jnp.array([1, 2]))
        >>> [round(float(x), 4) for x in jnp.exp(log_pb)]
        [0.5, 0.5]
    """
    mask = env.backward_mask(state)
    if policy.backward_net is None:
        logits = jnp.zeros(mask.shape)
    else:
        logits = policy.backward_net(env.features(state))
    return masked_log_softmax(logits, mask)
