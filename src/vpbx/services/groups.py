"""Departments (002 §8): defaults, ringing settings and membership."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.schemas.groups import GroupCreate, GroupUpdate, MembersChange, TimeoutIn
from vpbx.services.errors import Invalid, NotFound
from vpbx.services.users import CLAIM_ATTEMPTS, claim_ext, claimed, pick_free, search_text
from vpbx.services.written import held
from vpbx.store.repositories import directory as repo
from vpbx.store.tables import Domain, Group, GroupMember, User

# The members a write just set, by the department's row id, for its transaction: its answer is rendered from
# them (the same rows a read would find, in list order) instead of reading them back.
KNOWN_MEMBERS = "vpbx.groups.members"


@dataclass(frozen=True, slots=True)
class Member:
    """A membership as a department's answer shows it (``repo.member_rows`` has the same fields)."""

    login: str
    name: str
    absent: bool
    calls_enable: bool
    group_head: bool


def member_out(m: GroupMember | Row[Any] | Member, u: User | Row[Any] | Member) -> dict[str, Any]:
    return {
        "login": u.login,
        "name": u.name,
        "calls_enable": m.calls_enable,
        "group_head": m.group_head,
        "is_absence_active": u.absent,
        # Every employee has a PBX device account, so a way to take calls is always chosen.
        "is_forwarding_disabled": False,
    }


