"""Graphs as compressed sparse rows on device, and target measures on their nodes."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

__all__ = ["Graph", "from_networkx", "from_scipy", "target_measure"]


class Graph(NamedTuple):
    """An undirected, connected graph held as compressed sparse rows (CSR).

    The neighbours of node ``i`` are ``indices[indptr[i]:indptr[i + 1]]`` with edge
    weights ``weights[...]`` over the same slice. Every edge appears in both rows;
    ``reverse[e]`` is the position of edge ``e``'s twin (``j -> i`` for ``i -> j``),
    which the non-backtracking walk uses to avoid stepping back.

    Build one with :func:`from_networkx` or :func:`from_scipy`; both check that the
    adjacency is symmetric, non-negative and connected.

    Example:
        >>> import networkx as nx
        >>> from probkit.graph import from_networkx
        >>> graph = from_networkx(nx.cycle_graph(4))
        >>> graph.num_nodes, graph.num_edges
        (4, 8)
    """

    indptr: Any  # (num_nodes + 1,) int32
    indices: Any  # (num_edges,) int32: the neighbour at the far end of each edge
    weights: Any  # (num_edges,) float32
    degree: Any  # (num_nodes,) float32: weighted degree, the row sums of the adjacency
    reverse: Any  # (num_edges,) int32: the twin of each edge

    @property
    def num_nodes(self) -> int:
        """Number of nodes."""
        return int(np.shape(self.indptr)[0]) - 1

    @property
    def num_edges(self) -> int:
        """Number of directed edges (twice the number of undirected ones, loops once)."""
        return int(np.shape(self.indices)[0])

    @property
    def max_degree(self) -> int:
        """Largest number of neighbours of a node (edges counted, not weights)."""
        indptr = np.asarray(self.indptr)
        return int(np.max(np.diff(indptr)))

    @property
    def is_unweighted(self) -> bool:
        """Whether every edge has weight 1."""
        return bool(np.all(np.asarray(self.weights) == 1.0))


def from_scipy(adjacency: Any) -> Graph:
    """A :class:`Graph` from a symmetric SciPy sparse (or NumPy dense) adjacency matrix.

    Args:
        adjacency: an ``(n, n)`` matrix whose entry ``(i, j)`` is the weight of edge
            ``{i, j}`` (zero: no edge). It must be symmetric with finite,
            non-negative entries, and the graph connected. Self-loops (diagonal
            entries) are kept as edges.

    Returns:
        the graph, its arrays on the default device.

    Example:
        >>> import scipy.sparse as sp
        >>> from probkit.graph import from_scipy
        >>> adjacency = sp.csr_array([[0, 1, 1], [1, 0, 0], [1, 0, 0]])
        >>> from_scipy(adjacency).degree.tolist()
        [2.0, 1.0, 1.0]
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    if sp.issparse(adjacency):
        matrix = sp.csr_array(adjacency, dtype=np.float64)
    else:
        dense = np.asarray(adjacency, dtype=np.float64)
        if dense.ndim != 2:
            raise ValueError(
                f"adjacency must be a square 2-D matrix; got an array of shape {dense.shape}."
            )
        matrix = sp.csr_array(dense)
    n_rows, n_cols = matrix.shape
    if n_rows != n_cols:
        raise ValueError(f"adjacency must be square; got shape {matrix.shape}.")
    if n_rows < 2:
        raise ValueError(f"adjacency must have at least 2 nodes; got {n_rows}.")
    matrix.eliminate_zeros()
    data = matrix.data
    if not np.all(np.isfinite(data)):
        raise ValueError("adjacency has non-finite entries; edge weights must be finite.")
    if np.any(data < 0):
        raise ValueError("adjacency has negative entries; edge weights must be >= 0.")
    asym = abs(matrix - matrix.T)
    if asym.nnz and asym.max() > 1e-12 * max(1.0, float(np.max(data))):
        raise ValueError(
            "adjacency is not symmetric: random walks here need an undirected graph. "
            "Symmetrise it, e.g. adjacency.maximum(adjacency.T)."
        )
    num_components, labels = connected_components(matrix, directed=False)
    if num_components > 1:
        sizes = np.bincount(labels)
        raise ValueError(
            f"adjacency describes a disconnected graph ({num_components} components, "
            f"sizes {sorted(sizes.tolist(), reverse=True)[:5]}...): a walk cannot reach "
            "every node. Keep the largest component, e.g. with "
            "networkx.subgraph(G, max(networkx.connected_components(G), key=len))."
        )
    matrix.sort_indices()
    indptr = matrix.indptr.astype(np.int64)
    indices = matrix.indices.astype(np.int64)
    rows = np.repeat(np.arange(n_rows), np.diff(indptr))
    # Edges are sorted by (row, col). The pairs are symmetric, so the k-th edge in
    # (col, row) order is the twin (col_k -> row_k) of the k-th edge (row_k -> col_k).
    reverse = np.lexsort((rows, indices))
    degree = np.asarray(matrix.sum(axis=1)).ravel()
    return Graph(
        indptr=jnp.asarray(indptr, dtype=jnp.int32),
        indices=jnp.asarray(indices, dtype=jnp.int32),
        weights=jnp.asarray(matrix.data, dtype=jnp.float32),
        degree=jnp.asarray(degree, dtype=jnp.float32),
        reverse=jnp.asarray(reverse, dtype=jnp.int32),
    )


