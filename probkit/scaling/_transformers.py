"""A :class:`StepModel` over a Hugging Face ``transformers`` causal language model.

A step is the text generated up to a delimiter (a newline by default), the end-of-text
token, or a budget of tokens. All particles are generated as one batch, token by token,
with the model's key-value cache: particles that have ended their step (or their
solution) are fed padding that the attention mask hides, so the batch stays aligned.
At resampling the cache is copied with the library's own ``Cache.reorder_cache`` (the
operation its beam search uses), so no prefix is recomputed. Run it with
:func:`probkit.scaling.host_particle_filter`.

``transformers`` and ``torch`` are imported only when this adapter is built (the ``llm``
extra); ``import probkit.scaling`` imports neither.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from probkit.scaling._feynman_kac import StepModel

__all__ = ["TextParticles", "transformers_step_model", "gather_text_particles"]


@dataclass
class TextParticles:
    """The host-side state of ``n`` partial generations (torch tensors, Python strings).

    Attributes:
        input_ids: ``(n, L)`` prompt and generated tokens (padding where masked).
        attention_mask: ``(n, L)`` 1 for real tokens.
        next_logits: ``(n, V)`` logits of each particle's next token.
        cache: the model's key-value cache for ``input_ids``.
        texts: generated text of each particle (without the prompt).
        steps: the steps of each particle, as a list of strings.
        done: ``(n,)`` NumPy booleans: the generation has ended.
        num_tokens: ``(n,)`` NumPy: tokens generated per particle.
        num_forward_calls: forward passes of the model so far (for timing).
    """

    input_ids: Any
    attention_mask: Any
    next_logits: Any
    cache: Any
    texts: list[str]
    steps: list[list[str]]
    done: np.ndarray
    num_tokens: np.ndarray
    num_forward_calls: int = field(default=0)


def gather_text_particles(states: TextParticles, indices: np.ndarray) -> TextParticles:
    """Copy particles ``indices`` (tensors by ``index_select``, the cache by ``reorder_cache``).

    The cache is reordered in place: ``states`` must not be used afterwards.
    """
    import torch  # noqa: PLC0415

    index = torch.as_tensor(np.array(indices), dtype=torch.long)
    states.cache.reorder_cache(index)
    return TextParticles(
        input_ids=states.input_ids.index_select(0, index),
        attention_mask=states.attention_mask.index_select(0, index),
        next_logits=states.next_logits.index_select(0, index),
        cache=states.cache,
        texts=[states.texts[i] for i in indices],
        steps=[list(states.steps[i]) for i in indices],
        done=states.done[indices].copy(),
        num_tokens=states.num_tokens[indices].copy(),
        num_forward_calls=states.num_forward_calls,
    )


def _seed(key: jax.Array) -> int:
    return int(jax.random.randint(key, (), 0, np.iinfo(np.int32).max))


def transformers_step_model(
    model: Any,
    tokenizer: Any,
    prompt: str,
    *,
    score: Callable[[int, Sequence[Sequence[str]]], Any],
    answer: Callable[[Sequence[Sequence[str]]], Any] | None = None,
    delimiter: str = "\n",
    max_step_tokens: int = 32,
    max_steps: int = 8,
    temperature: float = 1.0,
    is_final_step: Callable[[str], bool] | None = None,
) -> StepModel:
    """A host-side :class:`StepModel` generating steps of text with a causal LM.

    Args:
        model: a ``transformers`` causal LM (e.g. ``GPT2LMHeadModel``), in eval mode.
        tokenizer: its tokenizer (``encode(text) -> ids``, ``decode(ids) -> text``).
        prompt: the question; every particle starts from it.
        score: ``(t, steps) -> rewards``: the process reward of each particle's list of
            steps (a PRM, a verifier, an exact checker).
        answer: ``steps -> answers`` (ints, ``-1`` for none); default all ``-1``.
        delimiter: a step ends when its text contains this string.
        max_step_tokens: token budget of one step (a step that reaches it ends there).
        max_steps: most steps per particle.
        temperature: sampling temperature.
        is_final_step: ``step_text -> bool``: the solution ends after this step
            (besides the end-of-text token); default never.

    Example:
        >>> import jax
        >>> from probkit.scaling import host_particle_filter, transformers_step_model
        >>> lm, tok = ..., ...  # doctest: +SKIP
        >>> sm = transformers_step_model(lm, tok, "1+1=", score=lambda t, s: [1.0] * len(s))
        ... # doctest: +SKIP
        >>> host_particle_filter(jax.random.key(0), sm, 8,
        ...                      gather_fn=gather_text_particles)  # doctest: +SKIP
    """
    try:
        import torch  # noqa: PLC0415
    except ImportError as error:  # pragma: no cover
        raise ImportError(
            "transformers_step_model needs torch and transformers: pip install 'probkit[llm]'."
        ) from error
    if not isinstance(max_step_tokens, int | np.integer) or max_step_tokens < 1:
        raise ValueError(f"max_step_tokens must be a positive int, got {max_step_tokens!r}.")
    if not isinstance(max_steps, int | np.integer) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}.")
    if not float(temperature) > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}.")
    if not delimiter:
        raise ValueError("delimiter must be a non-empty string (e.g. '\\n').")
    eos = getattr(model.config, "eos_token_id", None)
    pad = getattr(model.config, "pad_token_id", None)
    pad = eos if pad is None else pad
    pad = 0 if pad is None else int(pad)
    prompt_ids = list(tokenizer.encode(prompt))
    if not prompt_ids:
        raise ValueError("prompt must encode to at least one token.")
    final = is_final_step if is_final_step is not None else (lambda text: False)

    # transformers >= 5.2x names the cache argument ``cache``; older releases
    # ``past_key_values``.
    cache_name = (
        "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    )

    def forward(input_ids, attention_mask, cache):
        # Positions count real tokens only, so padding inside the batch shifts nothing.
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1] :]
        with torch.no_grad():
            out = model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=positions,
                use_cache=True,
                **{cache_name: cache},
            )
        return out.logits[:, -1, :].float(), getattr(out, cache_name)

    def init(key, n):
        ids = torch.tensor([prompt_ids], dtype=torch.long)
        mask = torch.ones_like(ids)
        logits, cache = forward(ids, mask, None)
        # One forward pass for the prompt, then the cache is copied n times.
        index = torch.zeros(n, dtype=torch.long)
        cache.reorder_cache(index)
        return TextParticles(
            input_ids=ids.expand(n, -1).clone(),
            attention_mask=mask.expand(n, -1).clone(),
            next_logits=logits.expand(n, -1).clone(),
            cache=cache,
            texts=[""] * n,
            steps=[[] for _ in range(n)],
            done=np.zeros(n, bool),
            num_tokens=np.zeros(n, np.int64),
            num_forward_calls=1,
        )

    def propose(key, t, states: TextParticles) -> TextParticles:
        generator = torch.Generator().manual_seed(_seed(key))
        n = len(states.texts)
        active = torch.as_tensor(~states.done)
        step_ids: list[list[int]] = [[] for _ in range(n)]
        ended_by_eos = np.zeros(n, bool)
        ids, mask, logits, cache = (
            states.input_ids,
            states.attention_mask,
            states.next_logits,
            states.cache,
        )
        calls = states.num_forward_calls
        for _ in range(max_step_tokens):
            if not bool(active.any()):
                break  # every live particle has ended its step: no more forward passes
            probs = torch.softmax(logits / temperature, dim=-1)
            tokens = torch.multinomial(probs, 1, generator=generator)[:, 0]
            tokens = torch.where(active, tokens, torch.full_like(tokens, pad))
            ids = torch.cat([ids, tokens[:, None]], dim=1)
            mask = torch.cat([mask, active.long()[:, None]], dim=1)
            new_logits, cache = forward(tokens[:, None], mask, cache)
            calls += 1
            logits = torch.where(active[:, None], new_logits, logits)
            for i in np.flatnonzero(active.numpy()):
                tok = int(tokens[i])
                if eos is not None and tok == eos:
                    ended_by_eos[i] = True
                    active[i] = False
                    continue
                step_ids[i].append(tok)
                if delimiter in tokenizer.decode(step_ids[i]):
                    active[i] = False
        texts, steps = list(states.texts), [list(s) for s in states.steps]
        done = states.done.copy()
        num_tokens = states.num_tokens.copy()
        for i in np.flatnonzero(~states.done):
            text = tokenizer.decode(step_ids[i])
            texts[i] += text
            steps[i].append(text)
            num_tokens[i] += len(step_ids[i]) + int(ended_by_eos[i])
            done[i] = ended_by_eos[i] or final(text) or len(steps[i]) >= max_steps
        return TextParticles(ids, mask, logits, cache, texts, steps, done, num_tokens, calls)

    def score_fn(t, states):
        return np.asarray(score(int(t), states.steps), dtype=float)

    def answer_fn(states):
        if answer is None:
            return np.full(len(states.texts), -1)
        return np.asarray(answer(states.steps), dtype=np.int64)

    return StepModel(
        init=init,
        propose=propose,
        score=score_fn,
        is_done=lambda states: states.done,
        answer=answer_fn,
        max_steps=max_steps,
    )
