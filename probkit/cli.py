"""The ``probkit`` command: ``probkit demo`` and ``probkit sample``.

Examples (shell)::

    probkit demo
    probkit sample my_model.py:model --data data.json --chains 4 --out result.nc
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

__all__ = ["main"]

# The kernel names of probkit.mcmc (tests/test_cli.py checks they agree), listed here
# so that `probkit sample --help` and the argument checks need no JAX import.
KERNEL_NAMES = ("nuts", "hmc", "mala", "rwm", "chees", "meads")
MASS_MATRICES = ("diag", "dense", "low_rank")

_EXPLANATIONS = (
    "r_hat: compares the spread within each chain to the spread between chains; "
    "values above 1.01 mean the chains have not yet agreed on one distribution.",
    "ess_bulk / ess_tail: how many independent draws the correlated chain is worth "
    "for the centre and for the tails; a few hundred is enough for means and 90% "
    "intervals.",
    "divergences: transitions where the simulated trajectory blew up because the "
    "posterior curves too sharply there; any of them means the draws may be biased.",
)


def _load_model(spec: str):
    """``path/to/file.py:function`` -> the function."""
    if ":" not in spec:
        raise SystemExit(
            f"error: MODEL must look like FILE.py:FUNCTION (e.g. models.py:model), got {spec!r}."
        )
    path_text, name = spec.rsplit(":", 1)
    path = Path(path_text)
    if not path.is_file():
        raise SystemExit(f"error: model file {path} does not exist.")
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    if not hasattr(module, name):
        functions = sorted(
            k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
        )
        raise SystemExit(f"error: {path} defines no {name!r}; it defines {functions}.")
    return getattr(module, name)


def _load_data(path: str | None) -> dict:
    if path is None:
        return {}
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise SystemExit(f"error: data file {path} does not exist.") from None
    except json.JSONDecodeError as err:
        raise SystemExit(f"error: {path} is not valid JSON ({err}).") from None
    if not isinstance(data, dict):
        raise SystemExit(
            f"error: {path} must hold a JSON object of keyword arguments for the model, "
            f"got a {type(data).__name__}."
        )
    return {key: _convert_value(key, value, path) for key, value in data.items()}


def _convert_value(key: str, value, path: str):
    """A JSON value -> what the model receives; a clear error for what no model can take."""
    import numpy as np

    expected = (
        "a number, a boolean, or a (nested) list of numbers with the same length at every level"
    )
    if value is None:
        raise SystemExit(f"error: {path}: key {key!r} is null; expected {expected}.")
    if isinstance(value, str):
        raise SystemExit(
            f"error: {path}: key {key!r} is a string ({value!r}); expected {expected}. "
            "Encode categories as integers."
        )
    if isinstance(value, dict):
        raise SystemExit(f"error: {path}: key {key!r} is a JSON object; expected {expected}.")
    if not isinstance(value, list):
        return value  # a number or a boolean, passed as it is
    try:
        array = np.asarray(value)
    except ValueError:  # numpy refuses ragged nesting
        array = np.asarray(value, dtype=object)
    if array.dtype == object:
        raise SystemExit(
            f"error: {path}: key {key!r} is a ragged list or holds null or mixed values; "
            f"expected {expected}."
        )
    if array.dtype.kind not in "biuf":
        raise SystemExit(
            f"error: {path}: key {key!r} holds {array.dtype.kind!r}-kind values "
            f"(e.g. strings); expected {expected}."
        )
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise SystemExit(f"error: {path}: key {key!r} holds non-finite numbers.")
        return array.astype(np.float32)
    if array.dtype.kind == "b":
        return array
    return array.astype(np.int32)


def _check_output_file(path_text: str, option: str = "--out") -> Path:
    """Refuse an output path that cannot be written, before any sampling."""
    path = Path(path_text)
    if path.is_dir():
        raise SystemExit(
            f"error: {option} {path_text} is a folder; give a file name, e.g. {path / 'result.nc'}."
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise SystemExit(
            f"error: {option} {path_text}: the folder {parent} does not exist; create it "
            "first or choose another path."
        )
    reason = _cannot_write_in(parent)
    if reason:
        raise SystemExit(f"error: {option} {path_text}: cannot write in {parent} ({reason}).")
    if path.exists() and not os.access(path, os.W_OK):
        raise SystemExit(f"error: {option} {path_text} exists and is not writable.")
    return path


def _check_output_folder(path_text: str, option: str = "--out") -> Path:
    path = Path(path_text)
    if path.exists() and not path.is_dir():
        raise SystemExit(f"error: {option} {path_text} is a file; give a folder for the plots.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SystemExit(f"error: {option} {path_text} cannot be created ({err}).") from None
    reason = _cannot_write_in(path)
    if reason:
        raise SystemExit(f"error: {option} {path_text}: cannot write in it ({reason}).")
    return path


def _cannot_write_in(folder: Path) -> str | None:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probkit-probe-"):
            pass
    except OSError as err:
        return f"{type(err).__name__}: {err.strerror or err}"
    return None


def _write_netcdf(idata, path: Path) -> Path:
    """Write ``idata``; if that fails, write it to a fallback file and say where.

    A finished run is never thrown away: the fallback is in the current folder, then
    in the temporary folder.
    """
    try:
        idata.to_netcdf(str(path))
        return path
    except Exception as err:  # noqa: BLE001 - any failure to write falls back
        print(f"error: could not write {path} ({type(err).__name__}: {err}).", file=sys.stderr)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in (Path.cwd(), Path(tempfile.gettempdir())):
        fallback = folder / f"probkit-result-{stamp}.nc"
        try:
            idata.to_netcdf(str(fallback))
        except Exception:  # noqa: BLE001, S112 - try the next folder
            continue
        print(f"Saved the run to {fallback} instead.", file=sys.stderr)
        return fallback
    raise SystemExit("error: could not save the run anywhere (current and temporary folder).")


def _print_summary(result) -> None:
    import pandas as pd

    with pd.option_context(
        "display.width", 200, "display.max_rows", 200, "display.max_columns", 20
    ):
        print(result.summary())


def demo(args: argparse.Namespace) -> int:
    """Fit eight schools (non-centred) with NUTS, print the summary, write plots."""
    out = _check_output_folder(args.out)
    _say("Importing probkit, JAX and ArviZ ...")
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import probkit as pk
    from probkit.models import posteriordb

    posterior = posteriordb.load("eight_schools-eight_schools_noncentered")
    print("probkit demo: eight schools, non-centred (Rubin 1981; posteriordb reference)")
    print("  mu ~ N(0, 5), tau ~ HalfCauchy(5), theta_trans[j] ~ N(0, 1),")
    print("  theta[j] = mu + tau * theta_trans[j], y[j] ~ N(theta[j], sigma[j])\n")
    target = pk.from_numpyro(posterior.model, **posterior.data)
    print(
        f"Compiling, then {args.warmup} warm-up iterations per chain (step size and mass "
        "matrix adaptation), then sampling:"
    )
    try:
        result = pk.mcmc.sample(
            target,
            kernel="nuts",
            num_chains=args.chains,
            num_warmup=args.warmup,
            num_samples=args.draws,
            seed=args.seed,
            target_accept=0.95,
            progress_bar=not args.no_progress,
            diagnose=False,  # the demo prints the diagnostics itself
        )
    except KeyboardInterrupt as err:
        return _interrupted(err, out / "partial.nc")
    print(f"\n{args.chains} chains x {args.draws} draws with NUTS in {result.seconds:.1f} s\n")
    _print_summary(result)
    print()
    for line in _EXPLANATIONS:
        print("- " + line)
    n_div = int(result.stats["diverging"].sum())
    print(f"\nThis run: {n_div} divergences.")
    _print_diagnostics(result.diagnose(emit=False))

    idata = result.to_arviz()
    az.plot_trace(idata, var_names=["mu", "tau"])
    plt.tight_layout()
    plt.savefig(out / "trace.png", dpi=100)
    plt.close("all")
    az.plot_forest(idata, var_names=["theta"], combined=True, hdi_prob=0.9)
    plt.tight_layout()
    plt.savefig(out / "forest.png", dpi=100)
    plt.close("all")
    print(f"\nWrote {out / 'trace.png'} and {out / 'forest.png'}.")
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _print_diagnostics(problems: list[str]) -> None:
    """Diagnostics that say the answer may be wrong, framed so that no one misses them."""
    if not problems:
        print("Diagnostics: all clear (R-hat, effective sample sizes, divergences).")
        return
    rule = "!" * 78
    _say(rule)
    _say("WARNING: the diagnostics say these draws may not be reliable:")
    for message in problems:
        _say("  - " + message)
    _say(rule)


def _interrupted(err: KeyboardInterrupt, out: Path | None) -> int:
    """Ctrl-C: keep what was done (a partial result attached to the exception)."""
    partial = getattr(err, "partial_result", None)
    _say(f"\ninterrupted: {err}" if str(err) else "\ninterrupted.")
    if partial is not None and out is not None:
        try:
            written = _write_netcdf(partial.to_arviz(), out)
            _say(f"Kept the draws done so far in {written}.")
        except Exception as save_err:  # noqa: BLE001 - report, never mask the interrupt
            _say(f"could not save the partial run ({save_err}).")
    return 130


def sample(args: argparse.Namespace) -> int:
    """Sample any NumPyro model from a file and write NetCDF."""
    out = _check_output_file(args.out)
    started = time.perf_counter()
    _say(f"Loading {args.model} ...")
    model = _load_model(args.model)
    data = _load_data(args.data)
    _say("Importing probkit, JAX and ArviZ ...")
    # ArviZ writes the result; importing it now (seconds) keeps the save after a
    # Ctrl-C as quick as the stop itself.
    import arviz  # noqa: F401

    import probkit as pk

    try:
        _say("Setting up the model (tracing the log density) ...")
        target = pk.from_numpyro(model, **data)
        _say(
            f"Compiling, then {args.warmup} warm-up and {args.draws} sampling iterations "
            f"for {args.chains} chains with {args.kernel} ..."
        )
        options = {"mass_matrix": args.mass_matrix}
        if args.target_accept is not None:
            options["target_accept"] = args.target_accept
        result = pk.mcmc.sample(
            target,
            kernel=args.kernel,
            num_chains=args.chains,
            num_warmup=args.warmup,
            num_samples=args.draws,
            seed=args.seed,
            progress_bar=not args.no_progress,
            diagnose=False,  # printed below, after the summary
            **options,
        )
    except KeyboardInterrupt as err:
        return _interrupted(err, out)
    except (TypeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _say(f"Done in {time.perf_counter() - started:.1f} s.")
    _print_summary(result)
    _print_diagnostics(result.diagnose(emit=False))
    written = _write_netcdf(result.to_arviz(), out)
    print(f"Wrote {written}.")
    return 0


def _whole_number(minimum: int, requirement: str):
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {value}")
        return value

    return parse


_positive_int = _whole_number(1, "at least 1")
_non_negative_int = _whole_number(0, "0 or more")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not (0.0 < value < 1.0) or math.isnan(value):
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    from probkit import __version__

    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="probkit", description=__doc__.splitlines()[0], formatter_class=formatter
    )
    parser.add_argument("--version", action="version", version=f"probkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p):
        p.add_argument("--chains", type=_positive_int, default=4, help="number of chains")
        p.add_argument(
            "--warmup", type=_non_negative_int, default=1000, help="warm-up iterations per chain"
        )
        p.add_argument("--draws", type=_positive_int, default=1000, help="draws per chain")
        p.add_argument("--seed", type=int, default=0, help="random seed (chain c uses fold_in)")
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p_demo = sub.add_parser(
        "demo",
        help="fit eight schools with NUTS, print the diagnostics, write plots",
        formatter_class=formatter,
    )
    common(p_demo)
    p_demo.add_argument("--out", default="probkit-demo", help="folder for the plots")
    p_demo.set_defaults(func=demo)

    p_sample = sub.add_parser(
        "sample",
        help="sample a NumPyro model in a file and write ArviZ NetCDF",
        formatter_class=formatter,
    )
    p_sample.add_argument("model", help="FILE.py:FUNCTION, a NumPyro model in a file")
    p_sample.add_argument(
        "--data", help="JSON object of keyword arguments for the model (lists become arrays)"
    )
    p_sample.add_argument("--kernel", default="nuts", choices=KERNEL_NAMES, help="MCMC kernel")
    p_sample.add_argument(
        "--mass-matrix",
        default="diag",
        choices=MASS_MATRICES,
        help="metric adapted during warm-up (low_rank: nuts and hmc only)",
    )
    p_sample.add_argument(
        "--target-accept",
        type=_probability,
        default=None,
        help="acceptance rate the step size is tuned to (default: the kernel's own)",
    )
    p_sample.add_argument("--out", default="result.nc", help="NetCDF file to write")
    common(p_sample)
    p_sample.set_defaults(func=sample)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``probkit`` command."""
    args = _parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        return args.func(args)
    except KeyboardInterrupt:  # outside sampling (loading, plotting): nothing to keep
        _say("\ninterrupted.")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
