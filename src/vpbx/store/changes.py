"""The one change signal: a configuration commit by any process is seen by the next request of every process.

It says WHAT changed, by area, so a cache is emptied only by changes to what it holds:

* ``access``: who may call and as whom: the domains, API keys, roles and integrations (``api.auth.AuthCache``);
* ``config``: everything else configured: employees, departments, numbers, blacklist, ... (the read bodies of
  ``api.reads``, the engine's ``engine.config.ConfigCache``).

A table belongs to the areas ``AREAS_OF`` names (a domain's and an integration's rows to both), any other
configuration table to ``config``. Every commit that wrote configuration (any table but the logs and the live call
state below, from a session not marked as the engine's own batch) leaves a mark for its areas inside its own
transaction, so the mark and the change commit together:

* SQLite: a row of ``config_changes`` per area (``AREA_IDS``; a row missing is inserted by the first bump) moves by
  one (SQLite has one writer at a time: no contention). A reader selects the rows on a plain connection kept for
  it (a few microseconds per request); the engine's history writes leave them alone.
* PostgreSQL: ``pg_notify('vpbx_changes', 'access,config')`` naming the areas, delivered by the server at commit to
  every ``LISTEN``ing process; an empty payload (older code, ``BUMP``-like callers) means every area. A listener
  that (re)connects counts as a change of every area, and while it is not connected nothing is trusted, so a
  notification lost in between cannot leave a stale cache.

Commits in this process move their areas' versions at once (``after_commit``), before any notification returns.
Caches hold ``Changes.version(area)`` as they were filled and drop their contents when it moves; ``version()``
without an area moves with any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import weakref
from collections.abc import Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from vpbx.tasks import spawn

log = logging.getLogger("vpbx.changes")

ACCESS = "access"
CONFIG = "config"
AREA_IDS = {CONFIG: 1, ACCESS: 2}  # config_changes.id of each area's counter (1: the row migration 0016 made)
AREAS = frozenset(AREA_IDS)
# The tables AuthCache reads (api.auth): a change to one of them is an ``access`` change. Domains and integrations
# are read by configuration too (timezones, the legacy user map, the CRM's address): both areas.
AREAS_OF: dict[str, frozenset[str]] = {
    "api_keys": frozenset({ACCESS}),
    "custom_roles": frozenset({ACCESS}),
    "domains": AREAS,
    "integrations": AREAS,
}
_CONFIG_ONLY = frozenset({CONFIG})

CHANNEL = "vpbx_changes"
READ = "SELECT id, version FROM config_changes"
CHANGED = "vpbx.changes.configuration"  # session.info: the areas this transaction wrote (a set)
ENGINE_WRITES = "vpbx.engine.writes"  # session.info: the engine's own batches (engine.config.ENGINE_WRITES)
# What is written as calls happen, not configured: these tables never signal.
NOT_CONFIGURATION = frozenset({
    "call_history", "inner_call_history", "notify_outbox", "notify_attempts", "notify_health", "blocked_calls",
    "live_calls", "live_beats", "console_sessions",
    "cluster_nodes", "domain_leases", "pending_callbacks",  # a cluster's own state (vpbx.cluster), never config
})


def bump_sql(areas: Iterable[str]) -> str:
    """The SQLite statement moving these areas' counters, inserting a counter missing (one statement)."""
    rows = ", ".join(f"({AREA_IDS[a]}, 1)" for a in sorted(areas))
    return (f"INSERT INTO config_changes (id, version) VALUES {rows} "
            "ON CONFLICT (id) DO UPDATE SET version = config_changes.version + 1")


def notify_sql(areas: Iterable[str]) -> str:
    return f"SELECT pg_notify('{CHANNEL}', '{','.join(sorted(areas))}')"


BUMP = bump_sql(AREAS)  # every area: for writers outside the ORM that do not say what they changed (the outbox)

_local = dict.fromkeys(AREAS, 0)  # configuration commits made by this process, per area


def areas_of(table: str) -> frozenset[str]:
    """The areas a write to ``table`` changes (none for the logs and live state; every one for a write whose
    table is not known)."""
    if table in NOT_CONFIGURATION:
        return frozenset()
    return AREAS_OF.get(table, _CONFIG_ONLY) if table else AREAS


def _table_of(target: Any) -> str:
    table = getattr(target, "__table__", None)
    if table is None:
        table = getattr(target, "table", None)
    return str(getattr(table, "name", None) or "")


