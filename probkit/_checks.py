"""Argument checks shared by the public functions: keys, seeds and whole numbers.

Each check runs on the host before any tracing, and its message names the argument
and says what to pass instead.
"""

from __future__ import annotations

import numbers
import operator

import jax
import numpy as np

__all__ = ["check_key", "check_int", "check_seed"]


def check_key(key, name: str = "key"):
    """Raise a ``TypeError`` naming ``name`` unless ``key`` is a ``jax.random`` key.

    Accepts new-style typed keys (``jax.random.key``), legacy ``uint32`` keys of
    shape ``(..., 2)`` (``jax.random.PRNGKey``) and tracers (checked by dtype only).

    Example:
        >>> import jax
        >>> from probkit._checks import check_key
        >>> _ = check_key(jax.random.key(0))
        >>> try:
        ...     check_key(0)
        ... except TypeError as error:
        ...     print("jax.random.key(seed)" in str(error))
        True
    """
    dtype = getattr(key, "dtype", None)
    if dtype is not None:
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            return key
        shape = getattr(key, "shape", ())
        if dtype == np.uint32 and len(shape) >= 1 and shape[-1] == 2:
            return key
    if dtype is None:
        shown = f"{type(key).__name__} {key!r}"
    else:
        shown = f"a {dtype} array of shape {getattr(key, 'shape', ())}"
    raise TypeError(
        f"{name} must be a jax.random key, got {shown}: pass "
        f"jax.random.key(seed), e.g. jax.random.key(0)."
    )


def key_hint(value, name: str) -> str:
    """``value`` shown in an integer argument's error, with what to do when it is a
    ``jax.random`` key (the integer it was made from is wanted).

    Example:
        >>> import jax
        >>> from probkit._checks import key_hint
        >>> key_hint(jax.random.key(0), "seed")
        'a jax.random key: pass the integer the key was made from, e.g. seed=0'
        >>> key_hint(-1, "seed")
        '-1'
    """
    dtype = getattr(value, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return f"a jax.random key: pass the integer the key was made from, e.g. {name}=0"
    return repr(value)


def check_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as a Python ``int`` (NumPy integers accepted); ``ValueError`` naming ``name``
    when it is not a whole number ``>= minimum`` (bools are refused).

    Example:
        >>> import numpy as np
        >>> from probkit._checks import check_int
        >>> check_int(np.int64(3), "num_samples")
        3
        >>> check_int(0, "num_samples")
        Traceback (most recent call last):
        ...
        ValueError: num_samples must be an int >= 1, got 0.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {key_hint(value, name)}.")
    return int(value)


def _as_integer(value):
    """``value`` as a Python int when it is a whole-number type (NumPy and 0-d integer
    arrays included), else ``None``: floats are never truncated, bools never counted."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    dtype = getattr(value, "dtype", None)
    if dtype is None or jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return None
    if np.issubdtype(dtype, np.integer) and getattr(value, "ndim", 1) == 0:
        return operator.index(value)
    return None


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as a Python ``int``; a ``TypeError`` naming ``name`` for anything else.

    A float seed (``1.5``, ``np.float32(2)``) is refused rather than truncated, and so
    is a ``jax.random`` key (the argument wants the integer it is made from).

    Example:
        >>> from probkit._checks import check_seed
        >>> check_seed(3)
        3
        >>> try:
        ...     check_seed(1.5)
        ... except TypeError as error:
        ...     print(str(error).split(":")[0])
        seed must be an int, got float 1.5
    """
    value = _as_integer(seed)
    if value is None:
        dtype = getattr(seed, "dtype", None)
        if dtype is None:
            shown = f"{type(seed).__name__} {seed!r}"
        else:
            shown = f"a {dtype} array of shape {getattr(seed, 'shape', ())}"
        if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            hint = f"pass the integer the key was made from, e.g. {name}=0"
        elif isinstance(seed, float) or (dtype is not None and np.issubdtype(dtype, np.floating)):
            hint = f"pass a whole number, e.g. {name}=0 (a float seed is not rounded)"
        else:
            hint = f"pass a whole number, e.g. {name}=0"
        raise TypeError(f"{name} must be an int, got {shown}: {hint}.")
    return value
