"""One trip to aiosqlite's thread per SQLite statement.

SQLAlchemy's aiosqlite adapter makes four trips to the connection's thread for one statement (open a cursor,
execute, fetch the rows, close the cursor), each a thread hand-off and an event-loop wake-up: measured, a bare
``SELECT 1`` cost 0.38 ms of CPU against asyncpg's 0.07 ms, and a configuration write spends most of its time
there. This cursor runs the four in one function on the thread and keeps what SQLAlchemy reads afterwards
(description, rowcount, lastrowid, the rows). Server-side cursors (streamed exports) keep the adapter's own.

A connection that holds SQLite's write lock runs its statements on the event loop's thread, with no trip at all:
nothing can make them wait (the lock is this process's writer's, ``store.db``), and each is tens of microseconds
of SQLite's own work, less than the hand-off it spares (on SQLite a configuration write is several statements in
one such transaction). Taking the lock (``BEGIN IMMEDIATE``, or a transaction's first write), the commit (it may
checkpoint the WAL: an fsync) and every read outside a write stay on aiosqlite's thread.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection, AsyncAdapt_aiosqlite_cursor
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, int, int | None, list[Any]]
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
            if id(adapt) in _WRITING and not adapt._execute_mutex.locked() and self._connection._conn.in_transaction:
                self._done = await_(_here(self._connection, operation, parameters, many))  # holds the lock
            else:
                self._done = await_(self._trip(operation, parameters, many))
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


def adopt(dbapi_connection: Any) -> None:
    """Give a new pooled connection (SQLAlchemy's aiosqlite adapter) the one-trip cursor."""
    if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
        dbapi_connection.__class__ = OneTripConnection
