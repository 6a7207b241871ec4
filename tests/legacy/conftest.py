"""Legacy API fixtures: one real server per backend on the VIRTUAL clock (commands and simulated
calls alike), a fresh tenant per test and a CRM client that speaks only the legacy command API.

PostgreSQL runs in a database of its own (``<VPBX_TEST_PG_URL's db>_lg``), so this server can share
a pytest session with the API and engine suites' servers without resetting their schemas.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from tests.legacy.client import LegacyClient
from tests.notify.conftest import harness, receiver, store_url  # noqa: F401 - the notifier's harness, reused

from vpbx.settings import Settings
from vpbx.testing.postgres import SKIP_REASON, empty_database
from vpbx.testing.server import ServerThread, Tenant, create_tenant, retire_tenant

PG_URL = os.environ.get("VPBX_TEST_PG_URL", "")


@pytest.fixture(scope="session")
def lserver(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp(f"legacy-{backend}")
    if backend == "sqlite":
        db = f"sqlite+aiosqlite:///{tmp / 'vpbx.db'}"
    else:
        if not PG_URL:
            pytest.skip(SKIP_REASON)
        db = empty_database(PG_URL, "_lg")
    srv = ServerThread(Settings(db=db, home=tmp, demo=False, port=0, clock="virtual")).start()
    yield srv
    srv.stop()


@pytest.fixture
def ltenant(lserver: ServerThread) -> Iterator[Tenant]:
    t = create_tenant(lserver)
    yield t
    retire_tenant(lserver, t)


@pytest.fixture
def crm(lserver: ServerThread, ltenant: Tenant) -> Iterator[LegacyClient]:
    c = LegacyClient(lserver.url, ltenant.legacy_token)
    yield c
    c.close()
