"""The arithmetic task's checker against Python's own arithmetic, and the shipped model."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import probkit.models.arithmetic_lm as alm
import pytest

from probkit.scaling import particle_filter


def test_reference_solutions_are_right_by_python_arithmetic():
    p = alm.make_problems(3, 200)
    for i in range(200):
        question = alm.decode(p.prompt[i])[:-1]
        solution = alm.decode(p.solution[i])
        assert eval(question) == p.answer[i]  # noqa: S307 (digits and +/- only)
        steps = re.split(r"[;.]", solution)[:-1]
        assert len(steps) == p.num_ops[i]
        for step in steps:
            lhs, rhs = step.split("=")
            assert eval(lhs) == int(rhs) and 0 <= int(rhs) <= 99  # noqa: S307
        length = len(solution)
        assert int(alm.extract_answer(jnp.asarray(p.solution[i]), length)) == p.answer[i]
        # Every prefix of the reference is correct; changing one token makes it wrong.
        assert bool(alm.prefix_correct(jnp.asarray(p.solution[i]), p.solution[i], length))
        wrong = p.solution[i].copy()
        wrong[length // 2] = (wrong[length // 2] + 1) % 10
        assert not bool(alm.prefix_correct(jnp.asarray(wrong), p.solution[i], length))


def test_shipped_model_loads_and_generates_well_formed_steps():
    lm = alm.load_pretrained()
    p = alm.make_problems(10_000, 16)

    @jax.jit
    def generate(key):
        state = alm.start(lm, p.prompt[0], 32)
        for k in jax.random.split(key, 6):
            state = alm.propose_step(k, lm, state)
        return state

    state = generate(jax.random.key(0))
    answers = np.asarray(jax.vmap(alm.extract_answer)(state.solution, state.length))
    # The model was trained to write steps ending in ';' and a last one ending in '.':
    # most samples finish with a readable answer (0.40 of one-sample answers are right
    # over 1000 problems; a random network would finish almost none).
    assert np.mean(answers >= 0) > 0.8
    assert np.all(np.asarray(state.num_steps) <= 6)


@pytest.mark.slow
def test_particle_filter_on_the_task_spends_the_budget_it_reports():
    lm = alm.load_pretrained()
    p = alm.make_problems(10_000, 1)
    sm = alm.step_model(lm, p.prompt[0], p.solution[0])
    r = particle_filter(jax.random.key(0), sm, 8, ess_threshold=0.0)
    # Without resampling each particle's own step count is its share of the budget.
    assert int(r.num_proposals) == int(r.states.num_steps.sum())
