# poreml — set-up and everyday commands. Every target creates .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run demo test lint bench dataset champion ui clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: the local CPU wheel; an unpinned torch would pull GBs of CUDA.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

## main job: a campaign on the virtual lab, tracked in the embedded MLflow store
run: $(STAMP)
	$(BIN)/poreml lab demo

## the test suite (ruff included)
test: $(STAMP)
	$(BIN)/ruff check poreml tests
	$(BIN)/ruff format --check poreml tests
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check poreml tests
	$(BIN)/ruff format --check poreml tests

## benchmarks (not tests): results land in experiments/results/
bench: $(STAMP)
	$(BIN)/python experiments/bench_virtual_lab.py

dataset: $(STAMP)
	$(BIN)/poreml data build

clean-venv:
	rm -rf $(VENV)
