# vpbx: two commands on a fresh machine with Python 3.11+.
#   make run   - create .venv, install, start the PBX on SQLite with the demo domain (127.0.0.1:8080)
#   make test  - install the test dependencies, run ruff, mypy and the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint bench fuzz install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'

run: install
	$(BIN)/vpbx serve --host $(HOST) --port $(PORT) --allow-private-crm  # the demo's CRM runs on this machine

lint: install-test
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q -n $(or $(JOBS),auto)

# Each benchmark prints both sides of its ratio (vpbx and its limit, measured in the same run) on SQLite and on
# PostgreSQL (VPBX_BENCH_PG_URL, else the local server the tests use). wrk is the load generator (Debian: wrk).
bench: install-test
	command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(BIN)/python bench/api_reads.py
	$(BIN)/python bench/history.py
	if [ -f bench/writes.py ]; then $(BIN)/python bench/writes.py; fi

# Schemathesis over every operation, 50,000 cases per backend (FUZZ_BACKEND=sqlite, postgres or both).
FUZZ_BACKEND ?= sqlite
fuzz: install-test
	$(BIN)/python bench/fuzz.py --cases 50000 --backend $(FUZZ_BACKEND)

clean:
	rm -rf $(VENV) .vpbx .mypy_cache .ruff_cache
