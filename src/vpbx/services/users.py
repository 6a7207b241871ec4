"""Employees (002 §6): defaults, extension plan, limits, subscriptions and DND."""

from __future__ import annotations

import contextlib
import random
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Row, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from vpbx.domain.extensions import next_free
from vpbx.domain.rights import BUILTIN_ROLES
from vpbx.schemas.users import UserCreate, UserUpdate
from vpbx.security import generated_password_hash_async, hash_password_async
from vpbx.services.errors import Invalid, NotFound
from vpbx.store.repositories import directory as repo
from vpbx.store.repositories import sip as sip_repo
from vpbx.store.tables import CustomRole, Domain, Group, User


def search_text(*parts: str | None) -> str:
    return " ".join(p for p in parts if p).casefold()


def user_search_text(u: User) -> str:
    return search_text(u.login, u.name, u.ext, u.telnum, u.email, u.mobile, u.position)


def mobile_redirect(u: User | Row[Any]) -> dict[str, Any]:
    if not u.mobile_redirect_enabled:
        return {"enabled": False}
    return {"enabled": True, "forward": u.mobile_redirect_forward, "delay": u.mobile_redirect_delay}


def user_out(u: User | Row[Any], status: str | None = None) -> dict[str, Any]:
    """002 §6.1 fields, from an ORM object or a plain row of the users table."""
    out: dict[str, Any] = {
        "login": u.login,
        "name": u.name,
        "position": u.position,
        "email": u.email,
        "ext": u.ext,
        "telnum": u.telnum,
        "role": u.role,
        "mobile": u.mobile,
        "mobile_redirect": mobile_redirect(u),
    }
    if status is not None:
        out["status"] = status
    return out


async def get(session: AsyncSession, domain_id: int, login: str, *, lock: repo.Lock = None) -> User:
    user = await repo.find_user(session, domain_id, login, lock=lock)
    if user is None:
        raise NotFound("user")
    return user


async def _check_role(session: AsyncSession, domain_id: int, role: str) -> None:
    if role in BUILTIN_ROLES:
        return
    exists = await session.scalar(
        select(CustomRole.id).where(CustomRole.domain_id == domain_id, CustomRole.role_id == role)
    )
    if exists is None:
        raise Invalid("role", f"unknown role '{role}'")


async def _check_ext_free(session: AsyncSession, domain_id: int, ext: str) -> None:
    if await repo.ext_owner(session, domain_id, ext) is not None:
        raise Invalid("ext", f"extension {ext} is taken")


async def claim_ext(session: AsyncSession, domain_id: int, ext: str, kind: str, owner_id: int) -> None:
    """Take ``ext`` in the domain's one namespace of extensions (employees and departments): the database's
    key decides; a conflict is the client's 400."""
    try:
        await repo.claim_ext(session, domain_id, ext, kind, owner_id)
    except repo.ExtensionTaken:
        raise Invalid("ext", f"extension {ext} is taken") from None


# The extension 002 §6.3 chooses "from the free ones" (for an employee without a login, one whose default login
# ``u<ext>`` is free too: an employee whose extension changed keeps their old login) is claimed through the
# database's keys (the extensions table, the employees' login and extension), with no lock. Creations in flight in
# this process hold what they picked until their transaction ends, so a concurrent one here picks the next free
# extension at once: left to the keys, on PostgreSQL it picked the same one, waited for the first creation's commit
# to learn it lost, then tried again (32 concurrent creations queued one behind the other: a create's p50 was 141 ms
# against 39 for an update). Creations of other processes (workers, nodes, the CLI) are still settled by the keys:
# one wins and the others try again, each further attempt picking among more of the lowest free ones.
CLAIM_ATTEMPTS = 64
_CLAIMING: dict[int, set[str]] = {}  # domain id -> extensions this process's open creations picked
_PICKED = "vpbx.picked_extensions"


def pick_free(session: AsyncSession, domain_id: int, used: set[str], attempt: int) -> str:
    """A free extension for a creation in ``session``'s transaction, held from this process's other creations
    until that transaction ends."""
    claiming = _CLAIMING.setdefault(domain_id, set())
    taken = used | claiming
    ext = next_free(taken)
    for _ in range(random.randrange(4 * attempt) if attempt else 0):
        taken.add(ext)
        ext = next_free(taken)
    claiming.add(ext)
    session.info.setdefault(_PICKED, []).append((domain_id, ext))
    return ext


@event.listens_for(Session, "after_transaction_end")
def _release_picked(session: Session, transaction: Any) -> None:
    if transaction.parent is not None:  # a savepoint: the transaction (and what it inserted) goes on
        return
    for domain_id, ext in session.info.pop(_PICKED, ()):
        claiming = _CLAIMING.get(domain_id)
        if claiming is not None:
            claiming.discard(ext)
            if not claiming:
                del _CLAIMING[domain_id]


