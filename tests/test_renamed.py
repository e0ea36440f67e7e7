"""Old public names after a rename: the same function, with a warning naming the new one."""

import jax
import numpy as np
import pytest
from probkit.models import distribution_transformer as dt
from probkit.models import gflownet, pvrnn


@pytest.mark.parametrize(
    ("old", "new_name", "call"),
    [
        (
            pvrnn.train,
            "fit",
            lambda f: f(jax.random.key(0), pvrnn.PVRNN(jax.random.key(1), 1), np.zeros((10, 1))),
        ),
        (dt.train, "fit", lambda f: f("poisson_2d", num_steps=1)),
        (gflownet.train, "fit", lambda f: f("grid", num_trajectories=8, batch_size=8)),
    ],
    ids=["pvrnn", "distribution_transformer", "gflownet"],
)
def test_old_training_names_warn_and_call_fit(old, new_name, call):
    with pytest.warns(DeprecationWarning, match=f"renamed {new_name}"):
        # fit's own argument check runs: the old name is the same function.
        with pytest.raises((ValueError, TypeError)):
            call(old)


def test_old_result_types_are_the_new_ones():
    assert pvrnn.TrainResult is pvrnn.FitResult
    assert dt.TrainResult is dt.FitResult
    assert gflownet.TrainingHistory is gflownet.FitHistory
    assert "train" not in pvrnn.__all__ and "fit" in pvrnn.__all__


def test_the_old_spelling_of_self_normalised_expectation_warns():
    import numpyro.distributions as dist

    from probkit import importance

    samples = importance.importance_sample(
        jax.random.key(0), lambda x: -0.5 * x**2, dist.Normal(0.0, 2.0), 1000
    )
    assert "self_normalized_expectation" not in importance.__all__
    with pytest.warns(DeprecationWarning, match="renamed self_normalised_expectation"):
        old = importance.self_normalized_expectation(samples, lambda x: x)
    new = importance.self_normalised_expectation(samples, lambda x: x)
    assert float(old.value) == float(new.value)


def test_scaling_gather_is_gather_particles_and_the_old_name_warns():
    from probkit import scaling

    states = {"x": np.arange(3), "text": ["a", "b", "c"]}
    assert "gather" not in scaling.__all__ and "gather_particles" in scaling.__all__
    with pytest.warns(DeprecationWarning, match="renamed gather_particles"):
        old = scaling.gather(states, np.array([2, 0]))
    assert old["text"] == ["c", "a"] and old["x"].tolist() == [2, 0]


def test_optimiser_keyword_is_optimizer_and_the_old_name_warns():
    import networkx as nx
    import optax

    import probkit.graph as pg

    graph = pg.from_networkx(nx.cycle_graph(5))
    walk = pg.metropolis_hastings_walk(graph)
    loss = lambda theta, node, t: 0.5 * (theta - t[node]) ** 2  # noqa: E731
    sgd = optax.sgd(0.1)
    with pytest.warns(DeprecationWarning, match="optimiser= was renamed optimizer="):
        old = pg.token_optimisation(walk, loss, np.arange(5.0), optimiser=sgd)
    assert old.optimizer is sgd
    with pytest.raises(TypeError, match="pass optimizer= only"):
        pg.token_optimisation(walk, loss, np.arange(5.0), optimizer=sgd, optimiser=sgd)
