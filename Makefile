# The two commands of the README: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast install lint format bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.py pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,examples,pipeline]'
	touch $(STAMP)

install: $(STAMP)

# the guide's worker pipeline: 3 steps x 2 worker processes, one worker and the manager (SIGKILL) killed
# part-way, the manager restarted from its journal: every job completed exactly once
demo: $(STAMP)
	$(BIN)/python -m agentzero.pipeline run --jobs 300 --workers 2 --delay 0.02 --kill-worker-at 0.3 --kill-manager-at 0.5

test: $(STAMP)
	$(BIN)/python -m pytest

# the same suite less the tests marked slow (real processes, large volumes, mypy, the docs build)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/ruff format --check agentzero tests examples benchmarks
	$(BIN)/ruff check agentzero tests examples benchmarks

format: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/ruff format agentzero tests examples benchmarks
	$(BIN)/ruff check --fix agentzero tests examples benchmarks

docs: $(STAMP)
	$(BIN)/python -m sphinx -W -b html docs docs/build/html

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_streaming.py
	$(BIN)/python benchmarks/bench_payloads.py
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_nodegraph.py
	$(BIN)/python benchmarks/bench_registry.py

clean:
	rm -rf $(VENV) build dist *.egg-info docs/build
