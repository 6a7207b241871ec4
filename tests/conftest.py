"""Shared fixtures: a real server per store backend (SQLite always, PostgreSQL when
``VPBX_TEST_PG_URL`` is set), and a fresh tenant (domain with the demo company) per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpbx.settings import Settings
from vpbx.testing.postgres import empty_database
from vpbx.testing.server import ServerThread, Tenant, create_tenant

PG_URL = os.environ.get("VPBX_TEST_PG_URL", "")
BACKENDS = ["sqlite", "postgres"]


def store_url(backend: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / 'vpbx.db'}"
    if not PG_URL:
        pytest.skip("PostgreSQL tests need VPBX_TEST_PG_URL (set by .ci/run)")
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
    t.client.close()


@pytest.fixture
def other_tenant(server: ServerThread) -> Iterator[Tenant]:
    t = create_tenant(server)
    yield t
    t.client.close()
