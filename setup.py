"""Package layout that pyproject.toml alone cannot express.

`probkit.models` lives in the top-level folder `models/` (docs/guide/architecture.md). It is mapped
here so that both `pip install .` and `pip install -e .` import it as
`probkit.models`, and no top-level package called `models` is ever installed.
"""

from setuptools import find_packages, setup

core = find_packages(include=["probkit", "probkit.*"])
models = ["probkit.models"] + [f"probkit.models.{name}" for name in find_packages("models")]

setup(
    packages=core + models,
    package_dir={"probkit.models": "models"},
    package_data={"probkit.models": ["data/**/*", "data/*"], "probkit": ["py.typed"]},
    include_package_data=True,
)
