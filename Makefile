# `make demo` and `make test` work on a fresh machine with only python3 (>= 3.11): each creates .venv
# and installs what it needs; a stamp per extra, newer than pyproject.toml, makes re-runs instant.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help demo test lint migrate openapi serve worker clean

help:
	@echo "make demo     migrate the embedded SQLite database (.cloudwizard/) and start the API on http://$(HOST):$(PORT)"
	@echo "make test     lint, then run the whole test suite (SQLite, or CW_TEST_DATABASE_URL / CW_TEST_REDIS_URL)"
	@echo "make lint     ruff check app tests"
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

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@ $(VENV)/.installed-base

# The demo always uses the embedded default (SQLite file and signing key in .cloudwizard/, jobs in-process),
# whatever CW_DATABASE_URL / CW_REDIS_URL this shell has.
demo: $(VENV)/.installed-base
	env -u CW_DATABASE_URL -u CW_REDIS_URL CW_DATA_DIR=.cloudwizard $(BIN)/cloudwizard migrate
	@echo "Starting the API: docs at http://$(HOST):$(PORT)/docs (Ctrl-C to stop)"
	env -u CW_DATABASE_URL -u CW_REDIS_URL CW_DATA_DIR=.cloudwizard $(BIN)/cloudwizard serve --host $(HOST) --port $(PORT)

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
