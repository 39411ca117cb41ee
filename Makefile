# `make demo` and `make test` work on a fresh machine with only python3 (>= 3.11): each creates .venv
# and installs what it needs; a stamp per extra, newer than pyproject.toml, makes re-runs instant.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
DEMO_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help demo test lint migrate openapi serve worker clean

help:
	@echo "make demo     scan a simulated AWS account through the real API (embedded SQLite in .cloudwizard/) and"
	@echo "              download its exports; DEMO_ARGS=--serve keeps the API running afterwards"
	@echo "make test     lint, then run the whole test suite (SQLite, or CW_TEST_DATABASE_URL / CW_TEST_REDIS_URL)"
	@echo "make lint     ruff check app tests"
	@echo "make serve    start the API on http://$(HOST):$(PORT) (database: CW_DATABASE_URL, default .cloudwizard/)"
	@echo "make migrate  apply migrations to the database CW_DATABASE_URL names (default: .cloudwizard/)"
	@echo "make openapi  write openapi.json"
	@echo "make clean    remove .venv and caches (keeps .cloudwizard/)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "CloudWizard needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	@touch $@

# The demo's simulated AWS account needs moto (the `demo` extra).
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[demo]'
	@touch $@ $(VENV)/.installed-base

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@ $(VENV)/.installed-base

# The demo always uses the embedded default (SQLite file and signing key in .cloudwizard/, jobs in-process),
# whatever CW_DATABASE_URL / CW_REDIS_URL this shell has. It migrates the database itself.
demo: $(VENV)/.installed-demo
	env -u CW_DATABASE_URL -u CW_REDIS_URL CW_DATA_DIR=.cloudwizard $(BIN)/cloudwizard demo $(DEMO_ARGS)

test: $(VENV)/.installed-test
	$(BIN)/ruff check app tests
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check app tests

migrate: $(VENV)/.installed-base
	$(BIN)/cloudwizard migrate

serve: $(VENV)/.installed-base
	$(BIN)/cloudwizard serve --host $(HOST) --port $(PORT)

worker: $(VENV)/.installed-base
	$(BIN)/cloudwizard worker

openapi: $(VENV)/.installed-base
	$(BIN)/cloudwizard openapi --output openapi.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info
