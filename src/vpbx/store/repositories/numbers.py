"""Queries over numbers, IVR menus, SIM cards, the blacklist and blocked calls."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Integer,
    Row,
    Table,
    bindparam,
    case,
    delete,
    false,
    func,
    null,
    select,
    true,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from vpbx.store.paging import Page
from vpbx.store.repositories.directory import forget, paged
from vpbx.store.tables import (
    BlacklistNumber,
    BlacklistSettings,
    BlockedCall,
    IvrMenu,
    SimPoolEntry,
    Telnum,
    User,
)

# The statements of the configuration writes, built once with bind parameters (``directory``: building one cost
# more CPU than running it).
_DOMAIN: BindParameter[int] = bindparam("domain_id")
_FIND_TELNUM = select(Telnum).where(Telnum.domain_id == _DOMAIN, Telnum.telnum == bindparam("telnum"))
FIND_TELNUM = {False: _FIND_TELNUM, True: _FIND_TELNUM.with_for_update()}
ALL_TELNUMS = select(Telnum).where(Telnum.domain_id == _DOMAIN).order_by(Telnum.id)
USER_NAMES = select(User.login, User.name).where(User.domain_id == _DOMAIN,
                                                  User.login.in_(bindparam("logins", expanding=True)))
_FIRST_USER = select(User).where(User.domain_id == _DOMAIN)
_FIRST_OTHER_USER = _FIRST_USER.where(User.login != bindparam("excluding"))
FIRST_USER = {(excluding, lock): (stmt.order_by(User.id).limit(1)
                                  .with_for_update(read=True, key_share=True, skip_locked=True) if lock
                                  else stmt.order_by(User.id).limit(1))
              for excluding, stmt in ((False, _FIRST_USER), (True, _FIRST_OTHER_USER)) for lock in (False, True)}
_MENUS = select(IvrMenu).where(IvrMenu.domain_id == _DOMAIN)
MENUS_NAMED = _MENUS.where(IvrMenu.name.in_(bindparam("names", expanding=True)))

# Route writes and the redirection of routes when an employee or department goes run on plain rows (Core), not
# ORM objects (``directory``: an object loaded or flushed cost more CPU than its statement).
TELNUMS = cast(Table, Telnum.__table__)
MENU_TABLE = cast(Table, IvrMenu.__table__)
USERS = cast(Table, User.__table__)
_ROW_ID: BindParameter[int] = bindparam("row_id")  # an UPDATE's parameter may not be named as its column
_TELNUM_ROW = select(TELNUMS).where(TELNUMS.c.domain_id == _DOMAIN, TELNUMS.c.telnum == bindparam("telnum"))
TELNUM_ROW = {False: _TELNUM_ROW, True: _TELNUM_ROW.with_for_update()}
# What may point at an employee or department being deleted, numbers and menus in one statement: each number with
# what its redirection reads and writes (``SCANNED``), each menu with its buttons (``menu`` tells them apart).
SCANNED = ("id", "telnum", "name", "location", "abc_telnum", "route_user", "route_group", "sim_user", "type",
            "disabled", "work", "other", "custom_routes", "search_text")
_NUMBER_COLUMNS: list[Any] = [false().label("menu"), *(TELNUMS.c[name] for name in SCANNED),
                              type_coerce(null(), JSON).label("items")]
_MENU_COLUMNS: list[Any] = [true().label("menu"), MENU_TABLE.c.id, *(null().label(name) for name in SCANNED[1:]),
                            MENU_TABLE.c["items"]]
POINTING = union_all(select(*_NUMBER_COLUMNS).where(TELNUMS.c.domain_id == _DOMAIN),
                     select(*_MENU_COLUMNS).where(MENU_TABLE.c.domain_id == _DOMAIN)).order_by("menu", "id")
_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
RELOCK_TELNUMS = (select(TELNUMS).where(TELNUMS.c.id.in_(_IDS)).order_by(TELNUMS.c.id)
                  .with_for_update(key_share=True))
RELOCK_MENUS = (select(MENU_TABLE).where(MENU_TABLE.c.id.in_(_IDS)).order_by(MENU_TABLE.c.id)
                .with_for_update(key_share=True))
# The SET clause follows the parameters given (one compiled form per set of columns).
UPDATE_TELNUM = update(TELNUMS).where(TELNUMS.c.id == _ROW_ID).returning(*TELNUMS.c)
UPDATE_MENU_ITEMS = (update(MENU_TABLE).where(MENU_TABLE.c.id == _ROW_ID).values(items=bindparam("new_items"))
                     .returning(*MENU_TABLE.c))
_FIRST_LOGIN = select(USERS.c.login).where(USERS.c.domain_id == _DOMAIN)
FIRST_LOGIN = {(excluding, lock): (stmt.order_by(USERS.c.id).limit(1)
                                   .with_for_update(read=True, key_share=True, skip_locked=True) if lock
                                   else stmt.order_by(USERS.c.id).limit(1))
               for excluding, stmt in ((False, _FIRST_LOGIN),
                                       (True, _FIRST_LOGIN.where(USERS.c.login != bindparam("excluding"))))
               for lock in (False, True)}


# --- numbers -------------------------------------------------------------------------------


async def find_telnum(session: AsyncSession, domain_id: int, telnum: str, *, lock: bool = False) -> Telnum | None:
    return (await session.scalars(FIND_TELNUM[lock], {"domain_id": domain_id, "telnum": telnum})).first()


async def number_holder(session: AsyncSession, telnum: str) -> int | None:
    """The domain a (non-example) number belongs to, in the whole server."""
    return await session.scalar(select(Telnum.domain_id).where(Telnum.telnum == telnum, Telnum.example.is_(False)))


async def add_telnum(session: AsyncSession, row: Telnum) -> bool:
    """Insert a number; False when the one-domain key refuses it (another domain took it meanwhile)."""
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


async def list_telnums(session: AsyncSession, domain_id: int, page: Page,
                       kind: str | None = None) -> tuple[list[Telnum], int]:
    stmt = select(Telnum).where(Telnum.domain_id == domain_id)
    if kind is not None:
        stmt = stmt.where(Telnum.kind == kind)
    return await paged(session, stmt, Telnum.search_text, page, Telnum.id)


async def all_telnums(session: AsyncSession, domain_id: int) -> list[Telnum]:
    return list((await session.scalars(ALL_TELNUMS, {"domain_id": domain_id})).all())


async def main_telnum(session: AsyncSession, domain_id: int) -> str | None:
    """The company's main number (9.1 ``is_main_phone``, 13.3 ``main``): one setting."""
    return await session.scalar(select(Telnum.telnum).where(Telnum.domain_id == domain_id, Telnum.is_main_phone)
                                .order_by(Telnum.id).limit(1))


