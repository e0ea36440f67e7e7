"""Continual-learning metrics from an accuracy matrix."""

from __future__ import annotations

import numpy as np

__all__ = ["continual_metrics"]


def continual_metrics(accuracy, prior_accuracy=None) -> dict[str, float]:
    """Average accuracy, forgetting, backward and forward transfer.

    ``accuracy[i, j]`` is the accuracy on task ``i`` after learning tasks ``0..j``
    (``T x T``). With ``T`` tasks:

    * ``average_accuracy``: ``mean_i accuracy[i, T-1]``;
    * ``backward_transfer`` (Lopez-Paz & Ranzato, 2017):
      ``mean_{i<T-1} accuracy[i, T-1] - accuracy[i, i]`` (negative: forgetting);
    * ``forgetting`` (Chaudhry et al., 2018):
      ``mean_{i<T-1} max_{i<=j<T-1} accuracy[i, j] - accuracy[i, T-1]``;
    * ``forward_transfer``: ``mean_{i>0} accuracy[i, i-1] - prior_accuracy[i]``, the gain
      on a task before seeing it over the initial prior's accuracy (needs
      ``prior_accuracy``).

    Example:
        >>> import numpy as np
        >>> from probkit.models.continual import continual_metrics
        >>> m = continual_metrics(np.array([[0.9, 0.5], [0.0, 0.95]]), np.array([0.5, 0.0]))
        >>> [round(m[k], 3) for k in ("average_accuracy", "forgetting", "forward_transfer")]
        [0.725, 0.4, 0.0]
    """
    a = np.asarray(accuracy, float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
        raise ValueError(f"accuracy must be a square (tasks, tasks) matrix, got {a.shape}.")
    t = a.shape[0]
    out = {"average_accuracy": float(a[:, -1].mean())}
    if t > 1:
        out["backward_transfer"] = float(np.mean(a[:-1, -1] - np.diag(a)[:-1]))
        out["forgetting"] = float(np.mean([a[i, i : t - 1].max() - a[i, -1] for i in range(t - 1)]))
    else:
        out["backward_transfer"] = out["forgetting"] = float("nan")
    if prior_accuracy is not None and t > 1:
        b = np.asarray(prior_accuracy, float)
        if b.shape != (t,):
            raise ValueError(f"prior_accuracy must have shape ({t},), got {b.shape}.")
        out["forward_transfer"] = float(np.mean([a[i, i - 1] - b[i] for i in range(1, t)]))
    else:
        out["forward_transfer"] = float("nan")
    return out
