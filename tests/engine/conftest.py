"""Engine fixtures: one real server per backend on the VIRTUAL clock, and a fresh tenant per test.

PostgreSQL runs in its own database (``<VPBX_TEST_PG_URL's db>_engine``), so this server and the
API suite's server can live in one pytest session without resetting each other's schema.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from vpbx.settings import Settings
from vpbx.testing.postgres import SKIP_REASON, empty_database
from vpbx.testing.server import ServerThread, Tenant, create_tenant, retire_tenant

PG_URL = os.environ.get("VPBX_TEST_PG_URL", "")


@pytest.fixture(scope="session")
def vserver(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp(f"engine-{backend}")
    if backend == "sqlite":
        db = f"sqlite+aiosqlite:///{tmp / 'vpbx.db'}"
    else:
        if not PG_URL:
            pytest.skip(SKIP_REASON)
        db = empty_database(PG_URL, "_engine")
    srv = ServerThread(Settings(db=db, home=tmp, demo=False, port=0, clock="virtual")).start()
    yield srv
    srv.stop()


@pytest.fixture
def vtenant(vserver: ServerThread) -> Iterator[Tenant]:
    t = create_tenant(vserver)
    yield t
    retire_tenant(vserver, t)
