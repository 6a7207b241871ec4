"""Shared fixtures: a real server per store backend (SQLite always, PostgreSQL too when one is there),
and a fresh tenant (domain with the demo company) per test.

PostgreSQL: ``VPBX_TEST_PG_URL`` when set (``off`` skips the PostgreSQL half), else the local server at
``postgresql+asyncpg://postgres@127.0.0.1:5432/test`` when it answers. The URL found is put back in
``VPBX_TEST_PG_URL`` here, before any suite reads it, so every suite runs on the same one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpbx.settings import Settings
from vpbx.testing.postgres import SKIP_REASON, empty_database, url_for_tests
from vpbx.testing.server import ServerThread, Tenant, create_tenant, retire_tenant

PG_URL = os.environ["VPBX_TEST_PG_URL"] = url_for_tests()
# Each xdist worker runs several servers on one PostgreSQL (max_connections 100): smaller pools each.
os.environ.setdefault("VPBX_DB_POOL", "8")
BACKENDS = ["sqlite", "postgres"]


def pytest_report_header() -> str:
    return f"PostgreSQL: {PG_URL}" if PG_URL else f"PostgreSQL: none ({SKIP_REASON})"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not PG_URL:
        terminalreporter.write_line(f"PostgreSQL half skipped: {SKIP_REASON}", yellow=True)


def store_url(backend: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / 'vpbx.db'}"
    if not PG_URL:
        pytest.skip(SKIP_REASON)
    return empty_database(PG_URL)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp(f"store-{backend}")
    settings = Settings(db=store_url(backend, tmp), home=tmp, demo=False, port=0)
    srv = ServerThread(settings).start()
    yield srv
    srv.stop()


@pytest.fixture
def tenant(server: ServerThread) -> Iterator[Tenant]:
    t = create_tenant(server)
    yield t
    retire_tenant(server, t)


@pytest.fixture
def other_tenant(server: ServerThread) -> Iterator[Tenant]:
    t = create_tenant(server)
    yield t
    retire_tenant(server, t)


@pytest.fixture(autouse=True)
def _loggers_as_found() -> Iterator[None]:
    """A test that runs ``vpbx serve`` in-process configures vpbx's loggers (stderr, info): the worker's later tests
    would print their access lines into the run's output. Each test leaves them as it found them."""
    import logging

    names = ("vpbx", "uvicorn")
    saved = [(logging.getLogger(n), logging.getLogger(n).handlers[:], logging.getLogger(n).level,
              logging.getLogger(n).propagate) for n in names]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
