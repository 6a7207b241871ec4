"""Caller IDs (002 §13): the numbers outgoing calls may show, and which one each call shows.

The domain's numbers are the numbers feature's (``telnums``, 002 §9); each may be used for outgoing calls
unless switched off here (``outgoing_telnums``, §13.2 ``enabled``). Every caller-ID setting must name a
number that is the domain's and enabled; one that stops being so is skipped when calls choose.

The company's main number (§13.3 ``main``) is the number flagged ``is_main_phone`` (§9.1): one setting, read and
written through ``services.numbers`` (the settings row's ``callerid_main`` is no longer read).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.domain.callerid import CallerIdConfig, CallerIdMode, RegionalCallerId, choose_caller_id
from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.domain.regions import REGIONS, REGIONS_BY_ID, region_for_number
from vpbx.services import numbers, settings
from vpbx.services.errors import Invalid, NotFound
from vpbx.store.repositories import directory as dir_repo
from vpbx.store.repositories import settings as repo

MODES = tuple(m.value for m in CallerIdMode)


async def telnums(session: AsyncSession, domain_id: int) -> list[dict[str, Any]]:
    """§13.2: the domain's numbers, each with whether it may be used for outgoing calls."""
    overrides = {t.telnum: t.enabled for t in await repo.outgoing_telnums(session, domain_id)}
    return [{"telnum": n, "enabled": overrides.get(n, True)} for n in await repo.domain_numbers(session, domain_id)]


async def enabled_numbers(session: AsyncSession, domain_id: int) -> frozenset[str]:
    return frozenset(t["telnum"] for t in await telnums(session, domain_id) if t["enabled"])


async def set_outgoing(session: AsyncSession, domain_id: int, telnum: str, enabled: bool) -> str:
    """Allow or forbid outgoing calls from one of the domain's numbers (operator CLI)."""
    number = _normalize(telnum)
    if number not in await repo.domain_numbers(session, domain_id):
        raise Invalid("telnum", f"{number} is not a number of the domain")
    await repo.set_outgoing_telnum(session, domain_id, number, enabled)
    return number


def _normalize(telnum: str) -> str:
    try:
        return normalize_number(telnum)
    except InvalidNumber as exc:
        raise Invalid("telnum", "not a valid phone number") from exc


async def _usable(session: AsyncSession, domain_id: int, telnum: str) -> str:
    number = _normalize(telnum)
    if number not in await enabled_numbers(session, domain_id):
        raise Invalid("telnum", f"{number} is not a number of the domain enabled for outgoing calls")
    return number


def _region(region_id: str) -> int:
    rid = int(region_id) if region_id.strip().isdigit() else -1
    if rid not in REGIONS_BY_ID:
        raise Invalid("id", f"unknown region '{region_id}'")
    return rid


def regions() -> list[dict[str, str]]:
    """§13.5: the regions a regional number may be set for."""
    return [{"id": str(r.id), "name": r.name} for r in REGIONS]


async def overview(session: AsyncSession, domain_id: int) -> dict[str, Any]:
    return {
        "main": await numbers.main_phone(session, domain_id) or "",
        "users": [{"login": u.login, "name": u.name, "telnum": c.telnum}
                  for c, u in await repo.user_callerids(session, domain_id)],
        "groups": [{"id": g.group_id, "name": g.name, "telnum": c.telnum}
                   for c, g in await repo.group_callerids(session, domain_id)],
        "regions": [{"id": str(c.region_id), "name": REGIONS_BY_ID[c.region_id].name, "telnum": c.telnum,
                     "mode": c.mode}
                    for c in await repo.region_callerids(session, domain_id) if c.region_id in REGIONS_BY_ID],
    }


async def set_main(session: AsyncSession, domain_id: int, telnum: str) -> None:
    number = await _usable(session, domain_id, telnum)
    await numbers.set_main_phone(session, domain_id, number)


async def set_user(session: AsyncSession, domain_id: int, login: str, telnum: str) -> None:
    number = await _usable(session, domain_id, telnum)
    (user,) = await settings.resolve_users(session, domain_id, [login], "login")
    await repo.set_user_callerid(session, domain_id, user.id, number)