def claiming(session: AsyncSession) -> AbstractAsyncContextManager[object]:
    """Where a claim may lose a race (PostgreSQL), a savepoint to try again from: rolled back, it gives up at once
    the keys its inserts took, so no other creation waits on them. SQLite's writer holds the write lock from
    ``begin_write`` on, so nothing can take a key between its check and its claim."""
    return contextlib.nullcontext() if repo.is_sqlite(session) else session.begin_nested()


async def claimed(session: AsyncSession, domain_id: int, kind: str, values: dict[str, Any]) -> Row[Any] | None:
    """Insert a new employee or department (``values``: its row) and claim its extension in one step; its row, or
    None when a concurrent creation (PostgreSQL) took the extension or a unique key first: the caller decides
    whether to try again."""
    try:
        async with claiming(session):
            row = await repo.insert_claiming(session, kind, values)
    except (IntegrityError, repo.ExtensionTaken):
        return None
    return row


def _redirect(values: dict[str, Any], data: UserCreate | UserUpdate) -> None:
    """The mobile redirect asked for, into ``values`` (the employee's row as it will be)."""
    if data.mobile_redirect is None:
        return
    if data.mobile_redirect.enabled and not values["mobile"]:
        raise Invalid("mobile_redirect", "mobile redirect needs a mobile number")
    values["mobile_redirect_enabled"] = data.mobile_redirect.enabled
    values["mobile_redirect_forward"] = data.mobile_redirect.forward
    values["mobile_redirect_delay"] = data.mobile_redirect.delay


def _search_text(v: dict[str, Any]) -> str:
    return search_text(v["login"], v["name"], v["ext"], v["telnum"], v["email"], v["mobile"], v["position"])


async def create(session: AsyncSession, domain: Domain, data: UserCreate, now: datetime) -> Row[Any]:
    """The new employee's row (of the users table)."""
    # Hashed in the hashing pool (off the event loop) before the write begins: writers never wait for a hash.
    password_hash = await (hash_password_async(data.password) if data.password else generated_password_hash_async())
    await repo.begin_write(session)
    if domain.limit_users >= 0:
        await repo.lock_domain(session, domain.id)  # a count holds only while the domain's row is taken
        if await repo.count_users(session, domain.id) >= domain.limit_users:
            raise Invalid("limits.users", f"the domain's limit of {domain.limit_users} employees is reached")
    role = data.role or "user"
    await _check_role(session, domain.id, role)
    for attempt in range(CLAIM_ATTEMPTS):
        if data.ext is not None:
            await _check_ext_free(session, domain.id, data.ext)
            ext = data.ext
        else:
            used = await repo.used_extensions(session, domain.id, with_default_logins=data.login is None)
            ext = pick_free(session, domain.id, used, attempt)
        login = data.login or f"u{ext}"
        if (data.login is not None or data.ext is not None) and await repo.login_taken(session, domain.id, login):
            if data.ext is not None:
                # A creation committed since the extension's check may hold both (its ext and the login derived
                # from it, PostgreSQL): the extension asked for is what the client must change.
                await _check_ext_free(session, domain.id, data.ext)
            raise Invalid("login", f"login '{login}' is taken")
        values: dict[str, Any] = {
            "domain_id": domain.id,
            "login": login,
            "name": data.name,
            "position": data.position if data.position is not None else "Менеджер",
            "email": data.email or "",
            "ext": ext,
            "telnum": "",
            "role": role,
            "mobile": data.mobile or "",
            "password_hash": password_hash,
            "created_at": now,
            "mobile_redirect_enabled": False,
            "mobile_redirect_forward": False,
            "mobile_redirect_delay": 0,
            "dnd": False,
            "absent": False,
        }
        _redirect(values, data)
        values["search_text"] = _search_text(values)
        user = await claimed(session, domain.id, "user", values)
        if user is not None:
            if data.password:  # the phone's digest credentials too (issue 16): it can register at once
                await sip_repo.set_password(session, user, data.password)
            return user
        # PostgreSQL: a concurrent creation took the extension or the login first (the keys decide); the next
        # attempt reads what it committed. Asked for by name, they are the client's 400.
        if data.ext is not None:
            raise Invalid("ext", f"extension {data.ext} is taken")
        if data.login is not None and await repo.login_taken(session, domain.id, data.login):
            raise Invalid("login", f"login '{login}' is taken")
    raise Invalid("ext", "no free extension could be claimed; try again")


