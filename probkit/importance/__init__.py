"""Importance sampling: IS, self-normalised IS, PSIS, adaptive IS with control variates
for several expectations at once, and Sobol' sensitivity indices.

- Estimators on pytrees (pure, keyed, jit/vmap-able): :func:`importance_sample`,
  :func:`importance_expectation`, :func:`self_normalised_expectation`,
  :func:`log_evidence`, :func:`effective_sample_size`, :func:`psis`,
  :func:`psis_expectation` (warns in words when Pareto ``k-hat > 0.7``).
- :func:`multiple_expectations`: the adaptive importance sampling with control
  variates of Demange-Chryst, Bachoc & Morio (arXiv:2212.00568); its pure steps
  are :func:`iscv_init`, :func:`iscv_propose`, :func:`iscv_update`, :func:`iscv_terms`.
- :func:`sobol_indices`: first-order, total and second-order Sobol' indices by
  pick-freeze, Saltelli's quasi-random design, or the adaptive IS + CV.
"""

from probkit.importance._cross_entropy import GaussianMixture, sample_mixture
from probkit.importance._estimators import (
    Estimate,
    ImportanceSamples,
    effective_sample_size,
    importance_expectation,
    importance_sample,
    log_evidence,
    normalised_weights,
    self_normalised_expectation,
)
from probkit.importance._estimators import (
    self_normalized_expectation as self_normalized_expectation,  # deprecated spelling
)
from probkit.importance._iscv import (
    ISCVInfo,
    ISCVState,
    iscv_init,
    iscv_propose,
    iscv_terms,
    iscv_update,
)
from probkit.importance._multiple_expectations import (
    AdaptationHistory,
    MultipleExpectationsResult,
    multiple_expectations,
)
from probkit.importance._psis import (
    PSISEstimate,
    PSISResult,
    psis,
    psis_expectation,
)
from probkit.importance._sobol import SobolResult, sobol_indices, sobol_integrands

__all__ = [
    # estimators
    "ImportanceSamples",
    "Estimate",
    "importance_sample",
    "normalised_weights",
    "log_evidence",
    "effective_sample_size",
    "importance_expectation",
    "self_normalised_expectation",
    "PSISResult",
    "PSISEstimate",
    "psis",
    "psis_expectation",
    # adaptive IS with control variates
    "multiple_expectations",
    "MultipleExpectationsResult",
    "AdaptationHistory",
    "ISCVState",
    "ISCVInfo",
    "iscv_init",
    "iscv_propose",
    "iscv_update",
    "iscv_terms",
    "GaussianMixture",
    "sample_mixture",
    # sensitivity analysis
    "sobol_indices",
    "sobol_integrands",
    "SobolResult",
]
