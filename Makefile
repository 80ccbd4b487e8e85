# poreml — set-up and everyday commands. Every target creates .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

CAMPAIGN_CONFIG ?= experiments/campaign_td_vs_buffering.toml
ROUNDS          ?= 6
CAMPAIGN_DIR    ?= campaigns/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: run demo test lint bench bench-lab bench-surrogates bench-campaign bench-api \
        bench-characterised bench-gpu reliability dataset champion ui clean-venv services \
        services-stop integration

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: the local CPU wheel; an unpinned torch would pull GBs of CUDA.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,team]"
	@touch $(STAMP)

## main job: a campaign on the virtual lab, tracked in the embedded MLflow store
run: $(STAMP)
	$(BIN)/poreml campaign init $(CAMPAIGN_DIR) --config $(CAMPAIGN_CONFIG)
	$(BIN)/poreml campaign run $(CAMPAIGN_DIR) --oracle virtual-lab --rounds $(ROUNDS)

## a quick look at the virtual lab: measures a batch of designs and prints a table
demo: $(STAMP)
	$(BIN)/poreml lab demo

## the test suite (ruff included)
test: $(STAMP)
	$(BIN)/ruff check poreml tests
	$(BIN)/ruff format --check poreml tests
	# one BLAS/torch thread per xdist worker: two workers x two threads thrash a 2-core machine
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile

## integration tests against the team services (start them first: make services)
integration: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -m integration tests/integration

lint: $(STAMP)
	$(BIN)/ruff check poreml tests
	$(BIN)/ruff format --check poreml tests

## benchmarks (not tests): results land in experiments/results/ and are quoted in the README
bench: bench-lab bench-surrogates bench-api bench-campaign bench-characterised

bench-lab: $(STAMP)
	$(BIN)/python experiments/bench_virtual_lab.py

bench-surrogates: $(STAMP)
	$(BIN)/python experiments/bench_surrogates.py

bench-api: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python experiments/bench_api.py

bench-campaign: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[ax]"
	$(BIN)/python experiments/bench_campaign.py

bench-characterised: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python experiments/bench_characterised.py

## deep-ensemble training and batched qLogNEHVI, CUDA vs CPU (CPU figures only without a GPU);
## not part of `bench`: on a CPU-only machine it would overwrite the GPU comparison
bench-gpu: $(STAMP)
	$(BIN)/python experiments/bench_gpu.py

## kill -9 / concurrency / PostgreSQL restart / API load on loopback (starts its own PostgreSQL)
reliability: $(STAMP)
	$(BIN)/python experiments/reliability.py

## rebuild datasets/porous_sic.csv from datasets/raw/ (byte-identical on every run)
dataset: $(STAMP)
	$(BIN)/poreml data build

## rebuild the shipped champion surrogate under models/champion
champion: $(STAMP)
	$(BIN)/poreml train --model cascade --data virtual-lab --n 256 --seed 0 --out models/champion

## browse runs and registered models in the MLflow UI (embedded SQLite store)
ui: $(STAMP)
	$(BIN)/poreml ui

## team services on loopback: PostgreSQL + an MLflow tracking server (see README, Team set-up)
services: $(STAMP)
	scripts/services.sh start

services-stop:
	scripts/services.sh stop

clean-venv:
	rm -rf $(VENV)
