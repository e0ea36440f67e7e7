"""Imported on first use: blackjax, and a package's subpackages (PEP 562).

Importing blackjax starts a JAX backend (it evaluates ``jnp`` expressions at import
time), after which ``jax.distributed.initialize`` can no longer be called. probkit's
modules refer to ``blackjax`` through this proxy, so that importing any probkit
subpackage starts nothing and the real import happens at the first sampler call.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

__all__ = ["attach", "blackjax"]


class _LazyModule(types.ModuleType):
    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__name__)
        return getattr(module, attr)


blackjax = _LazyModule("blackjax")


def attach(package: str, namespace: dict, submodules: tuple, names: dict | None = None):
    """``(__getattr__, __dir__)`` for ``package``: its ``submodules``, and ``names``
    (name -> defining module), imported on first attribute access and then cached in
    ``namespace`` (the package's ``globals()``), so later look-ups skip ``__getattr__``.

    Example:
        >>> from probkit._lazy import attach
        >>> namespace = {"__all__": ["sub"]}
        >>> getattr_, dir_ = attach("probkit", namespace, ("mcmc",))
        >>> getattr_("mcmc").__name__, "mcmc" in namespace
        ('probkit.mcmc', True)
    """
    names = dict(names or {})

    def __getattr__(name: str):
        if name in names:
            value = getattr(importlib.import_module(names[name]), name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
