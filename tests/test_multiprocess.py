"""probkit across several local processes on JAX's multi-controller runtime.

Every test starts fresh Python processes on CPU devices (the device count and the
runtime are fixed when JAX starts): a coordinator on 127.0.0.1 at a free port, gloo
CPU collectives (``probkit.distributed.initialize``), and the same script in every
process. Results of ``P`` processes x ``D`` devices are compared with one process
holding ``P * D`` simulated devices (``--xla_force_host_platform_device_count``),
which runs the same sharded program on the same global mesh.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pytest

# sd over seeds of the particle filter's log-likelihood below (measured, see
# _check_particle_filter).
SD_PF_LOG_LIKELIHOOD = 0.15  # 0.146 over 40 seeds

# One script for every process. argv: num_processes, process_id, devices per
# process, port, what to run ("sample" or "die-after-join").
WORKER = textwrap.dedent(
    """
    import json, os, sys
    num_processes, process_id, devices, port, tasks = sys.argv[1:6]
    num_processes, process_id, devices = int(num_processes), int(process_id), int(devices)
    tasks = tasks.split(",")
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    import probkit as pk  # starts no backend: initialize may follow

    if num_processes > 1:
        pk.distributed.initialize(
            f"127.0.0.1:{port}", num_processes, process_id,
            initialization_timeout=int(os.environ.get("TEST_INIT_TIMEOUT", "120")),
            heartbeat_timeout_seconds=int(os.environ.get("TEST_HEARTBEAT", "30")),
        )
    if "die-after-join" in tasks:
        print("JOINED", flush=True)
        if process_id == 1:
            os._exit(3)  # a crash: no shutdown, no goodbye to the coordinator
        import jax.numpy as jnp
        pk.distributed.gather(pk.distributed.shard_leading_axis(
            jnp.arange(8.0), pk.distributed.chain_mesh()))
        print("UNREACHABLE: gathered from a dead process", flush=True)
        sys.exit(0)

    import jax, jax.numpy as jnp, numpy as np
    if "mesh" in tasks:  # process 1 builds its mesh in another device order
        devices = jax.devices() if process_id == 0 else jax.devices()[::-1]
        try:
            pk.distributed.check_same_mesh(pk.distributed.chain_mesh(devices))
            print("SAME", flush=True)
        except ValueError as error:
            print("MISMATCH", error, flush=True)
        pk.distributed.check_same_mesh(pk.distributed.chain_mesh())
        print("DEFAULT MESHES AGREE", flush=True)
        sys.exit(0)
    assert jax.process_count() == num_processes
    assert len(jax.devices()) == num_processes * devices
    out = {"process": jax.process_index()}
    scales = np.array([1.0, 3.0], np.float32)
    target = pk.Target.from_logdensity(lambda x: -0.5 * jnp.sum((x / scales) ** 2), jnp.zeros(2))
    if "mala" in tasks:  # a fixed kernel: no warm-up, fixed step size
        mala = pk.mcmc.sample(target, kernel="mala", num_chains=4, num_warmup=0,
                              num_samples=100, step_size=0.8, seed=1,
                              chain_method="sharded", diagnose=False)
        out["mala"] = mala.unconstrained.tolist()
        out["mala_arviz"] = dict(mala.to_arviz().posterior.sizes)
    if "nuts" in tasks:  # adapted
        nuts = pk.mcmc.sample(target, num_chains=4, num_warmup=150, num_samples=250,
                              seed=2, chain_method="sharded", diagnose=False)
        out["nuts"] = nuts.unconstrained.tolist()
        out["nuts_ess"] = nuts.summary()["ess_bulk"].tolist()
    if "pf" in tasks:  # the particle axis over every device of every process
        lg = pk.smc.LinearGaussian.scalar(0.9, 1.0, 1.0)
        _, ys = lg.simulate(jax.random.key(0), 20)
        pf = pk.smc.particle_filter(lg.state_space_model(), ys, num_particles=2048,
                                    seed=3, mesh=pk.distributed.chain_mesh())
        pf = pk.distributed.gather_result(pf)
        out["pf_log_likelihood"] = float(pf.log_likelihood)
        out["pf_resampled"] = np.asarray(pf.smc.resampled).tolist()
        out["pf_particles"] = np.asarray(pf.smc.particles).ravel().tolist()
        out["pf_arviz"] = dict(pf.smc.to_arviz().posterior.sizes)
        out["kalman"] = pk.smc.kalman_filter(lg, ys).log_likelihood
    if "tempered" in tasks:  # a fixed schedule: the same temperatures everywhere
        import numpyro, numpyro.distributions as dist

        def normal_mean(y):
            mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
            numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)

        y = jnp.array([0.3, 1.1, 0.8, -0.2, 0.6])
        tempered = pk.smc.tempered(pk.from_numpyro(normal_mean, y), num_particles=512,
                                   schedule=np.linspace(0.0, 1.0, 11)[1:], seed=4,
                                   mesh=pk.distributed.chain_mesh())
        out["tempered_log_evidence"] = float(tempered.log_evidence)
        out["tempered_particles"] = np.concatenate(
            [np.asarray(leaf).ravel() for leaf in jax.tree.leaves(tempered.particles)]
        ).tolist()
        # log N(y; 0, I + 11^T): the exact evidence of this conjugate model
        cov = np.eye(5) + np.ones((5, 5))
        out["exact_log_evidence"] = float(
            -0.5 * np.asarray(y) @ np.linalg.solve(cov, np.asarray(y))
            - 0.5 * np.linalg.slogdet(2 * np.pi * cov)[1]
        )
    if "fkc" in tasks:  # a Feynman-Kac corrector with the particle axis sharded
        vp = pk.sde.VPSDE()
        mixture = pk.sde.gaussian_mixture(jnp.array([0.3, 0.7]), jnp.array([[-1.5], [1.5]]), 0.5)
        fk = pk.fkc.anneal(pk.sde.exact_score(mixture, vp), vp, 2.0, event_shape=(1,),
                           num_steps=100)
        annealed = pk.smc.run(fk, num_particles=512, seed=5, mesh=pk.distributed.chain_mesh())
        out["fkc_log_evidence"] = float(annealed.log_evidence)
        out["fkc_particles"] = np.asarray(annealed.particles.x).ravel().tolist()
    print("RESULT" + json.dumps(out), flush=True)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(num_processes, process_id, devices, port, tasks, env_extra=None):
    """Start one worker; its output goes to files (a full pipe would block it, and a
    blocked process holds every other one at JAX's shutdown barrier)."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env_extra or {})}
    env.pop("XLA_FLAGS", None)  # the worker sets its own device count
    stdout, stderr = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    args = [num_processes, process_id, devices, port, tasks]
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", WORKER, *map(str, args)],
        stdout=stdout,
        stderr=stderr,
        text=True,
        env=env,
    )
    proc.files = (stdout, stderr)
    return proc


def _finish(procs, timeout=300):
    """``(returncode, stdout, stderr)`` of every process; kills those still running
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    outputs = []
    try:
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            texts = []
            for f in proc.files:
                f.seek(0)
                texts.append(f.read())
                f.close()
            outputs.append((proc.returncode, *texts))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return outputs


