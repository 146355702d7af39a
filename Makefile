# apr-env: `make run` (set up + main job) and `make test` (set up + test suite).
# `make setup` is idempotent: it only reinstalls when pyproject.toml changed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.apr-env-installed
SGLANG_FRONTEND_DEPS := orjson pybase64 requests urllib3 charset-normalizer idna certifi msgspec pyzmq \
	ipython traitlets aiohttp multidict attrs yarl propcache aiohappyeyeballs aiosignal frozenlist triton

.PHONY: setup run test bench lint mutation clean paper

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch first: otherwise a dependency's torch requirement pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	# SGLang's frontend for the interop tests, without its server's dependencies (CUDA kernels,
	# vLLM-size wheels); only the modules `import sglang` needs. triton is imported at module level.
	$(PY) -m pip install -q --no-deps sglang==0.5.23 $(SGLANG_FRONTEND_DEPS)
	touch $(STAMP)

run: setup
	$(VENV)/bin/apr-env bench

# The paper experiment at CPU scale (hours; resumable: rerun to continue). See README.
paper: setup
	$(VENV)/bin/apr-env experiment paper --scale cpu --out runs/paper_cpu --resume

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

# Mutation testing of the core modules (not part of `make test`; about half an hour on 2 cores): a fresh
# mutmut run per module, a score table, and benchmarks/results/mutation.json.
mutation: setup
	$(PY) benchmarks/mutation.py --jobs 2 --write

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .benchmarks mutants
