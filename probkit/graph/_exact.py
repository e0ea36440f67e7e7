"""Exact quantities of walks on small graphs, for checking the samplers.

Dense linear algebra in float64: these are meant for graphs of up to a few thousand
nodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from probkit.graph._srrw import PolynomialStepSize, SelfRepellentWalk
from probkit.graph._walks import MetropolisHastingsWalk, SimpleRandomWalk

__all__ = ["asymptotic_variance", "transition_matrix"]


def transition_matrix(walk: Any) -> np.ndarray:
    """The dense transition matrix ``P`` of a reversible walk (for a SRRW: its base).

    Example:
        >>> import networkx as nx
        >>> from probkit.graph import from_networkx, simple_random_walk, transition_matrix
        >>> transition_matrix(simple_random_walk(from_networkx(nx.path_graph(3))))[1].tolist()
        [0.5, 0.0, 0.5]
    """
    if isinstance(walk, SelfRepellentWalk):
        edge_log_prob, self_log_prob = walk.edge_log_prob, walk.self_log_prob
    elif isinstance(walk, (MetropolisHastingsWalk, SimpleRandomWalk)):
        edge_log_prob, self_log_prob = walk.transition_log_probs()
    else:
        raise TypeError(
            "walk must be a simple, Metropolis-Hastings or self-repellent walk (the "
            f"non-backtracking walk is not a Markov chain on nodes); got {type(walk).__name__}."
        )
    graph = walk.graph
    n = graph.num_nodes
    indptr = np.asarray(graph.indptr)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    matrix = np.zeros((n, n))
    np.add.at(matrix, (rows, np.asarray(graph.indices)), np.exp(np.asarray(edge_log_prob, float)))
    matrix[np.arange(n), np.arange(n)] += np.exp(np.asarray(self_log_prob, float))
    # float32 edge probabilities: renormalise the rows in float64.
    return matrix / matrix.sum(axis=1, keepdims=True)


def asymptotic_variance(walk: Any, values: Any, target: Any = None) -> np.ndarray:
    """The asymptotic (co)variance of ergodic averages of ``values`` along ``walk``.

    ``lim n Var[(1/n) sum_k f(X_k)]`` for ``f = values`` (shape ``(num_nodes,)`` or
    ``(num_nodes, k)``). For a simple or Metropolis-Hastings walk it comes from the
    fundamental matrix ``Z = (I - P + 1 mu^T)^(-1)``:
    ``2 <f, Z f>_mu - <f, f>_mu`` for centred ``f``. For a self-repellent walk with
    ``gamma_n = 1/(n+1)`` it is Doshi et al.'s (ICML 2023, Theorem 3.2) spectral form
    ``sum_i (1 + lambda_i) / ((1 - lambda_i)(2 alpha (1 + lambda_i) + 1)) <f, phi_i>_mu^2``
    over the eigenpairs of the base chain, which at ``alpha = 0`` is the first.

    Args:
        walk: the walk.
        values: node values ``f``.
        target: ``mu``; default the walk's own target.

    Returns:
        a scalar (1-D ``values``) or a ``(k, k)`` matrix.

    Example:
        >>> import networkx as nx, numpy as np
        >>> from probkit.graph import from_networkx, simple_random_walk
        >>> from probkit.graph import asymptotic_variance
        >>> walk = simple_random_walk(from_networkx(nx.complete_graph(3)))
        >>> # eigenvalues -1/2 (twice): (1/3) Var_mu(f) = (1/3)(2/9) = 2/27
        >>> round(float(asymptotic_variance(walk, np.array([1.0, 0.0, 0.0]))), 6)
        0.074074
    """
    matrix = transition_matrix(walk)
    mu = np.asarray(walk.target if target is None else target, np.float64)
    mu = mu / mu.sum()
    f = np.asarray(values, np.float64)
    scalar = f.ndim == 1
    f = f[:, None] if scalar else f
    if f.shape[0] != mu.shape[0]:
        raise ValueError(f"values must have one row per node ({mu.shape[0]}); got {f.shape}.")
    centred = f - mu @ f
    if isinstance(walk, SelfRepellentWalk):
        if walk.visit_step_size != PolynomialStepSize(1.0, 1.0):
            raise ValueError(
                "the closed form holds for gamma_n = 1/(n+1) (visit_step_size=None); "
                "other step sizes change the scaling of the CLT."
            )
        alpha = float(walk.alpha)
        root = np.sqrt(mu)
        symmetric = root[:, None] * matrix / root[None, :]
        eigenvalues, vectors = np.linalg.eigh(0.5 * (symmetric + symmetric.T))
        # Drop the top eigenpair (lambda = 1, vector sqrt(mu)): centred f is orthogonal.
        eigenvalues, vectors = eigenvalues[:-1], vectors[:, :-1]
        weights = (1 + eigenvalues) / ((1 - eigenvalues) * (2 * alpha * (1 + eigenvalues) + 1))
        projections = vectors.T @ (root[:, None] * centred)  # (n - 1, k)
        cov = projections.T @ (weights[:, None] * projections)
    else:
        n = mu.shape[0]
        fundamental = np.linalg.inv(np.eye(n) - matrix + np.outer(np.ones(n), mu))
        weighted = mu[:, None] * centred
        cross = weighted.T @ fundamental @ centred
        cov = cross + cross.T - weighted.T @ centred
    return cov[0, 0] if scalar else cov
