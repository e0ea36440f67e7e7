"""The ``probkit`` command: ``probkit demo`` and ``probkit sample``.

Examples (shell)::

    probkit demo
    probkit sample my_model.py:model --data data.json --chains 4 --out result.nc
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import warnings
from pathlib import Path

__all__ = ["main"]

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
    import numpy as np

    def convert(value):
        if isinstance(value, list):
            array = np.asarray(value)
            return array.astype(np.float32) if array.dtype.kind == "f" else array.astype(np.int32)
        return value

    return {k: convert(v) for k, v in data.items()}


def _print_summary(result) -> None:
    import pandas as pd

    with pd.option_context(
        "display.width", 200, "display.max_rows", 200, "display.max_columns", 20
    ):
        print(result.summary())


def demo(args: argparse.Namespace) -> int:
    """Fit eight schools (non-centred) with NUTS, print the summary, write plots."""
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
    print(f"\n{args.chains} chains x {args.draws} draws with NUTS in {result.seconds:.1f} s\n")
    _print_summary(result)
    print()
    for line in _EXPLANATIONS:
        print("- " + line)
    n_div = int(result.stats["diverging"].sum())
    print(f"\nThis run: {n_div} divergences.")
    problems = result.diagnose(emit=False)
    print("Diagnostics: " + ("all clear." if not problems else "\n  ".join(["", *problems])))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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


def sample(args: argparse.Namespace) -> int:
    """Sample any NumPyro model from a file and write NetCDF."""
    import probkit as pk

    model = _load_model(args.model)
    data = _load_data(args.data)
    try:
        target = pk.from_numpyro(model, **data)
        result = pk.mcmc.sample(
            target,
            kernel=args.kernel,
            num_chains=args.chains,
            num_warmup=args.warmup,
            num_samples=args.draws,
            seed=args.seed,
            progress_bar=not args.no_progress,
            diagnose=False,  # printed below, after the summary
        )
    except (TypeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _print_summary(result)
    for message in result.diagnose(emit=False):
        print("warning: " + message)
    idata = result.to_arviz()
    idata.to_netcdf(args.out)
    print(f"Wrote {args.out}.")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="probkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, chains=4, warmup=1000, draws=1000):
        p.add_argument("--chains", type=int, default=chains)
        p.add_argument("--warmup", type=int, default=warmup)
        p.add_argument("--draws", type=int, default=draws)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p_demo = sub.add_parser("demo", help="fit eight schools with NUTS and write plots")
    common(p_demo)
    p_demo.add_argument("--out", default="probkit-demo", help="folder for the plots")
    p_demo.set_defaults(func=demo)

    p_sample = sub.add_parser("sample", help="sample a NumPyro model in a file")
    p_sample.add_argument("model", help="FILE.py:FUNCTION")
    p_sample.add_argument("--data", help="JSON object of keyword arguments for the model")
    p_sample.add_argument("--kernel", default="nuts")
    p_sample.add_argument("--out", default="result.nc", help="NetCDF output path")
    common(p_sample)
    p_sample.set_defaults(func=sample)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``probkit`` command."""
    args = _parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
