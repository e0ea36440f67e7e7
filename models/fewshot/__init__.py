"""A hierarchical normal-inverse-Wishart (NIW) model for few-shot learning on fixed features
(after Kim & Hospedales, 2023).

Every class ``c`` of every episode ``e`` has its own prototype and covariance,
``(mu_ec, Sigma_ec) ~ NIW(global)``, and its features are ``Normal(mu_ec, Sigma_ec)``.
Conjugacy makes everything an episode needs closed-form:

* episode posteriors (:func:`episode_posteriors`, vectorised over episodes with
  ``jax.vmap``) and their Student-t predictives (:func:`predict_proba`);
* the evidence of an episode (:func:`episode_log_evidence`), so the global NIW is learned
  over very many episodes by one optax optimisation that visits each episode once per
  pass and stores nothing per episode (:func:`fit_global`);
* the prototype baseline (:func:`prototype_log_proba`) and calibration
  (:func:`expected_calibration_error`); synthetic episodes from a known NIW
  (:func:`sample_episodes`); the same model in NumPyro (:func:`episode_model`).

Example:
    >>> import jax, jax.numpy as jnp
    >>> import probkit.models.fewshot as fs
    >>> truth = fs.NIW(jnp.zeros(2), jnp.array(0.3), jnp.eye(2), jnp.array(6.0))
    >>> train = fs.sample_episodes(jax.random.key(0), truth, 100)
    >>> prior = fs.fit_global(jax.random.key(1), train, num_steps=200).prior
    >>> test = fs.sample_episodes(jax.random.key(2), truth, 10)
    >>> fs.predict_proba(prior, test.support, test.query_x).shape
    (10, 75, 5)
"""

from ._episodes import Episodes, check_episodes, sample_episodes
from ._learn import (
    GlobalFit,
    episode_log_evidence,
    fit_global,
    group_statistics,
    niw_from_unconstrained,
    niw_to_unconstrained,
)
from ._model import episode_model
from ._niw import (
    NIW,
    check_niw,
    niw_log_marginal_likelihood,
    niw_posterior,
    niw_predictive,
    niw_predictive_log_prob,
    sufficient_statistics,
)
from ._predict import (
    episode_posteriors,
    expected_calibration_error,
    predict_log_proba,
    predict_proba,
    prototype_log_proba,
)

__all__ = [
    "NIW",
    "check_niw",
    "sufficient_statistics",
    "niw_posterior",
    "niw_log_marginal_likelihood",
    "niw_predictive",
    "niw_predictive_log_prob",
    "Episodes",
    "check_episodes",
    "sample_episodes",
    "episode_posteriors",
    "predict_log_proba",
    "predict_proba",
    "prototype_log_proba",
    "expected_calibration_error",
    "GlobalFit",
    "fit_global",
    "episode_log_evidence",
    "group_statistics",
    "niw_to_unconstrained",
    "niw_from_unconstrained",
    "episode_model",
]
