"""SQLite statements make one trip to aiosqlite's thread (store.sqlite_cursor), or none under the write lock, and
still behave as the driver's: rows, row counts, inserted ids, many-row inserts, errors and streamed results."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from vpbx.store import db, sqlite_cursor
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


def test_statements_under_the_write_lock_run_on_the_loop_and_nothing_else_does(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A write transaction runs on the event loop's thread (no trip): ``BEGIN IMMEDIATE`` while the lock is free,
    then its statements, errors included. A first write that takes the lock, and reads outside a write, go to
    aiosqlite's thread; after the commit and the connection's return to the pool, statements go there again."""
    where: list[tuple[str, bool]] = []
    real = sqlite_cursor._run

    def spy(driver: object, operation: str, parameters: object, many: bool) -> object:
        where.append((operation.split()[0].upper(), threading.current_thread() is threading.main_thread()))
        return real(driver, operation, parameters, many)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_cursor, "_run", spy)
    take = sqlite_cursor._take_now

    async def take_now(driver: object) -> object:
        taken = await take(driver)
        where.append(("BEGIN", taken is not None and threading.current_thread() is threading.main_thread()))
        return taken

    monkeypatch.setattr(sqlite_cursor, "_take_now", take_now)

    async def run() -> None:
        engine = db.create_engine(f"sqlite:///{tmp_path / 't.db'}")
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
            where.clear()
            async with engine.connect() as conn:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
                await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
                assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 1
                with pytest.raises(IntegrityError):
                    await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
                await conn.commit()
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT name FROM t"))).scalars().all() == ["a"]
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE t SET name = 'b'"))
                await conn.execute(text("UPDATE t SET name = 'c'"))
        finally:
            await engine.dispose()

    asyncio.run(run())
    assert where == [("BEGIN", True), ("INSERT", True), ("SELECT", True), ("INSERT", True),  # the lock free, held
                     ("SELECT", False),  # a read outside a write
                     ("UPDATE", False), ("UPDATE", True)]  # a first write that takes the lock: on the thread


def test_a_write_waiting_for_another_process_leaves_the_loop_running(tmp_path: Path) -> None:
    """Another process (the CLI) holds SQLite's write lock: a write of the server waits for it on aiosqlite's
    thread (its ``BEGIN IMMEDIATE`` tried on the loop with no busy wait first) while the event loop goes on
    serving, then goes through."""
    path = tmp_path / "t.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")

    async def run() -> int:
        engine = db.create_engine(f"sqlite:///{path}")
        ticks = 0
        try:
            other.execute("BEGIN IMMEDIATE")

            async def write() -> None:
                async with engine.connect() as conn:
                    await conn.exec_driver_sql("BEGIN IMMEDIATE")
                    await conn.execute(text("INSERT INTO t (name) VALUES ('mine')"))
                    await conn.commit()

            task = asyncio.create_task(write())
            while ticks < 20:  # the loop runs while the write waits for the lock
                await asyncio.sleep(0.01)
                ticks += 1
                assert not task.done()
            other.execute("COMMIT")
            await asyncio.wait_for(task, 30)
        finally:
            await engine.dispose()
        return ticks

    assert asyncio.run(run()) == 20
    assert other.execute("SELECT name FROM t").fetchall() == [("mine",)]
    other.close()


