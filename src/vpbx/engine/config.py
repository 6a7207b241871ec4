"""What the engine reads on every call (a number's route, the blacklist, a department and its members),
kept in memory so a call costs no queries (performance.md: simulated calls per second).

Freshness: any commit in this process other than the engine's own writes empties the cache (an employee
in DND, a new route, a blacklisted number count from the next call on); other processes' changes (the
CLI) are seen within ``TTL`` seconds. A number's route is cached per minute: schedules, extra intervals
and special days are minute-granular (002 §9.7-9.9).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from vpbx.domain import blacklist as blacklist_rules
from vpbx.runtime import Runtime
from vpbx.services import blacklist, numbers
from vpbx.store.repositories import directory as repo
from vpbx.store.tables import Domain, Group, GroupMember, User

TTL = 2.0
ENGINE_WRITES = "vpbx.engine.writes"  # session.info flag: the engine's own write batches keep the cache


class ConfigCache:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._data: dict[tuple[Any, ...], Any] = {}
        self._born = time.monotonic()
        self.hits = self.misses = 0
        sync_class = getattr(runtime.sessions, "sync_session_class", None) or Session
        self._listener_target = sync_class
        event.listen(sync_class, "after_commit", self._after_commit)

    def close(self) -> None:
        if event.contains(self._listener_target, "after_commit", self._after_commit):
            event.remove(self._listener_target, "after_commit", self._after_commit)

    def _after_commit(self, session: Session) -> None:
        if not session.info.get(ENGINE_WRITES):
            self.clear()

    def clear(self) -> None:
        self._data.clear()
        self._born = time.monotonic()

    def _fresh(self) -> None:
        if time.monotonic() - self._born > TTL:
            self.clear()

    async def route(self, session: AsyncSession, domain: Domain, telnum: str, at: datetime) -> Any:
        self._fresh()
        key = ("route", domain.id, telnum, int(at.timestamp() // 60))
        if key not in self._data:
            self.misses += 1
            self._data[key] = await numbers.route_for(session, domain, telnum, at)
        else:
            self.hits += 1
        return self._data[key]

    async def blocked(self, session: AsyncSession, domain_id: int, caller: str | None) -> blacklist_rules.BlockDecision:
        self._fresh()
        key = ("blacklist", domain_id)
        if key not in self._data:
            self.misses += 1
            self._data[key] = (await blacklist.entries(session, domain_id),
                               await blacklist.block_anonymous(session, domain_id))
        else:
            self.hits += 1
        entries, anonymous = self._data[key]
        return blacklist_rules.is_blocked(caller, entries, anonymous)

    async def group(self, session: AsyncSession, domain_id: int,
                    group_id: str) -> tuple[Group | None, Sequence[tuple[GroupMember, User]]]:
        self._fresh()
        key = ("group", domain_id, group_id)
        if key not in self._data:
            self.misses += 1
            group = await repo.find_group(session, domain_id, group_id)
            members = (await repo.members(session, [group.id]))[group.id] if group else []
            self._data[key] = (group, members)
        else:
            self.hits += 1
        found: tuple[Group | None, Sequence[tuple[GroupMember, User]]] = self._data[key]
        return found
