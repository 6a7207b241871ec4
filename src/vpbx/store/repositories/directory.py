"""Queries over employees, departments, membership and extensions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeVar, cast

from sqlalchemy import (
    Row,
    Select,
    Table,
    bindparam,
    delete,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import BindParameter

from vpbx.store.paging import Page
from vpbx.store.reader import Reader
from vpbx.store.sqlite_cursor import BEGIN_WRITE
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

# The write paths of employees and departments run on plain rows (Core), not ORM objects: loading or flushing an
# object cost about 0.5 ms of CPU, more than the statement (issue 14). A row is read with the lock the write needs,
# inserted or updated with RETURNING (no second read), and removed by its id.
USERS = cast(Table, User.__table__)
MEMBERS_TABLE = cast(Table, GroupMember.__table__)
_USER_ROW = select(USERS).where(USERS.c.domain_id == _DOMAIN, or_(USERS.c.login == _KEY, USERS.c.ext == _KEY))
USER_ROW = {lock: locked(_USER_ROW, lock) for lock in LOCKS}
USER_ROWS_BY_LOGINS = {lock: locked(select(USERS).where(USERS.c.domain_id == _DOMAIN, or_(
    USERS.c.login.in_(bindparam("logins", expanding=True)), USERS.c.ext.in_(bindparam("exts", expanding=True))))
    .order_by(USERS.c.id), lock) for lock in LOCKS}
_GROUP_ROW = select(GROUPS).where(GROUPS.c.domain_id == _DOMAIN, or_(GROUPS.c.group_id == _KEY, GROUPS.c.ext == _KEY))
GROUP_ROW = {lock: locked(_GROUP_ROW, lock) for lock in LOCKS}
# The SET clause follows the parameters given (one compiled form per set of columns); the row's id travels as
# ``row_id`` (a parameter may not be named as a column of the UPDATE).
_ROW_ID: BindParameter[int] = bindparam("row_id")
UPDATE_USER = update(USERS).where(USERS.c.id == _ROW_ID).returning(*USERS.c)
INSERT_NEW = {"user": insert(USERS).returning(*USERS.c), "group": insert(GROUPS).returning(*GROUPS.c)}


def _insert_claiming(table: Table, kind: str) -> Any:
    """PostgreSQL: a new row and the claim of its extension in one statement (a data-modifying CTE takes the
    extension with the id the row will have, from the table's sequence): one round trip instead of two."""
    params = {c.name: bindparam(c.name, type_=c.type) for c in table.c if c.name != "id"}
    next_id = func.nextval(literal_column(f"pg_get_serial_sequence('{table.name}', 'id')"))
    claim = (insert(EXTENSIONS).values(domain_id=params["domain_id"], ext=params["ext"],
                                       owner_kind=literal_column(f"'{kind}'"), owner_id=next_id)
             .returning(EXTENSIONS.c.owner_id).cte("claimed"))
    return (insert(table).from_select(["id", *params], select(claim.c.owner_id, *params.values()))
            .returning(*table.c))


INSERT_CLAIMING = {"user": _insert_claiming(USERS, "user"), "group": _insert_claiming(GROUPS, "group")}
UPDATE_GROUP = update(GROUPS).where(GROUPS.c.id == _ROW_ID).returning(*GROUPS.c)
# An employee or department removed: its extension given back, the departments' no-answer targets naming it reset,
# its row deleted. SQLite runs the three one by one; PostgreSQL as one statement (data-modifying CTEs: one round
# trip), where a department whose target is itself is only deleted (one statement may not both update and delete
# a row). No parameter is named as a column of the UPDATE (it would be set too).
Removal = tuple[tuple[Any, ...], Any]
_RELEASE_OWNED = delete(EXTENSIONS).where(
    EXTENSIONS.c.domain_id == _IN_DOMAIN, EXTENSIONS.c.ext == bindparam("old_ext"),
    EXTENSIONS.c.owner_kind == bindparam("kind"), EXTENSIONS.c.owner_id == _ROW_ID)
_RESET_GROUP = RESET_TIMEOUTS_TO_GROUP.where(GROUPS.c.id != _ROW_ID)
_REMOVE_USER = (_RELEASE_OWNED, RESET_TIMEOUTS_TO_USER, delete(USERS).where(USERS.c.id == _ROW_ID))
_REMOVE_GROUP = (_RELEASE_OWNED, _RESET_GROUP, delete(GROUPS).where(GROUPS.c.id == _ROW_ID))
REMOVE_USER: Removal = (_REMOVE_USER, _REMOVE_USER[2].add_cte(_RELEASE_OWNED.cte("released"),
                                                               RESET_TIMEOUTS_TO_USER.cte("reset")))
REMOVE_GROUP: Removal = (_REMOVE_GROUP, _REMOVE_GROUP[2].add_cte(_RELEASE_OWNED.cte("released"),
                                                                 _RESET_GROUP.cte("reset")))
# A member's row with what a department's answer shows of its employee (``services.groups.member_out``).
_M = MEMBERS_TABLE.c
MEMBER_ROWS: Select[Any] = (select(_M.id, _M.group_id, _M.user_id, _M.position, _M.calls_enable, _M.group_head,
                                   USERS.c.login, USERS.c.name, USERS.c.absent)
                            .join(USERS, USERS.c.id == _M.user_id)
                            .where(_M.group_id.in_(bindparam("group_ids", expanding=True)))
                            .order_by(_M.group_id, _M.position, _M.id))
INSERT_MEMBERS = insert(MEMBERS_TABLE)
UPDATE_MEMBER = (update(MEMBERS_TABLE).where(MEMBERS_TABLE.c.id == _ROW_ID)
                 .values(position=bindparam("at"), calls_enable=bindparam("enabled")))
DELETE_MEMBERS = delete(MEMBERS_TABLE).where(MEMBERS_TABLE.c.id.in_(bindparam("ids", expanding=True)))


# --- employees -----------------------------------------------------------------------------

async def find_user(session: AsyncSession, domain_id: int, login_or_ext: str, *, lock: Lock = None) -> User | None:
    """002 §6: the path's ``login`` is a login or an extension; a login match wins."""
    if NUL in login_or_ext:
        return None
    rows = (await session.scalars(FIND_USER[lock], {"domain_id": domain_id, "key": login_or_ext})).all()
    return _by_key(rows, login_or_ext, "login")


async def users_by_logins(session: AsyncSession, domain_id: int, logins: Sequence[str], *,
                          lock: Lock = None) -> dict[str, User]:
    """Employees keyed by every login or extension given that names one (``lock``: in id order)."""
    logins = [n for n in logins if NUL not in n]
    if not logins:
        return {}
    rows = (await session.scalars(USERS_BY_LOGINS[lock], {"domain_id": domain_id, "logins": logins,
                                                          "exts": logins})).all()
    return _by_names(rows, logins)


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


# --- employees and departments as plain rows (the write paths) ----------------------------------

def _by_key(rows: Sequence[R], key: str, attr: str) -> R | None:
    """002 §6/§8: the path's key is an id (login) or an extension; an id match wins (objects or plain rows)."""
    for row in rows:
        if getattr(row, attr) == key:
            return row
    return rows[0] if rows else None


_Employee = TypeVar("_Employee", User, Row[Any])  # an ORM object or a plain row of the users table


def _by_names(rows: Sequence[_Employee], names: Sequence[str]) -> dict[str, _Employee]:
    """Employees keyed by every login or extension given that names one; a login match wins."""
    found: dict[str, _Employee] = {}
    for name in names:
        match = next((u for u in rows if u.login == name), None) or next((u for u in rows if u.ext == name), None)
        if match is not None:
            found[name] = match
    return found


async def user_row(session: AsyncSession, domain_id: int, login_or_ext: str, *, lock: Lock = None) -> Row[Any] | None:
    """``find_user`` as a plain row of the users table."""
    if NUL in login_or_ext:
        return None
    rows = (await session.execute(USER_ROW[lock], {"domain_id": domain_id, "key": login_or_ext})).all()
    return _by_key(rows, login_or_ext, "login")


async def user_rows_by_logins(session: AsyncSession, domain_id: int, logins: Sequence[str], *,
                              lock: Lock = None) -> dict[str, Row[Any]]:
    """``users_by_logins`` as plain rows of the users table."""
    logins = [n for n in logins if NUL not in n]
    if not logins:
        return {}
    rows = (await session.execute(USER_ROWS_BY_LOGINS[lock], {"domain_id": domain_id, "logins": logins,
                                                              "exts": logins})).all()
    return _by_names(rows, logins)


async def group_row(session: AsyncSession, domain_id: int, group_id: str, *, lock: Lock = None) -> Row[Any] | None:
    """``find_group`` as a plain row of the groups table."""
    if NUL in group_id:
        return None
    rows = (await session.execute(GROUP_ROW[lock], {"domain_id": domain_id, "key": group_id})).all()
    return _by_key(rows, group_id, "group_id")


def forget(session: AsyncSession, model: type[Any], ident: int, row: Row[Any] | None = None) -> None:
    """A row a Core statement changed (``row``: as it is now; None: deleted): an ORM object of it that this session
    holds (loaded earlier in the same unit of work, as the demo company's set-up does) takes its new values, or is
    let go, rather than stay stale."""
    obj = session.sync_session.identity_map.get(identity_key(model, ident))
    if obj is None:
        return
    if row is None:
        session.sync_session.expunge(obj)
        return
    for key, value in row._mapping.items():
        set_committed_value(obj, key, value)


async def insert_claiming(session: AsyncSession, kind: str, values: dict[str, Any]) -> Row[Any]:
    """Insert an employee's or department's row (``kind``: user or group; ``values``: every column but the id)
    and claim its extension; the row as stored. A key taken (the extension, a login or id) raises
    ``IntegrityError`` or ``ExtensionTaken``: the transaction (PostgreSQL: the savepoint) is spoilt."""
    if not is_sqlite(session):
        return (await session.execute(INSERT_CLAIMING[kind], values)).one()
    row = (await session.execute(INSERT_NEW[kind], values)).one()
    await claim_ext(session, values["domain_id"], values["ext"], kind, row.id)
    return row


async def update_user(session: AsyncSession, user_id: int, values: dict[str, Any]) -> Row[Any]:
    row = (await session.execute(UPDATE_USER, {**values, "row_id": user_id})).one()
    forget(session, User, user_id, row)
    return row


async def remove_user(session: AsyncSession, domain_id: int, user: Row[Any]) -> None:
    """An employee goes: their extension is given back, departments whose no-answer target they were fall back
    to voicemail, their row is deleted (memberships go with it: ON DELETE CASCADE)."""
    await _remove(session, REMOVE_USER, domain_id, user.id, user.ext, "user", user.login)
    forget(session, User, user.id)


async def update_group(session: AsyncSession, group_id: int, values: dict[str, Any]) -> Row[Any]:
    row = (await session.execute(UPDATE_GROUP, {**values, "row_id": group_id})).one()
    forget(session, Group, group_id, row)
    return row


async def remove_group(session: AsyncSession, domain_id: int, group: Row[Any]) -> None:
    """A department goes: ``remove_user``'s steps for it (its memberships go with it)."""
    await _remove(session, REMOVE_GROUP, domain_id, group.id, group.ext, "group", group.group_id)
    forget(session, Group, group.id)


async def _remove(session: AsyncSession, removal: Removal, domain_id: int, row_id: int, ext: str, kind: str,
                  name: str) -> None:
    params = {"in_domain": domain_id, "old_ext": ext, "kind": kind, "target": name, "row_id": row_id}
    if is_sqlite(session):
        for stmt in removal[0]:
            await session.execute(stmt, params)
    else:
        await session.execute(removal[1], params)


async def member_rows(session: AsyncSession, group_ids: Sequence[int]) -> dict[int, list[Row[Any]]]:
    """Members of each department in list order, each row with its employee's login, name and absence."""
    out: dict[int, list[Row[Any]]] = {gid: [] for gid in group_ids}
    if not group_ids:
        return out
    for row in (await session.execute(MEMBER_ROWS, {"group_ids": list(group_ids)})).all():
        out[row.group_id].append(row)
    return out


async def add_members(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert memberships (group_id, user_id, position, calls_enable, group_head): one statement."""
    if rows:
        await session.execute(INSERT_MEMBERS, list(rows))


async def move_member(session: AsyncSession, member_id: int, position: int, calls_enable: bool) -> None:
    await session.execute(UPDATE_MEMBER, {"row_id": member_id, "at": position, "enabled": calls_enable})


async def remove_members(session: AsyncSession, member_ids: Sequence[int]) -> None:
    if member_ids:
        await session.execute(DELETE_MEMBERS, {"ids": list(member_ids)})


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
    return _by_key(rows, group_id, "group_id")


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
