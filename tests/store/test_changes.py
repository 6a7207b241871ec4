"""The change signal by area (``store.changes``): a commit moves the areas it wrote, seen by another process's
``Changes`` at its next check, and only those; on PostgreSQL the notification names them."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from vpbx.store import changes
from vpbx.store.changes import ACCESS, AREAS, BUMP, CHANNEL, CONFIG, Changes, areas_of, bump_sql, notify_sql
from vpbx.testing.postgres import empty_database

PG_URL = os.environ.get("VPBX_TEST_PG_URL", "")


def test_each_table_changes_its_areas() -> None:
    assert areas_of("users") == areas_of("telnums") == areas_of("group_members") == {CONFIG}
    assert areas_of("api_keys") == areas_of("custom_roles") == {ACCESS}
    assert areas_of("domains") == areas_of("integrations") == AREAS  # read by both auth and configuration
    assert areas_of("call_history") == areas_of("live_calls") == areas_of("console_sessions") == set()
    assert areas_of("a_table_added_later") == {CONFIG}
    assert areas_of("") == AREAS  # a write whose table is not known


def _store(tmp: Path) -> tuple[str, sqlite3.Connection]:
    """A store as migration 0016 leaves it (one counter row) and a writer's connection to it."""
    path = tmp / "vpbx.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE config_changes (id INTEGER PRIMARY KEY, version BIGINT NOT NULL)")
    writer.execute("INSERT INTO config_changes (id, version) VALUES (1, 0)")
    return f"sqlite+aiosqlite:///{path}", writer


def test_sqlite_counters_move_per_area(tmp_path: Path) -> None:
    url, writer = _store(tmp_path)
    seen = Changes(url)
    try:
        before = {a: seen.version(a) for a in AREAS}
        anything = seen.version()
        assert {a: seen.version(a) for a in AREAS} == before and seen.version() == anything  # nothing committed

        writer.execute(bump_sql({CONFIG}))  # an employee written by another process
        assert seen.version(CONFIG) != before[CONFIG] and seen.version(ACCESS) == before[ACCESS]
        assert seen.version() != anything

        before = {a: seen.version(a) for a in AREAS}
        writer.execute(bump_sql({ACCESS}))  # a key revoked: the access row, missing so far, is inserted
        assert seen.version(ACCESS) != before[ACCESS] and seen.version(CONFIG) == before[CONFIG]
        assert dict(writer.execute("SELECT id, version FROM config_changes").fetchall()) == {1: 1, 2: 1}

        before = {a: seen.version(a) for a in AREAS}
        writer.execute(BUMP)  # a writer that does not say what it changed: every area
        assert all(seen.version(a) != before[a] for a in AREAS)

        before = {a: seen.version(a) for a in AREAS}
        writer.execute("INSERT INTO config_changes (id, version) VALUES (99, 1)")  # newer code's area
        assert all(seen.version(a) != before[a] for a in AREAS)
    finally:
        seen.close()
        writer.close()


def test_a_commit_in_this_process_moves_its_areas_at_once(tmp_path: Path) -> None:
    url, writer = _store(tmp_path)
    seen = Changes(url)
    try:
        before = {a: seen.version(a) for a in AREAS}
        changes._local[ACCESS] += 1  # what after_commit does for a commit of this process that wrote keys
        assert seen.version(ACCESS) != before[ACCESS] and seen.version(CONFIG) == before[CONFIG]
    finally:
        seen.close()
        writer.close()


def test_an_unreadable_store_caches_nothing(tmp_path: Path) -> None:
    seen = Changes(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'vpbx.db'}")
    try:
        assert seen.version(ACCESS) != seen.version(ACCESS)
    finally:
        seen.close()
    memory = Changes("sqlite+aiosqlite:///:memory:")
    assert memory.version(CONFIG) != memory.version(CONFIG)


@pytest.fixture
def pg_url() -> str:
    if not PG_URL:
        pytest.skip("no PostgreSQL")
    return empty_database(PG_URL, "_changes")  # NOTIFY is per database: no other test's commits reach it


async def _moved(seen: Changes, area: str, before: int) -> None:
    deadline = time.monotonic() + 10
    while seen.version(area) == before:
        assert time.monotonic() < deadline, f"{area} never moved"
        await asyncio.sleep(0.01)


async def test_postgres_notifications_name_their_areas(pg_url: str) -> None:
    import asyncpg

    seen = Changes(pg_url)
    assert seen.version(CONFIG) != seen.version(CONFIG)  # not listening yet: nothing may be cached
    await seen.ready()
    conn = await asyncpg.connect(make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        before = {a: seen.version(a) for a in AREAS}
        await conn.execute(notify_sql({CONFIG}))
        await _moved(seen, CONFIG, before[CONFIG])
        assert seen.version(ACCESS) == before[ACCESS]

        before = {a: seen.version(a) for a in AREAS}
        await conn.execute(notify_sql({ACCESS}))
        await _moved(seen, ACCESS, before[ACCESS])
        assert seen.version(CONFIG) == before[CONFIG]

        for payload in ("", "an-area-of-newer-code"):  # unnamed or unknown: every area
            before = {a: seen.version(a) for a in AREAS}
            await conn.execute(f"SELECT pg_notify('{CHANNEL}', '{payload}')")
            for area in AREAS:
                await _moved(seen, area, before[area])
    finally:
        await conn.close()
        seen.close()
