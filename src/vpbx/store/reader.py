"""Fast reads for hot GET paths, and the cache of what they build.

On SQLite a read of a few rows costs microseconds, less than one hop to aiosqlite's worker
thread (measured: 0.15 ms in-loop against 1.1 ms through aiosqlite for a page and its count), so
reads run on a plain sqlite3 connection right on the event loop. WAL gives them a consistent
snapshot beside the async writers. On PostgreSQL reads go through the async engine as usual.

``cached`` keeps built values (response bodies) until ``store.changes`` reports a commit of their area (config).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from typing import Any, TypeVar

from sqlalchemy import Engine, Row, Select, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import SingletonThreadPool
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from vpbx.store.changes import CONFIG, Changes
from vpbx.store.db import is_sqlite, normalize_url

T = TypeVar("T")


class Reader:
    def __init__(self, url: str, engine: AsyncEngine) -> None:
        self._async = engine
        self._sync: Engine | None = None
        url = normalize_url(url)
        self.changes = Changes(url)
        self._cache: dict[Hashable, Any] = {}
        self._version: int | None = None  # the change version the cache was filled at
        if is_sqlite(url):
            sync_url = make_url(url).set(drivername="sqlite")
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

    def fresh(self) -> dict[Hashable, Any]:
        """The cache, emptied first if a configuration change (``changes.CONFIG``: not keys or roles) was committed
        since it was filled."""
        version = self.changes.in_request(CONFIG)
        if version != self._version:
            self._cache.clear()
            self._version = version
        return self._cache

    async def cached(self, key: Hashable, build: Callable[[], Awaitable[T]]) -> T:
        """What ``build`` makes of the store (a response body, rows), reused until a configuration change is
        committed by any process (``store.changes``). A value built while a change landed is handed out but not
        kept: the version is taken before the build and the value kept only if it still holds after."""
        cache = self.fresh()
        try:
            hit: T = cache[key]
            return hit
        except KeyError:
            pass
        version = self._version
        value = await build()
        if self.changes.version(CONFIG) == version == self._version:
            if len(cache) > 10_000:
                cache.clear()
            cache[key] = value
        return value

    def kept(self) -> int:
        """How many values are kept now (tests check reads are served from here)."""
        return len(self._cache)

    def dispose(self) -> None:
        self.changes.close()
        if self._sync is not None:
            self._sync.dispose()


# --- streamed exports ---------------------------------------------------------------------------------------------
#
# A million-row export through the async engine costs ~20 µs a row (aiosqlite's thread hop per fetch, SQLAlchemy
# rows, datetime parsing); a raw driver cursor costs ~2 µs. So exports read with the raw drivers:
# * SQLite: a ``sqlite3`` cursor in one of a few export threads, each keeping its connection (opening one and
#   reading the schema cost more than a 1,000-row export), which fetches and encodes chunks while the event loop
#   sends earlier ones;
# * PostgreSQL: an asyncpg cursor on a pooled connection, fetched a chunk at a time.
# Either way a few chunks exist at any time, whatever the size of the export.

def sqlite_file(engine: AsyncEngine) -> str | None:
    """The file behind a SQLite engine; ``None`` for PostgreSQL and in-memory databases."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


# Compiling an export's SELECT costs more than reading a small export: a statement is compiled once per shape (its
# cache key: the structure, not the values) and each call binds its own values, as SQLAlchemy's own cache does.
_COMPILED: dict[tuple[str, Any], SQLCompiler] = {}


def _compiled(stmt: ClauseElement, dialect: Dialect) -> tuple[SQLCompiler, MutableMapping[str, Any]]:
    key = stmt._generate_cache_key()
    if key is None:  # a construct SQLAlchemy cannot cache: compiled each time
        compiled = stmt.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        return compiled, compiled.construct_params()
    found = _COMPILED.get((dialect.name, key.key))
    if found is None:
        found = dialect.statement_compiler(dialect, stmt, cache_key=key)
        if len(_COMPILED) > 500:
            _COMPILED.clear()
        _COMPILED[(dialect.name, key.key)] = found
    return found, found.construct_params(extracted_parameters=key.bindparams)


