"""PV-RNN: the predictive-coding-inspired variational RNN (Ahmadi and Tani, 2019).

* :class:`PVRNN`: MTRNN layers (deterministic units with time constants) and stochastic
  latents whose prior ``p(z_t | d_{t-1})`` is computed by the network and whose
  posterior is held in per-sequence *adaptive variables* (:class:`AdaptiveVariables`).
* :func:`train`: the ELBO with the KL term weighted by the meta-prior ``w``, weights and
  adaptive variables learned together with optax.
* :func:`error_regression`: online recognition and prediction -- the adaptive variables
  of a sliding window of recent observations are optimised, then the prior predicts.
* :func:`switching_noise_sine`: sequences whose noise level switches with the phase,
  the ground truth for the learned latent noise.

Example:
    >>> import jax
    >>> import probkit.models.pvrnn as pvrnn
    >>> data = pvrnn.switching_noise_sine(jax.random.key(0), 4, 40)
    >>> net = pvrnn.PVRNN(jax.random.key(1), 1)
    >>> result = pvrnn.fit(jax.random.key(2), net, data.observations, num_steps=20)
    >>> result.adaptive.mean.shape
    (4, 40, 2)
"""

from ._data import NoisySequences, switching_noise_sine
from ._error_regression import RecognitionResult, error_regression
from ._model import (
    PVRNN,
    AdaptiveVariables,
    Rollout,
    generate,
    init_adaptive,
    initial_state,
    rollout,
    sequence_loss,
)
from ._training import FitResult, fit
from ._training import TrainResult as TrainResult  # the old names, kept for a while
from ._training import train as train

__all__ = [
    "PVRNN",
    "AdaptiveVariables",
    "Rollout",
    "init_adaptive",
    "initial_state",
    "rollout",
    "generate",
    "sequence_loss",
    "FitResult",
    "fit",
    "error_regression",
    "RecognitionResult",
    "switching_noise_sine",
    "NoisySequences",
]
