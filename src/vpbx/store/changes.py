"""The one change signal: a configuration commit by any process is seen by the next request of every process.

Every commit that wrote configuration (any table but the logs and the live call state below, from a session not
marked as the engine's own batch) leaves a mark inside its own transaction, so the mark and the change commit
together:

* SQLite: the one row of ``config_changes`` moves by one (SQLite has one writer at a time: no contention). A
  reader selects it on a plain connection kept for it (a few microseconds per request); the engine's history
  writes leave it alone, so they never empty a cache.
* PostgreSQL: ``pg_notify('vpbx_changes')``, delivered by the server at commit to every ``LISTEN``ing process.
  A listener that (re)connects counts as a change (everything cached before it is dropped), and while it is not
  connected nothing is trusted, so a notification lost in between cannot leave a stale cache.

Commits in this process move the version at once (``after_commit``), before any notification returns.

Caches hold the ``Changes.version()`` they were filled at and drop their contents when it moves. One version for
every domain: a change anywhere empties every cache (configuration changes are rare next to reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

log = logging.getLogger("vpbx.changes")

CHANNEL = "vpbx_changes"
BUMP = "UPDATE config_changes SET version = version + 1 WHERE id = 1"
READ = "SELECT version FROM config_changes WHERE id = 1"
CHANGED = "vpbx.changes.configuration"  # session.info: this transaction wrote configuration
ENGINE_WRITES = "vpbx.engine.writes"  # session.info: the engine's own batches (engine.config.ENGINE_WRITES)
# What is written as calls happen, not configured: these tables never signal.
NOT_CONFIGURATION = frozenset({
    "call_history", "inner_call_history", "notify_outbox", "notify_attempts", "notify_health", "blocked_calls",
    "live_calls", "live_beats", "console_sessions",
})

_local = 0  # configuration commits made by this process


def _table_of(target: Any) -> str:
    table = getattr(target, "__table__", None)
    if table is None:
        table = getattr(target, "table", None)
    return str(getattr(table, "name", None) or "")


def _writes_configuration(session: Session) -> bool:
    return any(_table_of(obj) not in NOT_CONFIGURATION for obj in (*session.new, *session.dirty, *session.deleted))


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if _writes_configuration(session):
        session.info[CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: Any) -> None:
    if (state.is_update or state.is_delete or state.is_insert) and _table_of(state.statement) not in NOT_CONFIGURATION:
        state.session.info[CHANGED] = True


@event.listens_for(Session, "before_commit")
def _mark(session: Session) -> None:
    if session.info.get(ENGINE_WRITES):
        return
    if session.new or session.dirty or session.deleted:
        session.flush()  # the commit would flush after this hook: the mark must follow the writes it covers
    if not session.info.get(CHANGED):
        return
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(BUMP)
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_notify('{CHANNEL}', '')")


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    global _local
    if session.info.get(CHANGED) and not session.info.get(ENGINE_WRITES):
        _local += 1


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(CHANGED, None)


def _set(event: asyncio.Event, *_args: Any) -> None:
    event.set()


class Changes:
    """What one server process has seen of the store's configuration changes."""

    def __init__(self, url: str) -> None:
        u = make_url(url)
        self._backend = u.get_backend_name()
        self._remote = 0  # changes seen from the store (other processes, reconnections)
        # SQLite: a bare connection that only reads the two pragmas (a pool checkout costs more than they do).
        self._path = ""
        self._conn: sqlite3.Connection | None = None
        self._stored: Any = None
        if self._backend == "sqlite":
            database = u.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                self._path = database
        # PostgreSQL: the listener and whether it is connected now.
        self._dsn = u.set(drivername="postgresql").render_as_string(hide_password=False) \
            if self._backend == "postgresql" else ""
        self._listening = False
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unknown = 0
        self._last = 0
        self._checked_by: weakref.ref[asyncio.Task[Any]] | None = None

    def version(self) -> int:
        """Moves whenever a configuration change was committed since the last call, by any process."""
        version = self._check()
        self._last = version
        try:
            self._checked_by = weakref.ref(asyncio.current_task())  # type: ignore[arg-type]
        except (RuntimeError, TypeError):  # no running loop, or no task
            self._checked_by = None
        return version

    def in_request(self) -> int:
        """``version()`` as this task (a request) checked it already, else checked now: a request checks the store
        once (its auth does), however many caches it then reads."""
        if self._checked_by is not None:
            try:
                task = asyncio.current_task()
            except RuntimeError:
                task = None
            if task is not None and self._checked_by() is task:
                return self._last
        return self.version()

    def _check(self) -> int:
        if self._backend == "sqlite" and self._path:
            return _local + self._sqlite()
        if self._backend == "postgresql":
            if not self._listening:
                self._listen_soon()
                self._unknown += 1  # nobody tells us of changes now: every call is a new version
                return -self._unknown
            return _local + self._remote
        self._unknown += 1  # an in-memory database or an unknown store: nothing is cached
        return -self._unknown

    # --- SQLite ---------------------------------------------------------------------------------------------

    def _sqlite(self) -> int:
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=30)
            stored = self._conn.execute(READ).fetchall()
            if stored != self._stored:
                self._stored = stored
                self._remote += 1
        except sqlite3.Error:
            log.warning("change signal unreadable; caches bypassed", exc_info=True)
            self.close()
            self._remote += 1
        return self._remote

    # --- PostgreSQL -----------------------------------------------------------------------------------------

    def _listen_soon(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._listen(), name="vpbx-changes-listener")

    async def _listen(self) -> None:
        import asyncpg

        delay = 0.05
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(self._dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(functools.partial(_set, lost))
                await conn.add_listener(CHANNEL, self._notified)
                self._remote += 1  # what changed while nobody listened is unknown: drop everything once
                self._listening = True
                self._connected.set()
                delay = 0.05
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("change listener lost; caches bypassed until it reconnects", exc_info=True)
            finally:
                self._listening = False
                self._connected.clear()
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _notified(self, *_args: Any) -> None:
        self._remote += 1

    async def ready(self) -> None:
        """Wait until changes are being listened for (PostgreSQL); a no-op elsewhere."""
        if self._backend != "postgresql":
            return
        self.version()
        await self._connected.wait()

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
            self._stored = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._listening = False