def _note(session: Session, areas: frozenset[str]) -> None:
    if areas:
        found = session.info.get(CHANGED)
        session.info[CHANGED] = areas if not found else found | areas


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        _note(session, areas_of(_table_of(obj)))


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: Any) -> None:
    if state.is_update or state.is_delete or state.is_insert:
        _note(state.session, areas_of(_table_of(state.statement)))


@event.listens_for(Session, "before_commit")
def _mark(session: Session) -> None:
    if session.info.get(ENGINE_WRITES) or session.in_nested_transaction():  # a savepoint: its outer commit marks
        return
    if session.new or session.dirty or session.deleted:
        session.flush()  # the commit would flush after this hook: the mark must follow the writes it covers
    areas = session.info.get(CHANGED)
    if not areas:
        return
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(bump_sql(areas))
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql(notify_sql(areas))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    areas = session.info.get(CHANGED)
    if areas and not session.info.get(ENGINE_WRITES):
        for area in areas:
            _local[area] += 1


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(CHANGED, None)


def _set(event: asyncio.Event, *_args: Any) -> None:
    event.set()


class Changes:
    """What one server process has seen of the store's configuration changes, per area."""

    def __init__(self, url: str) -> None:
        u = make_url(url)
        self._backend = u.get_backend_name()
        self._remote = dict.fromkeys(AREAS, 0)  # changes seen from the store (other processes, reconnections)
        # SQLite: a bare connection that only reads the counters (a pool checkout costs more than they do).
        self._path = ""
        self._conn: sqlite3.Connection | None = None
        self._stored: dict[int, int] | None = None
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
        self._known = False  # whether changes are known now (else each check is a new version of every area)
        self._unknown = 0  # checks made while changes were not known: only grows, so no such version comes back
        self._checked_by: weakref.ref[asyncio.Task[Any]] | None = None

    def version(self, area: str | None = None) -> int:
        """Moves whenever a change of ``area`` (of any area: None) was committed since the last call, by any
        process. One check of the store answers for every area."""
        self._check()
        try:
            self._checked_by = weakref.ref(asyncio.current_task())  # type: ignore[arg-type]
        except (RuntimeError, TypeError):  # no running loop, or no task
            self._checked_by = None
        return self._value(area)

    def in_request(self, area: str | None = None) -> int:
        """``version(area)`` as this task (a request) checked the store already, else checked now: a request
        checks the store once (its auth does), however many caches it then reads."""
        if self._checked_by is not None:
            try:
                task = asyncio.current_task()
            except RuntimeError:
                task = None
            if task is not None and self._checked_by() is task:
                return self._value(area)
        return self.version(area)

    def _value(self, area: str | None) -> int:
        if not self._known:
            return -self._unknown
        if area is None:
            return sum(_local.values()) + sum(self._remote.values())
        return _local[area] + self._remote[area]

    def _check(self) -> None:
        if self._backend == "sqlite" and self._path:
            self._known = True
            self._sqlite()
        elif self._backend == "postgresql" and self._listening:
            self._known = True
        else:
            self._known = False
            if self._backend == "postgresql":
                self._listen_soon()
            self._unknown += 1  # nobody tells us of changes now (or an in-memory store): every check is new

    def _moved(self, areas: Iterable[str]) -> None:
        for area in areas:
            self._remote[area] += 1

    # --- SQLite ---------------------------------------------------------------------------------------------

    def _sqlite(self) -> None:
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=30)
            stored: dict[int, int] = dict(self._conn.execute(READ).fetchall())
        except sqlite3.Error:
            log.warning("change signal unreadable; caches bypassed", exc_info=True)
            self.close()
            self._moved(AREAS)
            return
        if stored != self._stored:
            before = self._stored or {}
            moved = {i for i in stored.keys() | before.keys() if stored.get(i) != before.get(i)}
            known = {i: a for a, i in AREA_IDS.items()}
            if self._stored is None or not moved <= known.keys():
                self._moved(AREAS)  # the first read, or a counter this code does not know: every area
            else:
                self._moved(known[i] for i in moved)
            self._stored = stored

    # --- PostgreSQL -----------------------------------------------------------------------------------------

    def _listen_soon(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = spawn(self._listen(), name="vpbx-changes-listener")

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
                self._moved(AREAS)  # what changed while nobody listened is unknown: drop everything once
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

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        named = AREAS.intersection(payload.split(",")) if payload else AREAS
        self._moved(named or AREAS)  # an area this code does not know: every area

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
