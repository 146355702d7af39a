# apr-env: `make run` (set up + main job) and `make test` (set up + test suite).
# `make setup` is idempotent: it only reinstalls when pyproject.toml changed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.apr-env-installed

.PHONY: setup run test bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch first: otherwise a dependency's torch requirement pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: setup
	$(VENV)/bin/apr-env bench

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

bench: setup
	$(PY) -m pytest benchmarks --benchmark-enable --benchmark-only
	$(PY) benchmarks/side_by_side.py
	$(PY) benchmarks/action_size_side_by_side.py
	$(PY) benchmarks/agents_side_by_side.py
	$(PY) benchmarks/decode_side_by_side.py
	$(PY) benchmarks/runtime_side_by_side.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .benchmarks