def _results(outputs):
    for rc, _, stderr in outputs:
        assert rc == 0, stderr[-4000:]
    return [json.loads(stdout.split("RESULT", 1)[1]) for _, stdout, _ in outputs]


def _run_global_mesh(num_processes, tasks):
    """Results of every process of one run, and of 1 process with as many devices."""
    port = _free_port()
    procs = [_start(num_processes, i, 1, port, tasks) for i in range(num_processes)]
    single = _start(1, 0, num_processes, 0, tasks)
    multi = _results(_finish(procs))
    single = _results(_finish([single]))[0]
    assert sorted(out["process"] for out in multi) == list(range(num_processes))
    return multi, single


def _check_fixed_kernel(out, single):
    # Fixed kernel: the draws of chain c depend on c only, not on where it ran.
    np.testing.assert_array_equal(out["mala"], single["mala"])
    assert out["mala_arviz"] == {"chain": 4, "draw": 100, "x_dim_0": 2}  # on every process


def _check_adapted_nuts(out, single):
    # Equal in distribution (the same arithmetic per device may make the draws equal,
    # but only agreement within MC error is promised). Both runs have bulk ESS > 300
    # per coordinate (asserted), so the difference of their means has
    # sd <= scale * sqrt(2 / 300); 5 sd is the bound.
    a = np.asarray(out["nuts"]).reshape(-1, 2)
    b = np.asarray(single["nuts"]).reshape(-1, 2)
    assert min(out["nuts_ess"] + single["nuts_ess"]) > 300, out["nuts_ess"]
    assert np.all(np.abs(a.mean(0) - b.mean(0)) < 5 * np.array([1.0, 3.0]) * np.sqrt(2 / 300))
    # ...and each samples the target: the sd of a sd estimate with ESS 300 is about
    # 1 / sqrt(2 * 300) = 4% of it; 15% is about 4 of those.
    np.testing.assert_allclose(a.std(0), [1.0, 3.0], rtol=0.15)


def _check_particle_filter(out, single):
    # The same keys and resampling on the same global mesh; only the order of float32
    # reductions across devices may differ.
    assert out["pf_resampled"] == single["pf_resampled"]
    assert sum(out["pf_resampled"]) > 0  # resampling (the cross-process step) ran
    np.testing.assert_allclose(out["pf_log_likelihood"], single["pf_log_likelihood"], rtol=1e-5)
    np.testing.assert_allclose(out["pf_particles"], single["pf_particles"], atol=1e-4)
    assert out["pf_arviz"]["draw"] == 2048  # to_arviz() on every process
    # Against the exact Kalman log-likelihood: the sd of this estimate (2048
    # particles, T = 20) measured over 40 seeds is SD_PF_LOG_LIKELIHOOD; 5 sd.
    assert abs(out["pf_log_likelihood"] - out["kalman"]) < 5 * SD_PF_LOG_LIKELIHOOD


