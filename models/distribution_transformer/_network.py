"""The Distribution Transformer network (Whittle, Ziomek, Rawling & Osborne, arXiv 2502.02463).

One token per prior mixture component — ``(log-weight, mean, log-diagonal and
off-diagonal of the Cholesky factor)`` — embedded by an MLP; one token per data point,
embedded by its own MLP, plus one learned "null" data token (so that a query with no
data, or a fully masked one, still has something to attend to). Each layer applies
pre-norm self-attention among the component tokens, cross-attention from components
to data tokens and a feed-forward MLP, all residual. There is no positional encoding,
so the map is invariant to permuting the data and equivariant to permuting the
components.

One departure from the paper: data tokens may differ per component (``data_features`` of
shape ``(K, N, F)``), so that each task can express its data in each prior component's
whitened frame (see ``linear_gaussian_features``); each component cross-attends to its
own copy. With features that ignore the component this is exactly the paper's shared
cross-attention; with them, the shipped networks reach much smaller KL for the same
CPU training budget (in 2-D, random ``H``: mean KL 1.37 nats with shared tokens after
5000 steps).

Output: Gaussian sites, then residuals. Each data point ``i`` emits, in each component's
whitened frame ``u = L_k^{-1}(z - mu_k)``, a Gaussian *site*, in one of two forms:

* natural parameters (``site_inputs=0``): ``exp(c_i + h_i^T u - |G_i^T u|^2 / 2)``
  (``G_i`` is ``d x d``); each site entry is ``exp(a^T f_i) (b^T f_i + beta)`` for the
  point's features ``f_i`` (log-magnitudes and directions, so a magnitude of any size is
  reached with weights of order one) plus an MLP of its embedded token and the
  component's final token. The sites multiply the component's ``N(0, I)`` prior in closed
  form: precision ``Lambda = I + sum_i G_i G_i^T``, mean ``m = Lambda^{-1} sum_i h_i``,
  and log evidence ``sum_i c_i + h^T m / 2 - log det Lambda / 2``.
* pseudo-observations (``site_inputs > 0``, the linear-Gaussian networks):
  ``exp(c_i - |t_i - B_i u|^2 / 2)``, a Gaussian pseudo-observation ``t_i`` of ``B_i u``
  (``B_i`` is ``site_rank x d``: the linear-Gaussian networks have one token per scalar
  observation and ``site_rank = 1``, so any number of rows of ``H`` is served).
  On top of the two read-outs above, ``(B_i, t_i, c_i)`` get a linear read-out of the
  task's *raw site inputs* (the last ``site_inputs`` data features, which only this
  read-out sees). Precision ``Lambda = I + sum_i B_i^T B_i``, mean
  ``m = Lambda^{-1} sum_i B_i^T t_i`` and log evidence ``sum_i (c_i - |t_i - B_i m|^2 / 2)
  - |m|^2 / 2 - log det Lambda / 2``, evaluated at ``m`` so that no large terms cancel.
  Why: a narrow posterior (20 observations at noise 0.2 with a wide prior has whitened
  standard deviations ~0.01) needs the site's precision and linear term to agree to
  ~0.1%; products of learned exponentials of log-magnitudes did not get there (the
  shipped 2-D network before this head: mean KL 0.17 nats after 987 CPU-s of training,
  almost all of it in the components' means), whereas a linear map of raw inputs (a
  regression on the raw inputs, learned in a few hundred steps) does (mean KL 0.02 after
  96 CPU-s). That read-out's output is multiplied by a fixed gain of 20 (its weights of
  order 1/20 are reached 20 times sooner by Adam's steps). The shipped networks were
  trained with a penalty on the residuals below (``residual_decay`` of ``train``), which
  keeps the head from widening sites that are too sharp (a bias that compounds over
  sequential steps).

This is the conjugate update of a Gaussian likelihood (learned, per data point, like
expectation propagation's sites), so the exact posterior of the linear-Gaussian tasks
lies in the model class; non-conjugate likelihoods (logistic regression) get learned
site approximations. A final layer norm and a linear head on the component tokens then
give per-component residuals

    log w'_k = log_softmax(log w_k + log evidence_k + a_k),
    mu'_k = mu_k + L_k (m_k + P_k b_k),
    L'_k = L_k P_k T_k,  T_k lower triangular with diagonal exp(c_k) and off-diagonal e_k,

with ``P_k`` the Cholesky factor of ``Lambda^{-1}``, so ``L'_k`` is again a Cholesky
factor. The head's weight and bias and the site read-outs of ``h`` and ``c`` (``t``
and ``c``) start at **zero**, and those of ``G`` (``B``) at ``1e-30`` (so that ``G G^T``
underflows to exactly zero in float32 while its gradient does not vanish): the untrained
network returns the prior exactly. A parametric prior (one Gaussian) is fed as ``K``
identical tokens with weights ``1/K`` and ``parametric=True``, which adds a learned
per-slot embedding so that the identical tokens can split into different posterior
components.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["DistributionTransformer", "component_features", "num_token_features", "site_size"]


def num_token_features(latent_dim: int) -> int:
    """Size of a component token: ``1 + d + d + d (d - 1) / 2``.

    Args:
        latent_dim: dimension ``d`` of the latent variable.

    Returns:
        The number of features per component token.

    Example:
        >>> from probkit.models.distribution_transformer._network import num_token_features
        >>> num_token_features(2)
        6
    """
    return 1 + 2 * latent_dim + latent_dim * (latent_dim - 1) // 2


def component_features(log_weights: jax.Array, means: jax.Array, cholesky: jax.Array) -> jax.Array:
    """Component tokens ``(log w, mean, log diag L, strictly-lower L)``, shape ``(K, F)``.

    Args:
        log_weights: ``(K,)`` normalised log weights (``-inf`` for padding is allowed).
        means: ``(K, d)``.
        cholesky: ``(K, d, d)`` lower Cholesky factors.

    Returns:
        The raw token features (``-inf`` log weights are replaced by 0).

    Example:
        >>> import jax.numpy as jnp
        >>> from probkit.models.distribution_transformer._network import component_features
        >>> component_features(jnp.zeros(1), jnp.zeros((1, 2)), jnp.eye(2)[None]).shape
        (1, 6)
    """
    d = means.shape[-1]
    rows, cols = jnp.tril_indices(d, -1)
    log_diag = jnp.log(jnp.diagonal(cholesky, axis1=-2, axis2=-1))
    off = cholesky[:, rows, cols]
    log_w = jnp.where(jnp.isfinite(log_weights), log_weights, 0.0)
    return jnp.concatenate([log_w[:, None], means, log_diag, off], axis=-1)


_G_INIT_SCALE = 1e-30
# The raw site read-out's output is this times its linear map: its weights of order one
# over gain are reached (by Adam's steps of size ~learning rate) gain times sooner.
_SITE_RAW_GAIN = 20.0
_MAX_LOG_SCALE = 30.0


def site_size(latent_dim: int, site_rank: int | None = None) -> int:
    """Outputs of one Gaussian site: ``G`` or ``B`` (``p x d``), ``h`` or ``t`` (``p``), ``c`` (1).

    Args:
        latent_dim: dimension ``d`` of the latent variable.
        site_rank: rows ``p`` of a site (``None``: ``d``).

    Returns:
        ``p * d + p + 1``.

    Example:
        >>> from probkit.models.distribution_transformer._network import site_size
        >>> site_size(2), site_size(2, 1)
        (7, 4)
    """
    rank = latent_dim if site_rank is None else site_rank
    return rank * latent_dim + rank + 1


def _spd_inverse_cholesky(prec: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(chol(prec^{-1}), prec^{-1}, log det prec)`` of a small SPD matrix (closed form d <= 2)."""
    d = prec.shape[-1]
    if d == 1:
        a = prec[0, 0]
        return jnp.reshape(1.0 / jnp.sqrt(a), (1, 1)), jnp.reshape(1.0 / a, (1, 1)), jnp.log(a)
    if d == 2:
        a, b, c = prec[0, 0], prec[1, 0], prec[1, 1]
        det = a * c - b * b
        inv = jnp.stack([jnp.stack([c, -b]), jnp.stack([-b, a])]) / det
        l11 = jnp.sqrt(c / det)
        chol = jnp.stack(
            [
                jnp.stack([l11, jnp.zeros_like(l11)]),
                jnp.stack([-b / (det * l11), 1.0 / jnp.sqrt(c)]),
            ]
        )
        return chol, inv, jnp.log(det)
    chol_prec = jnp.linalg.cholesky(prec)
    inv = jax.scipy.linalg.cho_solve((chol_prec, True), jnp.eye(d, dtype=prec.dtype))
    inv = 0.5 * (inv + inv.T)
    log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol_prec)))
    return jnp.linalg.cholesky(inv), inv, log_det


