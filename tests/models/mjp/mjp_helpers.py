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


def two_state_quadrature(times, observations, label_noise, prior_sd=2.0, num_grid=(40, 20)):
    """Exact posterior moments of a 2-state chain by quadrature (no sampling, no expm).

    The model of ``probkit.models.mjp.posterior``: log-rates ``(log q01, log q10)`` with
    independent ``Normal(0, prior_sd)`` priors, ``initial = (p, 1 - p)`` with a flat
    Dirichlet(1, 1) prior, snapshots with uniform mislabelling ``label_noise``. The
    2-state transition matrix is closed-form,
    ``P(dt) = pi + exp(-(a + b) dt) (I - pi)`` with ``pi = (b, a) / (a + b)``, and the
    likelihood is the forward algorithm in float64 on a midpoint grid over
    ``(log a, log b, p)``; the log-rate box is found by a coarse pass, then spans the
    mean +- 8 sd. Identical paths are evaluated once.

    Returns:
        dict with the posterior ``mean`` and ``sd`` of the two log-rates, ``initial_mean``
        (of ``p``) and ``log_evidence``.
    """
    y_unique, weights = np.unique(np.asarray(observations), axis=0, return_counts=True)
    dts = np.diff(np.asarray(times, float))
    emission = (1 - label_noise) * np.eye(2) + label_noise * (1 - np.eye(2))

    def log_density(box, n_rate, n_p):
        la = np.linspace(*box[0], n_rate + 1)
        lb = np.linspace(*box[1], n_rate + 1)
        la = 0.5 * (la[1:] + la[:-1])
        lb = 0.5 * (lb[1:] + lb[:-1])
        p = (np.arange(n_p) + 0.5) / n_p
        volume = (la[1] - la[0]) * (lb[1] - lb[0]) / n_p
        A, B, P0 = np.meshgrid(la, lb, p, indexing="ij")
        a, b = np.exp(A), np.exp(B)
        total = a + b
        log_lik = np.zeros_like(A)
        for path, w in zip(y_unique, weights, strict=True):
            alpha = np.stack([P0, 1 - P0], -1) * emission[:, path[0]]
            norm = alpha.sum(-1)
            ll = np.log(norm)
            alpha = alpha / norm[..., None]
            for t, dt in enumerate(dts):
                decay = np.exp(-total * dt)
                p01 = a / total * (1 - decay)
                p10 = b / total * (1 - decay)
                new0 = alpha[..., 0] * (1 - p01) + alpha[..., 1] * p10
                new1 = alpha[..., 0] * p01 + alpha[..., 1] * (1 - p10)
                alpha = np.stack([new0, new1], -1) * emission[:, path[t + 1]]
                norm = alpha.sum(-1)
                ll = ll + np.log(norm)
                alpha = alpha / norm[..., None]
            log_lik = log_lik + w * ll
        log_prior = -0.5 * (A**2 + B**2) / prior_sd**2 - np.log(2 * np.pi * prior_sd**2)
        return A, B, P0, log_prior + log_lik, volume

    def moments(box, n_rate, n_p):
        A, B, P0, log_post, volume = log_density(box, n_rate, n_p)
        top = log_post.max()
        weight = np.exp(log_post - top)
        mass = weight.sum()
        weight = weight / mass
        mean = np.array([(weight * A).sum(), (weight * B).sum()])
        sd = np.sqrt(np.array([(weight * A**2).sum(), (weight * B**2).sum()]) - mean**2)
        log_evidence = top + np.log(mass * volume)
        return mean, sd, float((weight * P0).sum()), float(log_evidence)

    mean, sd, _, _ = moments(((-5.0, 5.0), (-5.0, 5.0)), 60, 20)
    box = tuple((m - 8 * s, m + 8 * s) for m, s in zip(mean, sd, strict=True))
    mean, sd, initial_mean, log_evidence = moments(box, *num_grid)
    return {"mean": mean, "sd": sd, "initial_mean": initial_mean, "log_evidence": log_evidence}
