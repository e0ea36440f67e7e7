"""Every kernel samples a correlated 2-D Gaussian: moments within Monte Carlo error."""

import arviz as az
import jax.numpy as jnp
import numpy as np
import pytest

import probkit as pk

COV = np.array([[1.0, 1.6], [1.6, 4.0]])  # correlation 0.8, scales 1 and 2
PRECISION = jnp.asarray(np.linalg.inv(COV))
TARGET = pk.Target.from_logdensity(lambda x: -0.5 * x @ PRECISION @ x, jnp.zeros(2))


def assert_moments_within_mc_error(draws: np.ndarray, z: float = 4.5):
    """First and second moments of (chain, draw, 2) draws against the closed form.

    Each moment E[f(X)] is estimated by the chain average of f, whose Monte Carlo
    standard error comes from ArviZ's ESS-based ``mcse``; with 5 moments checked at
    4.5 MCSE a correct sampler fails with probability < 1e-4.
    """
    x1, x2 = draws[..., 0], draws[..., 1]
    checks = {
        "E[x1]": (x1, 0.0),
        "E[x2]": (x2, 0.0),
        "E[x1^2]": (x1**2, COV[0, 0]),
        "E[x2^2]": (x2**2, COV[1, 1]),
        "E[x1 x2]": (x1 * x2, COV[0, 1]),
    }
    for name, (values, truth) in checks.items():
        mcse = float(np.asarray(az.mcse(np.asarray(values))).squeeze())
        error = float(np.mean(values)) - truth
        assert abs(error) <= z * mcse, f"{name}: error {error:.4f} > {z} x MCSE {mcse:.4f}"
        # guard against a degenerate MCSE hiding a broken sampler
        assert mcse < 0.2 * max(1.0, abs(truth)), f"{name}: MCSE {mcse} too large"


@pytest.mark.parametrize(
    ("kernel", "num_chains", "num_samples", "extra"),
    [
        ("nuts", 4, 1000, {}),
        ("nuts", 4, 1000, {"mass_matrix": "dense"}),
        ("nuts", 4, 1000, {"mass_matrix": "low_rank"}),
        ("hmc", 4, 1000, {"num_integration_steps": 8}),
        ("mala", 4, 3000, {"mass_matrix": "dense"}),
        ("rwm", 4, 4000, {"mass_matrix": "dense"}),
        ("chees", 16, 500, {}),
        ("meads", 32, 1000, {}),
    ],
)
def test_kernel_samples_correlated_gaussian(kernel, num_chains, num_samples, extra):
    result = pk.mcmc.sample(
        TARGET,
        kernel=kernel,
        num_chains=num_chains,
        num_warmup=500,
        num_samples=num_samples,
        seed=11,
        **extra,
    )
    draws = result.samples["x"]
    assert draws.shape == (num_chains, num_samples, 2)
    assert np.all(np.isfinite(draws))
    assert_moments_within_mc_error(draws)
    assert 0.0 < result.stats["acceptance_rate"].mean() <= 1.0
