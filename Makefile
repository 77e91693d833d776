# Keepwell: every target installs what it needs into .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
WORKSPACE ?= workspace
KW := $(BIN)/keepwell --workspace $(WORKSPACE)
# Nothing leaves the machine: usage telemetry of MLflow and BentoML is off.
export DO_NOT_TRACK := 1
export BENTOML_DO_NOT_TRACK := True
export MLFLOW_DISABLE_TELEMETRY := true

.DEFAULT_GOAL := help
.PHONY: help install browser demo test test-slow bench lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(VENV)/.installed  ## create .venv and install Keepwell with its pinned dependencies

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

DEMO_AS_OF ?= 2025-10-01
DEMO_KPI_FROM ?= 2025-01-01
DEMO_KPI_TO ?= 2026-01-01

demo: install  ## run the whole job end to end on the demo bank
	$(KW) demo-data
	$(KW) validate $(WORKSPACE)/data/demo
	$(KW) features build --as-of $(DEMO_AS_OF) --months 12
	$(KW) features materialize
	$(KW) train
	$(KW) promote
	$(KW) plan
	$(KW) kpi --from $(DEMO_KPI_FROM) --to $(DEMO_KPI_TO)
	@echo ""
	@echo "models:        keepwell-churn and keepwell-complaint @champion in $(WORKSPACE)/mlflow.db;" \
	      "evaluation and model cards in $(WORKSPACE)/reports"
	@echo "lists:         $(WORKSPACE)/lists/$$(ls $(WORKSPACE)/lists | tail -1)/ (one CSV and Parquet per RM, summary.json)"
	@echo "KPI report:    $(WORKSPACE)/reports/kpi/$(DEMO_KPI_FROM)_$(DEMO_KPI_TO)/kpi.html (and kpi.json)"
	@echo "RM page:       $(KW) keys create --role rm:RM00000   # prints an RM's sign-in token"
	@echo "               $(KW) serve                           # then open http://127.0.0.1:3000/rm"

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:  ## install Debian's chromium for the browser test (skipped, with a reason, without it)
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium \
	  >/dev/null; } || echo "could not install chromium: the browser test will be skipped"

test: lint browser  ## lint, then run the default test suite (code, data and model tiers)
	$(BIN)/python -m pytest

test-slow: install  ## run the slow checks (scale, load) as well
	$(BIN)/python -m pytest -m "slow or not slow"

bench: install  ## run the benchmarks and rewrite docs/benchmarks.md
	$(BIN)/python -m bench.run

lint: install  ## ruff check, format check and the import contracts (.importlinter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install  ## ruff fix and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:  ## remove the workspace (generated data, models, lists)
	rm -rf $(WORKSPACE)
