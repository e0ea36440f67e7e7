"""Train the arithmetic language model and write ``models/data/arithmetic_lm/transformer.eqx``.

Next-token cross-entropy on the solution tokens of random problems (teacher forcing),
Adam-W with warm-up and cosine decay, global-norm clipping. The run is deliberately
short: the shipped model solves a problem in one sample only part of the time, so that
spending more samples at inference time has something to gain.

    nice -n 10 python -m probkit.models.arithmetic_lm.train [--steps 2000] [--out PATH]
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from probkit.models.arithmetic_lm._io import PRETRAINED_PATH, save
from probkit.models.arithmetic_lm._network import ArithmeticLM, propose_step, start
from probkit.models.arithmetic_lm._task import (
    PAD,
    PROMPT_LENGTH,
    extract_answer,
    make_problems,
)

from probkit.progress import Interrupted, interruptible_scan

DEFAULTS = dict(
    steps=2000,
    batch_size=64,
    learning_rate=3e-3,
    width=64,
    depth=2,
    num_heads=4,
    num_train=100_000,
    seed=0,
)


def _loss(model: ArithmeticLM, tokens: jax.Array) -> jax.Array:
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    logits = jax.vmap(model.sequence_logits)(inputs)
    log_probs = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    positions = jnp.arange(targets.shape[1])
    # Only the solution is learned (targets from the first solution token on), up to '.'.
    mask = (positions >= PROMPT_LENGTH - 1) & (targets != PAD)
    return jnp.sum(nll * mask) / jnp.sum(mask)


def sampled_accuracy(model: ArithmeticLM, problems, key: jax.Array, max_steps: int = 6):
    """Fraction of problems solved by one sample at temperature 1 (mean over problems)."""

    def solve(key, prompt):
        state = start(model, prompt, 1)
        for k in jax.random.split(key, max_steps):
            state = propose_step(k, model, state)
        return extract_answer(state.solution[0], state.length[0])

    keys = jax.random.split(key, problems.prompt.shape[0])
    answers = jax.jit(jax.vmap(solve))(keys, jnp.asarray(problems.prompt))
    return float(np.mean(np.asarray(answers) == problems.answer))


def _train_body(settings, data, static, carry, key):
    optimiser, batch_size = settings
    params, opt_state = carry
    model = eqx.combine(params, static)
    batch = data[jax.random.randint(key, (batch_size,), 0, data.shape[0])]
    loss, grads = eqx.filter_value_and_grad(_loss)(model, batch)
    updates, opt_state = optimiser.update(grads, opt_state, params)
    return (eqx.apply_updates(params, updates), opt_state), loss


def train(
    *,
    steps,
    batch_size,
    learning_rate,
    width,
    depth,
    num_heads,
    num_train,
    seed,
    log=print,
    progress_bar=False,
):
    """Train from scratch; returns ``(model, final loss)``.

    The loop is compiled once and run in chunks of about half a second: Ctrl-C stops it
    within about a second with :class:`~probkit.progress.Interrupted`, whose
    ``partial_result`` is ``(model, final loss)`` after the steps done.
    """
    problems = make_problems(seed, num_train)
    data = jnp.asarray(np.concatenate([problems.prompt, problems.solution], axis=1))
    key_model, key_data = jax.random.split(jax.random.key(seed))
    model = ArithmeticLM(key=key_model, width=width, depth=depth, num_heads=num_heads)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, min(100, steps // 10), steps, learning_rate / 20
    )
    optimiser = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, 1e-4))
    params, static = eqx.partition(model, eqx.is_array)
    # the training problems are an argument of the compiled loop, not a constant of it
    body = jax.tree_util.Partial(_train_body, (optimiser, batch_size), data, static)
    carry = (params, optimiser.init(params))

    def result(carry, losses):
        losses = np.asarray(losses, np.float64)  # as the per-step Python floats were
        for end in range(250, len(losses) + 1, 250):
            log(f"step {end}: loss {np.mean(losses[end - 250 : end]):.4f}")
        return eqx.combine(carry[0], static), float(np.mean(losses[-100:]))

    try:
        carry, losses = interruptible_scan(
            body, carry, jax.random.split(key_data, steps), progress_bar=progress_bar
        )
    except Interrupted as interrupt:
        interrupt.partial_result = result(interrupt.carry, interrupt.ys)
        raise
    return result(carry, losses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--out", default=str(PRETRAINED_PATH))
    args = vars(parser.parse_args())
    out = args.pop("out")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        model, loss = train(**args, progress_bar=True)
    except Interrupted as interrupt:
        model, loss = interrupt.partial_result
        partial = f"{out}.partial"
        save(partial, model, final_loss=loss, steps_done=interrupt.steps_done, **args)
        print(f"{interrupt}; the model so far is in {partial} (loss {loss:.4f})")
        raise SystemExit(130) from None
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    held_out = make_problems(10_000 + args["seed"], 1000)
    accuracy = sampled_accuracy(model, held_out, jax.random.key(1))
    print(f"trained in {wall:.0f} s wall, {cpu:.0f} CPU-s; final loss {loss:.4f}")
    print(f"one-sample accuracy on 1000 held-out problems: {accuracy:.3f}")
    save(out, model, final_loss=loss, cpu_seconds=round(cpu), one_sample_accuracy=accuracy, **args)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