def _apply_pseudo_observation_sites(sites: jax.Array, data_mask: jax.Array, d: int, rank: int):
    """Multiply a ``N(0, I)`` component by pseudo-observation sites ``(N, site_size)``.

    Site ``i`` is ``exp(c_i - |t_i - B_i u|^2 / 2)`` (``B_i`` is ``rank x d``, ``t_i`` a
    ``rank``-vector). Returns the posterior mean ``m``, the Cholesky factor of its covariance
    and the log evidence ``sum_i (c_i - |t_i - B_i m|^2 / 2) - |m|^2 / 2 - log det Lambda /
    2``, evaluated at ``m`` so that no large terms cancel.
    """
    sites = jnp.where(data_mask[:, None], sites, 0.0)
    b = sites[:, : rank * d].reshape(-1, rank, d)
    t = sites[:, rank * d : rank * d + rank]
    c = jnp.sum(sites[:, -1])
    prec = jnp.eye(d, dtype=sites.dtype) + jnp.einsum("nji,njk->ik", b, b)
    h = jnp.einsum("nji,nj->i", b, t)
    chol_cov, cov, log_det_prec = _spd_inverse_cholesky(prec)
    mean = cov @ h
    resid = t - jnp.einsum("nij,j->ni", b, mean)
    log_evidence = c - 0.5 * jnp.sum(resid * resid) - 0.5 * jnp.dot(mean, mean) - 0.5 * log_det_prec
    return mean, chol_cov, log_evidence


