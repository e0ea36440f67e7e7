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
    se = forgetting.std(ddof=1) / np.sqrt(len(SEEDS))
    # after task 1, task 0's accuracy under sequential inference vs the joint posterior
    gap = np.array(joint_first) - (np.array(first_task) - forgetting)
    gap_se = gap.std(ddof=1) / np.sqrt(len(SEEDS))
    print(
        f"forgetting {forgetting.mean():.3f} +- {se:.3f} (seeds {SEEDS}); joint accuracy "
        f"on task 0 {np.round(joint_first, 3)}; prototype forgetting {proto_forgetting}"
    )
    assert min(first_task) > 0.9  # the first task was learned
    # then forgotten: measured 0.30 +- 0.08 over seeds 0-2; both the forgetting and the
    # shortfall against the joint posterior are > 0 by three standard errors across seeds
    assert forgetting.mean() - 3 * se > 0
    assert gap.mean() - 3 * gap_se > 0
    assert min(joint_first) > 0.9  # the joint posterior keeps it
    assert max(proto_forgetting) < 0.05
