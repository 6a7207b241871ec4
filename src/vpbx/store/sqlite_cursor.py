"""One trip to aiosqlite's thread per SQLite statement.

SQLAlchemy's aiosqlite adapter makes four trips to the connection's thread for one statement (open a cursor,
execute, fetch the rows, close the cursor), each a thread hand-off and an event-loop wake-up: measured, a bare
``SELECT 1`` cost 0.38 ms of CPU against asyncpg's 0.07 ms, and a configuration write spends most of its time
there. This cursor runs the four in one function on the thread and keeps what SQLAlchemy reads afterwards
(description, rowcount, lastrowid, the rows). Server-side cursors (streamed exports) keep the adapter's own.

A write transaction runs on the event loop's thread, with no trip at all. Its lock is taken there when it is free
(``BEGIN IMMEDIATE`` with no busy wait); only when another process holds it (the CLI) does the statement go to
aiosqlite's thread to wait. Once held, nothing can make the transaction's statements wait (the lock is this
process's writer's, ``store.db``), each is tens of microseconds of SQLite's own work, less than the hand-off it
spares, and so is its commit: in WAL mode a commit appends to the log, and the log is copied into the database
(a checkpoint, which fsyncs) by ``Checkpoints`` in a thread of its own, not in the committing call (the pooled
connections' automatic checkpoint is off). Its rollback runs there too, and the rollback of a connection with no
transaction (the pool's reset of each connection it takes back) is no statement at all. Reads outside a write stay
on aiosqlite's thread.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection, AsyncAdapt_aiosqlite_cursor
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

from vpbx.tasks import spawn

_Outcome = tuple[Any, int, int | None, list[Any]]
log = logging.getLogger("vpbx.store")
BEGIN_WRITE = "BEGIN IMMEDIATE"
BUSY_MS = 30_000  # the pooled connections' busy timeout (``store.db``)


class Checkpoints:
    """Copies a database's write-ahead log into it every ``EVERY`` commits of the process (the pooled connections' and
    the delivery passes', ``repositories.outbox.SqlitePassStore``), in one thread shared by
    every database of the process, on a connection opened for it and closed after (a test suite opens hundreds of
    stores). It runs holding this process's writer turn (``store.db``), as SQLite's own checkpoint runs inside the
    committing writer's lock: with writers appending meanwhile it would never copy the whole log, the next writer
    could never start the log again from its beginning, and the log would grow without end under steady writes
    (seen: 18 MB after 3 minutes of 600 calls a minute). The loop goes on meanwhile; only writers wait, as they did
    for SQLite's own (which ran on the loop, inside every thousand pages' commit)."""

    EVERY = 256
    _pool: ThreadPoolExecutor | None = None
    _pool_lock = threading.Lock()

    def __init__(self, path: str, turn: Callable[[], asyncio.Lock]) -> None:
        self.path = path
        self.commits = 0
        self._turn = turn
        self._running: asyncio.Task[None] | None = None

    def committed(self) -> None:
        self.commits += 1
        if self.commits < self.EVERY:
            return
        loop = asyncio.get_running_loop()
        running = self._running
        if running is None or running.done() or running.get_loop() is not loop:
            self.commits = 0
            self._running = spawn(self._checkpoint(), name="vpbx-sqlite-checkpoint")

    async def _checkpoint(self) -> None:
        async with self._turn():
            await asyncio.get_running_loop().run_in_executor(self._executor(), self.now)

    @classmethod
    def _executor(cls) -> ThreadPoolExecutor:
        with cls._pool_lock:
            if cls._pool is None:
                cls._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vpbx-sqlite-checkpoint")
            return cls._pool

    def now(self) -> None:
        try:
            # mode=rw: a store removed meanwhile (a test's) is not created again, empty, by its checkpoint
            conn = sqlite3.connect(f"{Path(self.path).as_uri()}?mode=rw", uri=True, isolation_level=None,
                                   timeout=5)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:  # the next one tries again; the log only grows meanwhile
            log.warning("SQLite checkpoint failed: %s", exc)


_CHECKPOINTS: weakref.WeakKeyDictionary[Any, Checkpoints] = weakref.WeakKeyDictionary()  # aiosqlite connection ->
_BY_PATH: dict[str, Checkpoints] = {}


def checkpoints_of(path: str, turn: Callable[[], asyncio.Lock]) -> Checkpoints:
    """The checkpoints of the database file at ``path`` (its absolute path); ``turn``: the process's writer turn for
    it, on the running loop. Every connection of the process that writes to it counts its commits there."""
    found = _BY_PATH.get(path)
    if found is None:
        found = _BY_PATH[path] = Checkpoints(path, turn)
    return found


def checkpoints(dbapi_connection: Any, found: Checkpoints) -> None:
    """The pooled connection's commits are counted towards its database's checkpoints (its own are off)."""
    _CHECKPOINTS[dbapi_connection._connection] = found


_WRITING: set[int] = set()  # the adapter connections (ids) that hold this process's writer turn (``store.db``)


def writing(dbapi_connection: Any, holds: bool) -> None:
    """Whether the pooled connection holds the process's writer turn: from its first write until it is checked in."""
    if holds:
        _WRITING.add(id(dbapi_connection))
    else:
        _WRITING.discard(id(dbapi_connection))


