"""Queries over the call history (external and internal)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.store.tables import CallRecord, InnerCallRecord

# Columns the exports read, in this order (a row tuple, no ORM objects: exports stay cheap).
EXTERNAL_COLUMNS: tuple[Any, ...] = (
    CallRecord.callid, CallRecord.type, CallRecord.status, CallRecord.destination, CallRecord.client,
    CallRecord.user_login, CallRecord.user_name, CallRecord.first_login, CallRecord.first_name,
    CallRecord.group_id, CallRecord.group_name, CallRecord.diversion, CallRecord.telnum_name,
    CallRecord.start, CallRecord.wait, CallRecord.duration, CallRecord.link, CallRecord.rating,
    CallRecord.missed_status, CallRecord.note,
)
INNER_COLUMNS: tuple[Any, ...] = (
    InnerCallRecord.callid, InnerCallRecord.status, InnerCallRecord.from_login, InnerCallRecord.from_name,
    InnerCallRecord.to_login, InnerCallRecord.to_name, InnerCallRecord.start, InnerCallRecord.wait,
    InnerCallRecord.duration, InnerCallRecord.link,
)


@dataclass(frozen=True)
class ExternalFilter:
    lo: datetime
    hi: datetime
    type: str = "all"  # all | in | out | missed
    limit: int | None = None
    user: str | None = None
    diversion: str | None = None
    client: str | None = None
    groups: Sequence[str] = field(default_factory=tuple)
    missed_statuses: Sequence[int] = field(default_factory=tuple)


@dataclass(frozen=True)
class InnerFilter:
    lo: datetime
    hi: datetime
    type: str = "all"  # all | success | noanswer
    limit: int | None = None
    user: str | None = None


def external_query(domain_id: int, f: ExternalFilter) -> Select[Any]:
    stmt = select(*EXTERNAL_COLUMNS).where(
        CallRecord.domain_id == domain_id, CallRecord.start >= f.lo, CallRecord.start < f.hi
    )
    if f.type == "in":
        stmt = stmt.where(CallRecord.type == "in")
    elif f.type == "out":
        stmt = stmt.where(CallRecord.type == "out")
    elif f.type == "missed":
        stmt = stmt.where(CallRecord.type == "in", CallRecord.status != "Success")
    if f.user:
        stmt = stmt.where(or_(CallRecord.user_login == f.user, CallRecord.first_login == f.user))
    if f.diversion:
        stmt = stmt.where(CallRecord.diversion == f.diversion)
    if f.client:
        stmt = stmt.where(CallRecord.client == f.client)
    if f.groups:
        stmt = stmt.where(CallRecord.group_id.in_(list(f.groups)))
    if f.missed_statuses:
        stmt = stmt.where(CallRecord.missed_status.in_(list(f.missed_statuses)))
    stmt = stmt.order_by(CallRecord.start.desc(), CallRecord.id.desc())
    if f.limit is not None:
        stmt = stmt.limit(f.limit)
    return stmt


def inner_query(domain_id: int, f: InnerFilter) -> Select[Any]:
    stmt = select(*INNER_COLUMNS).where(
        InnerCallRecord.domain_id == domain_id, InnerCallRecord.start >= f.lo, InnerCallRecord.start < f.hi
    )
    if f.type in ("success", "noanswer"):
        stmt = stmt.where(InnerCallRecord.status == f.type)
    if f.user:
        stmt = stmt.where(or_(InnerCallRecord.from_login == f.user, InnerCallRecord.to_login == f.user))
    stmt = stmt.order_by(InnerCallRecord.start.desc(), InnerCallRecord.id.desc())
    if f.limit is not None:
        stmt = stmt.limit(f.limit)
    return stmt


async def mark_missed(session: AsyncSession, domain_id: int, client: str, status: int) -> None:
    """Settle the client's not-called-back missed calls (missedStatus 3, or 4 for 2)."""
    pending = (3, 4) if status in (1, 2) else (3,)
    await session.execute(
        update(CallRecord)
        .where(and_(CallRecord.domain_id == domain_id, CallRecord.client == client,
                    CallRecord.missed_status.in_(pending)))
        .values(missed_status=status)
    )
