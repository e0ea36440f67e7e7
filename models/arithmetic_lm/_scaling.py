"""The arithmetic task as a :class:`probkit.scaling.StepModel`: LM proposals, exact rewards."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from probkit.models.arithmetic_lm._network import ArithmeticLM, propose_step, start
from probkit.models.arithmetic_lm._task import MAX_OPS, extract_answer, prefix_correct

from probkit.scaling import StepModel

__all__ = ["step_model"]


def step_model(
    model: ArithmeticLM,
    prompt: jax.Array,
    reference: jax.Array,
    *,
    prm_error: float = 0.05,
    temperature: float = 1.0,
    max_steps: int = MAX_OPS + 1,
) -> StepModel:
    """One problem as a step-wise generator with the exact process reward.

    The reward of a partial solution is ``1 - prm_error`` when it is a prefix of the
    reference solution and ``prm_error`` otherwise: an exact checker that a process
    reward model with error rate ``prm_error`` would approximate (``log`` potential).
    The same reward of a finished solution is the verifier of best-of-N.

    Example:
        >>> import jax
        >>> import probkit.models.arithmetic_lm as alm
        >>> from probkit.scaling import particle_filter
        >>> lm = alm.ArithmeticLM(key=jax.random.key(0), width=16, depth=1, num_heads=2)
        >>> p = alm.make_problems(0, 1)
        >>> sm = alm.step_model(lm, p.prompt[0], p.solution[0])
        >>> int(particle_filter(jax.random.key(1), sm, 4).num_proposals) >= 4
        True
    """
    if not 0.0 < prm_error < 0.5:
        raise ValueError(f"prm_error must lie in (0, 0.5), got {prm_error!r}.")
    prompt, reference = jnp.asarray(prompt), jnp.asarray(reference)

    def score(t, state):
        correct = jax.vmap(prefix_correct, in_axes=(0, None, 0))(
            state.solution, reference, state.length
        )
        return jnp.where(correct, 1.0 - prm_error, prm_error)

    return StepModel(
        init=lambda key, n: start(model, prompt, n),
        propose=lambda key, t, state: propose_step(key, model, state, temperature),
        score=score,
        is_done=lambda state: state.done,
        answer=lambda state: jax.vmap(extract_answer)(state.solution, state.length),
        max_steps=max_steps,
    )
