"""Random walks on graphs: MCMC samplers with self-repellence, and token-based
distributed optimisation.

Base chains (simple, Metropolis-Hastings, non-backtracking), the self-repellent
random walk SRRW(alpha) of Doshi, Hu & Eun (ICML 2023) over a reversible base chain,
a driver running many walkers for ergodic averages with batch-means standard
errors, and SA-SRRW (Hu, Doshi & Eun, ICLR 2024): stochastic approximation driven
by a self-repellent token.

Example:
    >>> import networkx as nx, numpy as np
    >>> import probkit.graph as pg
    >>> graph = pg.from_networkx(nx.karate_club_graph())
    >>> walk = pg.self_repellent_walk(pg.metropolis_hastings_walk(graph), alpha=10.0)
    >>> result = pg.sample(walk, seed=0, num_steps=1000, num_walkers=4)
    >>> result.visit_frequency.shape
    (34,)
"""

from probkit.graph._exact import asymptotic_variance, transition_matrix
from probkit.graph._graph import Graph, from_networkx, from_scipy, target_measure
from probkit.graph._sample import WalkResult, sample
from probkit.graph._srrw import (
    PolynomialStepSize,
    SelfRepellentState,
    SelfRepellentWalk,
    self_repellent_walk,
)
from probkit.graph._token import (
    SA_SRRW_VARIANTS as SA_SRRW_VARIANTS,
)
from probkit.graph._token import (
    OptimisationResult,
    TokenOptimisation,
    TokenState,
    optimise,
    sa_srrw,
    token_optimisation,
)
from probkit.graph._walks import (
    MetropolisHastingsWalk,
    NonBacktrackingWalk,
    SimpleRandomWalk,
    WalkInfo,
    WalkState,
    metropolis_hastings_walk,
    non_backtracking_walk,
    simple_random_walk,
)

# Importable, but not in __all__ (constants and internals): SA_SRRW_VARIANTS.
__all__ = [
    "Graph",
    "MetropolisHastingsWalk",
    "NonBacktrackingWalk",
    "OptimisationResult",
    "PolynomialStepSize",
    "SelfRepellentState",
    "SelfRepellentWalk",
    "SimpleRandomWalk",
    "TokenOptimisation",
    "TokenState",
    "WalkInfo",
    "WalkResult",
    "WalkState",
    "asymptotic_variance",
    "from_networkx",
    "from_scipy",
    "metropolis_hastings_walk",
    "non_backtracking_walk",
    "optimise",
    "sa_srrw",
    "sample",
    "self_repellent_walk",
    "simple_random_walk",
    "target_measure",
    "token_optimisation",
    "transition_matrix",
]
