"""probkit.Target and probkit.from_numpyro against NumPyro's own machinery."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer.util import initialize_model

import probkit as pk


def eight_schools(y, sigma):
    mu = numpyro.sample("mu", dist.Normal(0, 5))
    tau = numpyro.sample("tau", dist.HalfCauchy(5))
    theta_trans = numpyro.sample("theta_trans", dist.Normal(0, 1).expand([8]))
    theta = numpyro.deterministic("theta", mu + tau * theta_trans)
    numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


Y = jnp.array([28.0, 8, -3, 7, -1, 1, 18, 12])
SIGMA = jnp.array([15.0, 10, 16, 11, 9, 11, 10, 18])


def test_logdensity_is_numpyros_negative_potential():
    target = pk.from_numpyro(eight_schools, Y, SIGMA)
    info = initialize_model(jax.random.PRNGKey(3), eight_schools, model_args=(Y, SIGMA))
    z = info.param_info.z
    assert np.isclose(target.logdensity(z), -info.potential_fn(z), rtol=1e-6)
    # data travel as arguments: the same function evaluated with other data
    other = target.logdensity_with_data((Y + 1.0, SIGMA), z)
    info2 = initialize_model(jax.random.PRNGKey(3), eight_schools, model_args=(Y + 1.0, SIGMA))
    assert np.isclose(other, -info2.potential_fn(z), rtol=1e-6)


def test_constrain_includes_deterministic_sites_and_support():
    target = pk.from_numpyro(eight_schools, Y, SIGMA)
    z = target.init(jax.random.PRNGKey(0), 5)
    values = jax.vmap(target.constrain)(z)
    assert set(values) == {"mu", "tau", "theta_trans", "theta"}
    assert values["theta"].shape == (5, 8)
    assert np.all(values["tau"] > 0)
    np.testing.assert_allclose(
        values["theta"],
        values["mu"][:, None] + values["tau"][:, None] * values["theta_trans"],
        rtol=1e-5,
    )


def test_uniform_init_lies_in_minus_two_two():
    target = pk.from_numpyro(eight_schools, Y, SIGMA)
    z = target.init(jax.random.PRNGKey(1), 64)
    flat = np.concatenate([np.asarray(v).reshape(64, -1) for v in z.values()], axis=1)
    assert flat.min() >= -2 and flat.max() <= 2
    assert flat.std() > 0.5  # spread out, not all at one point


def test_prior_and_value_init():
    prior = pk.from_numpyro(eight_schools, Y, SIGMA, init="prior")
    z = prior.init(jax.random.PRNGKey(1), 256)
    # prior draws of mu ~ N(0, 5): the unconstrained mu is mu itself
    assert 3.5 < float(jnp.std(z["mu"])) < 6.5
    fixed = pk.from_numpyro(eight_schools, Y, SIGMA, init={"mu": 1.5, "tau": 2.0})
    z = fixed.init(jax.random.PRNGKey(1), 3)
    values = jax.vmap(fixed.constrain)(z)
    np.testing.assert_allclose(values["mu"], 1.5, rtol=1e-6)
    np.testing.assert_allclose(values["tau"], 2.0, rtol=1e-5)


def test_no_latent_site_is_an_error():
    def observed_only(y):
        numpyro.sample("y", dist.Normal(0, 1), obs=y)

    with pytest.raises(ValueError, match="no latent sample site"):
        pk.from_numpyro(observed_only, Y)


def test_unknown_keyword_argument_names_it():
    with pytest.raises(TypeError, match="'sigmas'.*accepts \\['y', 'sigma'\\]"):
        pk.from_numpyro(eight_schools, y=Y, sigmas=SIGMA)


def test_nonfinite_everywhere_names_the_site():
    def bad(y):
        mu = numpyro.sample("mu", dist.Normal(0, 1))
        numpyro.sample("y", dist.LogNormal(mu, 1.0), obs=y)  # y < 0 is outside the support

    with pytest.raises(ValueError, match="Non-finite log-probability at site\\(s\\): y"):
        pk.from_numpyro(bad, -jnp.ones(3))


def test_bad_init_strategy():
    with pytest.raises(ValueError, match="init must be one of"):
        pk.from_numpyro(eight_schools, Y, SIGMA, init="random")


def test_from_logdensity_checks_its_input():
    with pytest.raises(ValueError, match="must return a scalar"):
        pk.Target.from_logdensity(lambda x: -0.5 * x**2, jnp.zeros(3))
    with pytest.raises(ValueError, match="not finite|is -inf|is nan"):
        pk.Target.from_logdensity(lambda x: jnp.log(x).sum(), -jnp.ones(2))
    with pytest.raises(TypeError, match="must be a function"):
        pk.Target.from_logdensity(3.0, jnp.zeros(2))
    target = pk.Target.from_logdensity(lambda p: -jnp.sum(p["a"] ** 2), {"a": jnp.zeros(4)})
    assert target.num_dims == 4
    assert jax.tree.map(jnp.shape, target.init(jax.random.PRNGKey(0), 3)) == {"a": (3, 4)}


def test_numpyro_setup_is_reused_for_new_data_of_the_same_shapes(monkeypatch):
    # The set-up is compiled once per model structure (equinox.filter_jit): new data of
    # the same shapes neither trace the model nor run NumPyro's initialisation again.
    def positive_data(y):
        mu = numpyro.sample("mu", dist.Normal(0, 1))
        numpyro.sample("y", dist.LogNormal(mu, 1.0), obs=y)

    from probkit import target as target_module

    first = pk.from_numpyro(positive_data, jnp.ones(3))
    calls = []
    trace = target_module._trace_model
    monkeypatch.setattr(
        target_module, "_trace_model", lambda *a, **k: calls.append(1) or trace(*a, **k)
    )
    y_new = jnp.array([0.5, 2.0, 4.0])
    again = pk.from_numpyro(positive_data, y_new)
    assert calls == []  # neither traced nor initialised again
    assert again.data[0] is y_new
    # The reused log density is the one of the new data: LogNormal(mu, 1) at mu = 0.3,
    # plus the Normal(0, 1) prior, in closed form.
    z = {"mu": jnp.asarray(0.3)}
    expected = dist.Normal(0, 1).log_prob(0.3) + dist.LogNormal(0.3, 1.0).log_prob(y_new).sum()
    assert np.isclose(again.logdensity(z), expected, rtol=1e-6)
    first_expected = (
        dist.Normal(0, 1).log_prob(0.3) + dist.LogNormal(0.3, 1.0).log_prob(jnp.ones(3)).sum()
    )
    assert np.isclose(first.logdensity(z), first_expected, rtol=1e-6)  # keeps its own data
    # New data for which the centre is not finite: NumPyro's search is set up once (a
    # second program), and the error still names the site (found by an eager check).
    for _ in range(2):
        with pytest.raises(ValueError, match="Non-finite log-probability at site\\(s\\): y"):
            pk.from_numpyro(positive_data, -jnp.ones(3))
        assert len(calls) == 1
    # other shapes are set up afresh
    pk.from_numpyro(positive_data, jnp.ones(5))
    assert len(calls) == 2


def test_a_start_is_searched_for_when_the_centre_is_impossible():
    # The set-up checks the model at its centre (unconstrained zero) first; here the
    # log density is -inf there, so NumPyro's random search finds a start instead.
    def shifted(y):
        x = numpyro.sample("x", dist.Normal(0, 1))
        numpyro.factor("x_above", jnp.where(x > 0.1, 0.0, -jnp.inf))
        numpyro.sample("y", dist.Normal(x, 1), obs=y)

    target = pk.from_numpyro(shifted, y=jnp.array([1.0, 2.0]))
    assert float(target.example_position["x"]) > 0.1
    assert np.isfinite(target.logdensity(target.example_position))
    result = pk.mcmc.sample(
        target, num_chains=2, num_warmup=100, num_samples=100, seed=0, diagnose=False
    )
    assert np.all(np.asarray(result.samples["x"]) > 0.1)


def test_init_values_are_checked_where_the_chains_start():
    # A given init value that makes the data impossible is refused, even though the
    # centre would be possible: init values are checked by NumPyro's initialisation.
    def model(y):
        scale = numpyro.sample("scale", dist.HalfNormal(1.0))
        numpyro.factor("small", jnp.where(scale < 5.0, 0.0, -jnp.inf))
        numpyro.sample("y", dist.Normal(0, scale), obs=y)

    good = pk.from_numpyro(model, y=jnp.ones(3), init={"scale": 2.0})
    assert np.isclose(float(good.constrain(good.example_position)["scale"]), 2.0, rtol=1e-5)
    with pytest.raises(ValueError, match="not finite"):
        pk.from_numpyro(model, y=jnp.ones(3), init={"scale": 7.0})


def test_a_delta_latent_site_is_refused_when_the_target_is_built():
    def model(y):
        mu = numpyro.sample("mu", dist.Normal(0, 1))
        x = numpyro.sample("x", dist.Delta(mu))
        numpyro.sample("y", dist.Normal(x, 1), obs=y)

    with pytest.raises(ValueError, match="numpyro.deterministic"):
        pk.from_numpyro(model, jnp.ones(2))
