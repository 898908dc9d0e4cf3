# Every Millrace workflow is a target here. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
MILLRACE := $(VENV)/bin/millrace
STAMP := $(VENV)/.installed

.PHONY: help install lint format contracts contracts-check test test-unit test-integration test-e2e \
        bench bench-install bench-telemetry demo infra-up infra-down infra-status topics up down clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-18s %s\n",$$1,$$2}'

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q "uv==$(UV_VERSION)"
	$(UV) pip sync -q -p $(PY) requirements.lock
	$(UV) pip install -q -p $(PY) --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned dependencies (requirements.lock)

lock: ## re-resolve requirements.lock from pyproject.toml
	@test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q "uv==$(UV_VERSION)"; }
	$(UV) pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
	$(UV) pip compile -q pyproject.toml --extra dev --extra bench --python-version 3.11 \
		-o requirements-bench.lock

lint: install ## ruff and mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Quix Streams pins pydantic-settings below the project's lock, so the benchmark gets its own
# venv (project + bench extra, requirements-bench.lock); `make install` / `make test` never need it.
BENCH_VENV := .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml requirements-bench.lock $(STAMP)
	@test -x $(BENCH_PY) || $(PYTHON) -m venv $(BENCH_VENV)
	$(UV) pip sync -q -p $(BENCH_PY) requirements-bench.lock
	$(UV) pip install -q -p $(BENCH_PY) --no-deps -e .
	@touch $(BENCH_STAMP)

bench-install: $(BENCH_STAMP) ## a separate .venv-bench with the bench extra (Quix Streams), from requirements-bench.lock

bench-telemetry: bench-install ## telemetry hot path vs aiokafka ceiling vs Quix Streams on a local Kafka (30-40 min)
	$(BENCH_PY) -m bench.telemetry

bench: bench-telemetry ## every benchmark

.PHONY: bench-orders
bench-orders: install ## orders intake: 60 s of POSTs vs a no-op route of the same app -> bench/results/orders.json
	$(PY) -m bench.orders

.PHONY: bench-scheduling
bench-scheduling: install ## solver quality: millrace schedule solve vs plain CP-SAT (10 s, 2 workers) on public instances, 5,000-operation scale -> bench/results/scheduling.json (~12 min)
	$(PY) -m bench.scheduling

.PHONY: chaos
chaos: install ## chaos run: plant loop under load, services SIGKILLed 10x each, broker and PostgreSQL restarted, invariants checked -> bench/results/chaos.json (CHAOS_DURATION_S, CHAOS_SEED)
	$(PY) -m bench.chaos

contracts: install ## regenerate JSON Schemas, AsyncAPI and the generated topic resources
	$(MILLRACE) contracts generate

contracts-check: install ## fail when committed schemas drift or break compatibility with main
	$(MILLRACE) contracts check

test: install lint contracts-check ## everything: lint, contract checks, unit, integration and e2e tests (real Kafka + PostgreSQL)
	$(PY) -m pytest -q -ra

test-unit: install ## unit tests only (no infrastructure)
	$(PY) -m pytest -q tests/unit

test-integration: install ## integration and e2e tests on real Kafka + PostgreSQL
	$(PY) -m pytest -q tests/integration tests/e2e

demo: install ## the main job: local Kafka + PostgreSQL, topics, telemetry service, simulator, live view
	$(MILLRACE) demo

infra-up: install ## start the local Kafka broker and PostgreSQL (no Docker)
	$(MILLRACE) infra up

infra-down: install ## stop them
	$(MILLRACE) infra down

infra-status: install ## show whether they run
	$(MILLRACE) infra status

topics: install ## create every topic of the manifest on MILLRACE_KAFKA_BOOTSTRAP
	$(MILLRACE) topics

up: ## docker compose: the whole stack
	docker compose up --build -d

down: ## docker compose: stop it
	docker compose down

clean: ## remove local state (.run/) and caches, keep the Kafka jar cache
	rm -rf .run .venv-bench .mypy_cache .ruff_cache .pytest_cache
