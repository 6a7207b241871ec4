# vpbx: two commands on a fresh machine with Python 3.11+.
#   make run   - create .venv, install, start the PBX on SQLite with the demo domain (127.0.0.1:8080)
#   make test  - install the test dependencies, run ruff, mypy and the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint bench fuzz install install-test system-deps clean

# Real peers the SIP and media tests talk to (Debian): sipp, baresip, rtpengine, Kamailio (the SIP bench's limit),
# espeak-ng (default prompts), sox (media conversion), iproute2 (cluster tests across network namespaces),
# chromium (the cabinet's and the example CRM's browser tests, through Playwright).
SYSTEM_TOOLS := sipp:sip-tester baresip:baresip rtpengine:rtpengine-daemon kamailio:kamailio espeak-ng:espeak-ng \
	sox:sox ip:iproute2 socat:socat wrk:wrk chromium:chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Bytecode compiled at install, as pip does for a wheel: an editable install leaves it to the interpreter, which
# never writes it where PYTHONDONTWRITEBYTECODE is set, and then every start compiles vpbx again (0.2 s of 1.3).
install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	$(BIN)/python -m compileall -q src >/dev/null

install-test: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m compileall -q src >/dev/null

run: install
	$(BIN)/vpbx serve --host $(HOST) --port $(PORT) --allow-private-crm --sip 127.0.0.1:5060  # the demo's CRM runs on this machine

lint: install-test
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $${t%%:*} >/dev/null || PATH="$$PATH:/usr/sbin" command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	@# MP3 uploads are decoded by sox's MP3 format (a library, no command to look for).
	@dpkg -s libsox-fmt-mp3 >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsox-fmt-mp3; }

test: lint system-deps
	$(BIN)/python -m pytest -q -n $(or $(JOBS),auto)

# Each benchmark prints both sides of its ratio (vpbx and its limit, measured in the same run) on SQLite and on
# PostgreSQL (VPBX_BENCH_PG_URL, else the local server the tests use). wrk is the load generator (Debian: wrk).
bench: install-test system-deps
	$(BIN)/python bench/api_reads.py
	$(BIN)/python bench/history.py
	$(BIN)/python bench/writes.py
	$(BIN)/python bench/media.py  # concurrent G.711 calls through rtpengine, recorded and not
	$(BIN)/python bench/sip.py  # sipp calls through vpbx's SIP side and through Kamailio
	$(BIN)/python bench/engine_server.py  # /sim/v1/traffic through the server, a loopback CRM, vs a bulk insert
	$(BIN)/python bench/delivery.py -n 5000 && $(BIN)/python bench/delivery.py -n 20000
	pg="$$($(BIN)/python -c 'from vpbx.testing.postgres import url_for_tests as u; print(u() or "")')"; \
	  $(BIN)/python bench/delivery.py -n 5000 --db "$$pg" && $(BIN)/python bench/delivery.py -n 20000 --db "$$pg"
	$(BIN)/python bench/start.py  # vpbx serve to /healthz 200, idle RSS
	for backend in sqlite postgres; do \
	  $(BIN)/python bench/soak.py --minutes $(or $(SOAK_MINUTES),25) --warm 300 --backend $$backend || exit 1; \
	done  # RSS under 600 calls/min, real clock: 20 minutes after a 5-minute warm-up, on each backend

# Schemathesis over every operation, 50,000 cases per backend (FUZZ_BACKEND=sqlite, postgres or both).
FUZZ_BACKEND ?= sqlite
fuzz: install-test
	$(BIN)/python bench/fuzz.py --cases 50000 --backend $(FUZZ_BACKEND)

clean:
	rm -rf $(VENV) .vpbx .mypy_cache .ruff_cache
