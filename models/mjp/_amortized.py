"""Amortised inference: the shipped recognition network, saving/loading, and
:func:`amortized_posterior`."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from probkit.models._serialise import load_module, save_module
from probkit.models.mjp._network import AmortizedMJPNetwork
from probkit.models.mjp._posterior import check_observations
from probkit.models.mjp._simulate import check_times

from probkit._checks import check_key
from probkit._repr import summary_repr

__all__ = [
    "AmortizedEstimate",
    "amortized_posterior",
    "save_network",
    "load_network",
    "pretrained_network",
    "PRETRAINED_PATH",
]

PRETRAINED_PATH = Path(__file__).resolve().parent.parent / "data" / "mjp" / "amortized_mjp.eqx"
_FIELDS = ("max_states", "num_lag_features", "width")


def save_network(path: str | Path, network: AmortizedMJPNetwork, **metadata) -> None:
    """Write a network: one JSON line (hyperparameters + metadata), then equinox's leaves.

    Args:
        path: the file to write.
        network: the network.
        **metadata: JSON-serialisable notes stored with it (e.g. training settings).

    Example:
        >>> import jax, os, tempfile
        >>> from probkit.models.mjp import AmortizedMJPNetwork, load_network, save_network
        >>> path = os.path.join(tempfile.mkdtemp(), "net.eqx")
        >>> save_network(path, AmortizedMJPNetwork(jax.random.key(0), width=8))
        >>> load_network(path).width
        8
    """
    save_module(path, network, _FIELDS, **metadata)


def load_network(path: str | Path) -> AmortizedMJPNetwork:
    """Read a network written by :func:`save_network`.

    Args:
        path: the file.

    Returns:
        The network.

    Example:
        >>> from probkit.models.mjp import PRETRAINED_PATH, load_network
        >>> load_network(PRETRAINED_PATH).max_states
        6
    """
    # the skeleton's shapes only (no eager initialisation of weights that are overwritten)
    return load_module(
        path,
        lambda header: eqx.filter_eval_shape(
            AmortizedMJPNetwork, jax.random.key(0), **{n: header[n] for n in _FIELDS}
        ),
    )


_CACHE: dict[str, AmortizedMJPNetwork] = {}


def pretrained_network() -> AmortizedMJPNetwork:
    """The network shipped in ``models/data/mjp`` (trained by
    ``python -m probkit.models.mjp.train_amortized``), loaded once.

    Returns:
        The network.

    Raises:
        FileNotFoundError: the weights file is missing (re-run the training script).

    Example:
        >>> from probkit.models.mjp import pretrained_network
        >>> pretrained_network().max_states
        6
    """
    if "default" not in _CACHE:
        if not PRETRAINED_PATH.exists():
            raise FileNotFoundError(
                f"no shipped weights at {PRETRAINED_PATH}: train them with "
                "`python -m probkit.models.mjp.train_amortized`."
            )
        _CACHE["default"] = load_network(PRETRAINED_PATH)
    return _CACHE["default"]


class AmortizedEstimate(NamedTuple):
    """Rates and the initial distribution estimated by the network, with their uncertainty.

    Attributes:
        rate_matrix: ``(K, K)`` generator from the median rates ``exp(mean)``.
        log_rate_mean: ``(K, K)`` mean of each log-rate (0 where no jump is allowed).
        log_rate_sd: ``(K, K)`` standard deviation of each log-rate.
        initial: ``(K,)`` mean of the distribution of the state at the first observation
            time (the initial distribution when observation starts at time 0).
        initial_concentration: ``(K,)`` concentration of the network's Dirichlet over it
            (marginal sd ``sqrt(p (1 - p) / (sum + 1))``).
    """

    rate_matrix: np.ndarray
    log_rate_mean: np.ndarray
    log_rate_sd: np.ndarray
    initial: np.ndarray
    initial_concentration: np.ndarray

    def __repr__(self) -> str:
        return summary_repr(self)

    @property
    def initial_sd(self) -> np.ndarray:
        """``(K,)`` standard deviation of each initial probability under the Dirichlet."""
        total = self.initial_concentration.sum()
        return np.sqrt(self.initial * (1.0 - self.initial) / (total + 1.0))

    def sample(self, key: jax.Array, num_samples: int) -> jax.Array:
        """Draws of the rate matrix from the network's log-normal approximation.

        Args:
            key: a ``jax.random`` key.
            num_samples: number of draws.

        Returns:
            ``(num_samples, K, K)`` generators.
        """
        check_key(key)
        from probkit.models.mjp._process import rate_matrix_from_rates

        allowed = self.rate_matrix > 0
        eps = jax.random.normal(key, (num_samples, *self.log_rate_mean.shape))
        rates = jnp.exp(self.log_rate_mean + self.log_rate_sd * eps) * allowed
        return rate_matrix_from_rates(rates)

    def sample_initial(self, key: jax.Array, num_samples: int) -> jax.Array:
        """Draws of the initial distribution from the network's Dirichlet.

        Args:
            key: a ``jax.random`` key.
            num_samples: number of draws.

        Returns:
            ``(num_samples, K)`` probability vectors.
        """
        check_key(key)
        return jax.random.dirichlet(key, jnp.asarray(self.initial_concentration), (num_samples,))


@eqx.filter_jit
def _apply(network, times, observations, path_mask, num_states, adjacency):
    return network(times, observations, path_mask, num_states, adjacency)


def amortized_posterior(
    times,
    observations,
    num_states: int,
    *,
    adjacency=None,
    network: AmortizedMJPNetwork | None = None,
) -> AmortizedEstimate:
    """Rates, the initial distribution and their uncertainty from snapshots in one network
    evaluation (milliseconds).

    A Gaussian approximation of each log-rate's posterior and a Dirichlet approximation of
    the initial distribution's (the law of the state at each path's first observation
    time) under the network's synthetic prior (see :mod:`probkit.models.mjp._training`);
    label noise is inferred implicitly.
    The first call compiles (about a second); later calls with the same shapes reuse it.

    Args:
        times: ``(T,)`` shared or ``(N, T)`` per-path observation times.
        observations: ``(N, T)`` labels in ``[0, num_states)``.
        num_states: ``K`` (at most the network's ``max_states``).
        adjacency: ``(K, K)`` allowed jumps (``None``: all).
        network: a trained network (default: :func:`pretrained_network`).

    Returns:
        :class:`AmortizedEstimate`.

    Raises:
        ValueError: bad inputs, or more states than the network handles.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.mjp import MJP, amortized_posterior, simulate
        >>> process = MJP(jnp.array([[-1.0, 1.0], [2.0, -2.0]]))
        >>> times = jnp.linspace(0.0, 10.0, 50)
        >>> y = simulate(jax.random.key(0), process, 300, times, max_jumps=200)
        >>> est = amortized_posterior(times, y, 2)
        >>> est.rate_matrix.shape, est.initial.shape
        ((2, 2), (2,))
    """
    network = pretrained_network() if network is None else network
    y = check_observations(observations, num_states)
    check_times(times, y.shape[0])
    if num_states > network.max_states:
        raise ValueError(
            f"num_states={num_states} exceeds the network's max_states={network.max_states}: "
            "use posterior(...) or train a larger network."
        )
    t = np.broadcast_to(np.asarray(times, np.float32), y.shape)
    if t.shape[-1] < 2:
        raise ValueError("each path needs at least two observations.")
    k = network.max_states
    adj = np.ones((num_states, num_states), bool) if adjacency is None else np.asarray(adjacency)
    if adj.shape != (num_states, num_states):
        raise ValueError(
            f"adjacency must have shape ({num_states}, {num_states}), got {adj.shape}."
        )
    padded = np.zeros((k, k), bool)
    padded[:num_states, :num_states] = adj & ~np.eye(num_states, dtype=bool)
    out = _apply(
        network,
        jnp.asarray(t),
        jnp.asarray(y),
        jnp.ones(y.shape[0], bool),
        jnp.asarray(num_states),
        jnp.asarray(padded),
    )
    mean = np.asarray(out.log_rate_mean)[:num_states, :num_states]
    sd = np.exp(np.asarray(out.log_rate_log_sd))[:num_states, :num_states]
    concentration = np.asarray(out.initial_concentration, np.float64)[:num_states]
    allowed = padded[:num_states, :num_states]
    rates = np.where(allowed, np.exp(mean), 0.0)
    rate_matrix = rates - np.diag(rates.sum(1))
    return AmortizedEstimate(
        rate_matrix=rate_matrix,
        log_rate_mean=np.where(allowed, mean, 0.0),
        log_rate_sd=np.where(allowed, sd, 0.0),
        initial=concentration / concentration.sum(),
        initial_concentration=concentration,
    )
