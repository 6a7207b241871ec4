"""Call restrictions (002 §14): directions allowed to everyone, to employees and to departments.

Rules only grant (call-flows.md "Outgoing external call" step 1): a call is allowed when its direction is
in the company's rules, the employee's or any of the employee's departments' (``ALL`` allows everything).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.domain import restrictions as rules
from vpbx.domain.directions import classify
from vpbx.services import callerids, settings
from vpbx.services.errors import Invalid, NotFound
from vpbx.store.repositories import directory as dir_repo
from vpbx.store.repositories import settings as repo


def codes(values: Sequence[Any], field: str = "allowed") -> list[str]:
    """The §14.5 codes (or ``ALL``), canonical; anything else is a 400."""
    try:
        return rules.validate_codes(values)
    except rules.UnknownDirectionCode as exc:
        raise Invalid(field, f"unknown direction '{exc.code}': use {', '.join(sorted(rules.VALID_CODES))}") \
            from exc


def _added(current: Sequence[str], new: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*current, *new]))


def _removed(current: Sequence[str], gone: Sequence[str]) -> list[str]:
    return [c for c in current if c not in set(gone)]


async def overview(session: AsyncSession, domain_id: int) -> dict[str, Any]:
    row = await repo.domain_settings(session, domain_id)
    return {
        "main": list(settings.setting(row, "restrictions_main")),
        "users": [{"login": u.login, "name": u.name, "allowed": list(r.allowed)}
                  for r, u in await repo.user_restrictions(session, domain_id)],
        "groups": [{"id": g.group_id, "name": g.name, "allowed": list(r.allowed)}
                   for r, g in await repo.group_restrictions(session, domain_id)],
    }


async def add_main(session: AsyncSession, domain_id: int, allowed: Sequence[str]) -> None:
    new = codes(allowed)
    row = await settings.for_update(session, domain_id)
    row.restrictions_main = _added(row.restrictions_main, new)
    await session.flush()


async def remove_main(session: AsyncSession, domain_id: int, allowed: Sequence[str]) -> None:
    gone = codes(allowed)
    row = await settings.for_update(session, domain_id)
    row.restrictions_main = _removed(row.restrictions_main, gone)
    await session.flush()


async def add_users(session: AsyncSession, domain_id: int, items: Sequence[tuple[str, Sequence[str]]]) -> None:
    """§14.3, all or nothing: every login and code is checked before anything changes."""
    checked = []
    for i, (login, allowed) in enumerate(items):
        (user,) = await settings.resolve_users(session, domain_id, [login], f"{i}.login")
        checked.append((user, codes(allowed, f"{i}.allowed")))
    for user, new in checked:
        entry = await repo.user_restriction(session, user.id, create=True, domain_id=domain_id)
        assert entry is not None
        entry.allowed = _added(entry.allowed, new)
    await session.flush()


async def remove_user(session: AsyncSession, domain_id: int, login: str, allowed: Sequence[str]) -> None:
    gone = codes(allowed)
    user = await dir_repo.find_user(session, domain_id, login)
    if user is None:
        raise NotFound("user")
    entry = await repo.user_restriction(session, user.id)
    if entry is not None:
        entry.allowed = _removed(entry.allowed, gone)
        await session.flush()


async def add_groups(session: AsyncSession, domain_id: int, items: Sequence[tuple[str, Sequence[str]]]) -> None:
    """§14.4, all or nothing."""
    checked = []
    for i, (group_id, allowed) in enumerate(items):
        (group,) = await settings.resolve_groups(session, domain_id, [group_id], f"{i}.id")
        checked.append((group, codes(allowed, f"{i}.allowed")))
    for group, new in checked:
        entry = await repo.group_restriction(session, group.id, create=True, domain_id=domain_id)
        assert entry is not None
        entry.allowed = _added(entry.allowed, new)
    await session.flush()


async def remove_group(session: AsyncSession, domain_id: int, group_id: str, allowed: Sequence[str]) -> None:
    gone = codes(allowed)
    group = await dir_repo.find_group(session, domain_id, group_id)
    if group is None:
        raise NotFound("group")
    entry = await repo.group_restriction(session, group.id)
    if entry is not None:
        entry.allowed = _removed(entry.allowed, gone)
        await session.flush()


@dataclass(frozen=True)
class DialRules:
    """What decides an employee's outgoing calls (14): the company's, their own and their departments' rules,
    and the domain's home region (``LOCAL``). The engine keeps these per employee (``engine.config``)."""

    company: frozenset[str]
    own: frozenset[str]
    groups: tuple[frozenset[str], ...]
    home_region: int | None

    def allows(self, number: str) -> bool:
        return rules.may_dial(classify(number, self.home_region), self.company, self.own, list(self.groups))


async def dial_rules(session: AsyncSession, domain_id: int, login: str | None) -> DialRules:
    """An unknown or absent ``login`` (a call the PBX places itself) gets the company's rules only."""
    row = await repo.domain_settings(session, domain_id)
    own: list[str] = []
    group_rules: list[list[str]] = []
    user = await dir_repo.find_user(session, domain_id, login) if login else None
    if user is not None:
        own, group_rules = await repo.rules_for_user(session, user.id)
    return DialRules(frozenset(settings.setting(row, "restrictions_main")), frozenset(own),
                     tuple(frozenset(g) for g in group_rules), await callerids.home_region(session, domain_id))


async def may_dial(session: AsyncSession, domain_id: int, login: str | None, number: str) -> bool:
    """Whether employee ``login`` may call external ``number``."""
    return (await dial_rules(session, domain_id, login)).allows(number)
