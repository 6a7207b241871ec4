"""The configuration reads' answers as bytes, built once and kept until a ``config`` change (``store.changes``).

Each function here is what a GET endpoint of REST v1 or the legacy API answers; the FastAPI endpoint and the
fast read path (``api.fastpath``) both call it, so both serve the same bytes from the same cache. A value is
kept under the read's name, the domain and its arguments (``Reader.cached``); what is live rather than stored
(employees' registration status, trunk status, blocked-call statistics) is never part of a kept body.
A missing object raises the service's ``NotFound`` as before and is not kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.api.pagination import Page, envelope
from vpbx.runtime import Runtime
from vpbx.services import blacklist, callerids, groups, legacy, numbers, sipregs, users
from vpbx.services.errors import NotFound
from vpbx.store.repositories import directory
from vpbx.store.repositories import numbers as numbers_repo
from vpbx.store.repositories import trunks as trunks_repo
from vpbx.store.tables import SipRegistration


async def _kept(runtime: Runtime, key: tuple[Any, ...], load: Callable[[AsyncSession], Awaitable[Any]]) -> bytes:
    """``load``'s answer serialised, built in a session of its own on a miss."""

    async def build() -> bytes:
        async with runtime.sessions() as session:
            return orjson.dumps(await load(session))

    return await runtime.reader.cached(key, build)


# --- 6. Сотрудники ------------------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Users:
    """A page of employees as 6.1 lists them, kept until a configuration change (their status is not in it), and
    the ``with=status`` body last built from it with the set of registered logins it was built for: statuses
    change with registrations, not per request, so a poll whose registrations are unchanged is one set lookup per
    employee and no encoding (the body goes when the page does)."""

    items: list[dict[str, Any]]
    total: int
    logins: list[str]
    online: frozenset[str] | None = None
    body: bytes = b""


async def _user_items(runtime: Runtime, domain_id: int, page: Page) -> _Users:

    async def load() -> _Users:
        rows, total = await directory.list_users(runtime.reader, domain_id, page)
        items = [users.user_out(u) for u in rows]
        return _Users(items, total, [i["login"] for i in items])

    return await runtime.reader.cached(("user items", domain_id, page), load)


def _with_status(item: dict[str, Any], online: frozenset[str]) -> dict[str, Any]:
    """``item`` and its live status (last, as ``users.user_out`` puts it), ``online`` the registered logins."""
    return {**item, "status": "online" if item["login"] in online else "offline"}


def _online(runtime: Runtime, domain_id: int, logins: list[str]) -> frozenset[str]:
    """Which of ``logins`` have a device registered now: read at each request, never kept."""
    return frozenset(runtime.telephony.registered_of(domain_id, logins))


async def users_list(runtime: Runtime, domain_id: int, page: Page, with_: str | None) -> bytes:
    """6.1. ``with=status``: the kept employees, each with its registration as it is now."""
    if with_ == "status":
        kept = await _user_items(runtime, domain_id, page)
        # No await from here on: the page and its body change together.
        online = _online(runtime, domain_id, kept.logins)
        if online != kept.online:
            kept.body = orjson.dumps(envelope([_with_status(i, online) for i in kept.items], page, kept.total))
            kept.online = online
        return kept.body

    async def build() -> bytes:
        kept = await _user_items(runtime, domain_id, page)
        return orjson.dumps(envelope(kept.items, page, kept.total))

    return await runtime.reader.cached(("users", domain_id, page), build)


async def _user_item(runtime: Runtime, domain_id: int, login: str) -> dict[str, Any]:
    """One employee as 6.2 shows it, kept until a configuration change (its status is not in it)."""

    async def load() -> dict[str, Any]:
        user = await directory.read_user(runtime.reader, domain_id, login)
        if user is None:
            raise NotFound("user")
        return users.user_out(user)

    return await runtime.reader.cached(("user item", domain_id, login), load)


async def user_one(runtime: Runtime, domain_id: int, login: str, with_: str | None) -> bytes:
    """6.2. ``with=status`` as in 6.1."""
    if with_ == "status":
        item = await _user_item(runtime, domain_id, login)
        return orjson.dumps(_with_status(item, _online(runtime, domain_id, [login])))

    async def build() -> bytes:
        return orjson.dumps(await _user_item(runtime, domain_id, login))

    return await runtime.reader.cached(("user", domain_id, login), build)


# --- 8. Отделы ------------------------------------------------------------------------------------------------------

async def groups_list(runtime: Runtime, domain_id: int, page: Page) -> bytes:
    """8.1."""

    async def load(session: AsyncSession) -> Any:
        rows, total = await directory.list_groups(session, domain_id, page)
        return envelope(await groups.render(session, rows), page, total)

    return await _kept(runtime, ("groups", domain_id, page), load)


