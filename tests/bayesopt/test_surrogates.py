"""Every surrogate on a 1-D function: interpolation, growing uncertainty, BoTorch shapes."""

import functools

import numpy as np
import pytest
import torch
from botorch.acquisition import qLogNoisyExpectedImprovement
from botorch.models.ensemble import EnsembleModel

from probkit import bayesopt as bo

NOISE_SD = 0.05
SPACE = bo.make_search_space([(0.0, 1.0)])


def _data() -> bo.TrainingData:
    # 10 noisy observations of sin(6x) on [0, 0.5]; the right half of [0, 1] is empty.
    rng = np.random.default_rng(0)
    x = np.linspace(0.0, 0.5, 10)
    y = np.sin(6 * x) + NOISE_SD * rng.standard_normal(10)
    return bo.TrainingData(torch.as_tensor(x[:, None]), torch.as_tensor(y[:, None]), None, SPACE)


SURROGATE_OPTIONS = {
    "gp": {},
    "ibnn": {},
    "dkl": {"num_steps": 200},
    "ensemble": {"num_steps": 500},
    # A 2 x 2 grid and four chains: the tuning run and the final run have the same
    # shapes (4 chains, data padded to 16 rows), so NUTS is compiled once.
    "bnn-hmc": {
        "hidden": (32,),
        "prior_scales": (1.0, 4.0),
        "noise_scales": (0.1, 1.0),
        "num_chains": 4,
        "num_warmup": 200,
        "num_samples": 100,
    },
    "saas": {"warmup_steps": 64, "num_samples": 64, "thinning": 16},
}


@functools.cache
def _fit(name: str):
    return bo.fit_surrogate(name, _data(), seed=0, options=SURROGATE_OPTIONS[name])


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(params=sorted(SURROGATE_OPTIONS))
def fitted(request):
    name = request.param
    assert name != "saas" or bo.saas_available()  # numpyro is a probkit dependency
    return name, _fit(name)


def _mean_and_variance(model, X):
    with torch.no_grad():
        posterior = model.posterior(X)
        mean = getattr(posterior, "mixture_mean", posterior.mean)
        variance = getattr(posterior, "mixture_variance", posterior.variance)
    return mean.squeeze(-1).numpy(), variance.squeeze(-1).numpy()


def test_posterior_mean_interpolates_the_data_within_noise(fitted, data):
    name, model = fitted
    mean, _ = _mean_and_variance(model, data.X)
    residual = mean - data.Y.squeeze(-1).numpy()
    # A fit that follows the data leaves residuals of about the noise (RMS ~ NOISE_SD
    # for 10 points; RMS > 2 NOISE_SD has chi-square_10 probability < 1e-4 when the fit
    # error is zero), so 2 NOISE_SD separates "interpolates" from "misses the data".
    assert np.sqrt(np.mean(residual**2)) < 2 * NOISE_SD, (name, residual)


def test_predictive_variance_grows_away_from_the_data(fitted, data):
    name, model = fitted
    _, at_data = _mean_and_variance(model, data.X)
    _, far = _mean_and_variance(model, torch.tensor([[0.9], [1.0]], dtype=torch.float64))
    assert np.all(far > 4 * at_data.mean()), (name, far, at_data.mean())


def test_rsample_shapes_are_what_botorch_expects(fitted, data):
    name, model = fitted
    X = torch.rand(3, 4, 1, dtype=torch.float64)  # batch 3, q 4, d 1
    posterior = model.posterior(X)
    samples = posterior.rsample(torch.Size([5]))
    assert samples.shape == posterior._extended_shape(torch.Size([5]))
    if name == "saas":  # fully Bayesian: one batch entry per MCMC draw of the hyperparameters
        assert samples.shape == (5, 3, 4, 4, 1)
    else:
        assert samples.shape == (5, 3, 4, 1)
    assert isinstance(model, EnsembleModel) == (name in ("ensemble", "bnn-hmc"))
    # A Monte Carlo acquisition reduces the samples to one value per t-batch.
    acquisition = qLogNoisyExpectedImprovement(model, X_baseline=data.X)
    values = acquisition(X)
    assert values.shape == (3,) and torch.isfinite(values).all()


def test_bnn_hmc_picks_its_scales_by_held_out_likelihood():
    # The noise is 0.05 / sd(y) ~ 0.08 in standardised units, so of {0.1, 1.0} the
    # held-out likelihood must choose 0.1 (1.0 calls the signal noise). sin(6x) needs
    # first-layer weights ~6 on inputs in [0, 1]: prior scale 1 shrinks the network
    # towards straight lines and misses the held-out points, prior scale 4 does not.
    model = _fit("bnn-hmc")
    assert model.hyperparameters == bo.BNNHyperparameters(prior_scale=4.0, noise_scale=0.1)
    assert model.num_members == 50
    assert np.all(model.sampler_stats["acceptance_rate"] > 0.5)


def test_bnn_torch_forward_matches_the_jax_network():
    import jax

    params = bo.init_bnn_params(jax.random.PRNGKey(0), (3, 8, 8, 2))
    X = np.random.default_rng(1).random((5, 3)).astype(np.float32)
    expected = np.asarray(bo.bnn_predict(params, X))
    layers = [
        (
            torch.as_tensor(np.asarray(params[f"W{i}"]))[None],
            torch.as_tensor(np.asarray(params[f"b{i}"]))[None],
        )
        for i in range(3)
    ]
    actual = bo.mlp_ensemble_forward(layers, torch.as_tensor(X), "tanh")[0].numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
