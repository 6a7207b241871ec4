"""Queries over employees, departments, membership and extensions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeVar, cast

from sqlalchemy import Row, Select, Table, bindparam, delete, false, func, insert, or_, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from vpbx.store.paging import Page
from vpbx.store.reader import Reader
from vpbx.store.tables import Domain, Extension, Group, GroupMember, User

R = TypeVar("R")
S = TypeVar("S", bound=Select[Any])
# Row locks a configuration write takes on PostgreSQL (SQLite has one writer at a time: ``begin_write``):
# "edit" a row it changes, "delete" a row it removes, "refer" a row it points at (FOR KEY SHARE: many writers may
# refer to one employee at once; only its deletion waits for them, and they for it). Order, to stay clear of
# deadlocks: employees and departments first, then numbers, then menus.
Lock = Literal["edit", "delete", "refer"] | None


def locked(stmt: S, lock: Lock) -> S:
    if lock == "edit":
        return stmt.with_for_update(key_share=True)  # FOR NO KEY UPDATE
    if lock == "delete":
        return stmt.with_for_update()
    if lock == "refer":
        return stmt.with_for_update(read=True, key_share=True)  # FOR KEY SHARE
    return stmt


LOCKS: tuple[Lock, ...] = (None, "edit", "delete", "refer")
NUL = "\x00"  # PostgreSQL text cannot hold it (SQLite can): no stored key has one, so such a lookup finds nothing


def page_statements(stmt: Select[R], search_col: Any, page: Page, order_by: Any) -> tuple[Select[Any], Select[R]]:
    """The filtered total's query and the page's query for one v1 list."""
    if NUL in page.needle:
        stmt = stmt.where(false())
    elif page.needle:
        stmt = stmt.where(search_col.contains(page.needle, autoescape=True))
    total = select(func.count()).select_from(stmt.subquery())
    stmt = stmt.order_by(order_by).offset(page.start)
    if page.limit is not None:
        stmt = stmt.limit(page.limit)
    return total, stmt


async def paged(session: AsyncSession, stmt: Select[R], search_col: Any, page: Page,
                order_by: Any) -> tuple[list[R], int]:
    """One page of ORM objects and the filtered total, inside a unit of work."""
    total_stmt, page_stmt = page_statements(stmt, search_col, page, order_by)
    total = await session.scalar(total_stmt) or 0
    if page.limit == 0:
        return [], total
    return list((await session.scalars(page_stmt)).all()), total


async def paged_rows(reader: Reader, stmt: Select[Any], search_col: Any, page: Page,
                     order_by: Any) -> tuple[Sequence[Row[Any]], int]:
    """One page of plain rows and the filtered total, for hot read paths."""
    total_stmt, page_stmt = page_statements(stmt, search_col, page, order_by)
    total = await reader.scalar(total_stmt) or 0
    if page.limit == 0 or total <= page.start:
        return [], total
    return await reader.all(page_stmt), total


# The statements of the write paths are built once, here, with bind parameters: building a statement (its
# expression objects, then its cache key) cost 0.15-0.2 ms of CPU each time, more than executing it
# (measured on both backends, issue 14). The values travel as parameters.
_DOMAIN: BindParameter[int] = bindparam("domain_id")
_KEY: BindParameter[str] = bindparam("key")  # a login or an extension (002 §6: the path's ``login``)
_FIND_USER = select(User).where(User.domain_id == _DOMAIN, or_(User.login == _KEY, User.ext == _KEY))
FIND_USER = {lock: locked(_FIND_USER, lock) for lock in LOCKS}
USERS_BY_LOGINS = {lock: locked(select(User).where(User.domain_id == _DOMAIN, or_(
    User.login.in_(bindparam("logins", expanding=True)), User.ext.in_(bindparam("exts", expanding=True))))
    .order_by(User.id), lock) for lock in LOCKS}
LOGIN_TAKEN = select(User.id).where(User.domain_id == _DOMAIN, User.login == bindparam("login"))
COUNT_USERS = select(func.count()).where(User.domain_id == _DOMAIN)
COUNT_GROUPS = select(func.count()).where(Group.domain_id == _DOMAIN)
_EXTENSIONS = select(Extension.ext).where(Extension.domain_id == _DOMAIN)
USED_EXTENSIONS = {False: _EXTENSIONS, True: union_all(_EXTENSIONS, select(func.substr(User.login, 2)).where(
    User.domain_id == _DOMAIN, User.login.startswith("u")))}
EXTENSIONS = cast(Table, Extension.__table__)
CLAIM_EXT = insert(EXTENSIONS)  # a Core statement: no ORM bulk-insert machinery for one row
RELEASE_EXT = delete(EXTENSIONS).where(EXTENSIONS.c.domain_id == _DOMAIN, EXTENSIONS.c.ext == bindparam("ext"),
                                       EXTENSIONS.c.owner_kind == bindparam("kind"),
                                       EXTENSIONS.c.owner_id == bindparam("owner_id"))
_FIND_GROUP = select(Group).where(Group.domain_id == _DOMAIN, or_(Group.group_id == _KEY, Group.ext == _KEY))
FIND_GROUP = {lock: locked(_FIND_GROUP, lock) for lock in LOCKS}
MEMBERS = (select(GroupMember, User).join(User, User.id == GroupMember.user_id)
           .where(GroupMember.group_id.in_(bindparam("group_ids", expanding=True)))
           .order_by(GroupMember.group_id, GroupMember.position, GroupMember.id))
GROUPS_OF_USER = (select(Group, GroupMember).join(GroupMember, GroupMember.group_id == Group.id)
                  .where(GroupMember.user_id == bindparam("user_id")).order_by(Group.id))
# Updates of many rows as Core statements: the ORM would match their criteria against the objects the session
# holds, and with bind parameters it cannot (it would read them as NULL); nothing reads those columns back from
# objects loaded before. (An UPDATE's parameters may not be named as its columns: ``in_domain``.)
_IN_DOMAIN: BindParameter[int] = bindparam("in_domain")
GROUPS = cast(Table, Group.__table__)
_RESET = update(GROUPS).where(GROUPS.c.domain_id == _IN_DOMAIN).values(timeout_target="voicemail", timeout_user=None,
                                                                    timeout_group=None)
RESET_TIMEOUTS_TO_USER = _RESET.where(GROUPS.c.timeout_target == "user", GROUPS.c.timeout_user == bindparam("target"))
RESET_TIMEOUTS_TO_GROUP = _RESET.where(GROUPS.c.timeout_target == "group",
                                       GROUPS.c.timeout_group == bindparam("target"))
DOMAINS = cast(Table, Domain.__table__)
BUMP_VERSION = update(DOMAINS).where(DOMAINS.c.id == _IN_DOMAIN).values(version=DOMAINS.c.version + 1)


# --- employees -----------------------------------------------------------------------------

async def find_user(session: AsyncSession, domain_id: int, login_or_ext: str, *, lock: Lock = None) -> User | None:
    """002 §6: the path's ``login`` is a login or an extension; a login match wins."""
    if NUL in login_or_ext:
        return None
    rows = (await session.scalars(FIND_USER[lock], {"domain_id": domain_id, "key": login_or_ext})).all()
    for row in rows:
        if row.login == login_or_ext:
            return row
    return rows[0] if rows else None


