"""Migration 0010: the integrations an earlier store holds get the default legacy edition, 000."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.store.test_store import PG_URL, fresh_pg_database

from vpbx.store import db


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL tests need VPBX_TEST_PG_URL")
        url = await fresh_pg_database()
    eng = db.create_engine(url)
    try:
        yield eng
    finally:
        await eng.dispose()


async def test_existing_integrations_get_edition_000(engine: AsyncEngine) -> None:
    await db.upgrade(engine, "0001")
    async with engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO domains (id, name, timezone, limit_users, limit_groups, limit_local_gw, service_record, "
            "service_local_gw, service_branch, version, created_at) VALUES (1, 'old.test', 'Europe/Moscow', -1, -1, "
            "-1, true, true, true, 0, '2024-01-01 00:00:00')"))
        await conn.execute(text(
            "INSERT INTO integrations (domain_id, enabled, switched_off, crm_url, crm_token, dialect, lookup_timeout, "
            "user_map_enabled) VALUES (1, true, false, '', '', 'legacy', 2.0, false)"))
    await db.upgrade(engine)
    async with engine.connect() as conn:
        edition = (await conn.execute(text("SELECT legacy_edition FROM integrations WHERE domain_id = 1"))).scalar()
        assert "0010" in (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    assert edition == "000"
