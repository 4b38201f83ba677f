# The two commands of the README:
#   make demo   set up and run duban on the embedded default (SQLite, demo mode, example plan)
#   make test   run the whole test suite (PostgreSQL half when DUBAN_TEST_POSTGRES_URL is set)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

demo: install
	DUBAN_DEMO=1 $(BIN)/duban demo --serve

test: install
	$(BIN)/python -m pytest -n 2

clean:
	rm -rf $(VENV) .duban .pytest_cache
