"""Engine and session factory for SQLite (WAL) and PostgreSQL, and the migration runner."""

from __future__ import annotations

import asyncio
import os
import re
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from vpbx.store.sqlite_cursor import BUSY_MS, Checkpoints, adopt, checkpoints, checkpoints_of, writing

MIGRATIONS = Path(__file__).parent / "migrations"


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite:///`` URLs and pick the async drivers."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+asyncpg")
    elif u.drivername == "sqlite":
        u = u.set(drivername="sqlite+aiosqlite")
    return u.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    url = normalize_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            from vpbx.secrets_store import private_file

            private_file(Path(database))  # 0600 before SQLite creates it (its -wal/-shm files copy the mode)
        # check_same_thread off: statements under the write lock run on the loop's thread (store.sqlite_cursor)
        engine = create_async_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        on_disk = database and database != ":memory:" and not database.startswith("file:")
        resolved = sqlite_file(database) if database and on_disk else f"memory:{id(engine)}"

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            adopt(dbapi_conn)  # one trip to aiosqlite's thread per statement (sqlite_cursor)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable with WAL at commit boundaries
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={BUSY_MS}")
            if on_disk:  # commits run on the loop: the log is copied into the database off it (sqlite_cursor)
                cur.execute("PRAGMA wal_autocheckpoint=0")
                checkpoints(dbapi_conn, file_checkpoints(resolved))
            cur.close()

        _one_writer(engine, resolved)
        return engine
    # Sized for the connections a server uses at once (measured: 32 concurrent clients): a connection beyond
    # pool_size is closed when it comes back, so a small pool under load opened one per request (595 in 10 s).
    # VPBX_DB_POOL lowers it where many servers share one PostgreSQL (the test suite: max_connections 100).
    kwargs.setdefault("pool_size", int(os.environ.get("VPBX_DB_POOL", "40")))
    kwargs.setdefault("max_overflow", 10)
    return create_async_engine(url, pool_pre_ping=False, **kwargs)


# Writers of one SQLite database in this process take turns, in arrival order. SQLite lets one transaction write
# at a time; left to itself, each waiting connection polls the lock (sleeping up to 100 ms between tries, in no
# particular order): under 32 concurrent writers that gave p99 latencies of seconds. A queue in front of the lock
# (an asyncio.Lock: FIFO) leaves SQLite's busy handler to other processes (the CLI). A transaction joins the queue
# at its first write statement (reads before it hold no snapshot: pysqlite begins a transaction at the first
# write) and leaves it when its connection goes back to the pool (after the commit or the rollback). The queue
# is per database file and event loop: the engine's own write pool (engine.core) queues with the requests.
# WRITER_WAIT bounds the wait: a writer that waits for itself (a second write session opened while its first is
# still open) fails instead of hanging.
WRITER_TURN = "vpbx.writer_turn"
WRITER_WAIT = 30.0
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN")  # BEGIN: repositories.directory.begin_write
_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


def sqlite_file(database: str) -> str:
    """A SQLite file's key for its writer turn and its checkpoints: its resolved path."""
    return str(Path(database).resolve())


def writer_turn(database: str) -> asyncio.Lock:
    """This process's writer turn for the SQLite file ``database`` (``sqlite_file``), on the running loop."""
    turns = _TURNS.setdefault(asyncio.get_running_loop(), {})
    return turns.setdefault(database, asyncio.Lock())


async def take_writer_turn(database: str) -> asyncio.Lock:
    """Wait for the file's writer turn, at most WRITER_WAIT, and hold it (the caller releases it). Through
    ``wait_for``'s task even when the turn is free: awaited in the writer's own task instead (``asyncio.timeout``),
    the loop's lag p99 under the write bench went from 2.4-2.7 to 4.6-7.8 ms (same runs; measured, not explained:
    likely the task's extra hop lets the loop turn between one writer's release and the next one's transaction)."""
    turn = writer_turn(database)
    await asyncio.wait_for(turn.acquire(), WRITER_WAIT)
    return turn


def file_checkpoints(database: str) -> Checkpoints:
    """The file's checkpoints, run holding its writer turn; every connection of the process that writes to it
    counts its commits there (the pooled ones and the delivery passes')."""
    return checkpoints_of(database, lambda: writer_turn(database))


def _one_writer(engine: AsyncEngine, database: str) -> None:
    from sqlalchemy.util import await_only

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _queue(conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool) -> None:
        if conn.info.get(WRITER_TURN) or not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        conn.info[WRITER_TURN] = await_only(take_writer_turn(database))
        writing(conn.connection.dbapi_connection, True)

    @event.listens_for(engine.sync_engine, "checkin")
    def _leave(_dbapi_conn: Any, record: Any) -> None:
        turn = record.info.pop(WRITER_TURN, None)
        if turn is not None:
            writing(_dbapi_conn, False)
            turn.release()


def session_factory(engine: AsyncEngine, settings: Any = None) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``; with ``settings``, each carries them (``secrets_store.box_of`` seals with them)."""
    info = {"vpbx.settings": settings} if settings is not None else None
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


def _upgrade(connection: Connection, revision: str, box: Any = None) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    cfg.attributes["box"] = box  # migrations that seal stored credentials (0013) use the server's box
    command.upgrade(cfg, revision)


_REVISION = re.compile(r"^revision\b[^=\n]*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_PARENTS = re.compile(r"^(?:down_revision|depends_on)\b[^=\n]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


def _graph() -> dict[str, set[str]] | None:
    """Each migration's parents (``down_revision`` and ``depends_on``), read from the files without importing
    Alembic; None when a file does not read as expected (then Alembic decides)."""
    parents: dict[str, set[str]] = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found = _REVISION.search(text)
        lines = _PARENTS.findall(text)
        if found is None or len(lines) != 2 or any("(" in line and ")" not in line for line in lines):
            return None
        parents[found.group(1)] = {q for line in lines for q in _QUOTED.findall(line)}
    return parents


async def _at_heads(engine: AsyncEngine) -> bool:
    """Every migration is applied already: a warm start needs no Alembic (its import and script scan cost a
    tenth of ``vpbx serve``'s start; issue 14). Applied means: each head is in the store's version table or is
    an ancestor (parent or dependency) of one there, as Alembic reckons it."""
    graph = _graph()
    if not graph:
        return False
    try:
        async with engine.connect() as conn:
            stored = {row[0] for row in await conn.exec_driver_sql("SELECT version_num FROM alembic_version")}
    except DBAPIError:  # a new store: no version table yet
        return False
    if not stored or not stored <= graph.keys():
        return False
    applied, todo = set(), list(stored)
    while todo:
        rev = todo.pop()
        if rev not in applied:
            applied.add(rev)
            todo.extend(graph.get(rev, ()))
    heads = graph.keys() - {p for ps in graph.values() for p in ps}
    return heads <= applied


async def upgrade(engine: AsyncEngine, revision: str = "heads", box: Any = None) -> None:
    """Apply every migration not yet applied (each feature may add its own head). ``box``: the server's
    ``SecretBox``, for migrations that seal what was stored in clear."""
    if revision == "heads" and await _at_heads(engine):
        return
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # nodes of a cluster start together: one migrates, the rest wait
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7215005019)")
        await conn.run_sync(_upgrade, revision, box)
