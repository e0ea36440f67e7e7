"""The Hugging Face adapter on a randomly initialised tiny GPT-2 (no download)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from probkit.scaling import (  # noqa: E402
    gather_text_particles,
    host_particle_filter,
    transformers_step_model,
)

CHARS = "0123456789+-=\n "


class CharTokenizer:
    """One token per character; the last id is the end-of-text token."""

    eos_token_id = len(CHARS)

    def encode(self, text):
        return [CHARS.index(c) for c in text]

    def decode(self, ids):
        return "".join(CHARS[i] if i < len(CHARS) else "" for i in ids)


@pytest.fixture(scope="module")
def tiny_gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(CHARS) + 1,
        n_positions=256,
        n_embd=32,
        n_layer=2,
        n_head=2,
        eos_token_id=len(CHARS),
        bos_token_id=len(CHARS),
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    # A random GPT-2 rarely emits the delimiter; raise its logit so steps end at "\n"
    # sometimes and at the token budget other times (both paths are exercised).
    with torch.no_grad():
        model.lm_head.weight[CHARS.index("\n")] *= 0.0
        model.lm_head.weight[CHARS.index("\n")] += 0.05 * model.transformer.wte.weight.mean(0)
    return model, CharTokenizer()


def _step_model(tiny_gpt2, **kwargs):
    model, tok = tiny_gpt2
    return transformers_step_model(
        model,
        tok,
        "12+3=",
        score=lambda t, steps: [1.0 / (1 + len("".join(s))) for s in steps],
        answer=lambda steps: [len(s) for s in steps],
        **kwargs,
    )


def _real_tokens(states, i):
    ids = states.input_ids[i][states.attention_mask[i].bool()]
    return ids[None]


def test_steps_budget_and_cache_match_a_fresh_forward(tiny_gpt2):
    model, tok = tiny_gpt2
    sm = _step_model(tiny_gpt2, max_step_tokens=6, max_steps=3)
    states = sm.init(jax.random.key(0), 5)
    states = sm.propose(jax.random.key(1), 0, states)
    for i in range(5):
        step = states.steps[i][0]
        # A step ends at the delimiter, at end-of-text, or at the token budget.
        assert step.endswith("\n") or len(tok.encode(step)) == 6 or states.done[i]
        assert len(tok.encode(step)) <= 6
    # Resample (copies the cache by reorder_cache), then generate another step.
    states = gather_text_particles(states, np.array([3, 3, 0, 1, 4]))
    states = sm.propose(jax.random.key(2), 1, states)
    assert states.texts[0].startswith(states.steps[0][0])
    for i in range(5):
        # The cached next-token logits equal those of one forward pass over the
        # particle's real tokens: padding, positions and the copied cache are right.
        with torch.no_grad():
            fresh = model(input_ids=_real_tokens(states, i)).logits[0, -1]
        np.testing.assert_allclose(states.next_logits[i].numpy(), fresh.numpy(), atol=1e-4)
        assert tok.decode(_real_tokens(states, i)[0].tolist()) == "12+3=" + states.texts[i]


@pytest.mark.slow
def test_host_particle_filter_is_deterministic_under_a_seed(tiny_gpt2):
    sm = _step_model(tiny_gpt2, max_step_tokens=4, max_steps=3)
    runs = [
        host_particle_filter(jax.random.key(k), sm, 6, gather_fn=gather_text_particles)
        for k in (7, 7, 8)
    ]
    assert runs[0].states.texts == runs[1].states.texts
    assert runs[0].states.texts != runs[2].states.texts
    # Budget: at most one proposal per live particle per step.
    assert 6 <= int(runs[0].num_proposals) <= 6 * 3
    assert all(len(s) <= 3 for s in runs[0].states.steps)
    assert int(runs[0].answer) in [len(s) for s in runs[0].states.steps]


def test_bad_arguments_are_named(tiny_gpt2):
    model, tok = tiny_gpt2
    with pytest.raises(ValueError, match="max_step_tokens"):
        transformers_step_model(model, tok, "1", score=lambda t, s: 1, max_step_tokens=0)
    with pytest.raises(ValueError, match="delimiter"):
        transformers_step_model(model, tok, "1", score=lambda t, s: 1, delimiter="")
