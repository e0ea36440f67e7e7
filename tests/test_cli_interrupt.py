"""Ctrl-C during `probkit sample` keeps the draws done: a real SIGINT, end to end."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import arviz as az

MODEL_FILE = textwrap.dedent(
    """
    import numpyro
    import numpyro.distributions as dist

    def model(y):
        mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)
    """
)


def _collect(stream, sink: list, seen: dict):
    for chunk in iter(lambda: stream.read(1), ""):
        sink.append(chunk)
        if "interrupted" not in seen and "".join(sink[-40:]).find("interrupted:") >= 0:
            seen["interrupted"] = time.time()


def test_sigint_mid_sampling_writes_the_partial_draws_and_exits_non_zero(tmp_path):
    (tmp_path / "m.py").write_text(MODEL_FILE)
    (tmp_path / "data.json").write_text(json.dumps({"y": [1.2, 0.4, 2.2]}))
    out = tmp_path / "x.nc"
    command = [sys.executable, "-m", "probkit.cli", "sample", f"{tmp_path / 'm.py'}:model"]
    command += ["--data", str(tmp_path / "data.json"), "--chains", "2", "--warmup", "100"]
    command += ["--draws", "1000000", "--out", str(out)]  # far longer than the test waits
    proc = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        cwd=tmp_path,
    )
    err: list = []
    seen: dict = {}
    reader = threading.Thread(target=_collect, args=(proc.stderr, err, seen), daemon=True)
    reader.start()
    try:
        deadline = time.time() + 150
        pattern = re.compile(r"sampling:[^|]*\|[^|]*\| *([0-9]+)/1000000")
        # Past the sampling bar's first chunks: compiled and drawing.
        while not any(int(n) > 3 for n in pattern.findall("".join(err))):
            assert time.time() < deadline, "".join(err)[-3000:]
            assert proc.poll() is None, "".join(err)[-3000:]
            time.sleep(0.05)
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        reader.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(err)
    assert proc.returncode == 130, text[-3000:]
    match = re.search(r"interrupted: Interrupted during sampling after ([0-9]+) of 1000000", text)
    assert match, text[-3000:]
    assert f"Kept the draws done so far in {out}" in text
    done = int(match.group(1))
    draws = az.from_netcdf(str(out)).posterior["mu"].values
    assert draws.shape == (2, done)
    # The message comes when sampling stops: about a chunk (0.5 s) after the signal;
    # allow for a loaded machine. (Writing the file and Python's exit take longer.)
    assert seen["interrupted"] - sent < 2.5, seen["interrupted"] - sent
