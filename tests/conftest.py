"""Shared test settings: CPU JAX, quiet progress bars, fixed seeds in each test."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
