"""The call engine's statements (``vpbx.engine``): its write batch (history rows, the missed-call settling, a
department's rotation), the people its history rows name, and its own connection pool. The engine builds no SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from vpbx.store import db
from vpbx.store.tables import CallRecord, Group, InnerCallRecord, Integration, User


async def integration(session: AsyncSession, domain_id: int) -> Integration | None:
    return await session.get(Integration, domain_id)


def add_internal(session: AsyncSession, row: dict[str, Any]) -> None:
    """An internal call's history row."""
    session.add(InnerCallRecord(**row))


async def insert_history(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """External calls' ``call_history`` rows, inserted at once."""
    await session.execute(insert(cast(Table, CallRecord.__table__)), list(rows))


async def settle_answered(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """4.2 missedStatus: 3 (or 4) -> 1, "the client called back and was answered". A row: ``d`` the domain,
    ``c`` the client, ``t`` the answered call's start (only calls missed before it move)."""
    table = cast(Table, CallRecord.__table__)
    h = table.c
    await session.execute(update(table).where(
        h.domain_id == bindparam("d"), h.client == bindparam("c"), h.missed_status.between(3, 4),
        h.start < bindparam("t")).values(missed_status=1), list(rows))


async def settle_called(session: AsyncSession, rows: Sequence[dict[str, Any]], old: tuple[int, int],
                        new: int) -> None:
    """call-flows "Missed-call follow-up": an employee called the client (rows as in ``settle_answered``) and
    reached them (2) or not (4); the client's incoming calls missed in ``old`` up to then move to ``new``."""
    table = cast(Table, CallRecord.__table__)
    h = table.c
    await session.execute(update(table).where(
        h.domain_id == bindparam("d"), h.client == bindparam("c"), h.type == "in",
        h.missed_status.between(*old), h.start <= bindparam("t")).values(missed_status=new), list(rows))


async def rotate(session: AsyncSession, group_pk: int, user_id: int) -> None:
    """EVENLY's rotation: the member who took the department's last call."""
    await session.execute(update(Group).where(Group.id == group_pk).values(last_answered_user_id=user_id))


async def user_fields(session: AsyncSession, domain_id: int, login: str) -> dict[str, Any]:
    """The employee a history row names (``{"login": login}`` alone when they were deleted meanwhile)."""
    if not login:
        return {}
    row = (await session.execute(select(User.id, User.login, User.name, User.ext, User.telnum).where(
        User.domain_id == domain_id, User.login == login))).first()
    if row is None:
        return {"login": login}
    return {"id": row.id, "login": row.login, "name": row.name, "ext": row.ext, "telnum": row.telnum}


async def user_by_telnum(session: AsyncSession, domain_id: int, number: str) -> User | None:
    """The employee whose direct number is ``number`` (the CRM's ``responsible`` may name one)."""
    return (await session.scalars(select(User).where(
        User.domain_id == domain_id, User.telnum == number).limit(1))).first()


def write_pool(url: URL, size: int) -> AsyncEngine | None:
    """The engine's writes get a pool of their own (``size`` connections): requests that hold the server's
    connections while they await the engine's flush (makecall, the simulator) can no longer starve it, which
    stalled bursts of click-to-calls for the pool's 30 s timeout. An in-memory SQLite store has one connection."""
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return db.create_engine(url.render_as_string(hide_password=False), pool_size=size, max_overflow=0)