async def group_one(runtime: Runtime, domain_id: int, group_id: str) -> bytes:
    """8.2."""

    async def load(session: AsyncSession) -> Any:
        return (await groups.render(session, [await groups.get(session, domain_id, group_id)]))[0]

    return await _kept(runtime, ("group", domain_id, group_id), load)


# --- 9. Номера ------------------------------------------------------------------------------------------------------

async def telnums_list(runtime: Runtime, domain_id: int, page: Page) -> bytes:
    """9.1."""

    async def load(session: AsyncSession) -> Any:
        rows, total = await numbers_repo.list_telnums(session, domain_id, page)
        return envelope(await numbers.render(session, domain_id, rows), page, total)

    return await _kept(runtime, ("telnums", domain_id, page), load)


async def telnum_one(runtime: Runtime, domain_id: int, telnum: str) -> bytes:
    """9.2."""

    async def load(session: AsyncSession) -> Any:
        return (await numbers.render(session, domain_id, [await numbers.get(session, domain_id, telnum)]))[0]

    return await _kept(runtime, ("telnum", domain_id, telnum), load)


# --- 11. Черный список ----------------------------------------------------------------------------------------------

async def blacklist_list(runtime: Runtime, domain_id: int, statistics: bool) -> bytes:
    """11.1. The statistics count blocked calls (a log, not configuration): built for each request."""

    async def load(session: AsyncSession) -> Any:
        return await blacklist.listing(session, domain_id, runtime.clock.now(), statistics)

    if statistics:
        async with runtime.sessions() as session:
            return orjson.dumps(await load(session))
    return await _kept(runtime, ("blacklist", domain_id), load)


async def block_anonymous(runtime: Runtime, domain_id: int) -> bytes:
    """11.4."""

    async def load(session: AsyncSession) -> Any:
        return {"state": await blacklist.block_anonymous(session, domain_id)}

    return await _kept(runtime, ("block-anonymous", domain_id), load)


# --- 13. Исходящие номера -------------------------------------------------------------------------------------------

async def callerids_overview(runtime: Runtime, domain_id: int) -> bytes:
    """13.1."""
    return await _kept(runtime, ("caller-ids", domain_id), lambda s: callerids.overview(s, domain_id))


async def callerids_telnums(runtime: Runtime, domain_id: int) -> bytes:
    """13.2."""
    return await _kept(runtime, ("caller-ids/telnums", domain_id), lambda s: callerids.telnums(s, domain_id))


async def callerids_regions(runtime: Runtime) -> bytes:
    """13.5: the same for every domain."""

    async def build() -> bytes:
        return orjson.dumps(callerids.regions())

    return await runtime.reader.cached(("caller-ids/regions",), build)


# --- 15. SIP-регистрации --------------------------------------------------------------------------------------------
# A trunk's status is the simulated telephony's, live: the stored registrations are kept, the body is made per request.

async def sipregs_list(runtime: Runtime, domain_id: int, page: Page) -> bytes:
    """15.1."""

    async def build() -> tuple[Sequence[SipRegistration], int]:
        async with runtime.sessions() as session:
            return await trunks_repo.list_sipregs(session, domain_id, page)

    rows, total = await runtime.reader.cached(("sip-registrations", domain_id, page), build)
    return orjson.dumps(envelope([sipregs.sipreg_out(r, runtime.telephony) for r in rows], page, total))


async def sipreg_one(runtime: Runtime, domain_id: int, telnum: str) -> bytes:
    """15.2 (``telnum`` as stored)."""

    async def build() -> SipRegistration:
        async with runtime.sessions() as session:
            return await sipregs.get(session, domain_id, telnum)

    reg = await runtime.reader.cached(("sip-registration", domain_id, telnum), build)
    return orjson.dumps(sipregs.sipreg_out(reg, runtime.telephony))


# --- the legacy API (000 §5.1, §5.2) --------------------------------------------------------------------------------

async def legacy_accounts(runtime: Runtime, domain_id: int) -> bytes:
    return await _kept(runtime, ("legacy-accounts", domain_id), lambda s: legacy.accounts(s, domain_id))


async def legacy_groups(runtime: Runtime, caller: legacy.Caller, user: str | None) -> bytes:
    """All departments, or those of the employee ``user`` names (resolved as the legacy API resolves it)."""

    async def load(session: AsyncSession) -> Any:
        who = await legacy.resolve_user(session, caller, user) if user is not None else None
        return await legacy.groups(session, caller.domain_id, who)

    return await _kept(runtime, ("legacy-groups", caller.domain_id, caller.user_map_enabled, user), load)