def from_networkx(graph: Any, weight: str | None = None) -> Graph:
    """A :class:`Graph` from an undirected NetworkX graph.

    Nodes are numbered in ``list(graph)`` order: node ``k`` of the result is
    ``list(graph)[k]``.

    Args:
        graph: a connected, undirected ``networkx.Graph``.
        weight: the edge attribute holding edge weights, or ``None`` (default) for an
            unweighted graph (every edge weight 1).

    Example:
        >>> import networkx as nx
        >>> from probkit.graph import from_networkx
        >>> from_networkx(nx.path_graph(3)).degree.tolist()
        [1.0, 2.0, 1.0]
    """
    import networkx as nx

    if not isinstance(graph, nx.Graph):
        raise TypeError(f"graph must be a networkx.Graph; got {type(graph).__name__}.")
    if graph.is_directed():
        raise ValueError(
            "graph is directed: random walks here need an undirected graph; pass "
            "graph.to_undirected()."
        )
    if graph.is_multigraph():
        raise ValueError("graph is a multigraph; pass networkx.Graph(graph) to merge edges.")
    if graph.number_of_nodes() < 2:
        raise ValueError(f"graph must have at least 2 nodes; got {graph.number_of_nodes()}.")
    adjacency = nx.to_scipy_sparse_array(graph, nodelist=list(graph), weight=weight, format="csr")
    return from_scipy(adjacency)


def target_measure(graph: Graph, target: Any = "uniform") -> np.ndarray:
    """The normalised target measure ``mu`` on the nodes, as a float64 NumPy array.

    Args:
        graph: the graph.
        target: ``"uniform"`` (default), ``"degree"`` (proportional to the weighted
            degree, the simple random walk's stationary law) or an array of
            ``num_nodes`` positive, finite node weights (normalised here).

    Example:
        >>> import networkx as nx
        >>> from probkit.graph import from_networkx, target_measure
        >>> target_measure(from_networkx(nx.path_graph(3)), "degree").tolist()
        [0.25, 0.5, 0.25]
    """
    n = graph.num_nodes
    if isinstance(target, str):
        if target == "uniform":
            return np.full(n, 1.0 / n)
        if target == "degree":
            degree = np.asarray(graph.degree, dtype=np.float64)
            return degree / degree.sum()
        raise ValueError(
            f"target={target!r} is not known; use 'uniform', 'degree' or an array of "
            f"{n} positive node weights."
        )
    weights = np.asarray(target, dtype=np.float64)
    if weights.shape != (n,):
        raise ValueError(
            f"target must have one weight per node, shape ({n},); got shape {weights.shape}."
        )
    if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        bad = int(np.flatnonzero(~(np.isfinite(weights) & (weights > 0)))[0])
        raise ValueError(
            f"target must be positive and finite at every node (node {bad} has "
            f"{weights[bad]}); a walk sampling mu needs mu > 0 everywhere."
        )
    return weights / weights.sum()
