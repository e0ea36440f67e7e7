"""probkit: probabilistic programming and sampling on JAX."""

from probkit.target import Target, from_numpyro

__version__ = "0.1.0"

__all__ = ["Target", "from_numpyro", "__version__"]
