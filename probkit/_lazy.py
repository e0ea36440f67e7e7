"""blackjax, imported on first use.

Importing blackjax starts a JAX backend (it evaluates ``jnp`` expressions at import
time), after which ``jax.distributed.initialize`` can no longer be called. probkit's
modules refer to ``blackjax`` through this proxy, so that importing any probkit
subpackage starts nothing and the real import happens at the first sampler call.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

__all__ = ["blackjax"]


class _LazyModule(types.ModuleType):
    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__name__)
        return getattr(module, attr)


blackjax = _LazyModule("blackjax")
