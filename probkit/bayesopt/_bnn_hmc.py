"""BNN surrogate whose weights are sampled by NUTS in JAX.

The model (Li, Rudner & Wilson, ICLR 2024, "HMC BNN"): a tanh MLP ``f_w`` on
normalised inputs, standardised outputs ``y ~ N(f_w(x), noise_scale^2)``, Gaussian
weight prior ``w ~ N(0, prior_scale^2 / fan_in)`` (biases ``N(0, prior_scale^2)``).
NUTS samples the weights; the retained draws become the members of an
:class:`~probkit.bayesopt.MLPEnsembleModel`, evaluated in torch so that BoTorch's
acquisitions get gradients with respect to the candidates.

Two engines run NUTS:

* ``"probkit"``: :func:`probkit.mcmc.sample`, the library's general driver (blackjax
  NUTS with Stan-style window adaptation), one call per distinct pair of scales.
* ``"cached"`` (default): probkit.mcmc's layers used directly (the NUTS
  specification's window adaptation and the pure :func:`probkit.mcmc.loop`),
  vmapped over chains that each carry their own ``(prior_scale, noise_scale)``, so
  the validation grid search below runs as one vectorised call. It is compiled once
  per (network, data-size bucket, settings) with ``equinox.filter_jit``: the data
  are padded to a power-of-two number of rows with a mask and passed as arguments.

``prior_scale`` and ``noise_scale`` are chosen as the BNN study chooses them: by the
log predictive likelihood of a held-out split over a small grid.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import torch
from jax.flatten_util import ravel_pytree

from probkit._checks import check_key, check_seed
from probkit._repr import summary_repr
from probkit.bayesopt._data import TrainingData, fitted_transforms
from probkit.bayesopt._mlp_ensemble import MLPEnsembleModel

__all__ = [
    "BNNHyperparameters",
    "BNNPosterior",
    "bnn_log_posterior",
    "bnn_predict",
    "fit_bnn_hmc",
    "init_bnn_params",
    "sample_bnn_posterior",
    "tune_bnn_hyperparameters",
]

Params = dict[str, jax.Array]
ENGINES = ("cached", "probkit")


class BNNHyperparameters(NamedTuple):
    """Prior and noise scales of the BNN, in standardised output units."""

    prior_scale: float
    noise_scale: float


class BNNPosterior(NamedTuple):
    """Draws of the BNN weights.

    Attributes:
        params: weights with leading ``(num_chains, num_samples)`` axes.
        acceptance_rate: mean NUTS acceptance rate per chain.
        num_divergent: divergent transitions per chain.
    """

    params: dict[str, np.ndarray]
    acceptance_rate: np.ndarray
    num_divergent: np.ndarray

    def __repr__(self) -> str:
        return summary_repr(self)


def _num_layers(params: Params) -> int:
    return sum(1 for name in params if name.startswith("W"))


def bnn_predict(params: Params, X: jax.Array) -> jax.Array:
    """The MLP's output ``n x m`` at normalised inputs ``X`` (``n x d``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.bayesopt import bnn_predict, init_bnn_params
        >>> params = init_bnn_params(jax.random.PRNGKey(0), (2, 8, 1))
        >>> bnn_predict(params, jnp.zeros((5, 2))).shape
        (5, 1)
    """
    h = X
    num_layers = _num_layers(params)
    for i in range(num_layers):
        h = h @ params[f"W{i}"] + params[f"b{i}"]
        if i < num_layers - 1:
            h = jnp.tanh(h)
    return h


def init_bnn_params(key: jax.Array, widths: Sequence[int], scale: float = 1.0) -> Params:
    """Draw MLP weights from the prior ``N(0, scale^2 / fan_in)`` (biases zero).

    Args:
        key: a ``jax.random`` key.
        widths: layer widths ``(d, h_1, ..., m)``.
        scale: prior scale.

    Example:
        >>> import jax
        >>> from probkit.bayesopt import init_bnn_params
        >>> sorted(init_bnn_params(jax.random.PRNGKey(0), (3, 4, 1)))
        ['W0', 'W1', 'b0', 'b1']
    """
    check_key(key)
    params = {}
    keys = jax.random.split(key, len(widths) - 1)
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        params[f"W{i}"] = scale / math.sqrt(fan_in) * jax.random.normal(keys[i], (fan_in, fan_out))
        params[f"b{i}"] = jnp.zeros(fan_out)
    return params


def bnn_log_posterior(data: tuple[jax.Array, ...], params: Params) -> jax.Array:
    """Unnormalised log posterior of the weights.

    Args:
        data: ``(X, Y, mask, prior_scale, noise_scale)``: ``X`` is ``n x d``
            normalised, ``Y`` is ``n x m`` standardised, ``mask`` (``n``) is 1 for real
            rows and 0 for padding; the scales are scalars.
        params: the weights (see :func:`init_bnn_params`).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.bayesopt import bnn_log_posterior, init_bnn_params
        >>> params = init_bnn_params(jax.random.PRNGKey(0), (1, 4, 1))
        >>> data = (jnp.zeros((3, 1)), jnp.zeros((3, 1)), jnp.ones(3), 1.0, 0.1)
        >>> bool(jnp.isfinite(bnn_log_posterior(data, params)))
        True
    """
    X, Y, mask, prior_scale, noise_scale = data
    log_prior = 0.0
    for name, value in params.items():
        fan_in = value.shape[0] if name.startswith("W") else 1
        scale = prior_scale / math.sqrt(fan_in)
        log_prior += jnp.sum(-0.5 * (value / scale) ** 2 - jnp.log(scale))
    residual = (Y - bnn_predict(params, X)) / noise_scale
    per_point = jnp.sum(-0.5 * residual**2 - jnp.log(noise_scale), axis=-1)
    return log_prior + jnp.sum(mask * per_point)


def _bucket(n: int) -> int:
    """Padded number of rows: the next power of two, at least 16."""
    return max(16, 1 << (n - 1).bit_length())


@eqx.filter_jit
def _run_nuts(widths, settings, keys, x0, X, Y, mask, prior_scales, noise_scales):
    """NUTS on every chain's own posterior (its own scales), with probkit.mcmc's pure
    layers (:func:`probkit.mcmc.warmup` and :func:`probkit.mcmc.loop`), vmapped over
    chains.

    Compiled once per (network, data-size bucket, settings): the data are arguments.
    """
    from probkit.mcmc import loop, warmup

    num_warmup, num_samples, max_num_doublings = settings
    _, unravel = ravel_pytree(init_bnn_params(jax.random.PRNGKey(0), widths))

    def run_chain(key, x0, prior_scale, noise_scale):
        data = (X, Y, mask, prior_scale, noise_scale)

        def logdensity(x):
            return bnn_log_posterior(data, unravel(x))

        warm_key, sample_key = jax.random.split(key)
        tuned = warmup(warm_key, logdensity, x0, num_warmup, max_num_doublings=max_num_doublings)
        _, (draws, stats) = loop(
            sample_key, tuned.algorithm, tuned.state, num_samples, statistics=tuned.statistics
        )
        return draws, stats["acceptance_rate"].mean(), stats["diverging"].sum()

    return jax.vmap(run_chain)(keys, x0, prior_scales, noise_scales)


def sample_bnn_posterior(
    X: np.ndarray,
    Y: np.ndarray,
    hyperparameters: Sequence[BNNHyperparameters],
    *,
    hidden: Sequence[int] = (32, 32),
    num_warmup: int = 300,
    num_samples: int = 100,
    max_num_doublings: int = 6,
    seed: int = 0,
    engine: str = "cached",
) -> BNNPosterior:
    """Sample the BNN weights with NUTS: one chain per entry of ``hyperparameters``.

    Args:
        X: ``n x d`` normalised inputs.
        Y: ``n x m`` standardised outputs.
        hyperparameters: the scales of each chain (repeat one pair for several
            chains of the same posterior).
        hidden: hidden-layer widths.
        num_warmup: NUTS warm-up steps per chain.
        num_samples: NUTS draws kept per chain.
        max_num_doublings: NUTS maximum tree depth.
        seed: chain ``c`` uses ``fold_in(PRNGKey(seed), c)``.
        engine: ``"cached"`` or ``"probkit"`` (see the module docstring).

    Example:
        >>> import numpy as np
        >>> from probkit.bayesopt import BNNHyperparameters, sample_bnn_posterior
        >>> X = np.linspace(0, 1, 6)[:, None]
        >>> posterior = sample_bnn_posterior(X, np.sin(6 * X), [BNNHyperparameters(1.0, 0.1)] * 2,
        ...                                  hidden=(8,), num_warmup=50, num_samples=20)
        >>> posterior.params["W0"].shape
        (2, 20, 1, 8)
    """
    seed = check_seed(seed)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}.")
    if not hyperparameters:
        raise ValueError("hyperparameters must list at least one (prior_scale, noise_scale).")
    X = np.asarray(X, dtype=np.float32)
    Y = np.asarray(Y, dtype=np.float32)
    widths = (X.shape[-1], *(int(h) for h in hidden), Y.shape[-1])
    key = jax.random.PRNGKey(seed)
    num_chains = len(hyperparameters)
    prior_scales = np.asarray([h.prior_scale for h in hyperparameters], np.float32)
    noise_scales = np.asarray([h.noise_scale for h in hyperparameters], np.float32)
    if engine == "probkit":
        return _sample_with_probkit(
            X,
            Y,
            widths,
            prior_scales,
            noise_scales,
            seed=seed,
            num_warmup=num_warmup,
            num_samples=num_samples,
            max_num_doublings=max_num_doublings,
        )

    n = X.shape[0]
    rows = _bucket(n)
    X_pad = np.zeros((rows, X.shape[1]), np.float32)
    Y_pad = np.zeros((rows, Y.shape[1]), np.float32)
    mask = np.zeros(rows, np.float32)
    X_pad[:n], Y_pad[:n], mask[:n] = X, Y, 1.0
    chain_keys = jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(num_chains))
    init_keys = jax.vmap(lambda c: jax.random.fold_in(key, 2**20 + c))(jnp.arange(num_chains))
    # Chains start at prior-scaled random weights, shrunk: a quieter start speeds up
    # the first adaptation window.
    x0 = jax.vmap(lambda k: ravel_pytree(init_bnn_params(k, widths, scale=0.5))[0])(init_keys)
    settings = (int(num_warmup), int(num_samples), int(max_num_doublings))
    draws, acceptance, divergent = _run_nuts(
        widths, settings, chain_keys, x0, X_pad, Y_pad, mask, prior_scales, noise_scales
    )
    _, unravel = ravel_pytree(init_bnn_params(jax.random.PRNGKey(0), widths))
    params = jax.vmap(jax.vmap(unravel))(draws)
    return BNNPosterior(
        params={k: np.asarray(v) for k, v in params.items()},
        acceptance_rate=np.asarray(acceptance),
        num_divergent=np.asarray(divergent),
    )


def _sample_with_probkit(X, Y, widths, prior_scales, noise_scales, *, seed, **settings):
    """One ``probkit.mcmc.sample`` call per distinct ``(prior_scale, noise_scale)``."""
    from probkit.mcmc import sample
    from probkit.target import Target

    example = init_bnn_params(jax.random.PRNGKey(0), widths)

    def init_with_data(key, num, data):
        del data
        return jax.vmap(lambda k: init_bnn_params(k, widths, scale=0.5))(jax.random.split(key, num))

    pairs = list(zip(prior_scales.tolist(), noise_scales.tolist(), strict=True))
    out: list = [None] * len(pairs)
    for group, pair in enumerate(dict.fromkeys(pairs)):
        chains = [c for c, p in enumerate(pairs) if p == pair]
        target = Target(
            logdensity_with_data=bnn_log_posterior,
            constrain_with_data=lambda data, z: dict(z),
            init_with_data=init_with_data,
            data=(X, Y, np.ones(X.shape[0], np.float32), np.float32(pair[0]), np.float32(pair[1])),
            example_position=example,
            name="bnn",
        )
        result = sample(
            target,
            kernel="nuts",
            num_chains=len(chains),
            num_warmup=settings["num_warmup"],
            num_samples=settings["num_samples"],
            seed=seed + group,
            max_num_doublings=settings["max_num_doublings"],
        )
        for j, c in enumerate(chains):
            out[c] = (
                {k: v[j] for k, v in result.samples.items()},
                float(np.mean(result.stats["acceptance_rate"][j])),
                int(np.sum(result.stats["diverging"][j])),
            )
    return BNNPosterior(
        params={k: np.stack([o[0][k] for o in out]) for k in example},
        acceptance_rate=np.asarray([o[1] for o in out]),
        num_divergent=np.asarray([o[2] for o in out]),
    )


def _log_predictive(
    params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray, noise_scale: float
) -> float:
    """Mean log predictive density of ``(X, Y)`` under one chain's draws (``s`` draws)."""
    predictions = jax.vmap(bnn_predict, in_axes=(0, None))(
        {k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(X, jnp.float32)
    )  # s x n x m
    log_normal = jax.scipy.stats.norm.logpdf(jnp.asarray(Y, jnp.float32), predictions, noise_scale)
    per_point = jax.scipy.special.logsumexp(log_normal.sum(-1), axis=0) - jnp.log(
        predictions.shape[0]
    )
    return float(jnp.mean(per_point))


def tune_bnn_hyperparameters(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    prior_scales: Sequence[float] = (1.0, 2.0, 4.0),
    noise_scales: Sequence[float] = (0.05, 0.2),
    validation_fraction: float = 0.2,
    seed: int = 0,
    hidden: Sequence[int] = (32, 32),
    num_warmup: int = 300,
    num_samples: int = 100,
    max_num_doublings: int = 6,
    engine: str = "cached",
) -> BNNHyperparameters:
    """Pick ``(prior_scale, noise_scale)`` by held-out log predictive likelihood.

    The data are split at random (``validation_fraction`` held out, at least 2
    points); one chain per grid point samples the posterior of the rest, and the
    pair whose draws give the held-out points the highest log predictive density
    is returned.

    Example:
        >>> import numpy as np
        >>> from probkit.bayesopt import tune_bnn_hyperparameters
        >>> X = np.linspace(0, 1, 10)[:, None]
        >>> tune_bnn_hyperparameters(X, np.sin(6 * X), prior_scales=(1.0,), noise_scales=(0.1,),
        ...                          hidden=(8,), num_warmup=30, num_samples=10)
        BNNHyperparameters(prior_scale=1.0, noise_scale=0.1)
    """
    seed = check_seed(seed)
    n = X.shape[0]
    num_valid = max(2, int(round(validation_fraction * n)))
    if n - num_valid < 2:
        raise ValueError(
            f"tuning the BNN's scales needs at least 4 data points, got {n}; pass fixed "
            "prior_scale= and noise_scale= instead."
        )
    order = np.random.default_rng(seed).permutation(n)
    valid, train = order[:num_valid], order[num_valid:]
    grid = [BNNHyperparameters(float(p), float(s)) for p in prior_scales for s in noise_scales]
    posterior = sample_bnn_posterior(
        X[train],
        Y[train],
        grid,
        hidden=hidden,
        num_warmup=num_warmup,
        num_samples=num_samples,
        max_num_doublings=max_num_doublings,
        seed=seed,
        engine=engine,
    )
    scores = [
        _log_predictive(
            {k: v[c] for k, v in posterior.params.items()}, X[valid], Y[valid], hyper.noise_scale
        )
        for c, hyper in enumerate(grid)
    ]
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    if not np.isfinite(scores).any():
        raise RuntimeError(
            "every (prior_scale, noise_scale) on the grid gave a non-finite held-out "
            "likelihood: the sampler diverged. Try larger noise_scales."
        )
    return grid[int(np.argmax(scores))]


def fit_bnn_hmc(
    data: TrainingData,
    *,
    seed: int = 0,
    hidden: Sequence[int] = (32, 32),
    prior_scale: float | None = None,
    noise_scale: float | None = None,
    prior_scales: Sequence[float] = (1.0, 2.0, 4.0),
    noise_scales: Sequence[float] = (0.05, 0.2),
    num_chains: int = 2,
    num_warmup: int = 300,
    num_samples: int = 100,
    num_members: int = 50,
    max_num_doublings: int = 6,
    engine: str = "cached",
) -> MLPEnsembleModel:
    """Fit the HMC BNN surrogate and return it as a BoTorch ``EnsembleModel``.

    Args:
        data: the training data (inputs normalised and outputs standardised here,
            with BoTorch's ``Normalize`` / ``Standardize``, like the GP).
        seed: seeds the sampler.
        hidden: hidden-layer widths of the tanh MLP.
        prior_scale: fixes the prior scale (with ``noise_scale``: no grid search).
        noise_scale: fixes the noise scale (with ``prior_scale``: no grid search).
        prior_scales: prior scales of the grid searched by held-out likelihood.
        noise_scales: noise scales of the grid searched by held-out likelihood.
        num_chains: NUTS chains.
        num_warmup: NUTS warm-up steps per chain.
        num_samples: NUTS draws kept per chain.
        max_num_doublings: NUTS maximum tree depth.
        num_members: draws kept as ensemble members (spread evenly over all chains).
        engine: ``"cached"`` or ``"probkit"`` (see the module docstring).

    The chosen scales are stored on the model as ``model.hyperparameters`` and the
    sampler's statistics as ``model.sampler_stats``.

    Example:
        >>> import torch
        >>> from probkit.bayesopt import TrainingData, fit_bnn_hmc, make_search_space
        >>> X = torch.linspace(0, 1, 8, dtype=torch.float64).unsqueeze(-1)
        >>> data = TrainingData(X, torch.sin(6 * X), None, make_search_space([(0, 1)]))
        >>> model = fit_bnn_hmc(data, hidden=(8,), prior_scale=1.0, noise_scale=0.1,
        ...                     num_warmup=50, num_samples=20, num_members=10)
        >>> model.posterior(X).values.shape
        torch.Size([10, 8, 1])
    """
    seed = check_seed(seed)
    normalize, standardize, X, Y = fitted_transforms(data)
    X_np, Y_np = X.numpy(), Y.numpy()
    settings = dict(
        hidden=hidden,
        num_warmup=num_warmup,
        num_samples=num_samples,
        max_num_doublings=max_num_doublings,
        engine=engine,
    )
    if prior_scale is not None and noise_scale is not None:
        hyper = BNNHyperparameters(float(prior_scale), float(noise_scale))
    else:
        hyper = tune_bnn_hyperparameters(
            X_np,
            Y_np,
            prior_scales=(prior_scale,) if prior_scale is not None else prior_scales,
            noise_scales=(noise_scale,) if noise_scale is not None else noise_scales,
            seed=seed,
            **settings,
        )
    posterior = sample_bnn_posterior(X_np, Y_np, [hyper] * num_chains, seed=seed, **settings)
    finite = np.all(
        [np.isfinite(v).reshape(num_chains, -1).all(-1) for v in posterior.params.values()], axis=0
    )
    if not finite.any():
        raise RuntimeError(
            "every NUTS chain of the BNN produced non-finite weights; raise noise_scale or "
            "lower prior_scale."
        )
    if not finite.all():
        warnings.warn(
            f"{int((~finite).sum())} of {num_chains} BNN chains produced non-finite weights "
            "and were dropped.",
            RuntimeWarning,
            stacklevel=2,
        )
    flat = {k: v[finite].reshape(-1, *v.shape[2:]) for k, v in posterior.params.items()}
    total = next(iter(flat.values())).shape[0]
    keep = np.linspace(0, total - 1, min(num_members, total)).round().astype(int)
    layers = [
        (
            torch.as_tensor(flat[f"W{i}"][keep], dtype=torch.float64),
            torch.as_tensor(flat[f"b{i}"][keep], dtype=torch.float64),
        )
        for i in range(_num_layers(flat))
    ]
    model = MLPEnsembleModel(
        layers,
        activation="tanh",
        train_X=data.X,
        input_transform=normalize,
        outcome_transform=standardize,
    )
    model.hyperparameters = hyper
    model.sampler_stats = {
        "acceptance_rate": posterior.acceptance_rate,
        "num_divergent": posterior.num_divergent,
    }
    return model