def test_the_log_is_copied_into_the_database_off_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pooled connections' automatic checkpoint is off (it would run inside a commit, on the loop); every
    ``Checkpoints.EVERY`` commits one runs in its own thread, and what was committed reaches the database file."""
    monkeypatch.setattr(sqlite_cursor.Checkpoints, "EVERY", 4)  # the table's creation, then three rows
    path = tmp_path / "t.db"
    ran: list[str] = []
    real = sqlite_cursor.Checkpoints.now

    def spy(self: sqlite_cursor.Checkpoints) -> None:
        ran.append(threading.current_thread().name)
        real(self)

    monkeypatch.setattr(sqlite_cursor.Checkpoints, "now", spy)

    async def run() -> None:
        engine = db.create_engine(f"sqlite:///{path}")
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, blob BLOB)"))
                assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == 0
            for _ in range(2):
                async with engine.begin() as conn:
                    await conn.exec_driver_sql("BEGIN IMMEDIATE")
                    await conn.execute(text("INSERT INTO t (blob) VALUES (zeroblob(100000))"))
            assert ran == [] and path.stat().st_size < 100_000  # committed to the log only
            async with engine.begin() as conn:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
                await conn.execute(text("INSERT INTO t (blob) VALUES (zeroblob(100000))"))
            running = sqlite_cursor._BY_PATH[str(path.resolve())]._running
            assert running is not None
            await running
        finally:
            await engine.dispose()

    asyncio.run(run())
    assert len(ran) == 1 and ran[0].startswith("vpbx-sqlite-checkpoint")
    assert path.stat().st_size >= 300_000  # the three rows are in the database file itself


def test_a_write_transaction_makes_no_trip_and_its_rollback_undoes_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With the lock free, a write transaction (its lock, statements, commit, and the pool's reset as the connection
    goes back) makes no trip to aiosqlite's thread; a transaction rolled back leaves nothing, and neither does a
    failed one."""
    trips: list[str] = []

    async def run() -> None:
        engine = db.create_engine(f"sqlite:///{tmp_path / 't.db'}")
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
            real = aiosqlite.Connection._execute

            async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
                trips.append(getattr(fn, "__name__", repr(fn)))
                return await real(self, fn, *args, **kwargs)

            monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
            async with engine.connect() as conn:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
                await conn.execute(text("INSERT INTO t (name) VALUES ('kept')"))
                await conn.commit()
            assert trips == []
            async with engine.connect() as conn:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
                await conn.execute(text("INSERT INTO t (name) VALUES ('undone')"))
                await conn.rollback()
            with pytest.raises(IntegrityError):
                async with engine.begin() as conn:
                    await conn.exec_driver_sql("BEGIN IMMEDIATE")
                    await conn.execute(text("INSERT INTO t (name) VALUES ('failed')"))
                    await conn.execute(text("INSERT INTO t (name) VALUES ('kept')"))
            assert trips == []
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT name FROM t"))).scalars().all() == ["kept"]
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_the_log_stops_growing_under_steady_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers that never pause (four at once, each starting its next write as the last commits): a checkpoint
    holds the writers' turn, so it copies the whole log and the next writer starts the log again from its
    beginning. Without the turn the log grew with every write (each checkpoint overtaken by new frames)."""
    monkeypatch.setattr(sqlite_cursor.Checkpoints, "EVERY", 20)
    path = tmp_path / "t.db"
    wal = Path(f"{path}-wal")

    def wal_size() -> int:  # a stat: nothing the loop would wait on
        return wal.stat().st_size

    async def run() -> list[int]:
        engine = db.create_engine(f"sqlite:///{path}")
        sizes: list[int] = []
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, blob BLOB)"))

            async def writer() -> None:
                for _ in range(100):
                    async with engine.begin() as conn:
                        await conn.exec_driver_sql("BEGIN IMMEDIATE")
                        await conn.execute(text("INSERT INTO t (blob) VALUES (zeroblob(20000))"))
                    sizes.append(wal_size())

            await asyncio.gather(*(writer() for _ in range(4)))
        finally:
            await engine.dispose()
        return sizes

    sizes = asyncio.run(run())
    written = 400 * 20_000
    assert max(sizes) < written / 4, (max(sizes), written)  # the log was started again, over and over


def test_a_delivery_pass_takes_its_turn_among_the_writers_and_counts_towards_the_checkpoints(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher's pass (its own connection) waits for this process's writer turn like any write: while a
    write transaction of the process holds the lock the pass waits for the turn on the loop, instead of finding
    the lock taken and waiting for it on its worker thread; once the writer commits, it runs on the loop. Each
    pass's commit counts towards the file's checkpoints, which run holding the same turn."""
    from datetime import UTC, datetime

    from vpbx.store.repositories import outbox as repo

    monkeypatch.setattr(sqlite_cursor.Checkpoints, "EVERY", 3)
    path = tmp_path / "t.db"
    slow: list[int] = []
    real_slow = repo.SqlitePassStore._run_slow

    def spy(self: repo.SqlitePassStore, work: repo.PassWork) -> repo.PassResult:
        slow.append(1)
        return real_slow(self, work)

    monkeypatch.setattr(repo.SqlitePassStore, "_run_slow", spy)

    async def run() -> None:
        engine = db.create_engine(f"sqlite:///{path}")
        store = repo.for_engine(engine, None)
        assert isinstance(store, repo.SqlitePassStore)
        try:
            await db.upgrade(engine)
            checkpoints = sqlite_cursor._BY_PATH[str(path.resolve())]
            checkpoints.commits = 0
            now = datetime.now(UTC)
            async with engine.begin() as conn:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")  # this process's writer: the turn and the lock
                pass_ = asyncio.ensure_future(store.run(repo.PassWork(now)))
                for _ in range(20):  # the pass gets many chances to run meanwhile: it waits for the turn
                    await asyncio.sleep(0)
                assert not pass_.done()
                await conn.exec_driver_sql("CREATE TABLE marker (id INTEGER)")
            await pass_
            assert slow == []  # it ran on the loop, the lock free: it never met the writer's lock
            assert checkpoints.commits == 2  # the writer's commit and the pass's
            assert checkpoints._running is None
            await store.run(repo.PassWork(now))  # the third commit: a checkpoint, holding the turn
            running = checkpoints._running
            assert running is not None
            await running
        finally:
            await store.close()
            await engine.dispose()

    asyncio.run(run())