async def users_by_logins(session: AsyncSession, domain_id: int, logins: Sequence[str], *,
                          lock: Lock = None) -> dict[str, User]:
    """Employees keyed by every login or extension given that names one (``lock``: in id order)."""
    logins = [n for n in logins if NUL not in n]
    if not logins:
        return {}
    rows = (await session.scalars(USERS_BY_LOGINS[lock], {"domain_id": domain_id, "logins": logins,
                                                          "exts": logins})).all()
    found: dict[str, User] = {}
    for name in logins:
        match = next((u for u in rows if u.login == name), None) or next((u for u in rows if u.ext == name), None)
        if match is not None:
            found[name] = match
    return found


async def login_taken(session: AsyncSession, domain_id: int, login: str) -> bool:
    return (await session.scalar(LOGIN_TAKEN, {"domain_id": domain_id, "login": login})) is not None


async def count_users(session: AsyncSession, domain_id: int) -> int:
    return await session.scalar(COUNT_USERS, {"domain_id": domain_id}) or 0


async def count_groups(session: AsyncSession, domain_id: int) -> int:
    return await session.scalar(COUNT_GROUPS, {"domain_id": domain_id}) or 0


USER_COLUMNS = User.__table__.c


async def list_users(reader: Reader, domain_id: int, page: Page) -> tuple[Sequence[Row[Any]], int]:
    stmt = select(User.__table__).where(USER_COLUMNS.domain_id == domain_id)
    return await paged_rows(reader, stmt, USER_COLUMNS.search_text, page, USER_COLUMNS.id)


async def read_user(reader: Reader, domain_id: int, login_or_ext: str) -> Row[Any] | None:
    """002 §6 lookup (login wins over extension) as a plain row, for hot read paths."""
    if NUL in login_or_ext:
        return None
    rows = await reader.all(select(User.__table__).where(
        USER_COLUMNS.domain_id == domain_id, or_(USER_COLUMNS.login == login_or_ext, USER_COLUMNS.ext == login_or_ext)))
    for row in rows:
        if row.login == login_or_ext:
            return row
    return rows[0] if rows else None


# --- extensions ----------------------------------------------------------------------------

