"""Score-based diffusion models: an equinox score network, DSM training, 2-D toys.

Train a :class:`ScoreNetwork` with :func:`fit` (denoising score matching with optax),
turn it into a score function with :func:`score_fn`, and hand that to the samplers of
:mod:`probkit.sde` or the Feynman-Kac correctors of :mod:`probkit.fkc`.

Example:
    >>> import jax
    >>> import probkit.models.diffusion as diffusion
    >>> from probkit.sde import VPSDE
    >>> data = diffusion.checkerboard(jax.random.key(0), 512)
    >>> net = diffusion.ScoreNetwork((2,), key=jax.random.key(1), width=16, depth=1)
    >>> trained = diffusion.fit(net, VPSDE(), data, num_steps=20).model
    >>> diffusion.score_fn(trained, VPSDE())(data[0], 0.5).shape
    (2,)
"""

from ._io import load, load_pretrained, save
from ._network import ScoreNetwork, score_fn
from ._toy import checkerboard, in_checkerboard, rings
from ._training import FitResult, dsm_loss, fit, train_step

__all__ = [
    "ScoreNetwork",
    "score_fn",
    "dsm_loss",
    "train_step",
    "fit",
    "FitResult",
    "save",
    "load",
    "load_pretrained",
    "checkerboard",
    "in_checkerboard",
    "rings",
]
