"""A small language model for chained arithmetic written as steps, with an exact checker.

The task of :mod:`probkit.scaling`'s measurable examples: a small transformer
(:class:`ArithmeticLM`, equinox) trained by ``python -m probkit.models.arithmetic_lm.train``
on problems such as ``37+8-5+9?`` whose solution is written one step at a time
(``37+8=45;45-5=40;40+9=49.``). The reference solution is unique, so a partial
solution is correct exactly when it is a prefix of it (:func:`prefix_correct`, the
exact process reward), :func:`extract_answer` reads the final answer, and
:func:`step_model` hands one problem to :mod:`probkit.scaling`.

Example:
    >>> import jax
    >>> import probkit.models.arithmetic_lm as alm
    >>> problems = alm.make_problems(0, 3)
    >>> alm.decode(problems.prompt[0])[-1]
    '?'
"""

from probkit.models.arithmetic_lm._io import PRETRAINED_PATH as PRETRAINED_PATH
from probkit.models.arithmetic_lm._io import load, load_pretrained, save
from probkit.models.arithmetic_lm._network import (
    ArithmeticLM,
    GenerationState,
    propose_step,
    start,
)
from probkit.models.arithmetic_lm._scaling import step_model
from probkit.models.arithmetic_lm._task import (
    Problems,
    decode,
    encode,
    extract_answer,
    make_problems,
    prefix_correct,
)

# Importable, but not in __all__ (constants and internals): PRETRAINED_PATH.
__all__ = [
    "ArithmeticLM",
    "GenerationState",
    "start",
    "propose_step",
    "Problems",
    "make_problems",
    "encode",
    "decode",
    "extract_answer",
    "prefix_correct",
    "save",
    "load",
    "load_pretrained",
    "step_model",
]
