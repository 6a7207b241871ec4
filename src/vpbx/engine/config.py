"""What the engine reads on every call (a number's route, the blacklist, a department and its members),
kept in memory so a call costs no queries (performance.md: simulated calls per second).

Freshness: the cache holds ``store.changes.CONFIG`` and is emptied when a change of it is committed by any
process, this one included (``after_commit`` moves the version at once), so an employee's DND, a new route or a
blacklisted number apply from the next call on, wherever they were written (the CLI, another worker). Writes of
API keys and roles (the ``access`` area) and the engine's own batches (``ENGINE_WRITES``) leave it whole. A
number's route is cached as what it depends on; the pure schedule rule picks the route for each call.

Reads and commits interleave (a read awaits the store): a read hands its own value to its caller, never
one looked up again after the await (a commit may have emptied the cache meanwhile), and keeps it only if
no emptying happened while it read (``_generation``); a value read across a commit is tagged with the version
before it, so the next read's check drops it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.domain import blacklist as blacklist_rules
from vpbx.domain.callerid import CallerIdConfig
from vpbx.runtime import Runtime
from vpbx.services import blacklist, callerids, numbers, ratings, restrictions
from vpbx.services import settings as settings_service
from vpbx.store.changes import CONFIG
from vpbx.store.changes import ENGINE_WRITES as ENGINE_WRITES  # session.info flag: the engine's batches keep caches
from vpbx.store.repositories import directory as repo
from vpbx.store.tables import Domain, Group, GroupMember, User


@dataclass(frozen=True, slots=True)
class Staff:
    """A department member as ringing reads them, many times a call: a plain snapshot of the employee (the cache
    is emptied whenever employees or departments change)."""

    user: User
    id: int
    login: str
    dnd: bool
    absent: bool
    mobile_redirect: bool  # on, with a mobile number to ring
    calls_enable: bool  # takes this department's calls (6.7, 8.6)


@dataclass(frozen=True)
class Roster:
    group: Group | None
    staff: tuple[Staff, ...]
    by_id: dict[int, Staff]


class ConfigCache:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._data: dict[tuple[Any, ...], Any] = {}
        self._generation = 0  # moves at every emptying: a read that saw it move may hold replaced data
        self._seen: int | None = None  # the CONFIG version the data was read at
        self.hits = self.misses = 0

    def close(self) -> None:
        """Nothing to release (the change signal is the store's); kept for the engine's shutdown."""

    def clear(self) -> None:
        self._data.clear()
        self._generation += 1

    def _fresh(self) -> None:
        # Any process's configuration commit (store.changes), looked for once per task: a call's step reads
        # the cache several times (route, blacklist, department...) and each look is a store read on SQLite. This
        # process's own commits move the version at once; a task is one request, or one timer of the real clock.
        version = self.rt.reader.changes.in_request(CONFIG)
        if version != self._seen:
            self.clear()
            self._seen = version

    async def route(self, domain: Domain, telnum: str, at: datetime) -> numbers.NumberRoute | None:
        book: numbers.RouteBook | None = await self._cached(("route", domain.id, telnum),
                                                            lambda s: numbers.route_book(s, domain.id, telnum))
        return book.at(at, domain.timezone) if book is not None else None

    async def blocked(self, domain_id: int, caller: str | None) -> blacklist_rules.BlockDecision:
        async def load(session: AsyncSession) -> Any:
            return (await blacklist.entries(session, domain_id), await blacklist.block_anonymous(session, domain_id))

        entries, anonymous = await self._cached(("blacklist", domain_id), load)
        return blacklist_rules.is_blocked(caller, entries, anonymous)

    async def group(self, domain_id: int, group_id: str) -> tuple[Group | None, Sequence[tuple[GroupMember, User]]]:
        async def load(session: AsyncSession) -> Any:
            group = await repo.find_group(session, domain_id, group_id)
            return group, (await repo.members(session, [group.id]))[group.id] if group else []

        found: tuple[Group | None, Sequence[tuple[GroupMember, User]]] = await self._cached(
            ("group", domain_id, group_id), load)
        return found

    async def roster(self, domain_id: int, group_id: str) -> Roster:
        """The department and its members for ringing (``group`` with each member's snapshot)."""
        key = ("roster", domain_id, group_id)
        self._fresh()
        found: Roster | None = self._data.get(key)
        if found is None:
            generation = self._generation
            group, members = await self.group(domain_id, group_id)
            staff = tuple(Staff(u, u.id, u.login, u.dnd, u.absent, bool(u.mobile_redirect_enabled and u.mobile),
                                m.calls_enable) for m, u in members)
            found = Roster(group, staff, {s.id: s for s in staff})
            if generation == self._generation:
                self._data[key] = found
        return found

    async def _cached(self, key: tuple[Any, ...], load: Any) -> Any:
        """Each read opens a session only on a miss: a call that finds everything here costs no session."""
        self._fresh()
        try:
            value = self._data[key]
        except KeyError:
            pass
        else:
            self.hits += 1
            return value
        self.misses += 1
        generation = self._generation
        async with self.rt.sessions() as session:
            value = await load(session)
        if generation == self._generation:
            self._data[key] = value
        return value

    async def user(self, domain_id: int, who: str) -> User | None:
        """An employee by login or extension (the engine reads their DND, absence and redirect)."""
        found: User | None = await self._cached(("user", domain_id, who),
                                                lambda s: repo.find_user(s, domain_id, who))
        return found

    async def dial_rules(self, domain_id: int, login: str | None) -> restrictions.DialRules:
        found: restrictions.DialRules = await self._cached(("dial", domain_id, login),
                                                           lambda s: restrictions.dial_rules(s, domain_id, login))
        return found

    async def caller_ids(self, domain_id: int) -> CallerIdConfig:
        found: CallerIdConfig = await self._cached(("clid", domain_id),
                                                   lambda s: callerids.caller_id_config(s, domain_id))
        return found

    async def caller_id(self, domain_id: int, client: str, login: str | None) -> str:
        """The caller ID of an employee's outgoing call to ``client`` (13; ``services.callerids``)."""
        groups: list[str] = await self._cached(("groups", domain_id, login),
                                               lambda s: callerids.groups_of(s, domain_id, login))
        return callerids.pick(await self.caller_ids(domain_id), client, login=login, groups=groups)

    async def record(self, domain_id: int) -> settings_service.RecordConfig:
        """002 §12.5: which calls are recorded (a port with media asks when a talk starts)."""
        found: settings_service.RecordConfig = await self._cached(
            ("record", domain_id), lambda s: settings_service.record_config(s, domain_id))
        return found

    async def rating(self, domain_id: int) -> tuple[frozenset[str], frozenset[str]]:
        """The numbers and the departments that ask callers for a score (``services.ratings``)."""
        found: tuple[frozenset[str], frozenset[str]] = await self._cached(
            ("rating", domain_id), lambda s: ratings.asking(s, domain_id))
        return found
