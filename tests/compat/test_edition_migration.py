"""Migration 0010: the integrations an earlier store holds get the default legacy edition, 000."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from vpbx.store import db


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
