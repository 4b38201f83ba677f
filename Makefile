# The two commands of the README:
#   make demo   set up and run duban on the embedded default (SQLite, demo mode, example plan)
#   make test   run the whole test suite (PostgreSQL half when DUBAN_TEST_POSTGRES_URL is set)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin

# CI runs the suite once more with the clock of every Python process at night in Beijing
NIGHT ?= 2026-12-01T03:30:00+08:00

.PHONY: demo test test-night lint install clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,lint]"
	touch $@

demo: install
	DUBAN_DEMO=1 $(BIN)/duban demo --serve

test: install
	$(BIN)/python -m pytest -n 2

# ruff (lint and format) on the whole tree, mypy on the four packages (pyproject.toml configures both)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-night: install
	$(BIN)/python -m tests.clock $(NIGHT) -- $(BIN)/python -m pytest -n 2

clean:
	rm -rf $(VENV) .duban .pytest_cache
