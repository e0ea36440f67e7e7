"""The mass-matrix options of :func:`probkit.mcmc.sample`, checked and resolved to
flat coordinates before anything is compiled.

Users name sites the way NumPyro does (``dense_mass=[("a", "b")]``,
``inverse_mass_matrix={("a", "b"): M}``); the warm-ups work on the flat
unconstrained position, so site names become index blocks here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from probkit.mcmc._kernels import ByValueArray

__all__ = ["MassMatrix", "resolve_mass_matrix"]

_NAMED = ("diag", "dense", "low_rank")
# Kernels whose warm-up takes a metric structure and a starting metric from the user.
_STRUCTURED_KERNELS = ("nuts", "hmc", "mala", "rwm")
# Cross-chain kernels whose metric is a diagonal estimated from all chains.
_DIAGONAL_KERNELS = ("chees", "meads")


class MassMatrix(NamedTuple):
    """``mass_matrix`` as the warm-ups read it."""

    mode: str  # "diag", "dense", "low_rank" or "blocks"
    dense_blocks: tuple = ()
    inverse_mass_matrix: ByValueArray | None = None
    adapt: bool = True


def _site_indices(target) -> dict[str, np.ndarray]:
    """Each site's entries in the flat unconstrained position."""
    flat, unravel = ravel_pytree(target.example_position)
    tree = unravel(jnp.arange(flat.shape[0], dtype=flat.dtype))
    if not isinstance(tree, Mapping):
        return {}
    return {name: np.asarray(value, dtype=int).ravel() for name, value in tree.items()}


def _names(entry: Any, argument: str) -> tuple[str, ...]:
    names = (entry,) if isinstance(entry, str) else entry
    if not isinstance(names, tuple) or not names or not all(isinstance(n, str) for n in names):
        raise TypeError(
            f"{argument} entries are a site name or a tuple of site names, got {entry!r}: "
            'e.g. [("alpha", "beta")] for one dense block over both sites.'
        )
    return names


def _indices_of(names: tuple[str, ...], sites: dict[str, np.ndarray], argument: str, target):
    if not sites:
        raise ValueError(
            f"{argument} names sites, but the target {target.name!r} has an array position "
            "with no site names: give its position as a dict of named arrays, or pass "
            f"inverse_mass_matrix as an array over its {target.num_dims} coordinates."
        )
    unknown = [n for n in names if n not in sites]
    if unknown:
        raise ValueError(
            f"{argument} names {unknown}, which are not latent sites of {target.name!r}; "
            f"its latent (sampled, unobserved) sites are {sorted(sites)}."
        )
    return np.concatenate([sites[n] for n in names])


def _dense_blocks(entries: Sequence, target) -> tuple:
    if isinstance(entries, str) or not isinstance(entries, Sequence) or not entries:
        raise TypeError(
            f'mass_matrix must be one of {_NAMED} or a list of site groups, e.g. [("a", "b")] '
            f"(each group one dense block, every other site diagonal), got {entries!r}."
        )
    sites = _site_indices(target)
    blocks, seen = [], {}
    for entry in entries:
        names = _names(entry, "mass_matrix")
        for name in names:
            if name in seen:
                raise ValueError(
                    f"mass_matrix puts site {name!r} in two dense blocks ({seen[name]} and "
                    f"{names}): a site belongs to one block; merge the groups into one."
                )
            seen[name] = names
        blocks.append(tuple(int(i) for i in _indices_of(names, sites, "mass_matrix", target)))
    return tuple(blocks)


def _check_matrix(matrix: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"inverse_mass_matrix: {what} has non-finite entries.")
    if matrix.ndim == 1:
        if np.any(matrix <= 0):
            raise ValueError(
                f"inverse_mass_matrix: {what} must be positive (a diagonal of variances), "
                f"got a smallest entry of {matrix.min():g}."
            )
        return
    if not np.allclose(matrix, matrix.T, rtol=1e-6, atol=1e-12 * np.abs(matrix).max()):
        raise ValueError(f"inverse_mass_matrix: {what} must be symmetric.")
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"inverse_mass_matrix: {what} must be positive definite (a covariance matrix of "
            "the unconstrained position)."
        ) from None


def _as_matrix(value: Any, size: int, what: str) -> np.ndarray:
    matrix = np.asarray(value, dtype=float)
    if matrix.shape not in ((size,), (size, size)):
        raise ValueError(
            f"inverse_mass_matrix: {what} has shape {matrix.shape}; expected ({size},) for a "
            f"diagonal or ({size}, {size}) for a dense matrix."
        )
    _check_matrix(matrix, what)
    return matrix


