"""The store: migrations from empty on SQLite (WAL) and PostgreSQL, twice; constraints held by the database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from vpbx.store import db
from vpbx.store.tables import Base, Domain, Extension, User

PG_URL = os.environ.get("VPBX_TEST_PG_URL", "")
FOUNDATION_TABLES = {"domains", "api_keys", "custom_roles", "integrations", "users", "groups", "group_members",
                     "extensions"}
NOW = datetime(2024, 1, 1, tzinfo=UTC)


async def fresh_pg_database() -> str:
    """A database of its own (``<test db>_store_p<pid>_0``), dropped and created empty: the API tests' server
    keeps using its own database meanwhile; ``vpbx.testing.postgres`` drops it once this process is gone."""
    import asyncpg

    url = make_url(PG_URL)
    name = f"{url.database}_store_p{os.getpid()}_0"
    conn = await asyncpg.connect(url.set(drivername="postgresql", database="postgres")
                                 .render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


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


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def versions(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return sorted((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all())


async def test_migrations_from_empty_twice(engine: AsyncEngine) -> None:
    assert await tables(engine) == set()
    await db.upgrade(engine)
    first = await tables(engine)
    heads = await versions(engine)
    assert FOUNDATION_TABLES <= first
    assert "alembic_version" in first
    assert heads, "alembic_version names the applied heads"
    # every table the code maps is created by some migration
    assert set(Base.metadata.tables) <= first, set(Base.metadata.tables) - first
    await db.upgrade(engine)  # idempotent: nothing left to apply, nothing breaks
    assert await tables(engine) == first
    assert await versions(engine) == heads


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path / 'wal.db'}")  # plain URL: the async driver is picked
    try:
        await db.upgrade(engine)
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (tmp_path / "wal.db").exists()
    finally:
        await engine.dispose()


async def test_url_normalisation() -> None:
    assert db.normalize_url("postgresql://u:p@h/d") == "postgresql+asyncpg://u:p@h/d"
    assert db.normalize_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
    assert db.is_sqlite("sqlite+aiosqlite:///x.db")
    assert not db.is_sqlite("postgresql+asyncpg://h/d")


async def new_domain(engine: AsyncEngine, name: str) -> int:
    async with db.session_factory(engine)() as session:
        domain = Domain(name=name, timezone="Europe/Moscow", created_at=NOW, limit_users=-1, limit_groups=-1,
                        limit_local_gw=-1, service_record=True, service_local_gw=True, service_branch=True,
                        version=0)
        session.add(domain)
        await session.commit()
        return domain.id


async def test_extension_uniqueness_is_enforced_by_the_database(engine: AsyncEngine) -> None:
    await db.upgrade(engine)
    a = await new_domain(engine, "a.test")
    b = await new_domain(engine, "b.test")
    sessions = db.session_factory(engine)
    async with sessions() as session:
        session.add(Extension(domain_id=a, ext="701", owner_kind="user", owner_id=1))
        await session.commit()
    async with sessions() as session:
        session.add(Extension(domain_id=a, ext="701", owner_kind="group", owner_id=2))
        with pytest.raises(IntegrityError):
            await session.commit()
    # the same extension in another domain, and another extension in the same domain, are fine
    async with sessions() as session:
        session.add(Extension(domain_id=b, ext="701", owner_kind="user", owner_id=1))
        session.add(Extension(domain_id=a, ext="702", owner_kind="user", owner_id=1))
        await session.commit()
    async with sessions() as session:
        rows = (await session.execute(select(Extension.domain_id, Extension.ext).order_by(Extension.domain_id,
                                                                                         Extension.ext))).all()
        assert [tuple(r) for r in rows] == [(a, "701"), (a, "702"), (b, "701")]


async def test_login_uniqueness_and_cascade(engine: AsyncEngine) -> None:
    await db.upgrade(engine)
    a = await new_domain(engine, "a.test")
    sessions = db.session_factory(engine)

    def user(login: str, ext: str) -> User:
        return User(domain_id=a, login=login, name=login, position="", email="", ext=ext, telnum="", role="user",
                    mobile="", mobile_redirect_enabled=False, mobile_redirect_forward=False, mobile_redirect_delay=0,
                    password_hash="x", dnd=False, absent=False, search_text=login, created_at=NOW)

    async with sessions() as session:
        session.add(user("ivan", "701"))
        await session.commit()
    async with sessions() as session:
        session.add(user("ivan", "702"))
        with pytest.raises(IntegrityError):
            await session.commit()
    # deleting the domain takes its rows along (ON DELETE CASCADE, foreign keys on in SQLite too)
    async with sessions() as session:
        session.add(Extension(domain_id=a, ext="701", owner_kind="user", owner_id=1))
        await session.commit()
        await session.delete(await session.get(Domain, a))
        await session.commit()
    async with sessions() as session:
        assert (await session.execute(select(User.id))).all() == []
        assert (await session.execute(select(Extension.ext))).all() == []