def _run(driver: Any, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On aiosqlite's thread: the whole statement, the cursor closed before returning."""
    conn: sqlite3.Connection = driver._conn
    cur = conn.cursor()
    try:
        if many:
            cur.executemany(operation, parameters)
        elif parameters is None:
            cur.execute(operation)
        else:
            cur.execute(operation, parameters)
        description = cur.description
        rows = cur.fetchall() if description else []
        return description, cur.rowcount, cur.lastrowid, rows
    finally:
        cur.close()


async def _here(driver: Any, operation: str, parameters: Any, many: bool) -> _Outcome:
    """``_run`` on the event loop's thread, as a coroutine that never suspends: SQLAlchemy's asyncio layer insists
    that a statement awaits something (``AwaitRequired``), and this costs two greenlet switches, not a trip."""
    return _run(driver, operation, parameters, many)


async def _take_now(driver: Any) -> _Outcome | None:
    """``BEGIN IMMEDIATE`` on the loop's thread if the lock is free now (no busy wait); None when another process
    holds it (the caller waits for it on aiosqlite's thread)."""
    conn: sqlite3.Connection = driver._conn
    conn.execute("PRAGMA busy_timeout=0")
    try:
        conn.execute(BEGIN_WRITE)
    except sqlite3.OperationalError:
        if conn.in_transaction:  # pragma: no cover - BEGIN either begins or fails
            raise
        return None
    finally:
        conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    return None, -1, None, []


async def _commit_here(driver: Any) -> None:
    driver._conn.commit()
    _committed(driver)


async def _rollback_here(driver: Any) -> None:
    driver._conn.rollback()


def _committed(driver: Any) -> None:
    found = _CHECKPOINTS.get(driver)
    if found is not None:
        found.committed()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ("_done",)

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No driver cursor is opened here (the adapter's costs a trip): ``_run`` opens and closes its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._done: _Outcome = (None, -1, None, [])

    @property
    def description(self) -> Any:
        return self._done[0]

    @property
    def rowcount(self) -> int:
        return self._done[1]

    @property
    def lastrowid(self) -> int:
        return self._done[2]  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        return None

    def close(self) -> None:
        self._rows.clear()

    def _go(self, operation: Any, parameters: Any, many: bool) -> None:
        adapt = self._adapt_connection
        try:
            done = None
            if id(adapt) in _WRITING and not adapt._execute_mutex.locked():  # a write transaction
                if self._connection._conn.in_transaction:  # the lock is held
                    done = await_(_here(self._connection, operation, parameters, many))
                elif operation == BEGIN_WRITE:
                    done = await_(_take_now(self._connection))
            self._done = done if done is not None else await_(self._trip(operation, parameters, many))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._rows = collections.deque(self._done[3])

    async def _trip(self, operation: Any, parameters: Any, many: bool) -> _Outcome:
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await self._connection._execute(_run, self._connection, operation, parameters,
                                                                many)
            return outcome

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        self._go(operation, parameters, False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        self._go(operation, seq_of_parameters, True)

    def nextset(self) -> None:
        self._rows.clear()


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor  # type: ignore[assignment]  # a subclass: the adapter's own cursor, one trip

    def commit(self) -> None:
        if id(self) in _WRITING and not self._execute_mutex.locked() and self._connection._connection:
            try:
                await_(_commit_here(self._connection))
            except Exception as error:
                self._handle_exception(error)
            return
        super().commit()  # on the thread: no write lock held, so (nearly) nothing to copy, but counted all the same
        _committed(self._connection)

    def rollback(self) -> None:
        driver = self._connection._connection
        if driver is not None and not self._execute_mutex.locked():
            if not driver.in_transaction:  # nothing to undo (the pool's reset of every returned connection)
                return
            if id(self) in _WRITING:  # a write transaction: undone where it ran
                try:
                    await_(_rollback_here(self._connection))
                except Exception as error:
                    self._handle_exception(error)
                return
        super().rollback()


def adopt(dbapi_connection: Any) -> None:
    """Give a new pooled connection (SQLAlchemy's aiosqlite adapter) the one-trip cursor."""
    if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
        dbapi_connection.__class__ = OneTripConnection