def _apply_sites(sites: jax.Array, data_mask: jax.Array, d: int, rank: int):
    """Multiply a ``N(0, I)`` component by its data points' Gaussian sites ``(N, site_size)``.

    Returns the posterior mean ``m``, the Cholesky factor ``P`` of its covariance and the
    log evidence (up to a constant shared by all components).
    """
    sites = jnp.where(data_mask[:, None], sites, 0.0)
    g = sites[:, : d * d].reshape(-1, d, d)
    h = jnp.sum(sites[:, d * d : d * d + d], axis=0)
    c = jnp.sum(sites[:, -1])
    prec = jnp.eye(d, dtype=sites.dtype) + jnp.einsum("nij,nkj->ik", g, g)
    chol_cov, cov, log_det_prec = _spd_inverse_cholesky(prec)
    mean = cov @ h
    log_evidence = c + 0.5 * jnp.dot(h, mean) - 0.5 * log_det_prec
    return mean, chol_cov, log_evidence


class _Block(eqx.Module):
    self_norm: eqx.nn.LayerNorm
    self_attention: eqx.nn.MultiheadAttention
    cross_norm: eqx.nn.LayerNorm
    cross_attention: eqx.nn.MultiheadAttention
    mlp_norm: eqx.nn.LayerNorm
    mlp: eqx.nn.MLP

    def __init__(self, width: int, num_heads: int, *, key: jax.Array):
        k1, k2, k3 = jax.random.split(key, 3)
        self.self_norm = eqx.nn.LayerNorm(width)
        self.self_attention = eqx.nn.MultiheadAttention(num_heads, width, key=k1)
        self.cross_norm = eqx.nn.LayerNorm(width)
        self.cross_attention = eqx.nn.MultiheadAttention(num_heads, width, key=k2)
        self.mlp_norm = eqx.nn.LayerNorm(width)
        self.mlp = eqx.nn.MLP(width, width, 2 * width, 1, activation=jax.nn.gelu, key=k3)

    def __call__(self, tokens, data, self_mask, cross_mask):
        x = jax.vmap(self.self_norm)(tokens)
        tokens = tokens + self.self_attention(x, x, x, mask=self_mask)
        x = jax.vmap(self.cross_norm)(tokens)

        # Each component attends to the data tokens expressed in its own frame.
        def cross(query, keys):
            return self.cross_attention(query[None], keys, keys, mask=cross_mask[None])[0]

        tokens = tokens + jax.vmap(cross)(x, data)
        x = jax.vmap(self.mlp_norm)(tokens)
        return tokens + jax.vmap(self.mlp)(x)


