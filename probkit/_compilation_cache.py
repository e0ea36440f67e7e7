"""A persistent, on-disk XLA compilation cache, on by default.

Most of what a user waits for in a fresh process is tracing and XLA compilation,
not sampling. JAX can keep compiled programs on disk
(``jax_compilation_cache_dir``); probkit turns that on when it is imported, in a
per-user folder, so that a script's second run loads its programs instead of
compiling them again. JAX writes entries atomically and keys them on the program,
the JAX version and the device, so processes may share the folder.

- ``PROBKIT_COMPILATION_CACHE=off`` (or ``0``, ``false``, ``no``) before importing
  probkit leaves JAX's setting alone; any other value is the folder to use.
- :func:`set_compilation_cache` moves or turns it off from Python.
- A folder set by the user through JAX's own configuration is never replaced.
- A folder that cannot be written degrades to compiling, with one warning.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import jax

__all__ = ["ENVIRONMENT_VARIABLE", "compilation_cache_dir", "set_compilation_cache"]

ENVIRONMENT_VARIABLE = "PROBKIT_COMPILATION_CACHE"
_OFF = {"0", "off", "false", "no", "none", ""}

# Programs that compile faster than this are not written: reading an entry costs
# a few milliseconds, so caching microsecond-compiles only grows the folder.
# JAX's default (1 s) skips most of a small model's programs, whose many
# 0.1-1 s compiles add up to seconds of a fresh process.
_MIN_COMPILE_SECONDS = 0.1


def _default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "probkit" / "xla"


def _writable(folder: Path) -> str | None:
    """``None`` if ``folder`` can hold cache entries, else the reason it cannot."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    return None


def compilation_cache_dir() -> Path | None:
    """The folder of JAX's persistent compilation cache, or ``None`` when it is off.

    Example:
        >>> import probkit as pk
        >>> folder = pk.compilation_cache_dir()
        >>> folder is None or folder.is_dir()
        True
    """
    folder = jax.config.jax_compilation_cache_dir
    return None if folder is None else Path(folder)


def set_compilation_cache(
    folder: str | os.PathLike | None = "default",
    *,
    min_compile_seconds: float = _MIN_COMPILE_SECONDS,
) -> Path | None:
    """Turn the persistent compilation cache on (in ``folder``) or off (``None``).

    Args:
        folder: where compiled programs are kept; ``"default"`` is
            ``$XDG_CACHE_HOME/probkit/xla`` (``~/.cache/probkit/xla``); ``None``
            turns the cache off for the programs compiled from now on.
        min_compile_seconds: programs that compile faster than this are not
            written to disk.

    Returns:
        The folder in use, or ``None`` when the cache is off (also when ``folder``
        cannot be written: then a warning says why and programs are compiled as
        usual).

    Example:
        >>> import tempfile
        >>> import probkit as pk
        >>> previous = pk.compilation_cache_dir()
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     pk.set_compilation_cache(folder) is not None
        ...     pk.set_compilation_cache(None) is None
        True
        True
        >>> _ = pk.set_compilation_cache(previous)
    """
    if min_compile_seconds < 0:
        raise ValueError(
            f"min_compile_seconds={min_compile_seconds} must be >= 0 (0 caches every program)."
        )
    if folder is None:
        jax.config.update("jax_compilation_cache_dir", None)
        _reset_jax_cache()
        return None
    path = _default_dir() if str(folder) == "default" else Path(folder).expanduser()
    reason = _writable(path)
    if reason is not None:
        warnings.warn(
            f"probkit: the compilation cache folder {str(path)!r} cannot be written "
            f"({reason}); programs will be compiled in every process. Set "
            f"{ENVIRONMENT_VARIABLE} to a writable folder, or to 'off' to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )
        jax.config.update("jax_compilation_cache_dir", None)
        _reset_jax_cache()
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    _reset_jax_cache()
    return path


def _reset_jax_cache() -> None:
    # JAX opens its cache lazily on the first compile and then keeps that folder;
    # a change of folder after a compile needs the handle reset.
    try:
        from jax._src import compilation_cache

        compilation_cache.reset_cache()
    except (ImportError, AttributeError):  # a JAX without the private hook
        pass


def configure_from_environment() -> None:
    """Apply ``PROBKIT_COMPILATION_CACHE`` (called once, when probkit is imported)."""
    if jax.config.jax_compilation_cache_dir is not None:
        return  # the user configured JAX's cache themselves
    value = os.environ.get(ENVIRONMENT_VARIABLE, "default")
    if value.strip().lower() in _OFF:
        return
    set_compilation_cache(value)
