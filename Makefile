# Each target sets itself up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.probkit-installed
export JAX_PLATFORMS ?= cpu

.PHONY: setup demo test test-slow test-all bench docs gallery lint format clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch: the CPU build on this disk (DEVELOPERS.md); a bare botorch install
	# would pull a multi-GB CUDA build instead.
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[bo,llm,enum,dev,docs]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/probkit demo

# The test suite without the statistical tests marked slow (CI runs those too:
# `make test-slow`). pytest exits with 5 when it collects no tests: not a failure.
test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 -m "not slow" --durations=15; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

test-slow: setup
	$(BIN)/python -m pytest -q -n 2 -m slow --durations=15

test-all: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --durations=15

bench: setup
	$(BIN)/python -m pip install --quiet "torch==2.13.0" -e ".[bench]"
	$(BIN)/python -m pip install --quiet --no-deps "torchgfn>=2.4"
	for script in benchmarks/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

docs: setup
	$(BIN)/mkdocs build --strict

# Runs every example (about half an hour on two cores) and rewrites docs/examples/.
gallery: setup
	$(BIN)/python scripts/gallery.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) site probkit-demo .pytest_cache