async def _row(session: AsyncSession, domain_id: int, login: str, lock: repo.Lock) -> Row[Any]:
    user = await repo.user_row(session, domain_id, login, lock=lock)
    if user is None:
        raise NotFound("user")
    return user


async def update(session: AsyncSession, domain_id: int, login: str, data: UserUpdate) -> Row[Any]:
    """The employee's row as updated."""
    password_hash = await hash_password_async(data.password) if data.password is not None else None
    await repo.begin_write(session)
    user = await _row(session, domain_id, login, "edit")
    values = dict(user._mapping)
    changes: dict[str, Any] = {}
    if data.role is not None:
        await _check_role(session, domain_id, data.role)
        changes["role"] = data.role
    if data.ext is not None and data.ext != user.ext:
        await _check_ext_free(session, domain_id, data.ext)
        await repo.release_ext(session, domain_id, user.ext, "user", user.id)
        await claim_ext(session, domain_id, data.ext, "user", user.id)
        changes["ext"] = data.ext
    for field in ("name", "position", "email", "mobile"):
        value = getattr(data, field)
        if value is not None:
            changes[field] = value
    values.update(changes)
    if data.mobile == "" and values["mobile_redirect_enabled"] and data.mobile_redirect is None:
        raise Invalid("mobile", "mobile redirect is on: switch it off before removing the mobile number")
    if password_hash is not None:
        changes["password_hash"] = password_hash
    redirect: dict[str, Any] = {"mobile": values["mobile"]}
    _redirect(redirect, data)
    del redirect["mobile"]
    changes.update(redirect)
    values.update(changes)
    changes["search_text"] = _search_text(values)
    user = await repo.update_user(session, user.id, changes)
    if data.password is not None:  # a phone's digest credentials (issue 16)
        await sip_repo.set_password(session, user, data.password)
    return user


async def delete(session: AsyncSession, domain_id: int, login: str) -> None:
    await repo.begin_write(session)
    # Its row first: a write pointing at the employee (a route, a department) locks it to refer to it, so it
    # either committed before (and is redirected below) or waits and finds the employee gone.
    user = await _row(session, domain_id, login, "delete")
    # Its extension, the departments' no-answer targets naming it and its row (memberships go with it) first, in
    # one statement on PostgreSQL; then what points at it from numbers and menus, locked after it.
    await repo.remove_user(session, domain_id, user)
    from vpbx.services import numbers  # numbers' routes/SIMs pointing at the employee: redirected (§9-10)

    await numbers.release(session, domain_id, user=user.login)


async def groups(session: AsyncSession, domain_id: int, login: str) -> list[dict[str, str]]:
    user = await get(session, domain_id, login)
    return [{"id": g.group_id, "name": g.name, "ext": g.ext} for g, _ in await repo.groups_of_user(session, user.id)]


async def _group(session: AsyncSession, domain_id: int, group_id: str) -> Group:
    group = await repo.find_group(session, domain_id, group_id)
    if group is None:
        raise NotFound("group")
    return group


async def subscription(session: AsyncSession, domain_id: int, login: str, group_id: str | None) -> bool:
    """Whether the employee takes the department's calls; without a department, whether they
    take calls in every department they belong to (and belong to at least one)."""
    user = await get(session, domain_id, login)
    memberships = await repo.groups_of_user(session, user.id)
    if group_id is None:
        return bool(memberships) and all(m.calls_enable for _, m in memberships)
    group = await _group(session, domain_id, group_id)
    for g, m in memberships:
        if g.id == group.id:
            return m.calls_enable
    raise NotFound("membership")


async def set_subscription(session: AsyncSession, domain_id: int, login: str, group_id: str | None,
                           enabled: bool) -> None:
    await repo.lock_domain(session, domain_id)
    user = await get(session, domain_id, login)
    if group_id is None:
        await repo.set_calls_enable(session, user.id, enabled)
    else:
        group = await _group(session, domain_id, group_id)
        if not await repo.set_calls_enable(session, user.id, enabled, group.id):
            raise NotFound("membership")


async def set_dnd(session: AsyncSession, domain_id: int, login: str, on: bool) -> None:
    user = await get(session, domain_id, login)
    user.dnd = on
    await session.flush()


async def authenticate(session: AsyncSession, domain_id: int, login: str, password: str) -> User | None:
    """The employee whose password this is (the web cabinet's sign-in), or None. The hash is memory-hard, so it
    is checked in a thread, off the event loop."""
    import asyncio

    from vpbx.security import check_password

    user = await repo.find_user(session, domain_id, login)
    if user is None or not password:
        return None
    return user if await asyncio.to_thread(check_password, password, user.password_hash) else None
