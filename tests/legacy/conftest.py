"""Legacy API fixtures: one real server per backend on the VIRTUAL clock (commands and simulated
calls alike), a fresh tenant per test and a CRM client that speaks only the legacy command API.

PostgreSQL runs in a database of its own (``<VPBX_TEST_PG_URL's db>_lg``), so this server can share
a pytest session with the API and engine suites' servers without resetting their schemas.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url
from tests.legacy.client import LegacyClient
from tests.notify.conftest import harness, receiver, store_url  # noqa: F401 - the notifier's harness, reused

from vpbx.settings import Settings
from vpbx.testing.server import ServerThread, Tenant, create_tenant

PG_URL = os.environ.get("VPBX_TEST_PG_URL", "")


def own_pg_url() -> str:
    url = make_url(PG_URL)
    target = url.set(database=f"{url.database}_lg")

    async def reset() -> None:
        import asyncpg

        admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        conn = await asyncpg.connect(admin)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", target.database):
                await conn.execute(f'CREATE DATABASE "{target.database}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(target.set(drivername="postgresql").render_as_string(hide_password=False))
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(reset())
    return target.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def lserver(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp(f"legacy-{backend}")
    if backend == "sqlite":
        db = f"sqlite+aiosqlite:///{tmp / 'vpbx.db'}"
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL tests need VPBX_TEST_PG_URL (set by .ci/run)")
        db = own_pg_url()
    srv = ServerThread(Settings(db=db, home=tmp, demo=False, port=0, clock="virtual")).start()
    yield srv
    srv.stop()


@pytest.fixture
def ltenant(lserver: ServerThread) -> Iterator[Tenant]:
    t = create_tenant(lserver)
    yield t
    t.client.close()


@pytest.fixture
def crm(lserver: ServerThread, ltenant: Tenant) -> Iterator[LegacyClient]:
    c = LegacyClient(lserver.url, ltenant.legacy_token)
    yield c
    c.close()
