"""Where the receiver remembers the notifications it handled (``webhook-id``), so the PBX's retries and
replays reach a handler once: in memory (one process, the default), in a SQLite file (restarts and several
worker processes on one machine) or in Redis (several machines).

A store answers ``claim(key)`` with one of:

- ``NEW``: nobody handled it and nobody is handling it: the caller handles it now, then calls
  ``finish(key, handled)``: ``True`` remembers it, ``False`` (the handler failed) frees it for the retry;
- ``DONE``: handled already: acknowledge without handling;
- ``BUSY``: another request (or worker) is handling it right now: ask again a little later.

A claim whose worker died without finishing lapses after ``lease`` seconds, so the PBX's retry is handled.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

DEFAULT_LEASE = 60.0  # seconds a claim holds without finishing (a handler slower than this may run twice)
DEFAULT_TTL = 7 * 86400.0  # seconds a handled id is remembered: the PBX retries a failing CRM for days


class Claim(Enum):
    NEW = "new"
    DONE = "done"
    BUSY = "busy"


@runtime_checkable
class DedupeStore(Protocol):
    """The handled-notification ids of a receiver (see the module's doc for the contract)."""

    async def claim(self, key: str) -> Claim: ...

    async def finish(self, key: str, handled: bool) -> None: ...


class MemoryDedupe:
    """One process's memory: the last ``size`` handled ids (LRU) and the ones being handled."""

    def __init__(self, size: int = 10_000, *, lease: float = DEFAULT_LEASE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.lease = lease
        self.clock = clock
        self.done: OrderedDict[str, None] = OrderedDict()
        self.running: dict[str, float] = {}

    async def claim(self, key: str) -> Claim:
        if key in self.done:
            self.done.move_to_end(key)
            return Claim.DONE
        since = self.running.get(key)
        if since is not None and self.clock() - since < self.lease:
            return Claim.BUSY
        self.running[key] = self.clock()
        return Claim.NEW

    async def finish(self, key: str, handled: bool) -> None:
        self.running.pop(key, None)
        if handled:
            self.done[key] = None
            self.done.move_to_end(key)
            while len(self.done) > self.size:
                self.done.popitem(last=False)


class SqliteDedupe:
    """A SQLite file: survives restarts and is shared by every process that opens it (one machine).

    Each claim is one ``BEGIN IMMEDIATE`` transaction (SQLite's write lock serialises the workers); the
    file is in WAL mode and its queries run in a thread, off the event loop. Ids handled more than ``ttl``
    seconds ago are forgotten.
    """

    PURGE_EVERY = 1000  # finishes between two purges of expired ids

    def __init__(self, path: str | Path, *, lease: float = DEFAULT_LEASE, ttl: float = DEFAULT_TTL,
                 clock: Callable[[], float] = time.time, busy_timeout: float = 30.0) -> None:
        self.path = str(path)
        self.lease = lease
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._finished = 0
        self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        with self._lock:
            self._wal(busy_timeout)
            self._db.execute("CREATE TABLE IF NOT EXISTS vpbx_handled "
                             "(key TEXT PRIMARY KEY, done INTEGER NOT NULL, at REAL NOT NULL)")

    def _wal(self, busy_timeout: float) -> None:
        """The file in WAL mode. Worker processes that open a new file at once each try the switch, which needs the
        file to itself: SQLite answers one of two "locked" at once, without the busy timeout (waiting could
        deadlock them), so it is tried again; once another has switched, it is a no-op. (Seen in CI: a worker
        of four failed at start.)"""
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    def _claim(self, key: str) -> Claim:
        def work(db: sqlite3.Connection) -> Claim:
            now = self.clock()
            row = db.execute("SELECT done, at FROM vpbx_handled WHERE key = ?", (key,)).fetchone()
            if row is not None:
                done, at = row
                if done and now - at < self.ttl:
                    return Claim.DONE
                if not done and now - at < self.lease:
                    return Claim.BUSY
            db.execute("INSERT INTO vpbx_handled (key, done, at) VALUES (?, 0, ?) "
                       "ON CONFLICT (key) DO UPDATE SET done = 0, at = excluded.at", (key, now))
            return Claim.NEW

        return Claim(self._transaction(work))

    def _finish(self, key: str, handled: bool) -> None:
        def work(db: sqlite3.Connection) -> None:
            if handled:
                db.execute("UPDATE vpbx_handled SET done = 1, at = ? WHERE key = ?", (self.clock(), key))
            else:
                db.execute("DELETE FROM vpbx_handled WHERE key = ? AND done = 0", (key,))
            self._finished += 1
            if self._finished % self.PURGE_EVERY == 0:
                db.execute("DELETE FROM vpbx_handled WHERE done = 1 AND at < ?", (self.clock() - self.ttl,))

        self._transaction(work)

    async def claim(self, key: str) -> Claim:
        return await asyncio.to_thread(self._claim, key)

    async def finish(self, key: str, handled: bool) -> None:
        await asyncio.to_thread(self._finish, key, handled)


class RedisDedupe:
    """Redis (``pip install redis``): shared by workers on several machines.

    A claim is ``SET key busy NX PX lease``; a handled id becomes ``done`` for ``ttl`` seconds; a failed
    one is deleted (only while still this claim's ``busy``).
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "vpbx:handled:",
                 lease: float = DEFAULT_LEASE, ttl: float = DEFAULT_TTL, client: Any = None,
                 max_connections: int = 20) -> None:
        if client is None:
            import redis.asyncio

            # A blocking pool: a burst of notifications waits for a connection instead of failing.
            pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=30)
            client = redis.asyncio.Redis(connection_pool=pool)
        self.redis = client
        self.prefix = prefix
        self.lease = lease
        self.ttl = ttl

    async def close(self) -> None:
        await self.redis.aclose()

    async def claim(self, key: str) -> Claim:
        name = self.prefix + key
        if await self.redis.set(name, b"busy", nx=True, px=max(1, int(self.lease * 1000))):
            return Claim.NEW
        state = await self.redis.get(name)
        if state is None:  # the other claim lapsed or failed in between: try once more
            return Claim.NEW if await self.redis.set(name, b"busy", nx=True, px=int(self.lease * 1000)) else Claim.BUSY
        return Claim.DONE if state == b"done" else Claim.BUSY

    async def finish(self, key: str, handled: bool) -> None:
        name = self.prefix + key
        if handled:
            await self.redis.set(name, b"done", ex=max(1, int(self.ttl)))
        else:
            await self.redis.eval("if redis.call('GET', KEYS[1]) == 'busy' then return redis.call('DEL', KEYS[1]) "
                                  "end return 0", 1, name)