def driver_sql(stmt: ClauseElement, dialect: Dialect) -> tuple[str, tuple[Any, ...]]:
    """``stmt`` as the DBAPI driver receives it: SQL text and positional parameters, ``IN`` lists
    expanded and every value converted by its column type (e.g. ``UTCDateTime`` to stored text)."""
    compiled, values = _compiled(stmt, dialect)
    state = compiled.construct_expanded_state(values)
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

    ``encode`` gets plain driver rows (sqlite3 tuples, asyncpg records): no column type processes the values, so
    select only columns whose stored form is what ``encode`` expects (text, integers; timestamps as text).
    """
    path = sqlite_file(engine)
    if path is not None:
        sql, params = driver_sql(stmt, engine.dialect)
        async with aclosing(_sqlite_encoded(path, sql, params, encode, rows)) as chunks:
            async for chunk in chunks:
                yield chunk
        return
    if engine.dialect.driver == "asyncpg":
        sql, params = driver_sql(stmt, engine.dialect)
        async with aclosing(_asyncpg_encoded(engine, sql, params, encode, rows)) as chunks:
            async for chunk in chunks:
                yield chunk
        return
    async with engine.connect() as aconn:  # an in-memory SQLite store (tests): the engine's own connection
        result = await aconn.stream(stmt.execution_options(yield_per=rows))
        async for part in result.partitions(rows):
            yield encode(part)


# Exports reading at once on PostgreSQL, per engine (as on SQLite): 32 clients exporting at once need no more
# connections than this, and on a few cores more queries at once would not finish sooner.
_PG_EXPORTS: weakref.WeakKeyDictionary[Any, asyncio.Semaphore] = weakref.WeakKeyDictionary()


async def _asyncpg_encoded(engine: AsyncEngine, sql: str, params: Sequence[Any],
                           encode: Callable[[Sequence[Any]], bytes], rows: int) -> AsyncGenerator[bytes, None]:
    """An asyncpg cursor (a portal, fetched ``rows`` at a time) in a read-only transaction on a pooled connection.
    An export of one chunk or less (the usual one) gives its connection back before the client reads a byte, so
    slow clients do not hold the pool."""
    whole: bytes | None = None
    turns = _PG_EXPORTS.get(engine.sync_engine)
    if turns is None:
        turns = _PG_EXPORTS[engine.sync_engine] = asyncio.Semaphore(EXPORT_THREADS)
    async with turns, engine.connect() as aconn:
        raw: Any = (await aconn.get_raw_connection()).driver_connection
        clean = False
        try:
            async with raw.transaction(readonly=True):
                cursor = await raw.cursor(sql, *params)
                batch = await cursor.fetch(rows)
                if len(batch) < rows:
                    whole = encode(batch) if batch else b""
                else:
                    yield encode(batch)
                    while batch := await cursor.fetch(rows):
                        yield encode(batch)
            clean = True
        except GeneratorExit:  # the client left between chunks: the connection is idle, the transaction rolled back
            clean = not raw.is_in_transaction()
            raise
        finally:
            if not clean:  # cancelled mid-fetch, or failed: the connection's state is unknown, never pooled again
                await aconn.invalidate()
    if whole:
        yield whole


# Exports running at once on SQLite past their first chunk, each in a thread with its own read snapshot; more wait
# their turn (a long snapshot holds the WAL from being checkpointed, so they are kept few).
EXPORT_THREADS = 8
_exports = ThreadPoolExecutor(EXPORT_THREADS, thread_name_prefix="vpbx-export")
_idle: dict[str, list[tuple[tuple[int, int], sqlite3.Connection]]] = {}  # path -> connections not in use
_running = [0]  # exports a thread is reading now (tests watch a reader end when its client leaves)
_running_lock = threading.Lock()


def exports_running() -> int:
    return _running[0]


def _identity(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _take(path: str) -> tuple[tuple[int, int], sqlite3.Connection]:
    """An idle read-only connection to ``path`` (opening one and reading the schema cost more than a small export);
    one kept for a file since replaced (tests recreate stores) is closed instead."""
    identity = _identity(path)
    idle = _idle.setdefault(path, [])
    while idle:
        kept = idle.pop()
        if kept[0] == identity:
            return kept
        kept[1].close()
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA query_only=1")
    return identity, conn


def _give_back(path: str, kept: tuple[tuple[int, int], sqlite3.Connection]) -> None:
    idle = _idle.setdefault(path, [])
    if len(idle) < EXPORT_THREADS:
        idle.append(kept)
    else:
        kept[1].close()


async def _sqlite_encoded(path: str, sql: str, params: Sequence[Any], encode: Callable[[Sequence[Any]], bytes],
                          rows: int, depth: int = 3) -> AsyncGenerator[bytes, None]:
    """The first chunk is read and encoded right here (an export of a chunk or less, the usual one, costs no thread
    hop, like any small read); the rest, if any, by an export thread, at most ``depth`` chunks ahead of the loop."""
    kept = _take(path)
    try:
        cursor = kept[1].execute(sql, params)  # one statement: one read snapshot for the whole export
        first = cursor.fetchmany(rows)
        chunk = encode(first) if first else None
    except BaseException:
        _give_back(path, kept)
        raise
    if len(first) < rows:
        cursor.close()
        _give_back(path, kept)
        if chunk is not None:
            yield chunk
        return
    loop = asyncio.get_running_loop()
    ready: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
    slots = threading.Semaphore(depth)
    stop = threading.Event()

    def hand(item: bytes | BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(ready.put_nowait, item)
        except RuntimeError:  # the loop is gone (server shutting down): nobody listens any more
            stop.set()

    def read() -> None:
        with _running_lock:
            _running[0] += 1
        try:
            produce()
        finally:
            cursor.close()  # ends the read snapshot; the connection serves the next export
            _give_back(path, kept)
            with _running_lock:
                _running[0] -= 1

    def produce() -> None:
        try:
            while not stop.is_set() and (batch := cursor.fetchmany(rows)):
                part = encode(batch)
                slots.acquire()
                if stop.is_set():
                    return
                hand(part)
            hand(None)
        except BaseException as exc:
            hand(exc)

    submitted = False
    try:
        assert chunk is not None
        yield chunk
        _exports.submit(read)
        submitted = True
        while (item := await ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            slots.release()
            yield item
    finally:
        stop.set()
        slots.release()  # wake the producer if it waits for a slot
        if not submitted:  # the client left after the first chunk: no thread took the cursor
            cursor.close()
            _give_back(path, kept)