def _check_tempered_and_fkc(out, single):
    # Fixed temperatures and the same keys on the same global mesh: equal up to the
    # order of float32 reductions across devices (log-evidence, particle positions).
    np.testing.assert_allclose(
        out["tempered_log_evidence"], single["tempered_log_evidence"], rtol=1e-5
    )
    np.testing.assert_allclose(out["tempered_particles"], single["tempered_particles"], atol=1e-3)
    # A gross check against the exact evidence (512 particles, 10 temperatures on a
    # 1-D conjugate model: the estimate's sd is a few hundredths; 0.3 is far beyond).
    assert abs(out["tempered_log_evidence"] - out["exact_log_evidence"]) < 0.3
    np.testing.assert_allclose(out["fkc_log_evidence"], single["fkc_log_evidence"], rtol=1e-5)
    np.testing.assert_allclose(out["fkc_particles"], single["fkc_particles"], atol=1e-3)


@pytest.mark.slow
def test_two_processes_fixed_kernel_and_particle_filter_match_one_process():
    multi, single = _run_global_mesh(2, "mala,pf,tempered,fkc")
    for out in multi:
        _check_fixed_kernel(out, single)
        _check_particle_filter(out, single)
        _check_tempered_and_fkc(out, single)


@pytest.mark.slow
def test_two_processes_adapted_nuts_agrees_with_one_process():
    multi, single = _run_global_mesh(2, "nuts")
    for out in multi:
        _check_adapted_nuts(out, single)


@pytest.mark.slow
def test_four_processes_particle_filter_matches_one_process():
    multi, single = _run_global_mesh(4, "pf")
    for out in multi:
        _check_particle_filter(out, single)


@pytest.mark.slow
def test_process_that_never_joins_stops_the_others_with_an_explanation():
    # Process 0 of 2 starts; process 1 never does.
    start = time.monotonic()
    ((rc, stdout, stderr),) = _finish(
        [_start(2, 0, 1, _free_port(), "mala", {"TEST_INIT_TIMEOUT": "5"})], timeout=120
    )
    elapsed = time.monotonic() - start
    assert rc != 0 and "RESULT" not in stdout
    assert elapsed < 60, elapsed  # bounded by initialization_timeout, not a hang
    assert "process 0 of 2 (coordinator 127.0.0.1:" in stderr, stderr[-3000:]
    assert "initialization_timeout=5 s" in stderr
    assert "Check that every process was started" in stderr


@pytest.mark.slow
def test_process_that_dies_after_joining_stops_the_others():
    port = _free_port()
    heartbeat = {"TEST_HEARTBEAT": "3"}
    start = time.monotonic()
    procs = [_start(2, i, 1, port, "die-after-join", heartbeat) for i in range(2)]
    (rc0, out0, err0), (rc1, out1, _) = _finish(procs, timeout=120)
    elapsed = time.monotonic() - start
    assert "JOINED" in out0 and "JOINED" in out1 and rc1 == 3
    # The survivor, blocked in a collective with the dead process, is stopped by
    # JAX's runtime once heartbeats are missing, and says which task died.
    assert rc0 != 0 and "UNREACHABLE" not in out0
    assert elapsed < 60, elapsed
    assert "stopped sending heartbeats" in err0, err0[-3000:]


@pytest.mark.slow
def test_processes_that_build_different_meshes_are_told_so():
    port = _free_port()
    outputs = _finish([_start(2, i, 1, port, "mesh") for i in range(2)], timeout=120)
    for rc, stdout, stderr in outputs:
        assert rc == 0, stderr[-3000:]
        assert "MISMATCH" in stdout and "SAME" not in stdout.splitlines()
        assert "Build the mesh the same way in every process" in stdout
        assert "DEFAULT MESHES AGREE" in stdout


def test_initialize_rejects_bad_arguments_before_starting_anything():
    import probkit as pk

    with pytest.raises(ValueError, match="process_id=2 must be in 0..1"):
        pk.distributed.initialize("127.0.0.1:1234", 2, 2)
    with pytest.raises(ValueError, match="num_processes=0"):
        pk.distributed.initialize("127.0.0.1:1234", 0, 0)
    with pytest.raises(ValueError, match="must be positive"):
        pk.distributed.initialize("127.0.0.1:1234", 2, 0, initialization_timeout=0)


def test_gather_result_keeps_the_result_type_on_one_process():
    from typing import NamedTuple

    import jax
    import jax.numpy as jnp

    from probkit.distributed import gather, gather_result

    class Result(NamedTuple):
        particles: jax.Array
        history: jax.Array | None = None

    result = Result(jnp.arange(4.0))
    host = gather_result(result)
    assert type(host) is Result and isinstance(host.particles, np.ndarray)
    np.testing.assert_array_equal(host.particles, [0.0, 1.0, 2.0, 3.0])
    assert host.history is None
    assert gather_result(result, to="first") is not None  # process 0 of 1
    out = gather({"key": jax.random.key(1), "n": 3})
    assert out["n"] == 3
    assert jnp.array_equal(jax.random.key_data(out["key"]), jax.random.key_data(jax.random.key(1)))
    with pytest.raises(ValueError, match="to='some'"):
        gather_result(result, to="some")