def timeout_out(g: Group | Row[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"time": g.timeout_time, "target": g.timeout_target}
    if g.timeout_target in ("user", "group", "telnum"):
        out[g.timeout_target] = getattr(g, f"timeout_{g.timeout_target}")
    return out


def group_out(g: Group | Row[Any], members: Sequence[Row[Any] | Member]) -> dict[str, Any]:
    """002 §8.1 fields, from an ORM object or a plain row of the groups table; ``members``: ``repo.member_rows``."""
    return {
        "id": g.group_id,
        "name": g.name,
        "ext": g.ext,
        "call_order": g.call_order,
        "call_duration": 0 if g.call_order == "ALL" else g.call_duration,  # 8.1: 0 with ALL
        "users": [member_out(m, m) for m in members],
        "timeout": timeout_out(g),
        "advanced": g.advanced,
        "queue_position": g.queue_position,
    }


async def get(session: AsyncSession, domain_id: int, group_id: str, *, lock: repo.Lock = None) -> Group:
    group = await repo.find_group(session, domain_id, group_id, lock=lock)
    if group is None:
        raise NotFound("group")
    return group


async def _row(session: AsyncSession, domain_id: int, group_id: str, lock: repo.Lock) -> Row[Any]:
    group = await repo.group_row(session, domain_id, group_id, lock=lock)
    if group is None:
        raise NotFound("group")
    return group


async def render(session: AsyncSession, groups: Sequence[Group | Row[Any]]) -> list[dict[str, Any]]:
    known: dict[int, list[Member]] = held(session, KNOWN_MEMBERS)
    members: dict[int, Sequence[Row[Any] | Member]] = {}
    members.update(await repo.member_rows(session, [g.id for g in groups if g.id not in known]))
    members.update(known)
    return [group_out(g, members[g.id]) for g in groups]


async def _apply_timeout(session: AsyncSession, domain_id: int, values: dict[str, Any], t: TimeoutIn) -> None:
    """The no-answer settings asked for, into ``values`` (the department's row as it will be)."""
    if t.target == "user":
        found = await repo.user_rows_by_logins(session, domain_id, [t.user or ""], lock="refer")
        if not found:
            raise Invalid("timeout.user", f"no employee '{t.user}'")
        t.user = next(iter(found.values())).login
    if t.target == "group":
        target = await repo.group_row(session, domain_id, t.group or "", lock="refer")
        if target is None:
            raise Invalid("timeout.group", f"no department '{t.group}'")
        t.group = target.group_id
    values["timeout_time"] = t.time
    values["timeout_target"] = t.target
    values["timeout_user"] = t.user if t.target == "user" else None
    values["timeout_group"] = t.group if t.target == "group" else None
    values["timeout_telnum"] = t.telnum if t.target == "telnum" else None


async def _replace_members(session: AsyncSession, domain_id: int, group_id: int, data: GroupUpdate, *,
                           new: bool = False) -> None:
    assert data.users is not None
    found = await repo.user_rows_by_logins(session, domain_id, [m.login for m in data.users], lock="refer")
    missing = [m.login for m in data.users if m.login not in found]
    if missing:
        raise Invalid("users", f"no employees {', '.join(missing)}")
    if len({found[m.login].id for m in data.users}) != len(data.users):
        raise Invalid("users", "an employee is listed twice")
    current = {} if new else {m.user_id: m for m in (await repo.member_rows(session, [group_id]))[group_id]}
    keep = set()
    added: list[dict[str, Any]] = []
    members: list[Member] = []
    for pos, item in enumerate(data.users):
        user = found[item.login]
        keep.add(user.id)
        member = current.get(user.id)
        if member is None:
            added.append({"group_id": group_id, "user_id": user.id, "position": pos,
                          "calls_enable": item.calls_enable, "group_head": False})
        elif member.position != pos or member.calls_enable != item.calls_enable:
            await repo.move_member(session, member.id, pos, item.calls_enable)
        members.append(Member(user.login, user.name, user.absent, item.calls_enable,
                              member.group_head if member is not None else False))
    await repo.add_members(session, added)
    await repo.remove_members(session, [m.id for user_id, m in current.items() if user_id not in keep])
    held(session, KNOWN_MEMBERS)[group_id] = members


def _search(v: dict[str, Any]) -> str:
    return search_text(v["group_id"], v["name"], v["ext"])


async def _refer(session: AsyncSession, domain_id: int, data: GroupCreate | GroupUpdate) -> None:
    """Lock the employees and the department a department's settings name before its own row (the order every
    write keeps: what is referred to first), so a deletion of one of them waits for this write or this write
    finds it gone."""
    logins = [m.login for m in data.users or []]
    if data.timeout is not None and data.timeout.target == "user" and data.timeout.user:
        logins.append(data.timeout.user)
    if logins:
        await repo.user_rows_by_logins(session, domain_id, logins, lock="refer")
    if data.timeout is not None and data.timeout.target == "group" and data.timeout.group:
        await repo.group_row(session, domain_id, data.timeout.group, lock="refer")


async def create(session: AsyncSession, domain: Domain, data: GroupCreate, now: datetime,
                 group_id: str | None = None) -> Row[Any]:
    """The new department's row (of the groups table)."""
    await repo.begin_write(session)
    if domain.limit_groups >= 0:
        await repo.lock_domain(session, domain.id)  # a count holds only while the domain's row is taken
        if await repo.count_groups(session, domain.id) >= domain.limit_groups:
            raise Invalid("limits.groups", f"the domain's limit of {domain.limit_groups} departments is reached")
    for attempt in range(CLAIM_ATTEMPTS):
        if data.ext is not None:
            if await repo.ext_owner(session, domain.id, data.ext) is not None:
                raise Invalid("ext", f"extension {data.ext} is taken")
            ext = data.ext
        else:
            ext = pick_free(session, domain.id, await repo.used_extensions(session, domain.id), attempt)
        values: dict[str, Any] = {
            "domain_id": domain.id,
            "group_id": group_id or f"g_{uuid.uuid4()}",
            "name": data.name,
            "ext": ext,
            "call_order": data.call_order or "ALL",
            "call_duration": data.call_duration or 15,
            "advanced": data.advanced or "off",
            "queue_position": bool(data.queue_position),
            "timeout_time": 120,
            "timeout_target": "voicemail",
            "created_at": now,
            "last_answered_user_id": None,
        }
        values["search_text"] = _search(values)
        # Set before the insert (no second UPDATE of the new row).
        await _apply_timeout(session, domain.id, values, data.timeout or TimeoutIn())
        group = await claimed(session, domain.id, "group", values)
        if group is not None:
            break
        # PostgreSQL: a concurrent creation claimed it first; asked for by number, the client's 400.
        if data.ext is not None:
            raise Invalid("ext", f"extension {data.ext} is taken")
    else:
        raise Invalid("ext", "no free extension could be claimed; try again")
    if data.users is not None:
        await _replace_members(session, domain.id, group.id, data, new=True)
    return group


async def update(session: AsyncSession, domain_id: int, group_id: str, data: GroupUpdate) -> Row[Any]:
    """The department's row as updated."""
    await repo.begin_write(session)
    await _refer(session, domain_id, data)
    group = await _row(session, domain_id, group_id, "edit")
    changes: dict[str, Any] = {}
    if data.ext is not None and data.ext != group.ext:
        if await repo.ext_owner(session, domain_id, data.ext) is not None:
            raise Invalid("ext", f"extension {data.ext} is taken")
        await repo.release_ext(session, domain_id, group.ext, "group", group.id)
        await claim_ext(session, domain_id, data.ext, "group", group.id)
        changes["ext"] = data.ext
    for field in ("name", "call_order", "call_duration", "advanced", "queue_position"):
        value = getattr(data, field)
        if value is not None:
            changes[field] = value
    if data.timeout is not None:
        await _apply_timeout(session, domain_id, changes, data.timeout)
    if data.users is not None:
        await _replace_members(session, domain_id, group.id, data)
    changes["search_text"] = _search({**group._mapping, **changes})
    return await repo.update_group(session, group.id, changes)


async def delete(session: AsyncSession, domain_id: int, group_id: str) -> None:
    await repo.begin_write(session)
    group = await _row(session, domain_id, group_id, "delete")  # see services.users.delete
    await repo.remove_group(session, domain_id, group)
    from vpbx.services import numbers  # numbers' routes pointing at the department: redirected (§9)

    await numbers.release(session, domain_id, group=group.group_id)


async def change_members(session: AsyncSession, domain_id: int, group_id: str, change: MembersChange) -> None:
    """002 §8.6, all or nothing: every login is checked before anything changes."""
    await repo.begin_write(session)
    names = [*change.add, *change.calls_disable, *change.remove]
    found = await repo.users_by_logins(session, domain_id, names, lock="refer")  # before the department's row
    group = await get(session, domain_id, group_id, lock="edit")
    for field in ("add", "calls_disable", "remove"):
        missing = [n for n in getattr(change, field) if n not in found]
        if missing:
            raise Invalid(field, f"no employees {', '.join(missing)}")
    current = [m for m, _ in (await repo.members(session, [group.id]))[group.id]]
    by_user = {m.user_id: m for m in current}
    order = [m.user_id for m in current]
    new_ids: list[int] = []
    for name in change.add:
        user = found[name]
        if user.id in by_user:
            by_user[user.id].calls_enable = True
        elif user.id not in new_ids:
            new_ids.append(user.id)
    at = len(order) if change.position == -1 else min(change.position, len(order))
    order[at:at] = new_ids
    for user_id in new_ids:
        member = GroupMember(group_id=group.id, user_id=user_id, position=0, calls_enable=True, group_head=False)
        session.add(member)
        by_user[user_id] = member
    for name in change.calls_disable:
        disabled = by_user.get(found[name].id)
        if disabled is None:
            raise Invalid("calls_disable", f"'{name}' is not in the department")
        disabled.calls_enable = False
    for name in change.remove:
        user_id = found[name].id
        removed = by_user.pop(user_id, None)
        if removed is not None:
            order.remove(user_id)
            if sa_inspect(removed).pending:
                session.expunge(removed)
            else:
                await session.delete(removed)
    for pos, user_id in enumerate(order):
        by_user[user_id].position = pos
    await session.flush()
