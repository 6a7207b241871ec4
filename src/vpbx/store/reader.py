"""Fast reads for hot GET paths.

On SQLite a read of a few rows costs microseconds, less than one hop to aiosqlite's worker
thread (measured: 0.15 ms in-loop against 1.1 ms through aiosqlite for a page and its count), so
reads run on a plain sqlite3 connection right on the event loop. WAL gives them a consistent
snapshot beside the async writers. On PostgreSQL reads go through the async engine as usual.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Sequence
from contextlib import aclosing
from typing import Any

from sqlalchemy import Engine, Row, Select, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import SingletonThreadPool
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from vpbx.store.db import is_sqlite, normalize_url


class Reader:
    def __init__(self, url: str, engine: AsyncEngine) -> None:
        self._async = engine
        self._sync: Engine | None = None
        self._cache: dict[Hashable, tuple[Any, bytes]] = {}
        # A bare connection that only ever reads data_version: a pool checkout costs more than the pragma.
        self._version_conn: sqlite3.Connection | None = None
        self._path = ""
        url = normalize_url(url)
        if is_sqlite(url):
            sync_url = make_url(url).set(drivername="sqlite")
            self._path = sync_url.database or ":memory:"
            self._sync = create_engine(sync_url, poolclass=SingletonThreadPool)

            @event.listens_for(self._sync, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.execute("PRAGMA busy_timeout=30000")
                dbapi_conn.execute("PRAGMA query_only=1")

    async def all(self, stmt: Executable) -> Sequence[Row[Any]]:
        if self._sync is not None:
            with self._sync.connect() as conn:
                return conn.execute(stmt).all()
        async with self._async.connect() as aconn:
            return (await aconn.execute(stmt)).all()

    async def first(self, stmt: Executable) -> Row[Any] | None:
        rows = await self.all(stmt)
        return rows[0] if rows else None

    async def scalar(self, stmt: Executable) -> Any:
        row = await self.first(stmt)
        return row[0] if row is not None else None

    async def cached(self, key: Hashable, build: Callable[[], Awaitable[bytes]]) -> bytes:
        """A response body built from the store, reused until anything in the store changes.

        SQLite's ``data_version`` moves whenever another connection commits, and every write
        comes from another connection (this one is read-only), so a hit is never stale. On
        PostgreSQL there is no such cheap signal: every call builds.
        """
        if self._sync is None:
            return await build()
        if self._version_conn is None:
            self._version_conn = sqlite3.connect(self._path, check_same_thread=False)
        version = self._version_conn.execute("PRAGMA data_version").fetchone()[0]
        hit = self._cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        body = await build()
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (version, body)
        return body

    def dispose(self) -> None:
        if self._version_conn is not None:
            self._version_conn.close()
        if self._sync is not None:
            self._sync.dispose()


# --- streamed exports ---------------------------------------------------------------------------
#
# A million-row export through the async engine costs ~20 µs a row (aiosqlite's thread hop per
# fetch, SQLAlchemy rows, datetime parsing); a raw ``sqlite3`` cursor costs ~2 µs. On SQLite the
# rows are therefore read by a plain ``sqlite3`` connection in a thread of the export's own, which
# fetches and encodes chunks while the event loop sends earlier ones: a few chunks exist at any
# time, whatever the size of the export.

def sqlite_file(engine: AsyncEngine) -> str | None:
    """The file behind a SQLite engine; ``None`` for PostgreSQL and in-memory databases."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def driver_sql(stmt: ClauseElement, dialect: Dialect) -> tuple[str, tuple[Any, ...]]:
    """``stmt`` as the DBAPI driver receives it: SQL text and positional parameters, ``IN`` lists
    expanded and every value converted by its column type (e.g. ``UTCDateTime`` to stored text)."""
    compiled = stmt.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    state = compiled.construct_expanded_state()
    processors: dict[str, Callable[[Any], Any]] = {}
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            for key in state.parameter_expansion.get(name, [name]):
                processors[key] = process
    names = state.positiontup or ()
    params = tuple(processors[n](v) if n in processors else v for n, v in zip(names, state.positional_parameters,
                                                                               strict=True))
    return state.statement, params


async def stream_encoded(engine: AsyncEngine, stmt: Select[Any], encode: Callable[[Sequence[Any]], bytes],
                         rows: int) -> AsyncGenerator[bytes, None]:
    """``encode(batch)`` for each batch of at most ``rows`` rows of ``stmt``, in order.

    On SQLite ``encode`` gets plain DBAPI tuples: no column type processes the values, so select
    only columns whose stored form is what ``encode`` expects (text, integers; timestamps as text).
    On PostgreSQL it gets SQLAlchemy rows from a server-side cursor (``stream`` + ``yield_per``).
    """
    path = sqlite_file(engine)
    if path is None:
        async with engine.connect() as aconn:
            result = await aconn.stream(stmt.execution_options(yield_per=rows))
            async for part in result.partitions(rows):
                yield encode(part)
        return
    sql, params = driver_sql(stmt, engine.dialect)
    async with aclosing(_sqlite_encoded(path, sql, params, encode, rows)) as chunks:
        async for chunk in chunks:
            yield chunk


# Exports running at once on SQLite, each a thread with its own connection and read snapshot; more wait their turn
# (a long snapshot holds the WAL from being checkpointed, so they are kept few).
EXPORT_THREADS = threading.BoundedSemaphore(8)


async def _sqlite_encoded(path: str, sql: str, params: Sequence[Any], encode: Callable[[Sequence[Any]], bytes],
                          rows: int, depth: int = 3) -> AsyncGenerator[bytes, None]:
    """A producer thread reads and encodes; at most ``depth`` chunks wait for the event loop."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
    slots = threading.Semaphore(depth)
    stop = threading.Event()

    def hand(item: bytes | BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(ready.put_nowait, item)
        except RuntimeError:  # the loop is gone (server shutting down): nobody listens any more
            stop.set()

    def produce() -> None:
        with EXPORT_THREADS:
            read()

    def read() -> None:
        try:
            conn = sqlite3.connect(path, timeout=30)
            try:
                conn.execute("PRAGMA query_only=1")
                cursor = conn.execute(sql, params)  # one statement: one read snapshot for the whole export
                while batch := cursor.fetchmany(rows):
                    chunk = encode(batch)
                    slots.acquire()
                    if stop.is_set():
                        return
                    hand(chunk)
            finally:
                conn.close()
            hand(None)
        except BaseException as exc:
            hand(exc)

    threading.Thread(target=produce, name="vpbx-export", daemon=True).start()
    try:
        while (item := await ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            slots.release()
            yield item
    finally:
        stop.set()
        slots.release()  # wake the producer if it waits for a slot
