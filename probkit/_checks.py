"""Argument checks shared by the public functions: keys and whole numbers.

Each check runs on the host before any tracing, and its message names the argument
and says what to pass instead.
"""

from __future__ import annotations

import numbers

import jax
import numpy as np

__all__ = ["check_key", "check_int"]


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
    shown = repr(key) if dtype is None else f"{dtype} array of shape {getattr(key, 'shape', ())}"
    raise TypeError(
        f"{name} must be a jax.random key, got {type(key).__name__} {shown}: pass "
        f"jax.random.key(seed), e.g. jax.random.key(0)."
    )


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
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return int(value)
