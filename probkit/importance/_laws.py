"""Input laws seen as flat vectors.

The adaptive importance sampler and the Sobol' estimators work on batches of
flat points, shape ``(n, d)``. :class:`FlatLaw` wraps one NumPyro distribution
so that it samples and scores such batches, and hands the user's function the
shape it expects (``(n,)`` for a scalar law, ``(n, d)`` for a vector law).
:class:`ProductLaw` glues independent flat laws side by side, which is how the
Sobol' estimators build the law of the pair ``(X, X')``.

A law has *marginals* when its coordinates are independent and each one is a
univariate NumPyro distribution (a scalar law, a law with ``batch_shape=(d,)``,
or ``Independent`` of one); only then are the Gaussian (probit) transform and
the Sobol' indices available.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax import Array
from numpyro.distributions.transforms import IdentityTransform, IndependentTransform, biject_to

from probkit._checks import check_key

__all__ = ["FlatLaw", "ProductLaw", "as_flat_law"]


def _strip_independent(transform):
    while isinstance(transform, IndependentTransform):
        transform = transform.base_transform
    return transform


@jax.tree_util.register_pytree_node_class
class FlatLaw:
    """One NumPyro distribution on flat vectors of size ``dim`` (a pytree: jit can take it).

    Args:
        distribution: a NumPyro distribution with ``batch_shape + event_shape``
            equal to ``()`` or ``(d,)``. A batch of ``d`` scalar laws is read as
            ``d`` independent coordinates.
        name: the argument name used in error messages.
    """

    def __init__(self, distribution: dist.Distribution, name: str = "input_dist"):
        if not isinstance(distribution, dist.Distribution):
            raise TypeError(
                f"{name} must be a NumPyro distribution (e.g. numpyro.distributions.Normal(0, 1)),"
                f" got {type(distribution).__name__}."
            )
        shape = tuple(distribution.batch_shape) + tuple(distribution.event_shape)
        if len(shape) > 1:
            raise ValueError(
                f"{name} has batch_shape {distribution.batch_shape} and event_shape "
                f"{distribution.event_shape}; only scalar laws and laws on vectors (d,) are "
                "supported. Flatten the input or use .to_event(1) on a batch of scalar laws."
            )
        self._setup(distribution)

    def _setup(self, distribution: dist.Distribution) -> None:
        shape = tuple(distribution.batch_shape) + tuple(distribution.event_shape)
        self.distribution = distribution
        self.dim = shape[0] if shape else 1
        self.input_shape = shape
        # Marginals: the univariate law (batched over coordinates) behind the law.
        base = distribution
        if isinstance(base, dist.Independent):
            base = base.base_dist
        self._marginal = base if tuple(base.event_shape) == () else None

    def tree_flatten(self):
        return (self.distribution,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        law = cls.__new__(cls)
        law._setup(children[0])
        return law

    # -- sampling and scoring --------------------------------------------------------------------
    def sample(self, key: Array, num_samples: int) -> Array:
        """Draws ``(num_samples, dim)`` flat points."""
        check_key(key)
        draws = self.distribution.sample(key, (num_samples,))
        return jnp.reshape(draws, (num_samples, self.dim))

    def to_input(self, x: Array) -> Array:
        """Reshapes flat points to what the user's function receives."""
        return jnp.reshape(x, (x.shape[0],) + self.input_shape)

    def log_prob(self, x: Array) -> Array:
        """Log density of flat points, shape ``(n,)``."""
        logp = self.distribution.log_prob(self.to_input(x))
        return jnp.reshape(logp, (x.shape[0], -1)).sum(-1)

    # -- marginals -------------------------------------------------------------------------------
    @property
    def has_marginals(self) -> bool:
        return self._marginal is not None

    @property
    def has_quantiles(self) -> bool:
        """Whether the marginals implement ``cdf`` and ``icdf`` (NumPyro raises otherwise)."""
        if self._marginal is None:
            return False
        try:
            probe = jnp.full(self.input_shape, 0.5)
            self._marginal.icdf(probe)
            self._marginal.cdf(self._marginal.icdf(probe))
        except (NotImplementedError, ImportError, AttributeError):
            return False
        return True

    def marginal_icdf(self, u: Array) -> Array:
        return jnp.reshape(self._marginal.icdf(self.to_input(u)), u.shape)

    def marginal_cdf(self, x: Array) -> Array:
        return jnp.reshape(self._marginal.cdf(self.to_input(x)), x.shape)

    def marginal_log_prob(self, x: Array) -> Array:
        """Per-coordinate log densities, shape ``(n, dim)``."""
        return jnp.reshape(self._marginal.log_prob(self.to_input(x)), x.shape)

    # -- unconstraining bijection ----------------------------------------------------------------
    @property
    def is_real(self) -> bool:
        return isinstance(
            _strip_independent(biject_to(self.distribution.support)), IdentityTransform
        )

    def unconstrain_transform(self):
        """The elementwise bijection R -> support, or ``None`` when there is none."""
        if self._marginal is not None:
            transform = biject_to(self._marginal.support)
        else:
            transform = _strip_independent(biject_to(self.distribution.support))
        probe = jnp.zeros(self.input_shape)
        try:
            if jnp.shape(transform(probe)) != jnp.shape(probe):
                return None
        except Exception:  # noqa: BLE001 - transforms that change shape raise in many ways
            return None
        return transform

    def apply_transform(self, transform, z: Array) -> tuple[Array, Array]:
        """``x = T(z)`` and ``log |dT/dz|`` summed over coordinates, shapes ``(n, d)``, ``(n,)``."""
        zi = self.to_input(z)
        xi = transform(zi)
        logdet = transform.log_abs_det_jacobian(zi, xi)
        logdet = (
            jnp.broadcast_to(logdet, jnp.shape(xi)) if jnp.ndim(logdet) < jnp.ndim(xi) else logdet
        )
        return jnp.reshape(xi, z.shape), jnp.reshape(logdet, (z.shape[0], -1)).sum(-1)


