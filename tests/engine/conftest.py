"""Engine fixtures: one real server per backend on the VIRTUAL clock, and a fresh tenant per test.

PostgreSQL runs in its own database (``<VPBX_TEST_PG_URL's db>_engine``), so this server and the
API suite's server can live in one pytest session without resetting each other's schema.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from vpbx.settings import Settings
from vpbx.testing.server import ServerThread, Tenant, create_tenant

PG_URL = os.environ.get("VPBX_TEST_PG_URL", "")


def reset_postgres(url: str) -> None:
    import asyncpg

    async def main() -> None:
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(main())


def engine_pg_url() -> str:
    url = make_url(PG_URL)
    name = f"{url.database}_engine" if not (url.database or "").endswith("_engine") else url.database
    target = url.set(database=name)

    async def ensure() -> None:
        import asyncpg

        admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        conn = await asyncpg.connect(admin)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(ensure())
    rendered = target.render_as_string(hide_password=False)
    reset_postgres(rendered)
    return rendered


@pytest.fixture(scope="session")
def vserver(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp(f"engine-{backend}")
    if backend == "sqlite":
        db = f"sqlite+aiosqlite:///{tmp / 'vpbx.db'}"
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL tests need VPBX_TEST_PG_URL (set by .ci/run)")
        db = engine_pg_url()
    srv = ServerThread(Settings(db=db, home=tmp, demo=False, port=0, clock="virtual")).start()
    yield srv
    srv.stop()


@pytest.fixture
def vtenant(vserver: ServerThread) -> Iterator[Tenant]:
    t = create_tenant(vserver)
    yield t
    t.client.close()