async def remove_user(session: AsyncSession, domain_id: int, login: str) -> None:
    user = await dir_repo.find_user(session, domain_id, login)
    if user is None:
        raise NotFound("user")
    await repo.remove_user_callerid(session, domain_id, user.id)


async def set_group(session: AsyncSession, domain_id: int, group_id: str, telnum: str) -> None:
    number = await _usable(session, domain_id, telnum)
    (group,) = await settings.resolve_groups(session, domain_id, [group_id], "id")
    await repo.set_group_callerid(session, domain_id, group.id, number)


async def remove_group(session: AsyncSession, domain_id: int, group_id: str) -> None:
    group = await dir_repo.find_group(session, domain_id, group_id)
    if group is None:
        raise NotFound("group")
    await repo.remove_group_callerid(session, domain_id, group.id)


async def set_region(session: AsyncSession, domain_id: int, region_id: str, mode: str, telnum: str) -> None:
    rid = _region(region_id)
    if mode not in MODES:
        raise Invalid("mode", f"the mode is one of {', '.join(MODES)}")
    number = await _usable(session, domain_id, telnum)
    await repo.set_region_callerid(session, domain_id, rid, mode, number)


async def remove_region(session: AsyncSession, domain_id: int, region_id: str, mode: str) -> None:
    if mode not in MODES:
        raise Invalid("mode", f"the mode is one of {', '.join(MODES)}")
    rid = int(region_id) if region_id.strip().isdigit() else -1
    if rid not in REGIONS_BY_ID:
        raise NotFound("region")
    await repo.remove_region_callerid(session, domain_id, rid, mode)


async def caller_id_config(session: AsyncSession, domain_id: int) -> CallerIdConfig:
    """The domain's caller-ID settings for ``domain.callerid.choose_caller_id`` (the engine's entry point).

    Entries naming a number that is no longer the domain's or no longer enabled are left out.
    """
    enabled = await enabled_numbers(session, domain_id)
    main = await numbers.main_phone(session, domain_id)
    return CallerIdConfig(
        main=main if main in enabled else None,
        enabled=enabled,
        users={u.login: c.telnum for c, u in await repo.user_callerids(session, domain_id) if c.telnum in enabled},
        groups={g.group_id: c.telnum for c, g in await repo.group_callerids(session, domain_id)
                if c.telnum in enabled},
        regions=tuple(RegionalCallerId(c.region_id, CallerIdMode(c.mode), c.telnum)
                      for c in await repo.region_callerids(session, domain_id) if c.telnum in enabled),
    )


async def home_region(session: AsyncSession, domain_id: int) -> int | None:
    """The domain's home region (direction ``LOCAL``): the region of its main number, else of the first of its
    enabled numbers that has one."""
    main = await numbers.main_phone(session, domain_id)
    candidates = [main] if main else []
    candidates += sorted(await enabled_numbers(session, domain_id))
    for number in candidates:
        region = region_for_number(number)
        if region is not None:
            return region.id
    return None


async def caller_id_for(session: AsyncSession, domain_id: int, client: str, *, login: str | None = None,
                        groups: Sequence[str] | None = None, clid: str | None = None) -> str:
    """The caller ID an outgoing call to ``client`` shows (call-flows "Outgoing external call" step 2), through
    ``domain.callerid.choose_caller_id``; ``groups`` default to the employee's departments. "" when none is set."""
    config = await caller_id_config(session, domain_id)
    if groups is None:
        groups = await groups_of(session, domain_id, login)
    return pick(config, client, login=login, groups=groups, clid=clid)


async def groups_of(session: AsyncSession, domain_id: int, login: str | None) -> list[str]:
    """The departments of employee ``login`` (a login or an extension), for the departments' caller IDs."""
    user = await dir_repo.find_user(session, domain_id, login) if login else None
    return [g.group_id for g, _ in await dir_repo.groups_of_user(session, user.id)] if user else []


def pick(config: CallerIdConfig, client: str, *, login: str | None, groups: Sequence[str],
         clid: str | None = None) -> str:
    choice = choose_caller_id(config, client=client, login=login, groups=list(groups), clid=clid)
    return choice.telnum if choice is not None else ""