async def used_extensions(session: AsyncSession, domain_id: int, *, with_default_logins: bool = False) -> set[str]:
    """Extensions in use; with ``with_default_logins`` also those whose default login ``u<ext>`` (002 §6.3)
    an employee has (one statement: it runs inside the domain's write turn)."""
    stmt: Any = USED_EXTENSIONS[with_default_logins]
    return set((await session.scalars(stmt, {"domain_id": domain_id})).all())


async def ext_owner(session: AsyncSession, domain_id: int, ext: str) -> Extension | None:
    return await session.get(Extension, (domain_id, ext))


class ExtensionTaken(Exception):
    """The extensions table's key refused a claim: the transaction is spoilt and must be rolled back."""


async def claim_ext(session: AsyncSession, domain_id: int, ext: str, kind: str, owner_id: int) -> None:
    """Take ``ext`` for an employee or department: the table's primary key is the domain's one namespace."""
    try:
        await session.execute(CLAIM_EXT, {"domain_id": domain_id, "ext": ext, "owner_kind": kind,
                                          "owner_id": owner_id})
    except IntegrityError:
        raise ExtensionTaken(ext) from None


async def release_ext(session: AsyncSession, domain_id: int, ext: str, kind: str, owner_id: int) -> None:
    """Give ``ext`` back, only if this owner holds it."""
    await session.execute(RELEASE_EXT, {"domain_id": domain_id, "ext": ext, "kind": kind, "owner_id": owner_id})


# --- departments ---------------------------------------------------------------------------

async def find_group(session: AsyncSession, domain_id: int, group_id: str, *, lock: Lock = None) -> Group | None:
    """A department by its id, or by its extension."""
    if NUL in group_id:
        return None
    rows = (await session.scalars(FIND_GROUP[lock], {"domain_id": domain_id, "key": group_id})).all()
    for row in rows:
        if row.group_id == group_id:
            return row
    return rows[0] if rows else None


async def list_groups(session: AsyncSession, domain_id: int, page: Page) -> tuple[list[Group], int]:
    return await paged(session, select(Group).where(Group.domain_id == domain_id), Group.search_text, page,
                       Group.id)


async def members(session: AsyncSession, group_ids: Sequence[int]) -> dict[int, list[tuple[GroupMember, User]]]:
    """Members of each department in list order, with their employee rows."""
    out: dict[int, list[tuple[GroupMember, User]]] = {gid: [] for gid in group_ids}
    if not group_ids:
        return out
    rows = await session.execute(MEMBERS, {"group_ids": list(group_ids)})
    for member, user in rows.all():
        out[member.group_id].append((member, user))
    return out


async def groups_of_user(session: AsyncSession, user_id: int) -> list[tuple[Group, GroupMember]]:
    rows = await session.execute(GROUPS_OF_USER, {"user_id": user_id})
    return [(g, m) for g, m in rows.all()]


async def set_calls_enable(session: AsyncSession, user_id: int, enabled: bool, group_id: int | None = None) -> int:
    stmt = update(GroupMember).where(GroupMember.user_id == user_id).values(calls_enable=enabled)
    if group_id is not None:
        stmt = stmt.where(GroupMember.group_id == group_id)
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


async def reset_timeouts_to(session: AsyncSession, domain_id: int, *, user: str | None = None,
                            group: str | None = None) -> None:
    """Departments whose no-answer target was a deleted employee or department fall back to voicemail."""
    stmt = RESET_TIMEOUTS_TO_USER if user is not None else RESET_TIMEOUTS_TO_GROUP
    await session.execute(stmt, {"in_domain": domain_id, "target": user if user is not None else group})


async def bump_version(session: AsyncSession, domain_id: int) -> None:
    await session.execute(BUMP_VERSION, {"in_domain": domain_id})


async def lock_domain(session: AsyncSession, domain_id: int) -> None:
    """Take the domain's row until the commit: writes that call this run one at a time in the domain on both
    backends. Only checks that no row lock can hold use it (a count against the domain's limit, a menu saved
    under a name, a department's members changed by name); every other write calls ``begin_write`` and locks
    the rows it reads (``Lock``)."""
    await bump_version(session, domain_id)


BEGIN_WRITE = "BEGIN IMMEDIATE"


async def begin_write(session: AsyncSession) -> None:
    """Begin a configuration write. SQLite: take the write lock now (the process's writer queue, then SQLite's
    own, which other processes share), so every read after this holds until the commit; a transaction started
    by a read holds no snapshot there. PostgreSQL: nothing; the write locks the rows it reads, so writes of one
    domain run side by side unless they touch the same rows."""
    if session.get_bind().dialect.name != "sqlite":
        return
    conn = await session.connection()
    driver = (await conn.get_raw_connection()).driver_connection
    if driver is not None and not driver.in_transaction:  # a session writing twice (the demo company) begins once
        await conn.exec_driver_sql(BEGIN_WRITE)


def is_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"
