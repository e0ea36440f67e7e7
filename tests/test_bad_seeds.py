"""Float seeds and non-keys are refused with a message naming the argument.

A Python float, a NumPy float or a float array passed as ``seed=`` or as a
``jax.random`` key must raise a ``TypeError`` that names the argument and says what to
pass (``seed=0``, ``jax.random.key(0)``), before anything is compiled: never be
truncated to an integer. Each case is cheap (the check runs first).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probkit as pk
from probkit._checks import check_key, check_seed

FLOATS = [1.5, 2.0, np.float32(3.0), np.array(1.0), jnp.ones(())]
FLOAT_IDS = ["float", "whole-float", "np.float32", "0-d ndarray", "jax array"]


# ---- the checks themselves ------------------------------------------------------------


@pytest.mark.parametrize("seed", FLOATS, ids=FLOAT_IDS)
def test_check_seed_refuses_floats(seed):
    with pytest.raises(TypeError, match=r"seed must be an int.*seed=0.*not rounded"):
        check_seed(seed)


@pytest.mark.parametrize("seed", [True, "3", None, np.array([1, 2]), jax.random.key(0)])
def test_check_seed_refuses_other_non_integers(seed):
    with pytest.raises(TypeError, match=r"my_seed must be an int.*my_seed=0"):
        check_seed(seed, "my_seed")


@pytest.mark.parametrize("seed", [0, 7, np.int64(4), np.uint32(5), jnp.int32(6), np.array(8)])
def test_check_seed_accepts_whole_numbers(seed):
    assert check_seed(seed) == int(seed)
    assert type(check_seed(seed)) is int


@pytest.mark.parametrize(
    "key", [*FLOATS, 0, np.zeros(2, np.float32)], ids=[*FLOAT_IDS, "int", "f32x2"]
)
def test_check_key_refuses_floats_and_ints(key):
    with pytest.raises(TypeError, match=r"rng must be a jax.random key.*jax.random.key\(0\)"):
        check_key(key, "rng")


def test_check_key_accepts_new_and_legacy_keys():
    check_key(jax.random.key(0))
    check_key(jax.random.PRNGKey(0))
    check_key(jax.random.split(jax.random.key(0), 3))


# ---- seed= drivers ----------------------------------------------------------------------


def _diffusion_fit(seed):
    from probkit.models.diffusion import ScoreNetwork, fit

    from probkit.sde import VPSDE

    net = ScoreNetwork((2,), key=jax.random.key(1), width=8, depth=1)
    fit(net, VPSDE(), np.zeros((8, 2), np.float32), num_steps=2, batch_size=4, seed=seed)


def _masked_fit(seed):
    from probkit.models.masked_diffusion import Denoiser, fit

    net = Denoiser(3, 4, key=jax.random.key(0), width=8, depth=1, num_heads=2)
    fit(net, np.zeros((8, 4), np.int32), num_steps=2, batch_size=4, seed=seed)


def _masked_sample(seed):
    from probkit.models.masked_diffusion import sample

    sample(lambda x: jnp.zeros((*x.shape, 3)), jnp.full((2, 4), 3), mask_token=3, seed=seed)


def _mjp_fit(seed):
    from probkit.models.mjp import AmortizedMJPNetwork, fit

    fit(AmortizedMJPNetwork(jax.random.key(0), width=8), num_steps=2, seed=seed)


def _mjp_posterior(seed):
    from probkit.models.mjp import posterior

    posterior(np.linspace(0, 1, 4), np.zeros((1, 4), np.int32), 2, seed=seed)


def _markov_chain(seed):
    from probkit.models.masked_diffusion import random_markov_chain

    random_markov_chain(seed)


def _arithmetic_problems(seed):
    from probkit.models.arithmetic_lm import make_problems

    make_problems(seed, 4)


def _bridge(seed):
    from probkit.bridges import schrodinger_bridge

    x = np.zeros((8, 1), np.float32)
    schrodinger_bridge(x, x + 1.0, sigma=1.0, seed=seed)


def _sequential_posterior(seed):
    from probkit.models.continual import sequential_posterior

    sequential_posterior(lambda x, y=None, prior=None: None, [], None, seed=seed)


def _bayesopt(seed):
    pytest.importorskip("botorch")
    from probkit.bayesopt import minimize

    minimize(lambda x: float(np.sum(x**2)), [(-1.0, 1.0)], budget=3, seed=seed)


SEED_DRIVERS = {
    "diffusion.fit": _diffusion_fit,
    "masked_diffusion.fit": _masked_fit,
    "masked_diffusion.sample": _masked_sample,
    "masked_diffusion.random_markov_chain": _markov_chain,
    "mjp.fit": _mjp_fit,
    "mjp.posterior": _mjp_posterior,
    "arithmetic_lm.make_problems": _arithmetic_problems,
    "bridges.schrodinger_bridge": _bridge,
    "continual.sequential_posterior": _sequential_posterior,
    "bayesopt.minimize": _bayesopt,
}


@pytest.mark.parametrize("seed", [1.5, np.float32(2.0)], ids=["float", "np.float32"])
@pytest.mark.parametrize("name", list(SEED_DRIVERS))
def test_seed_drivers_refuse_float_seeds(name, seed):
    with pytest.raises(TypeError, match=r"seed must be an int.*seed=0"):
        SEED_DRIVERS[name](seed)


# ---- keyed functions ---------------------------------------------------------------------


def _dsm_loss(key):
    from probkit.models.diffusion import ScoreNetwork, dsm_loss

    from probkit.sde import VPSDE

    net = ScoreNetwork((2,), key=jax.random.key(0), width=8, depth=1)
    dsm_loss(net, VPSDE(), key, jnp.zeros((4, 2)))


def _checkerboard(key):
    from probkit.models.diffusion import checkerboard

    checkerboard(key, 4)


def _pvrnn_fit(key):
    from probkit.models.pvrnn import PVRNN, fit

    fit(key, PVRNN(jax.random.key(1), 1), jnp.zeros((1, 5, 1)), num_steps=2)


def _fewshot(key):
    from probkit.models.fewshot import fit_global

    fit_global(key, jnp.zeros((2, 2, 3, 2)), num_steps=2)


def _latent_sde(key):
    from probkit.sde import fit_latent_sde, latent_sde

    model = latent_sde(jax.random.key(0), 1, 1.0, hurst=None)
    fit_latent_sde(key, model, jnp.linspace(0.0, 1.0, 3), jnp.ones((3, 1)), num_steps=2)


def _target_init(key):
    target = pk.Target.from_logdensity(lambda x: -jnp.sum(x**2), jnp.zeros(2))
    target.init(key, 2)


KEYED = {
    "diffusion.dsm_loss": _dsm_loss,
    "diffusion.checkerboard": _checkerboard,
    "pvrnn.fit": _pvrnn_fit,
    "fewshot.fit_global": _fewshot,
    "sde.fit_latent_sde": _latent_sde,
    "Target.init": _target_init,
}


@pytest.mark.parametrize(
    "key", [1.5, 0, jnp.zeros(2, jnp.float32)], ids=["float", "int", "float-array"]
)
@pytest.mark.parametrize("name", list(KEYED))
def test_keyed_functions_refuse_non_keys(name, key):
    with pytest.raises(TypeError, match=r"key must be a jax.random key.*jax.random.key\(0\)"):
        KEYED[name](key)


# ---- a key where the integer seed is wanted -------------------------------------------


def _mcmc_sample(seed):
    target = pk.Target.from_logdensity(lambda x: -jnp.sum(x**2), jnp.zeros(1))
    pk.mcmc.sample(target, seed=seed)


def _gflownet_fit(seed):
    from probkit.models.gflownet import HyperGrid, fit

    fit(HyperGrid(ndim=2, height=4), num_trajectories=4, batch_size=4, width=8, seed=seed)


@pytest.mark.parametrize(
    "driver", [_mcmc_sample, _gflownet_fit], ids=["mcmc.sample", "gflownet.fit"]
)
def test_a_key_passed_as_seed_says_which_integer_to_pass(driver):
    with pytest.raises(ValueError, match=r"got a jax.random key: pass the integer.*seed=0"):
        driver(jax.random.key(0))
