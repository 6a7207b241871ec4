"""SQLite statements make one trip to aiosqlite's thread (store.sqlite_cursor) and still behave as the driver's:
rows, row counts, inserted ids, many-row inserts, errors and streamed results."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from vpbx.store import db
from vpbx.store.sqlite_cursor import OneTripConnection


def test_one_trip_cursor_behaves_as_the_drivers(tmp_path: Path) -> None:
    async def run() -> None:
        engine = db.create_engine(f"sqlite:///{tmp_path / 't.db'}")
        try:
            async with engine.begin() as conn:
                raw = await conn.get_raw_connection()
                assert isinstance(raw.dbapi_connection, OneTripConnection)
                await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
                inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
                assert inserted.lastrowid == 1 and inserted.rowcount == 1
                many = await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), [{"n": "b"}, {"n": "c"}])
                assert many.rowcount == 2
                assert (await conn.execute(text("UPDATE t SET name = name || '!' WHERE id > 1"))).rowcount == 2
                rows = (await conn.execute(text("SELECT id, name FROM t ORDER BY id"))).all()
                assert [tuple(r) for r in rows] == [(1, "a"), (2, "b!"), (3, "c!")]
                assert (await conn.execute(text("SELECT name FROM t WHERE id = 9"))).first() is None
                streamed = await conn.stream(text("SELECT name FROM t ORDER BY id"))
                assert [r[0] async for r in streamed] == ["a", "b!", "c!"]
            async with engine.begin() as conn:
                with pytest.raises(IntegrityError):
                    await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
            async with engine.connect() as conn:  # the failed transaction left nothing behind
                assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 3
        finally:
            await engine.dispose()

    asyncio.run(run())
