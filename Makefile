# carrisk: two commands on a fresh machine with Python >= 3.11 and make.
#   make demo   set up .venv, install carrisk, run the main job on the embedded default
#   make test   set up .venv, install carrisk with test extras, run the test suite
# CI (.ci/run) also runs: make lint, make typecheck, make wheel-test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint typecheck wheel-test bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/carrisk demo --out demo-output

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The development loop: everything but the tests marked slow.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Build the sdist and wheel, install the wheel in a fresh venv, predict the example patients from another directory.
wheel-test: $(STAMP)
	$(BIN)/python tools/wheel_test.py

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python -m benchmarks

bench-quick: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache
