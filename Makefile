# Two entry points a new user needs; both create the virtual environment on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/maelab: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

.PHONY: setup demo quickstart test test-fast lint
setup: $(BIN)/maelab

demo: setup            ## the main job: the theory study on the embedded synthetic data + HTML report
	$(BIN)/maelab demo

quickstart: setup      ## one short pretraining run (loss, checkpoint, reconstruction PNG)
	$(BIN)/maelab pretrain -c quickstart

test: setup            ## the whole test suite (fast + slow), as CI runs it
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check maelab tests benchmarks
	$(BIN)/ruff format --check maelab tests benchmarks
