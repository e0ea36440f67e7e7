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


def test_kernel_names_match_probkit_mcmc():
    import probkit as pk
    from probkit.cli import KERNEL_NAMES

    assert sorted(KERNEL_NAMES) == sorted(pk.mcmc.KERNELS)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--chains", "0"], "--chains: must be at least 1"),
        (["--chains", "two"], "--chains: expected a whole number"),
        (["--draws", "-5"], "--draws: must be at least 1"),
        (["--warmup", "-1"], "--warmup: must be 0 or more"),
        (["--kernel", "nutz"], "--kernel: invalid choice: 'nutz'"),
        (["--mass-matrix", "full"], "--mass-matrix: invalid choice"),
        (["--target-accept", "1.5"], "--target-accept: must lie strictly between 0 and 1"),
    ],
)
def test_bad_options_are_refused_before_loading_the_model(tmp_path, capsys, options, message):
    # The model file does not even exist: the options are checked first.
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", f"{tmp_path / 'missing.py'}:model", *options])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("{tmp}", "is a folder"),
        ("{tmp}/no/such/folder/r.nc", "does not exist"),
    ],
)
def test_unwritable_out_is_refused_before_sampling(tmp_path, out, message):
    (tmp_path / "m.py").write_text(MODEL_FILE)
    with pytest.raises(SystemExit, match=message):
        main(["sample", f"{tmp_path / 'm.py'}:model", "--out", out.format(tmp=tmp_path)])


def test_demo_out_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "plots").write_text("")
    with pytest.raises(SystemExit, match="--out .* is a file"):
        main(["demo", "--out", str(tmp_path / "plots")])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("null", "key 'y' is null"),
        ('"abc"', "key 'y' is a string"),
        ("[1.0, [2.0, 3.0]]", "key 'y' is a ragged list"),
        ("[1.0, null]", "key 'y' is a ragged list or holds null"),
        ('["a", "b"]', "key 'y' holds"),
        ('{"a": 1}', "key 'y' is a JSON object"),
    ],
)
def test_bad_data_values_name_the_key(tmp_path, value, message):
    (tmp_path / "m.py").write_text(MODEL_FILE)
    (tmp_path / "d.json").write_text('{"y": %s, "scale": 1.0}' % value)  # noqa: UP031
    with pytest.raises(SystemExit, match=message):
        main(["sample", f"{tmp_path / 'm.py'}:model", "--data", str(tmp_path / "d.json")])


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("probkit ")
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    text = capsys.readouterr().out
    for option in ("--kernel", "--mass-matrix", "--target-accept", "--chains", "--out"):
        assert option in text
    assert "default: nuts" in text


def test_a_failed_write_after_sampling_falls_back(tmp_path, monkeypatch, capsys):
    from probkit import cli

    class Data:
        def __init__(self):
            self.calls = []

        def to_netcdf(self, path):
            self.calls.append(path)
            if len(self.calls) == 1:
                raise OSError("disk full")
            open(path, "w").close()

    monkeypatch.chdir(tmp_path)
    data = Data()
    written = cli._write_netcdf(data, tmp_path / "r.nc")
    assert written.parent == tmp_path and written.name.startswith("probkit-result-")
    assert written.exists()
    assert "Saved the run to" in capsys.readouterr().err
