"""The probkit command: demo and sample."""

import json
import textwrap

import arviz as az
import numpy as np
import pytest

from probkit.cli import main

MODEL_FILE = textwrap.dedent(
    """
    import numpyro
    import numpyro.distributions as dist

    def model(y, scale):
        mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        numpyro.sample("y", dist.Normal(mu, scale), obs=y)
    """
)


def test_sample_writes_netcdf_with_the_conjugate_posterior(tmp_path, capsys):
    (tmp_path / "m.py").write_text(MODEL_FILE)
    y = [1.2, 0.4, 2.2, 1.0, 1.7]
    (tmp_path / "data.json").write_text(json.dumps({"y": y, "scale": 1.0}))
    out = tmp_path / "r.nc"
    code = main(
        [
            "sample",
            f"{tmp_path / 'm.py'}:model",
            "--data",
            str(tmp_path / "data.json"),
            "--chains",
            "2",
            "--warmup",
            "300",
            "--draws",
            "500",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    assert "mu" in capsys.readouterr().out
    idata = az.from_netcdf(str(out))
    draws = idata.posterior["mu"].values
    # Normal-normal conjugacy: posterior precision 1/100 + 5, mean sum(y)/(that)
    precision = 1 / 100 + len(y)
    mean, sd = sum(y) / precision, precision**-0.5
    mcse = float(np.asarray(az.mcse(draws)).squeeze())
    assert abs(draws.mean() - mean) < 4.5 * mcse
    assert abs(draws.std() / sd - 1) < 0.1
    assert "observed_data" in idata.groups()


def test_sample_bad_model_spec_and_data(tmp_path):
    (tmp_path / "m.py").write_text(MODEL_FILE)
    with pytest.raises(SystemExit, match="FILE.py:FUNCTION"):
        main(["sample", str(tmp_path / "m.py")])
    with pytest.raises(SystemExit, match="defines no 'modle'.*'model'"):
        main(["sample", f"{tmp_path / 'm.py'}:modle"])
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(SystemExit, match="JSON object of keyword arguments"):
        main(["sample", f"{tmp_path / 'm.py'}:model", "--data", str(tmp_path / "bad.json")])


def test_sample_reports_unknown_data_keys(tmp_path, capsys):
    (tmp_path / "m.py").write_text(MODEL_FILE)
    (tmp_path / "d.json").write_text(json.dumps({"y": [1.0], "sigma": 1.0}))
    code = main(["sample", f"{tmp_path / 'm.py'}:model", "--data", str(tmp_path / "d.json")])
    assert code == 2
    assert "'sigma'" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_writes_plots(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--chains",
            "2",
            "--warmup",
            "300",
            "--draws",
            "300",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "r_hat" in text and "divergences" in text and "ess_bulk" in text
    assert (out / "trace.png").stat().st_size > 10_000
    assert (out / "forest.png").stat().st_size > 10_000
