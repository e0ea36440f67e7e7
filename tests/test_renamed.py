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
