"""Old public names kept working for a while after a rename, with a warning that says
what to call instead."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["renamed", "renamed_argument"]


def renamed(function: Callable[..., Any], old_name: str) -> Callable[..., Any]:
    """``function`` under its old name: the same call, plus a ``DeprecationWarning``.

    Example:
        >>> import warnings
        >>> from probkit._renamed import renamed
        >>> def fit(x):
        ...     return x + 1
        >>> train = renamed(fit, "models.example.train")
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     train(1), str(caught[0].message)
        (2, 'models.example.train was renamed fit (same arguments); the old name will be removed.')
    """
    message = (
        f"{old_name} was renamed {function.__name__} (same arguments); "
        "the old name will be removed."
    )

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return function(*args, **kwargs)

    wrapper.__doc__ = f"Deprecated: {message}"
    return wrapper


def renamed_argument(new: Any, old: Any, old_name: str, new_name: str, function: str) -> Any:
    """The value of a renamed keyword argument: ``new``, or ``old`` with a warning.

    Example:
        >>> import warnings
        >>> from probkit._renamed import renamed_argument
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     renamed_argument(None, 3, "optimiser", "optimizer", "fit"), len(caught)
        (3, 1)
    """
    if old is None:
        return new
    if new is not None:
        raise TypeError(f"{function}: pass {new_name}= only ({old_name}= is its old name).")
    warnings.warn(
        f"{function}'s {old_name}= was renamed {new_name}= (same value); the old name will "
        "be removed.",
        DeprecationWarning,
        stacklevel=3,
    )
    return old
