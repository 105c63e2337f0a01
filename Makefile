# Two commands for a newcomer on a fresh machine:
#   make demo   - the example DAG end to end against the local AMC emulator (no AMC account, no Docker)
#   make test   - set-up + lint + type check + every test (unit, integration, end-to-end)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest postgres redis browser venv clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

postgres:
	@bash scripts/ensure_postgres.sh

redis:
	@bash scripts/ensure_redis.sh

# The trigger-form test drives Debian's chromium + chromedriver (installed here if missing).
browser:
	@bash scripts/ensure_browser.sh

lint: venv
	$(BIN)/ruff check airflow_provider_amc tests dags bench scripts
	$(BIN)/ruff format --check airflow_provider_amc tests dags bench scripts

typecheck: venv
	$(BIN)/mypy airflow_provider_amc

pytest: venv postgres redis browser
	$(BIN)/pytest -q -ra $(PYTEST_ARGS)

test: lint typecheck pytest

demo: venv
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo
