"""What the engine reads on every call (a number's route, the blacklist, a department and its members),
kept in memory so a call costs no queries (performance.md: simulated calls per second).

Freshness: a commit in this process that wrote anything but logs (history, the CRM outbox and its
attempts, blocked calls) empties the cache, so an employee's DND, a new route or a blacklisted number
apply from the next call on. Other processes' changes (the CLI) are seen within ``TTL`` seconds. A
number's route is cached per minute: schedules, extra intervals and special days are minute-granular.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from vpbx.domain import blacklist as blacklist_rules
from vpbx.runtime import Runtime
from vpbx.services import blacklist, numbers, ratings
from vpbx.store.repositories import directory as repo
from vpbx.store.tables import Domain, Group, GroupMember, User

TTL = 2.0
ENGINE_WRITES = "vpbx.engine.writes"  # session.info flag: the engine's own write batches keep the cache
CHANGED = "vpbx.engine.config_changed"
LOG_TABLES = frozenset({"call_history", "inner_call_history", "notify_outbox", "notify_attempts", "notify_health",
                        "blocked_calls"})


def _table_of(target: Any) -> str:
    table = getattr(target, "__table__", None)
    if table is None:
        table = getattr(target, "table", None)
    return str(getattr(table, "name", None) or "")


class ConfigCache:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._data: dict[tuple[Any, ...], Any] = {}
        self._born = time.monotonic()
        self.hits = self.misses = 0
        sync_class = getattr(runtime.sessions, "sync_session_class", None) or Session
        self._listener_target = sync_class
        self._listeners = (("before_flush", self._before_flush), ("do_orm_execute", self._on_execute),
                           ("after_commit", self._after_commit),
                           ("after_transaction_end", self._after_transaction_end))
        for name, fn in self._listeners:
            event.listen(sync_class, name, fn)

    def close(self) -> None:
        for name, fn in self._listeners:
            if event.contains(self._listener_target, name, fn):
                event.remove(self._listener_target, name, fn)

    @staticmethod
    def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
        for obj in (*session.new, *session.dirty, *session.deleted):
            if _table_of(obj) not in LOG_TABLES:
                session.info[CHANGED] = True
                return

    @staticmethod
    def _on_execute(state: Any) -> None:
        if (state.is_update or state.is_delete or state.is_insert) and \
                _table_of(state.statement) not in LOG_TABLES:
            state.session.info[CHANGED] = True

    def _after_commit(self, session: Session) -> None:
        # Read, not popped: every cache in the process (one per server: tests run several) must see it.
        if session.info.get(CHANGED, False) and not session.info.get(ENGINE_WRITES):
            self.clear()

    def _after_transaction_end(self, session: Session, transaction: Any) -> None:
        if transaction.parent is None:  # the outermost transaction is over (after every cache's after_commit)
            session.info.pop(CHANGED, None)

    def clear(self) -> None:
        self._data.clear()
        self._born = time.monotonic()

    def _fresh(self) -> None:
        if time.monotonic() - self._born > TTL:
            self.clear()

    # Each read opens a session only on a miss: a call that finds everything here costs no session at all.

    async def route(self, domain: Domain, telnum: str, at: datetime) -> Any:
        self._fresh()
        key = ("route", domain.id, telnum, int(at.timestamp() // 60))
        if key not in self._data:
            self.misses += 1
            async with self.rt.sessions() as session:
                self._data[key] = await numbers.route_for(session, domain, telnum, at)
        else:
            self.hits += 1
        return self._data[key]

    async def blocked(self, domain_id: int, caller: str | None) -> blacklist_rules.BlockDecision:
        self._fresh()
        key = ("blacklist", domain_id)
        if key not in self._data:
            self.misses += 1
            async with self.rt.sessions() as session:
                self._data[key] = (await blacklist.entries(session, domain_id),
                                   await blacklist.block_anonymous(session, domain_id))
        else:
            self.hits += 1
        entries, anonymous = self._data[key]
        return blacklist_rules.is_blocked(caller, entries, anonymous)

    async def group(self, domain_id: int, group_id: str) -> tuple[Group | None, Sequence[tuple[GroupMember, User]]]:
        self._fresh()
        key = ("group", domain_id, group_id)
        if key not in self._data:
            self.misses += 1
            async with self.rt.sessions() as session:
                group = await repo.find_group(session, domain_id, group_id)
                members = (await repo.members(session, [group.id]))[group.id] if group else []
            self._data[key] = (group, members)
        else:
            self.hits += 1
        found: tuple[Group | None, Sequence[tuple[GroupMember, User]]] = self._data[key]
        return found

    async def rating(self, domain_id: int) -> tuple[frozenset[str], frozenset[str]]:
        """The numbers and the departments that ask callers for a score (``services.ratings``)."""
        self._fresh()
        key = ("rating", domain_id)
        if key not in self._data:
            self.misses += 1
            async with self.rt.sessions() as session:
                self._data[key] = await ratings.asking(session, domain_id)
        else:
            self.hits += 1
        found: tuple[frozenset[str], frozenset[str]] = self._data[key]
        return found
