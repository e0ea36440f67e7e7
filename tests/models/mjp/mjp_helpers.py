"""Shared helpers of the MJP tests (uniquely named: no conftest)."""

import itertools

import numpy as np
import scipy.linalg


def brute_force_log_likelihood(rate_matrix, initial, times, observations, label_noise):
    """log p(y) by summing over every hidden state sequence (exact enumeration, scipy expm)."""
    q = np.asarray(rate_matrix, float)
    k = q.shape[0]
    emission = (1 - label_noise) * np.eye(k) + label_noise / (k - 1) * (1 - np.eye(k))
    total = 0.0
    for y in np.asarray(observations):
        t = np.asarray(times, float)
        steps = [scipy.linalg.expm(q * dt) for dt in np.diff(t)]
        prob = 0.0
        for hidden in itertools.product(range(k), repeat=len(y)):
            p = initial[hidden[0]] * emission[hidden[0], y[0]]
            for s in range(1, len(y)):
                p *= steps[s - 1][hidden[s - 1], hidden[s]] * emission[hidden[s], y[s]]
            prob += p
        total += np.log(prob)
    return total


def three_state_chain():
    """A 3-state linear chain 0 <-> 1 <-> 2 (4 rates) and its adjacency."""
    q = np.array([[-1.0, 1.0, 0.0], [0.5, -2.0, 1.5], [0.0, 2.0, -2.0]])
    return q, q > 0