async def count_telnums(session: AsyncSession, domain_id: int) -> int:
    return await session.scalar(select(func.count()).where(Telnum.domain_id == domain_id)) or 0


async def sims_of_user(session: AsyncSession, domain_id: int, login: str) -> list[Telnum]:
    return list((await session.scalars(
        select(Telnum).where(Telnum.domain_id == domain_id, Telnum.kind == "sim", Telnum.sim_user == login)
    )).all())


async def user_names(session: AsyncSession, domain_id: int, logins: Sequence[str]) -> dict[str, str]:
    if not logins:
        return {}
    rows = await session.execute(USER_NAMES, {"domain_id": domain_id, "logins": list(set(logins))})
    return {login: name for login, name in rows.all()}


async def first_user(session: AsyncSession, domain_id: int, *, excluding: str | None = None,
                     lock: bool = False) -> User | None:
    """The first employee of the 6.1 list: the default target of a new route (10.4). ``lock`` (PostgreSQL): the
    first one not being deleted, locked for reference (a deletion of it waits; two deletions at once never wait
    for each other)."""
    stmt = FIRST_USER[(excluding is not None, lock)]
    return (await session.scalars(stmt, {"domain_id": domain_id, "excluding": excluding})).first()


async def telnum_row(session: AsyncSession, domain_id: int, telnum: str, *, lock: bool = False) -> Row[Any] | None:
    """``find_telnum`` as a plain row of the telnums table."""
    return (await session.execute(TELNUM_ROW[lock], {"domain_id": domain_id, "telnum": telnum})).first()


async def pointing(session: AsyncSession, domain_id: int) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """The domain's numbers (the columns ``SCANNED``) and menus (id, items), in id order."""
    numbers: list[Row[Any]] = []
    menus: list[Row[Any]] = []
    for row in (await session.execute(POINTING, {"domain_id": domain_id})).all():
        (menus if row.menu else numbers).append(row)
    return numbers, menus


