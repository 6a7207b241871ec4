# vpbx: two commands on a fresh machine with Python 3.11+.
#   make run   - create .venv, install, start the PBX on SQLite with the demo domain (127.0.0.1:8080)
#   make test  - install the test dependencies, run ruff, mypy and the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint bench install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'

run: install
	$(BIN)/vpbx serve --host $(HOST) --port $(PORT)

lint: install-test
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

bench: install-test
	$(BIN)/python bench/api_reads.py

clean:
	rm -rf $(VENV) .vpbx .mypy_cache .ruff_cache
