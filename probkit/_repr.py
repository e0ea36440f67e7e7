"""Short reprs for result objects: fields with array shapes, not array contents.

``summary_repr(obj)`` renders ``ClassName(field=..., ...)`` from a NamedTuple's
``_fields``, a dataclass's fields or an equinox Module's fields (those marked
``repr=False`` are left out). Arrays print as dtype and shape like equinox does
(``f32[1000,2]``), 0-d arrays and Python numbers as their value (4 significant
digits), networks (equinox Modules made of other Modules) as
``Policy(12,345 params)``, dicts as ``{name: f32[4,1000], ...}`` (the first 8
entries), long lists and tuples as ``[len=N]``, and nested results as their own
short summary. The text stays near ``width`` characters: fields that would pass it
are left out as ``...``.

It reads only shapes, dtypes and 0-d values (no computation on the arrays), never
raises (a field it cannot describe prints as its type's name), and imports nothing
heavy.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["summary_repr"]

_WIDTH = 400  # a top-level repr stays near this many characters
_TOP_NESTED = 200  # a field of the top-level object near this many
_NESTED = 120  # and a structure nested deeper (dict, list, sub-result) near this many
_MAX_ITEMS = 8  # entries of a dict shown
_MAX_SEQUENCE = 4  # lists / tuples longer than this print as [len=N]
_MAX_DEPTH = 3  # structures nested deeper print as Name(...)
_MAX_STRING = 40


def summary_repr(obj: Any, *, width: int = _WIDTH) -> str:
    """``ClassName(field=summary, ...)`` of a NamedTuple, dataclass or equinox Module.

    Example:
        >>> import numpy as np
        >>> from typing import NamedTuple
        >>> from probkit._repr import summary_repr
        >>> class Fit(NamedTuple):
        ...     losses: np.ndarray
        ...     final: float
        >>> summary_repr(Fit(np.zeros((1000, 2), np.float32), 0.123456))
        'Fit(losses=f32[1000,2], final=0.1235)'
    """
    try:
        return _structure(obj, width, 0)
    except Exception:
        return f"{type(obj).__name__}(...)"


def _structure(obj: Any, budget: int, depth: int) -> str:
    name = type(obj).__name__
    fields = _named_fields(obj)
    if fields is None:
        return name
    if depth >= _MAX_DEPTH:
        return f"{name}(...)"
    parts: list[str] = []
    used = len(name) + 2
    for field, get in fields:
        room = budget - used - len(field) - 1 - len(", ...")  # room left for the "..."
        try:
            text = _describe(get(), min(_NESTED if depth else _TOP_NESTED, room), depth + 1)
        except Exception:
            text = "?"
        part = f"{field}={text}"
        if parts and used + len(part) + 2 > budget:
            parts.append("...")
            break
        parts.append(part)
        used += len(part) + 2
    return f"{name}({', '.join(parts)})"


def _named_fields(obj: Any):
    """``[(name, getter), ...]`` of the fields to show, or ``None`` for other objects."""
    if isinstance(obj, tuple) and hasattr(type(obj), "_fields"):
        return [(f, (lambda i=i: tuple.__getitem__(obj, i))) for i, f in enumerate(obj._fields)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [
            (f.name, (lambda n=f.name: getattr(obj, n))) for f in dataclasses.fields(obj) if f.repr
        ]
    return None


def _describe(value: Any, budget: int, depth: int) -> str:
    try:
        return _describe_unsafe(value, max(budget, 0), depth)
    except Exception:
        return type(value).__name__


def _describe_unsafe(value: Any, budget: int, depth: int) -> str:
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return str(int(value))
    if isinstance(value, (float, complex)):
        return _number(value)
    if isinstance(value, str):
        if len(value) > _MAX_STRING:
            return repr(value[: _MAX_STRING - 3]) + "..."
        return repr(value)
    if isinstance(value, bytes):
        return f"bytes[{len(value)}]"
    if _is_array(value):
        return _array(value)
    name = type(value).__name__
    params = _network_params(value)
    if params is not None:
        return f"{name}({params:,} params)"
    if _named_fields(value) is not None:
        if budget < len(name) + 8:
            return f"{name}(...)"
        return _structure(value, budget, depth)
    if isinstance(value, Mapping):
        return _mapping(value, budget, depth)
    if isinstance(value, (list, tuple)):
        return _sequence(value, budget, depth)
    if callable(value) and hasattr(value, "__qualname__"):
        return f"<{name} {value.__qualname__}>"
    return name


def _number(value: float | complex) -> str:
    text = f"{value:.4g}"
    if isinstance(value, float) and text.lstrip("-").isdigit():
        text += ".0"  # a float stays recognisable: 1.0, not 1
    return text


def _is_array(value: Any) -> bool:
    return (
        not isinstance(value, type)
        and hasattr(value, "shape")
        and hasattr(value, "dtype")
        and isinstance(getattr(value, "shape", None), tuple)
    )


def _array(value: Any) -> str:
    shape = tuple(value.shape)
    if not shape:
        scalar = _scalar(value)
        if scalar is not None:
            return scalar
    return f"{_dtype(value.dtype)}[{','.join(str(n) for n in shape)}]"


def _scalar(value: Any) -> str | None:
    """The value of a 0-d array; ``None`` for tracers, deleted buffers, keys..."""
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(value, jax.core.Tracer):
        return None
    try:
        x = np.asarray(value)
        kind = x.dtype.kind
        if kind == "b":
            return str(bool(x))
        if kind in "iu":
            return str(int(x))
        if kind == "c":
            return _number(complex(x))
        if kind in "fV":  # V: bfloat16 and other ml_dtypes floats
            return _number(float(x))
    except Exception:
        pass
    return None


def _dtype(dtype: Any) -> str:
    try:
        dt = np.dtype(dtype)
    except Exception:  # jax's extended dtypes (random keys)
        return str(dtype)
    if dt.name == "bfloat16":
        return "bf16"
    if dt.kind == "b":
        return "bool"
    if dt.kind in "fiuc":
        return f"{dt.kind}{dt.itemsize * 8}"
    return dt.name


def _network_params(value: Any) -> int | None:
    """The number of floating-point parameters of an equinox Module built of other
    Modules (a network); ``None`` for anything else."""
    eqx = sys.modules.get("equinox")
    jax = sys.modules.get("jax")
    if eqx is None or jax is None or not isinstance(value, eqx.Module):
        return None
    parts = jax.tree_util.tree_leaves(
        value, is_leaf=lambda x: x is not value and isinstance(x, eqx.Module)
    )
    if not any(isinstance(part, eqx.Module) for part in parts):
        return None
    total = 0
    for leaf in jax.tree_util.tree_leaves(value):
        if _is_array(leaf) and jax.numpy.issubdtype(leaf.dtype, jax.numpy.inexact):
            total += int(np.prod(leaf.shape))
    return total


def _is_structure(value: Any) -> bool:
    return _named_fields(value) is not None or _network_params(value) is not None


def _mapping(value: Mapping, budget: int, depth: int) -> str:
    if not value:
        return "{}"
    if depth >= _MAX_DEPTH:
        return f"{{{len(value)} {'entry' if len(value) == 1 else 'entries'}}}"
    parts: list[str] = []
    used = 2
    count = 0
    for key, item in value.items():
        if count == _MAX_ITEMS:
            break
        label = key if isinstance(key, str) else repr(key)
        part = f"{label}: {_describe(item, min(_NESTED, budget - used), depth + 1)}"
        if parts and used + len(part) + 2 > budget:
            break
        parts.append(part)
        used += len(part) + 2
        count += 1
    more = len(value) - count
    if more:
        parts.append(f"... (+{more})")
    return "{" + ", ".join(parts) + "}"


def _sequence(value: list | tuple, budget: int, depth: int) -> str:
    opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
    if not value:
        return opening + closing
    kind = type(value[0])
    if len(value) > 1 and all(type(item) is kind for item in value) and _is_structure(value[0]):
        return f"{opening}{len(value)} x {kind.__name__}{closing}"  # e.g. a result per task
    if len(value) <= _MAX_SEQUENCE and depth < _MAX_DEPTH:
        items = [_describe(item, budget // len(value), depth + 1) for item in value]
        trailing = "," if len(value) == 1 and closing == ")" else ""
        text = opening + ", ".join(items) + trailing + closing
        if len(text) <= budget:
            return text
    return f"{opening}len={len(value)}{closing}"