async def relock_rows(session: AsyncSession, ids: Sequence[int], *, menus: bool = False) -> Sequence[Row[Any]]:
    """Numbers' (or menus') rows read before, locked for editing in id order and read again (what was committed
    since included)."""
    if not ids:
        return []
    return (await session.execute(RELOCK_MENUS if menus else RELOCK_TELNUMS, {"ids": list(ids)})).all()


async def update_telnum(session: AsyncSession, telnum_id: int, values: dict[str, Any]) -> Row[Any]:
    """Set ``values`` on a number's row; the row as updated."""
    row = (await session.execute(UPDATE_TELNUM, {**values, "row_id": telnum_id})).one()
    forget(session, Telnum, telnum_id, row)
    return row


async def set_menu_items(session: AsyncSession, menu_id: int, items: list[dict[str, Any]]) -> None:
    row = (await session.execute(UPDATE_MENU_ITEMS, {"row_id": menu_id, "new_items": items})).one()
    forget(session, IvrMenu, menu_id, row)


async def first_login(session: AsyncSession, domain_id: int, *, excluding: str | None = None,
                      lock: bool = False) -> str | None:
    """``first_user``'s login."""
    stmt = FIRST_LOGIN[(excluding is not None, lock)]
    return (await session.scalars(stmt, {"domain_id": domain_id, "excluding": excluding})).first()


# --- IVR menus -----------------------------------------------------------------------------


async def find_menu(session: AsyncSession, domain_id: int, name: str) -> IvrMenu | None:
    return (await session.scalars(select(IvrMenu).where(IvrMenu.domain_id == domain_id,
                                                         IvrMenu.name == name))).first()


async def menus(session: AsyncSession, domain_id: int, names: Sequence[str] | None = None) -> dict[str, IvrMenu]:
    params: dict[str, object] = {"domain_id": domain_id}
    stmt = _MENUS
    if names is not None:
        if not names:
            return {}
        stmt, params["names"] = MENUS_NAMED, list(set(names))
    return {m.name: m for m in (await session.scalars(stmt, params)).all()}


# --- SIM pool ------------------------------------------------------------------------------


async def pool(session: AsyncSession, domain_id: int) -> list[SimPoolEntry]:
    return list((await session.scalars(select(SimPoolEntry).where(SimPoolEntry.domain_id == domain_id)
                                       .order_by(SimPoolEntry.id))).all())


async def pool_entry(session: AsyncSession, domain_id: int, telnum: str) -> SimPoolEntry | None:
    return (await session.scalars(select(SimPoolEntry).where(SimPoolEntry.domain_id == domain_id,
                                                              SimPoolEntry.telnum == telnum))).first()


# --- blacklist -----------------------------------------------------------------------------


async def blacklist(session: AsyncSession, domain_id: int) -> list[BlacklistNumber]:
    return list((await session.scalars(select(BlacklistNumber).where(BlacklistNumber.domain_id == domain_id)
                                       .order_by(BlacklistNumber.id))).all())


async def delete_blacklisted(session: AsyncSession, domain_id: int, telnums: Sequence[str]) -> None:
    await session.execute(delete(BlacklistNumber).where(BlacklistNumber.domain_id == domain_id,
                                                        BlacklistNumber.telnum.in_(set(telnums))))


async def blacklist_settings(session: AsyncSession, domain_id: int) -> BlacklistSettings | None:
    return await session.get(BlacklistSettings, domain_id)


async def blocked_counts(session: AsyncSession, domain_id: int, week_since: datetime,
                         year_since: datetime) -> list[tuple[str, int, int]]:
    """(caller, calls since ``week_since``, calls since ``year_since``) per distinct caller."""
    week = func.coalesce(func.sum(case((BlockedCall.at >= week_since, 1), else_=0)), 0).cast(Integer)
    rows = await session.execute(
        select(BlockedCall.caller, week, func.count())
        .where(BlockedCall.domain_id == domain_id, BlockedCall.at >= year_since)
        .group_by(BlockedCall.caller)
    )
    return [(caller, int(w), int(y)) for caller, w, y in rows.all()]
