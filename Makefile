# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@ $(VENV)/.installed

## demo: create the virtualenv, install forgeml, run the whole job on the embedded workspace
demo: $(VENV)/.installed
	$(BIN)/forgeml quickstart

## test: install with the test extras, check style, run the whole test suite
## (two worker processes, one per core; a test file stays on one worker)
test: $(VENV)/.installed-dev lint
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=30

## lint: style, formatting, layers and import circles (tools/check_layers.py), types (mypy)
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/python tools/check_layers.py
	$(BIN)/mypy

## bench: the benchmarks in benchmarks/ (needs the bench extra)
bench: $(VENV)/.installed-dev
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	$(BIN)/python benchmarks/tracking.py
	$(BIN)/python benchmarks/budgets.py

clean:
	rm -rf $(VENV) .forgeml
