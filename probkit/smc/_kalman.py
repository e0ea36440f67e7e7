"""Linear-Gaussian state-space models: exact Kalman filter and RTS smoother (float64).

The model, for ``t = 0, ..., T - 1``::

    x_0 ~ N(m_0, P_0),   x_t = A x_{t-1} + N(0, Q),   y_t = C x_t + N(0, R).

:func:`kalman_filter` and :func:`rts_smoother` run in NumPy float64: they are the
oracle that particle filters are tested against (and a fast exact answer where the
model is linear-Gaussian). :meth:`LinearGaussian.state_space_model` gives the same
model as a :class:`~probkit.smc.StateSpaceModel` with the locally optimal proposal
``q(x_t | x_{t-1}, y_t) ∝ f(x_t | x_{t-1}) g(y_t | x_t)`` for guided filters and the
exact predictive ``p(y_t | x_{t-1})`` as the auxiliary look-ahead.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from probkit._repr import summary_repr

__all__ = ["LinearGaussian", "KalmanResult", "kalman_filter", "rts_smoother"]


def _as2d(x) -> np.ndarray:
    return np.atleast_2d(np.asarray(x, dtype=np.float64))


class LinearGaussian(NamedTuple):
    """A linear-Gaussian state-space model (matrices as arrays; 1x1 for scalar models).

    Attributes:
        transition_matrix: ``A``, shape ``(d, d)``.
        transition_cov: ``Q``, shape ``(d, d)``.
        observation_matrix: ``C``, shape ``(k, d)``.
        observation_cov: ``R``, shape ``(k, k)``.
        initial_mean: ``m_0``, shape ``(d,)``.
        initial_cov: ``P_0``, shape ``(d, d)``.

    Example:
        >>> from probkit.smc import LinearGaussian
        >>> lg = LinearGaussian.scalar(rho=0.9, sigma_x=1.0, sigma_y=0.5)
        >>> lg.transition_matrix.shape
        (1, 1)
    """

    transition_matrix: np.ndarray
    transition_cov: np.ndarray
    observation_matrix: np.ndarray
    observation_cov: np.ndarray
    initial_mean: np.ndarray
    initial_cov: np.ndarray

    @classmethod
    def scalar(
        cls, rho: float, sigma_x: float, sigma_y: float, sigma_0: float | None = None
    ) -> LinearGaussian:
        """AR(1) plus noise: ``x_t = rho x_{t-1} + sigma_x e_t``, ``y_t = x_t + sigma_y u_t``.

        ``x_0 ~ N(0, sigma_0^2)`` with ``sigma_0`` the stationary scale by default.

        Example:
            >>> from probkit.smc import LinearGaussian
            >>> round(float(LinearGaussian.scalar(0.5, 1.0, 1.0).initial_cov[0, 0]), 4)
            1.3333
        """
        if sigma_0 is None:
            if abs(rho) >= 1:
                raise ValueError(f"|rho| = {abs(rho)} >= 1 has no stationary law: pass sigma_0.")
            sigma_0 = sigma_x / np.sqrt(1 - rho**2)
        return cls(
            _as2d(rho),
            _as2d(sigma_x**2),
            _as2d(1.0),
            _as2d(sigma_y**2),
            np.zeros(1),
            _as2d(sigma_0**2),
        )

    @property
    def state_dim(self) -> int:
        """``d``."""
        return int(np.shape(self.transition_matrix)[0])

    def simulate(self, key: jax.Array, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw states ``(T, d)`` and observations ``(T, k)``.

        Example:
            >>> import jax
            >>> from probkit.smc import LinearGaussian
            >>> x, y = LinearGaussian.scalar(0.9, 1.0, 1.0).simulate(jax.random.key(0), 5)
            >>> x.shape, y.shape
            ((5, 1), (5, 1))
        """
        A, Q, C, R, m0, P0 = (np.asarray(m, np.float64) for m in self)
        d, k = A.shape[0], C.shape[0]
        noise = np.asarray(jax.random.normal(key, (num_steps, d + d + k)), np.float64)
        chol_q, chol_r, chol_0 = (np.linalg.cholesky(m) for m in (Q, R, P0))
        xs, ys = np.zeros((num_steps, d)), np.zeros((num_steps, k))
        x = m0 + chol_0 @ noise[0, :d]
        for t in range(num_steps):
            if t > 0:
                x = A @ x + chol_q @ noise[t, d : 2 * d]
            xs[t] = x
            ys[t] = C @ x + chol_r @ noise[t, 2 * d :]
        return xs, ys

    def state_space_model(self):
        """This model as a :class:`~probkit.smc.StateSpaceModel` (float32 JAX arrays).

        Includes the locally optimal proposal (for ``proposal="guided"``) and the
        exact look-ahead ``log p(y_t | x_{t-1})`` (for ``proposal="auxiliary"``).

        Example:
            >>> from probkit.smc import LinearGaussian
            >>> ssm = LinearGaussian.scalar(0.9, 1.0, 1.0).state_space_model()
            >>> ssm.proposal is not None
            True
        """
        import numpyro.distributions as dist

        from probkit.smc._state_space import StateSpaceModel

        A, Q, C, R, m0, P0 = (np.asarray(m, np.float64) for m in self)
        # Locally optimal proposal: covariance (Q^-1 + C' R^-1 C)^-1, and the same
        # with P0 at t = 0; the predictive of y_t given x_{t-1} is N(C A x, C Q C' + R).
        Rinv = np.linalg.inv(R)
        S = np.linalg.inv(np.linalg.inv(Q) + C.T @ Rinv @ C)
        S0 = np.linalg.inv(np.linalg.inv(P0) + C.T @ Rinv @ C)
        gain_prev, gain_y = S @ np.linalg.inv(Q) @ A, S @ C.T @ Rinv
        mean0 = S0 @ np.linalg.inv(P0) @ m0
        gain0_y = S0 @ C.T @ Rinv
        pred_cov = C @ Q @ C.T + R
        f32 = lambda m: jnp.asarray(m, jnp.float32)
        A_, C_, m0_ = f32(A), f32(C), f32(m0)
        chol = {
            k: f32(np.linalg.cholesky(v))
            for k, v in {"Q": Q, "R": R, "P0": P0, "S": S, "S0": S0, "pred": pred_cov}.items()
        }
        gain_prev, gain_y, mean0, gain0_y = map(f32, (gain_prev, gain_y, mean0, gain0_y))
        mvn = lambda loc, key: dist.MultivariateNormal(loc, scale_tril=chol[key])

        # Vectorised: x holds a batch of states (N, d), so matrices act from the right.
        return StateSpaceModel(
            initial=mvn(m0_, "P0"),
            transition=lambda t, x: mvn(x @ A_.T, "Q"),
            observation=lambda t, x: mvn(x @ C_.T, "R"),
            proposal_initial=lambda y: mvn(mean0 + gain0_y @ y, "S0"),
            proposal=lambda t, x, y: mvn(x @ gain_prev.T + gain_y @ y, "S"),
            log_eta=lambda t, x, y: mvn(x @ (C_ @ A_).T, "pred").log_prob(y),
            vectorized=True,
        )


class KalmanResult(NamedTuple):
    """Exact filtering output (float64 NumPy).

    Attributes:
        filtered_means / filtered_covs: ``E[x_t | y_{0:t}]``, ``(T, d)`` and ``(T, d, d)``.
        predicted_means / predicted_covs: ``E[x_t | y_{0:t-1}]`` and its covariance.
        log_likelihood: ``log p(y_{0:T-1})``.
        log_likelihood_increments: ``log p(y_t | y_{0:t-1})``, ``(T,)``.
    """

    filtered_means: np.ndarray
    filtered_covs: np.ndarray
    predicted_means: np.ndarray
    predicted_covs: np.ndarray
    log_likelihood: float
    log_likelihood_increments: np.ndarray

    def __repr__(self) -> str:
        return summary_repr(self)


def kalman_filter(model: LinearGaussian, observations) -> KalmanResult:
    """Exact Kalman filter in float64 (Joseph-form covariance update).

    Example:
        >>> import numpy as np
        >>> from probkit.smc import LinearGaussian, kalman_filter
        >>> lg = LinearGaussian.scalar(0.0, 1.0, 1.0, sigma_0=1.0)
        >>> # y_0 ~ N(0, 2): log density at 0 is -0.5 log(4 pi)
        >>> round(kalman_filter(lg, np.zeros((1, 1))).log_likelihood, 6)
        -1.265512
    """
    A, Q, C, R, m0, P0 = (np.asarray(m, np.float64) for m in model)
    ys = np.asarray(observations, np.float64).reshape(len(observations), C.shape[0])
    T, d = ys.shape[0], A.shape[0]
    fm, fc = np.zeros((T, d)), np.zeros((T, d, d))
    pm, pc = np.zeros((T, d)), np.zeros((T, d, d))
    incs = np.zeros(T)
    m, P = m0, P0
    eye = np.eye(d)
    for t in range(T):
        if t > 0:
            m, P = A @ m, A @ P @ A.T + Q
        pm[t], pc[t] = m, P
        S = C @ P @ C.T + R
        resid = ys[t] - C @ m
        chol = np.linalg.cholesky(S)
        z = np.linalg.solve(chol, resid)
        incs[t] = -0.5 * z @ z - np.sum(np.log(np.diag(chol))) - 0.5 * len(z) * np.log(2 * np.pi)
        K = np.linalg.solve(S, C @ P).T
        m = m + K @ resid
        IKC = eye - K @ C
        P = IKC @ P @ IKC.T + K @ R @ K.T
        fm[t], fc[t] = m, P
    return KalmanResult(fm, fc, pm, pc, float(incs.sum()), incs)


def rts_smoother(model: LinearGaussian, filtered: KalmanResult) -> tuple[np.ndarray, np.ndarray]:
    """Rauch-Tung-Striebel smoother: ``E[x_t | y_{0:T-1}]`` ``(T, d)`` and covariances.

    Example:
        >>> import numpy as np
        >>> from probkit.smc import LinearGaussian, kalman_filter, rts_smoother
        >>> lg = LinearGaussian.scalar(0.9, 1.0, 1.0)
        >>> means, covs = rts_smoother(lg, kalman_filter(lg, np.ones((3, 1))))
        >>> means.shape, covs.shape
        ((3, 1), (3, 1, 1))
    """
    A = np.asarray(model.transition_matrix, np.float64)
    fm, fc, pm, pc = filtered[:4]
    T = fm.shape[0]
    sm, sc = fm.copy(), fc.copy()
    for t in range(T - 2, -1, -1):
        G = np.linalg.solve(pc[t + 1], A @ fc[t]).T
        sm[t] = fm[t] + G @ (sm[t + 1] - pm[t + 1])
        sc[t] = fc[t] + G @ (sc[t + 1] - pc[t + 1]) @ G.T
    return sm, sc