def _user_matrix(value: Any, target) -> np.ndarray:
    """The user's inverse mass matrix on the flat position: a vector (diagonal) or a
    matrix; a dict over site groups is assembled block by block."""
    d = target.num_dims
    if not isinstance(value, Mapping):
        return _as_matrix(value, d, "the matrix")
    sites = _site_indices(target)
    parts, covered = [], {}
    for key, block in value.items():
        names = _names(key, "inverse_mass_matrix")
        index = _indices_of(names, sites, "inverse_mass_matrix", target)
        for name in names:
            if name in covered:
                raise ValueError(
                    f"inverse_mass_matrix gives site {name!r} twice ({covered[name]} and "
                    f"{names}); give each site in one group."
                )
            covered[name] = names
        parts.append((index, _as_matrix(block, index.size, f"the block for {names}")))
    missing = sorted(set(sites) - set(covered))
    if missing:
        raise ValueError(
            f"inverse_mass_matrix has no entry for the latent site(s) {missing}: give every "
            "latent site a block (e.g. {'site': np.ones(size)} for an identity)."
        )
    if all(block.ndim == 1 for _, block in parts):
        out = np.empty(d)
        for index, block in parts:
            out[index] = block
        return out
    out = np.zeros((d, d))
    for index, block in parts:
        out[np.ix_(index, index)] = block if block.ndim == 2 else np.diag(block)
    return out


def resolve_mass_matrix(
    mass_matrix: Any,
    inverse_mass_matrix: Any,
    adapt_mass_matrix: bool,
    kernel: Any,
    target,
    num_warmup: int,
) -> MassMatrix:
    """Check the mass-matrix options against the kernel and the target's sites."""
    if not isinstance(adapt_mass_matrix, bool):
        raise TypeError(f"adapt_mass_matrix must be True or False, got {adapt_mass_matrix!r}.")
    if isinstance(mass_matrix, str):
        if mass_matrix not in _NAMED:
            raise ValueError(
                f"mass_matrix must be one of {_NAMED} or a list of site groups for dense "
                f'blocks (e.g. [("a", "b")]), got {mass_matrix!r}.'
            )
        mode, blocks = mass_matrix, ()
    else:
        mode, blocks = "blocks", _dense_blocks(mass_matrix, target)
    structured = mode == "blocks" or inverse_mass_matrix is not None or not adapt_mass_matrix
    if mode in ("dense", "low_rank") and kernel in _DIAGONAL_KERNELS:
        raise ValueError(
            f"kernel={kernel!r} adapts a diagonal metric across chains; "
            f"mass_matrix={mode!r} is available for "
            f"{_STRUCTURED_KERNELS if mode == 'dense' else ('nuts', 'hmc')}. Leave "
            f"mass_matrix out (or pass 'diag'), or use kernel='nuts' for a {mode} metric."
        )
    if mode == "low_rank" and kernel not in ("nuts", "hmc"):
        raise ValueError(
            f"mass_matrix='low_rank' is available for kernel='nuts' or 'hmc', not {kernel!r}; "
            "use mass_matrix='diag' or 'dense'."
        )
    if structured and kernel not in _STRUCTURED_KERNELS:
        raise ValueError(
            f"Dense blocks, inverse_mass_matrix and adapt_mass_matrix apply to kernels "
            f"{_STRUCTURED_KERNELS}; kernel={kernel!r} tunes its own metric. Drop them, "
            "or use kernel='nuts'."
        )
    if inverse_mass_matrix is None:
        if not adapt_mass_matrix:
            raise ValueError(
                "adapt_mass_matrix=False keeps the inverse mass matrix fixed: pass "
                "inverse_mass_matrix= (e.g. a previous result's "
                "result.adaptation['inverse_mass_matrix'][0])."
            )
        return MassMatrix(mode, blocks)
    if mode == "low_rank":
        raise ValueError(
            "inverse_mass_matrix cannot start a low-rank adaptation: use mass_matrix='diag', "
            "'dense' or dense blocks with it."
        )
    matrix = _user_matrix(inverse_mass_matrix, target)
    # Without warm-up nothing adapts: the matrix is the metric, whatever its form.
    adapt_mass_matrix = adapt_mass_matrix and num_warmup > 0
    if adapt_mass_matrix and mode == "diag" and matrix.ndim == 2:
        raise ValueError(
            "inverse_mass_matrix is a dense matrix but mass_matrix='diag' adapts a diagonal: "
            "pass mass_matrix='dense' (or dense blocks) to start from it, or "
            "adapt_mass_matrix=False to keep it as it is."
        )
    return MassMatrix(mode, blocks, ByValueArray(matrix), adapt_mass_matrix)