@jax.tree_util.register_pytree_node_class
class ProductLaw:
    """Independent flat laws side by side: ``x = (x_1, ..., x_m)`` (a pytree)."""

    def __init__(self, parts: Sequence[FlatLaw]):
        self._setup(list(parts))

    def tree_flatten(self):
        return (self.parts,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        law = cls.__new__(cls)
        law._setup(list(children[0]))
        return law

    def _setup(self, parts: list[FlatLaw]) -> None:
        self.parts = parts
        self.sizes = [p.dim for p in self.parts]
        self.dim = sum(self.sizes)
        self.input_shape = (self.dim,)
        self._splits = [int(i) for i in np.cumsum(self.sizes)[:-1]]

    def _split(self, x: Array) -> list[Array]:
        return jnp.split(x, self._splits, axis=-1)

    def sample(self, key: Array, num_samples: int) -> Array:
        check_key(key)
        keys = jax.random.split(key, len(self.parts))
        return jnp.concatenate(
            [p.sample(k, num_samples) for p, k in zip(self.parts, keys, strict=True)], -1
        )

    def to_input(self, x: Array) -> Array:
        return x

    def log_prob(self, x: Array) -> Array:
        return sum(p.log_prob(xi) for p, xi in zip(self.parts, self._split(x), strict=True))

    @property
    def has_marginals(self) -> bool:
        return all(p.has_marginals for p in self.parts)

    @property
    def has_quantiles(self) -> bool:
        return all(p.has_quantiles for p in self.parts)

    def marginal_icdf(self, u: Array) -> Array:
        return jnp.concatenate(
            [p.marginal_icdf(ui) for p, ui in zip(self.parts, self._split(u), strict=True)], -1
        )

    def marginal_cdf(self, x: Array) -> Array:
        return jnp.concatenate(
            [p.marginal_cdf(xi) for p, xi in zip(self.parts, self._split(x), strict=True)], -1
        )

    def marginal_log_prob(self, x: Array) -> Array:
        parts = zip(self.parts, self._split(x), strict=True)
        return jnp.concatenate([p.marginal_log_prob(xi) for p, xi in parts], -1)

    @property
    def is_real(self) -> bool:
        return all(p.is_real for p in self.parts)

    def unconstrain_transform(self):
        transforms = [p.unconstrain_transform() for p in self.parts]
        return None if any(t is None for t in transforms) else transforms

    def apply_transform(self, transforms, z: Array) -> tuple[Array, Array]:
        outs = [
            p.apply_transform(t, zi)
            for p, t, zi in zip(self.parts, transforms, self._split(z), strict=True)
        ]
        return jnp.concatenate([o[0] for o in outs], -1), sum(o[1] for o in outs)


def as_flat_law(input_dist, name: str = "input_dist") -> FlatLaw | ProductLaw:
    """A NumPyro distribution, or a sequence of scalar ones (independent), as a flat law."""
    if isinstance(input_dist, dist.Distribution):
        return FlatLaw(input_dist, name)
    if isinstance(input_dist, Sequence) and len(input_dist) > 0:
        parts = [FlatLaw(d, f"{name}[{i}]") for i, d in enumerate(input_dist)]
        return ProductLaw(parts)
    raise TypeError(
        f"{name} must be a NumPyro distribution or a non-empty sequence of them, "
        f"got {type(input_dist).__name__}."
    )