class DistributionTransformer(eqx.Module):
    """Maps a (padded) GMM prior and a (padded) data set to a GMM posterior.

    Attributes:
        latent_dim: dimension ``d`` of the latent variable.
        data_feature_dim: number of features per data token.
        max_components: number of learned slot embeddings (the largest ``K``).
        width: token width.
        depth: number of self/cross-attention layers.
        num_heads: attention heads.
        sites: whether the network has the Gaussian-site head (networks saved before it
            existed load with ``sites=False``).
        site_inputs: number of trailing data features that are raw site inputs (see
            ``site_inputs`` of ``__init__``); 0 for the natural-parameter site head.
        site_rank: rows ``p`` of each pseudo-observation site ``B_i`` (``p x d``); ``d``
            for the natural-parameter site head.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probkit.models.distribution_transformer import DistributionTransformer
        >>> net = DistributionTransformer(1, 3, key=jax.random.key(0), width=16, depth=1)
        >>> log_w, means, chol = net(jnp.log(jnp.array([0.5, 0.5])), jnp.array([[0.0], [1.0]]),
        ...                          jnp.ones((2, 1, 1)), jnp.ones(2, bool),
        ...                          jnp.zeros((2, 4, 3)), jnp.ones(4, bool))
        >>> means.shape
        (2, 1)
    """

    latent_dim: int = eqx.field(static=True)
    data_feature_dim: int = eqx.field(static=True)
    max_components: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    num_heads: int = eqx.field(static=True)
    sites: bool = eqx.field(static=True)
    site_inputs: int = eqx.field(static=True)
    site_rank: int = eqx.field(static=True)
    component_embedding: eqx.nn.MLP
    data_embedding: eqx.nn.MLP
    null_data_token: jax.Array
    slot_embedding: jax.Array
    blocks: list
    out_norm: eqx.nn.LayerNorm
    head: eqx.nn.Linear
    site_linear: eqx.nn.Linear | None
    site_log_scale: eqx.nn.Linear | None
    site_context: eqx.nn.Linear | None
    site_mlp: eqx.nn.MLP | None
    site_raw: eqx.nn.Linear | None

    def __init__(
        self,
        latent_dim: int,
        data_feature_dim: int,
        *,
        key: jax.Array,
        max_components: int = 4,
        width: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        sites: bool = True,
        site_inputs: int = 0,
        site_rank: int | None = None,
    ):
        for name, value in (
            ("latent_dim", latent_dim),
            ("data_feature_dim", data_feature_dim),
            ("max_components", max_components),
            ("width", width),
            ("depth", depth),
            ("num_heads", num_heads),
        ):
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if not isinstance(site_inputs, int | np.integer) or not 0 <= site_inputs < data_feature_dim:
            raise ValueError(
                f"site_inputs must be an int in [0, data_feature_dim) = [0, {data_feature_dim}), "
                f"got {site_inputs!r}."
            )
        if site_inputs and not sites:
            raise ValueError("site_inputs > 0 needs the site head (sites=True).")
        if site_rank is None:
            site_rank = latent_dim
        if not isinstance(site_rank, int | np.integer) or not 1 <= site_rank <= latent_dim:
            raise ValueError(
                f"site_rank must be an int in [1, latent_dim] = [1, {latent_dim}], got "
                f"{site_rank!r}."
            )
        if site_rank != latent_dim and not site_inputs:
            raise ValueError(
                "site_rank < latent_dim needs the pseudo-observation site head (site_inputs > 0)."
            )
        if width % num_heads:
            raise ValueError(f"width ({width}) must be divisible by num_heads ({num_heads}).")
        self.latent_dim = latent_dim
        self.data_feature_dim = data_feature_dim
        self.max_components = max_components
        self.width = width
        self.depth = depth
        self.num_heads = num_heads
        self.sites = bool(sites)
        self.site_inputs = site_inputs
        self.site_rank = int(site_rank)
        embed_dim = data_feature_dim - site_inputs
        keys = jax.random.split(key, depth + 8)
        token_size = num_token_features(latent_dim)
        self.component_embedding = eqx.nn.MLP(
            token_size, width, width, 2, activation=jax.nn.gelu, key=keys[0]
        )
        self.data_embedding = eqx.nn.MLP(
            embed_dim, width, width, 2, activation=jax.nn.gelu, key=keys[1]
        )
        self.null_data_token = 0.02 * jax.random.normal(keys[2], (width,))
        self.slot_embedding = 0.02 * jax.random.normal(keys[3], (max_components, width))
        self.blocks = [_Block(width, num_heads, key=k) for k in keys[8:]]
        self.out_norm = eqx.nn.LayerNorm(width)
        head = eqx.nn.Linear(width, token_size, key=keys[0])
        # Zero residual head: the untrained network returns the prior exactly.
        self.head = eqx.tree_at(
            lambda lin: (lin.weight, lin.bias),
            head,
            (jnp.zeros_like(head.weight), jnp.zeros_like(head.bias)),
        )
        if not sites:
            self.site_linear = self.site_log_scale = self.site_context = self.site_mlp = None
            self.site_raw = None
            return
        # Sites: the G rows start at 1e-30 (G G^T underflows to 0, its gradient does not),
        # the h and c rows at zero, so the untrained network returns the prior exactly.
        num_site = site_size(latent_dim, self.site_rank)
        num_g = self.site_rank * latent_dim
        linear = eqx.nn.Linear(embed_dim, num_site, key=keys[4])
        row_scale = jnp.concatenate(
            [jnp.full((num_g,), _G_INIT_SCALE), jnp.zeros(num_site - num_g)]
        )
        self.site_linear = eqx.tree_at(
            lambda lin: (lin.weight, lin.bias),
            linear,
            (linear.weight * row_scale[:, None], jnp.zeros_like(linear.bias)),
        )
        log_scale = eqx.nn.Linear(embed_dim, num_site, key=keys[7])
        self.site_log_scale = eqx.tree_at(
            lambda lin: (lin.weight, lin.bias),
            log_scale,
            (jnp.zeros_like(log_scale.weight), jnp.zeros_like(log_scale.bias)),
        )
        self.site_context = eqx.nn.Linear(width, width, key=keys[5])
        mlp = eqx.nn.MLP(width, num_site, width, 1, activation=jax.nn.gelu, key=keys[6])
        last = mlp.layers[-1]
        self.site_mlp = eqx.tree_at(
            lambda m: (m.layers[-1].weight, m.layers[-1].bias),
            mlp,
            (last.weight * row_scale[:, None], jnp.zeros_like(last.bias)),
        )
        if not site_inputs:
            self.site_raw = None
            return
        # Pseudo-observation sites read linearly off the raw site inputs (same start).
        raw = eqx.nn.Linear(site_inputs, num_site, key=jax.random.fold_in(key, 1))
        self.site_raw = eqx.tree_at(
            lambda lin: (lin.weight, lin.bias),
            raw,
            (raw.weight * row_scale[:, None], jnp.zeros_like(raw.bias)),
        )

    def __call__(
        self,
        log_weights: jax.Array,
        means: jax.Array,
        cholesky: jax.Array,
        component_mask: jax.Array,
        data_features: jax.Array,
        data_mask: jax.Array,
        parametric: bool | jax.Array = False,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Posterior ``(log_weights, means, cholesky)`` for one padded query.

        Args:
            log_weights: ``(K,)`` prior log weights (padded entries are ignored).
            means: ``(K, d)`` prior means.
            cholesky: ``(K, d, d)`` prior Cholesky factors (padding: identity).
            component_mask: ``(K,)`` booleans, True for real components (at least one).
            data_features: ``(K, N, F)`` data tokens, in each component's frame (a
                featurisation that ignores the component gives the paper's shared tokens).
            data_mask: ``(N,)`` booleans, True for real data points.
            parametric: True when the tokens are copies of one parametric prior
                (adds the learned slot embeddings).

        Returns:
            Normalised posterior log weights ``(K,)`` (``-inf`` on padding), means
            ``(K, d)`` and Cholesky factors ``(K, d, d)``.
        """
        return self.with_residuals(
            log_weights, means, cholesky, component_mask, data_features, data_mask, parametric
        )[:3]

    def with_residuals(
        self,
        log_weights: jax.Array,
        means: jax.Array,
        cholesky: jax.Array,
        component_mask: jax.Array,
        data_features: jax.Array,
        data_mask: jax.Array,
        parametric: bool | jax.Array = False,
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """As ``__call__``, plus the residual head's outputs (zero on padded components).

        The residuals ``(a_k, b_k, log diag T_k, off-diagonal T_k)`` are what the network
        adds after its Gaussian sites (see the module docstring); training may penalise
        them (``residual_decay`` of ``train``).

        Args:
            log_weights: ``(K,)`` prior log weights (padded entries are ignored).
            means: ``(K, d)`` prior means.
            cholesky: ``(K, d, d)`` prior Cholesky factors (padding: identity).
            component_mask: ``(K,)`` booleans, True for real components (at least one).
            data_features: ``(K, N, F)`` data tokens, in each component's frame (a
                featurisation that ignores the component gives the paper's shared tokens).
            data_mask: ``(N,)`` booleans, True for real data points.
            parametric: True when the tokens are copies of one parametric prior
                (adds the learned slot embeddings).

        Returns:
            Normalised posterior log weights ``(K,)``, means ``(K, d)``, Cholesky factors
            ``(K, d, d)`` and residuals ``(K, num_token_features(d))``.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> from probkit.models.distribution_transformer import DistributionTransformer
            >>> net = DistributionTransformer(1, 3, key=jax.random.key(0), width=16, depth=1)
            >>> out = net.with_residuals(jnp.zeros(1), jnp.zeros((1, 1)), jnp.ones((1, 1, 1)),
            ...                          jnp.ones(1, bool), jnp.zeros((1, 4, 3)), jnp.ones(4, bool))
            >>> float(jnp.abs(out[3]).max())  # the untrained head outputs zero
            0.0
        """
        d = self.latent_dim
        num_components = log_weights.shape[0]
        features = component_features(log_weights, means, cholesky)
        features = jnp.where(component_mask[:, None], features, 0.0)
        tokens = jax.vmap(self.component_embedding)(features)
        tokens = (
            tokens + jnp.asarray(parametric, tokens.dtype) * self.slot_embedding[:num_components]
        )
        raw_site_inputs = data_features[..., data_features.shape[-1] - self.site_inputs :]
        data_features = data_features[..., : data_features.shape[-1] - self.site_inputs]
        embedded = jax.vmap(jax.vmap(self.data_embedding))(data_features)  # (K, N, width)
        null = jnp.broadcast_to(self.null_data_token, (num_components, 1, self.width))
        data = jnp.concatenate([null, embedded], axis=1)
        cross_mask = jnp.concatenate([jnp.ones((1,), bool), data_mask])
        self_mask = jnp.broadcast_to(component_mask[None, :], (num_components, num_components))
        for block in self.blocks:
            tokens = block(tokens, data, self_mask, cross_mask)
        tokens = jax.vmap(self.out_norm)(tokens)
        delta = jax.vmap(self.head)(tokens)

        if self.sites:
            # Gaussian sites of every data point in every component's whitened frame.
            context = jax.vmap(self.site_context)(tokens)  # (K, width)
            site_scale_log = jnp.clip(
                jax.vmap(jax.vmap(self.site_log_scale))(data_features),
                -_MAX_LOG_SCALE,
                _MAX_LOG_SCALE,
            )
            linear = jax.vmap(jax.vmap(self.site_linear))(data_features)
            nonlinear = jax.vmap(jax.vmap(self.site_mlp))(embedded + context[:, None, :])
            sites = jnp.exp(site_scale_log) * linear + nonlinear
            if self.site_inputs:
                raw = jax.vmap(jax.vmap(self.site_raw))(raw_site_inputs)
                sites = sites + _SITE_RAW_GAIN * raw
                apply = _apply_pseudo_observation_sites
            else:
                apply = _apply_sites
            rank = self.site_rank
            site_mean, site_chol, log_evidence = jax.vmap(lambda s: apply(s, data_mask, d, rank))(
                sites
            )
            # The sites' posterior becomes the frame of the residuals below.
            means = means + jnp.einsum("kij,kj->ki", cholesky, site_mean)
            cholesky = jnp.einsum("kij,kjl->kil", cholesky, site_chol)
            log_weights = log_weights + log_evidence

        shift_w = delta[:, 0]
        shift_mean = delta[:, 1 : 1 + d]
        log_scale = delta[:, 1 + d : 1 + 2 * d]
        off = delta[:, 1 + 2 * d :]
        rows, cols = jnp.tril_indices(d, -1)
        transform = jnp.zeros((num_components, d, d), delta.dtype)
        transform = transform.at[:, jnp.arange(d), jnp.arange(d)].set(jnp.exp(log_scale))
        transform = transform.at[:, rows, cols].set(off)

        new_log_w = jnp.where(component_mask, log_weights + shift_w, -jnp.inf)
        new_log_w = jax.nn.log_softmax(new_log_w)
        new_means = means + jnp.einsum("kij,kj->ki", cholesky, shift_mean)
        new_chol = jnp.einsum("kij,kjl->kil", cholesky, transform)
        residuals = jnp.where(component_mask[:, None], delta, 0.0)
        return new_log_w, new_means, new_chol, residuals
