"""A small Bayesian MLP on split 2-D Gaussian blobs (class-incremental): sequential NUTS
with a propagated Gaussian prior forgets, the joint posterior and the prototype baseline
do not (the qualitative finding of Kessler et al., 2023)."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import probkit.models.continual as cl
import pytest

LAYERS = (2, 6, 4)
SEEDS = (0, 1, 2)


@pytest.mark.slow
def test_sequential_bnn_forgets_where_joint_and_prototypes_do_not():
    forgetting, joint_first, proto_forgetting, first_task = [], [], [], []
    for seed in SEEDS:
        tasks = cl.split_gaussian_blobs(jax.random.key(seed), 2, num_train=30, num_test=100)
        d = cl.mlp_num_params(LAYERS)
        out = cl.sequential_posterior(
            cl.mlp_classifier_model,
            tasks,
            dist.MultivariateNormal(jnp.zeros(d), jnp.eye(d)),
            predict=cl.mlp_predict(LAYERS),
            joint=True,
            model_kwargs={"layer_sizes": LAYERS},
            num_chains=2,
            num_warmup=200,
            num_samples=200,
            seed=seed,
            max_num_doublings=5,
            diagnose=False,
        )
        forgetting.append(out.metrics["forgetting"])
        first_task.append(out.accuracy[0, 0])
        joint_first.append(out.joint_accuracy[0])
        proto_forgetting.append(cl.prototype_baseline(tasks, 4).metrics["forgetting"])
    forgetting = np.array(forgetting)
    # after task 1, task 0's accuracy under sequential inference vs the joint posterior
    gap = np.array(joint_first) - (np.array(first_task) - forgetting)
    print(
        f"forgetting {np.round(forgetting, 3)} (seeds {SEEDS}); joint accuracy "
        f"on task 0 {np.round(joint_first, 3)}; prototype forgetting {proto_forgetting}"
    )
    assert min(first_task) > 0.9  # the first task was learned
    # then forgotten, in every seed, by more than the prototype baseline forgets (its
    # bound below): both the forgetting and the shortfall against the joint posterior.
    # Per seed rather than mean - 3 standard errors: across seeds the forgetting is
    # heavy-tailed (seeds 0-5 gave 0.065-0.58 with one sampler's random numbers and
    # 0.08-0.70 with another's), so a standard error from three seeds means little.
    assert min(forgetting) > 0.05
    assert min(gap) > 0.05
    assert min(joint_first) > 0.9  # the joint posterior keeps it
    assert max(proto_forgetting) < 0.05
