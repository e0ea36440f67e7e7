"""The working space of the adaptive importance sampler.

Gaussian cross-entropy densities need an unbounded space. The sampler therefore
works on ``z`` in ``R^d`` and maps it to the inputs by a bijection ``x = T(z)``
chosen once from the *reference law* (the first input law):

- ``"identity"``: every law already lives on ``R^d`` (Normal, MultivariateNormal,
  StudentT, ...): ``T`` is the identity.
- ``"gaussian"``: the reference law has independent coordinates with ``cdf`` and
  ``icdf`` (Uniform, Exponential, LogNormal, Normal, ...): ``T`` is the
  iso-probabilistic (Rosenblatt) transform ``x_i = F_i^{-1}(Phi(z_i))``, under
  which the reference law *is* the standard Gaussian ``N(0, I)``. Other laws have
  density ``f_j(T(z)) / f_ref(T(z)) * N(z; 0, I)`` there.
- ``"unconstrained"``: otherwise, NumPyro's ``biject_to(support)`` (log, logit,
  ...), with the log-Jacobian added to every density.

Densities are always handled as logarithms, in the working space; the
expectations do not change (``E_f[phi(X)] = E_{f_z}[phi(T(Z))]``).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import Array
from jax.scipy.special import ndtr, ndtri
from jax.scipy.stats import norm

from probkit._checks import check_key
from probkit.importance._laws import FlatLaw, ProductLaw

__all__ = ["WorkingSpace", "TRANSFORMS", "space_to_input", "space_log_densities", "space_sample"]

TRANSFORMS = ("auto", "identity", "gaussian", "unconstrained")


def _clip_unit(u: Array) -> Array:
    # float32 Phi(z) rounds to 1 beyond z ~ 5.4: keep quantiles finite.
    eps = jnp.finfo(u.dtype).eps
    return jnp.clip(u, jnp.finfo(u.dtype).tiny, 1.0 - eps / 2)


@jax.tree_util.register_pytree_node_class
class WorkingSpace:
    """Maps ``z`` in ``R^d`` to the inputs of one or several laws on the same space.

    A pytree (its leaves are the laws' parameters), so jitted functions take it as an
    argument and compile once per kind of law.

    Args:
        laws: the input laws (flat), one per law; the first is the reference.
        transform: ``"auto"`` (the first of identity / gaussian / unconstrained that
            applies), or one of them by name.
    """

    def __init__(self, laws: Sequence[FlatLaw | ProductLaw], transform: str = "auto"):
        if transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}.")
        self._setup(list(laws), "identity")
        ref = self.reference
        for i, law in enumerate(self.laws[1:], start=1):
            if law.dim != ref.dim:
                raise ValueError(
                    f"input_dist[{i}] has dimension {law.dim} but input_dist[0] has {ref.dim}; "
                    "all input laws must live on the same space."
                )
        if transform == "auto":
            if ref.is_real:
                transform = "identity"
            elif ref.has_quantiles:
                transform = "gaussian"
            else:
                transform = "unconstrained"
        if transform == "identity" and not all(law.is_real for law in self.laws):
            raise ValueError(
                "transform='identity' needs laws supported on all of R^d; use transform='auto'."
            )
        if transform == "gaussian" and not ref.has_quantiles:
            raise ValueError(
                "transform='gaussian' needs a reference law (input_dist[0]) with independent "
                "coordinates whose NumPyro marginals implement cdf and icdf; use "
                "transform='unconstrained'."
            )
        if transform == "unconstrained":
            if ref.unconstrain_transform() is None:
                raise ValueError(
                    "the support of input_dist has no shape-preserving bijection from R^d "
                    "(e.g. a simplex); reparametrise the inputs."
                )
        self.transform = transform
        if self.num_laws > 1 and transform != "identity":
            self._check_round_trip()

    def _setup(self, laws: list, transform: str) -> None:
        self.laws = laws
        self.reference = laws[0]
        self.dim = laws[0].dim
        self.transform = transform

    def tree_flatten(self):
        return (self.laws,), self.transform

    @classmethod
    def tree_unflatten(cls, transform, children):
        space = cls.__new__(cls)
        space._setup(list(children[0]), transform)
        return space

    @property
    def _unconstrain(self):
        return self.reference.unconstrain_transform() if self.transform == "unconstrained" else None

    def _check_round_trip(self, num_samples: int = 256) -> None:
        """Every law must live inside the reference law's support, or ``T`` cannot reach it."""
        for index in range(1, self.num_laws):
            x = self.laws[index].sample(jax.random.key(index), num_samples)
            back = self.to_flat_input(self._from_flat_input(x))
            scale = jnp.maximum(jnp.abs(x), 1.0)
            if not bool(jnp.all(jnp.abs(back - x) <= 1e-3 * scale)):
                raise ValueError(
                    f"input_dist[{index}] puts mass outside the support of input_dist[0], "
                    f"which fixes the working-space transform ({self.transform!r}); put the law "
                    "with the widest support first."
                )

    @property
    def num_laws(self) -> int:
        return len(self.laws)

    # -- z -> x ----------------------------------------------------------------------------------
    def to_flat_input(self, z: Array) -> Array:
        """Flat inputs ``x = T(z)``, shape ``(n, d)``."""
        if self.transform == "identity":
            return z
        if self.transform == "gaussian":
            return self.reference.marginal_icdf(_clip_unit(ndtr(z)))
        return self.reference.apply_transform(self._unconstrain, z)[0]

    def to_input(self, z: Array) -> Array:
        """Inputs as the user's function receives them."""
        return self.reference.to_input(self.to_flat_input(z))

    # -- densities in z space ---------------------------------------------------------------------
    def log_densities(self, z: Array) -> Array:
        """``log f_l(z)`` of every law in the working space, shape ``(n, num_laws)``."""
        if self.transform == "identity":
            cols = [law.log_prob(z) for law in self.laws]
        elif self.transform == "gaussian":
            log_std = norm.logpdf(z).sum(-1)
            if self.num_laws == 1:
                cols = [log_std]
            else:
                x = self.to_flat_input(z)
                log_ref = self.reference.marginal_log_prob(x).sum(-1)
                cols = [log_std] + [law.log_prob(x) - log_ref + log_std for law in self.laws[1:]]
        else:
            x, logdet = self.reference.apply_transform(self._unconstrain, z)
            cols = [law.log_prob(x) + logdet for law in self.laws]
        return jnp.stack(cols, axis=-1)

    def log_initial_density(self, z: Array) -> Array:
        """Log density of the equal mixture of the laws (the first proposal), shape ``(n,)``."""
        logs = self.log_densities(z)
        return jax.nn.logsumexp(logs, axis=-1) - jnp.log(self.num_laws)

    # -- sampling --------------------------------------------------------------------------------
    def _from_flat_input(self, x: Array) -> Array:
        if self.transform == "identity":
            return x
        if self.transform == "gaussian":
            return ndtri(_clip_unit(self.reference.marginal_cdf(x)))
        zs = self.reference.to_input(x)
        if isinstance(self._unconstrain, list):
            return jnp.concatenate(
                [
                    jnp.reshape(t.inv(xi), xi.shape)
                    for t, xi in zip(self._unconstrain, self.reference._split(x), strict=True)
                ],
                -1,
            )
        return jnp.reshape(self._unconstrain.inv(zs), x.shape)

    def sample_law(self, key: Array, index: int, num_samples: int) -> Array:
        """``num_samples`` points of law ``index``, in the working space."""
        check_key(key)
        if self.transform == "gaussian" and index == 0:
            return jax.random.normal(key, (num_samples, self.dim))
        return self._from_flat_input(self.laws[index].sample(key, num_samples))

    def sample_initial(self, key: Array, num_samples: int) -> Array:
        """Points of the equal mixture of the laws (multinomial counts per law)."""
        check_key(key)
        if self.num_laws == 1:
            return self.sample_law(key, 0, num_samples)
        key_counts, key_draws = jax.random.split(key)
        which = jax.random.randint(key_counts, (num_samples,), 0, self.num_laws)
        keys = jax.random.split(key_draws, self.num_laws)
        draws = jnp.stack([self.sample_law(k, i, num_samples) for i, k in enumerate(keys)])
        return draws[which, jnp.arange(num_samples)]


# Compiled entry points for the drivers: the space is a pytree argument, so each kind of
# law compiles once per shape, instead of dispatching its many small operations eagerly.
@jax.jit
def space_to_input(space: WorkingSpace, z: Array) -> Array:
    """``T(z)`` shaped for the user's function."""
    return space.to_input(z)


@jax.jit
def space_log_densities(space: WorkingSpace, z: Array) -> tuple[Array, Array]:
    """``(log f_l(z) for every law, log q_0(z))``, shapes ``(n, L)`` and ``(n,)``."""
    logs = space.log_densities(z)
    return logs, jax.nn.logsumexp(logs, axis=-1) - jnp.log(space.num_laws)


@jax.jit(static_argnames="num_samples")
def space_sample(space: WorkingSpace, key: Array, num_samples: int) -> Array:
    """Points of the first proposal (the equal mixture of the laws), working space."""
    check_key(key)
    return space.sample_initial(key, num_samples)
