"""Queries over the call history (external and internal)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, String, Table, and_, bindparam, case, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from vpbx.store.tables import CallRecord, InnerCallRecord
from vpbx.store.tables.calls import LiveBeat, LiveCall

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


class utc_text(FunctionElement[str]):
    """A ``UTCDateTime`` column as stored text, ``YYYY-MM-DD HH:MM:SS`` then anything (SQLite keeps
    ``.ffffff``): an export slices it instead of building a datetime per row. Plain text on every
    backend, so raw SQLite rows and PostgreSQL rows carry the same value."""

    type = String()
    name = "utc_text"
    inherit_cache = True


@compiles(utc_text, "sqlite")
def _utc_text_sqlite(element: utc_text, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)  # SQLite stores naive UTC as that very text


@compiles(utc_text, "postgresql")
def _utc_text_pg(element: utc_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM-DD HH24:MI:SS')"


# The streamed exports' columns: as above with ``start`` as text; for the CSV only what it writes,
# the type column and the account's name already chosen by the store (``rules.csv_type`` and
# ``rules.account`` in SQL: a row of 10 values reads faster than one of 13).
EXTERNAL_EXPORT_COLUMNS: tuple[Any, ...] = tuple(
    utc_text(c) if c is CallRecord.start else c for c in EXTERNAL_COLUMNS
)
EXTERNAL_CSV_COLUMNS: tuple[Any, ...] = (
    CallRecord.callid,
    case((and_(CallRecord.type == "in", CallRecord.status != "Success"), "missed"), else_=CallRecord.type),
    CallRecord.client,
    func.coalesce(func.nullif(CallRecord.user_login, ""), func.nullif(CallRecord.group_id, ""),
                  func.nullif(CallRecord.destination, ""), "pbx"),
    CallRecord.diversion, utc_text(CallRecord.start), CallRecord.wait, CallRecord.duration, CallRecord.link,
    CallRecord.rating,
)
INNER_EXPORT_COLUMNS: tuple[Any, ...] = tuple(
    utc_text(c) if c is InnerCallRecord.start else c for c in INNER_COLUMNS
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


def external_query(domain_id: int, f: ExternalFilter, columns: Sequence[Any] = EXTERNAL_COLUMNS) -> Select[Any]:
    stmt = select(*columns).where(
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


def inner_query(domain_id: int, f: InnerFilter, columns: Sequence[Any] = INNER_COLUMNS) -> Select[Any]:
    stmt = select(*columns).where(
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


async def linked_duration(session: AsyncSession, domain_id: int, callid: str) -> float | None:
    """The talk time of a call whose history row carries a recording link (external or internal); None when
    there is no such row (the records route's 404)."""
    for table in (CallRecord, InnerCallRecord):
        duration = await session.scalar(select(table.duration).where(
            table.domain_id == domain_id, table.callid == callid, table.link != "").limit(1))
        if duration is not None:
            return float(duration)
    return None


async def mark_missed(session: AsyncSession, domain_id: int, client: str, status: int) -> None:
    """Settle the client's not-called-back missed calls (missedStatus 3, or 4 for 2)."""
    pending = (3, 4) if status in (1, 2) else (3,)
    await session.execute(
        update(CallRecord)
        .where(and_(CallRecord.domain_id == domain_id, CallRecord.client == client,
                    CallRecord.missed_status.in_(pending)))
        .values(missed_status=status)
    )


async def unsettled_missed(session: AsyncSession, pairs: Sequence[tuple[int, str]],
                           chunk: int = 400) -> dict[tuple[int, str, int], datetime]:
    """Of the (domain, client) ``pairs``, the missed incoming calls a later call may settle (4.2 missedStatus 3
    "not called back" and 4 "not reached"): the earliest start of each (domain, client, status)."""
    out: dict[tuple[int, str, int], datetime] = {}
    unique = sorted(set(pairs))
    h = CallRecord
    for i in range(0, len(unique), chunk):
        part = unique[i:i + chunk]
        rows = await session.execute(
            select(h.domain_id, h.client, h.missed_status, func.min(h.start))
            .where(tuple_(h.domain_id, h.client).in_(part), h.missed_status.between(3, 4), h.type == "in")
            .group_by(h.domain_id, h.client, h.missed_status))
        for domain_id, client, status, first in rows:
            if status is not None:  # the WHERE leaves none; the column is nullable
                out[(domain_id, client, status)] = first
    return out


# --- live calls (the engine's durable state; ``engine.recovery`` ends what a crash left) -----------------

_LIVE = cast(Table, LiveCall.__table__)
_BEATS = cast(Table, LiveBeat.__table__)


@dataclass(frozen=True)
class LiveRow:
    callid: str
    seen_at: datetime
    state: str


def _upsert(session: AsyncSession, table: Table) -> Any:
    """``INSERT ... ON CONFLICT (primary key) DO UPDATE`` in the session's dialect."""
    dialect = session.get_bind().dialect.name
    stmt = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table))
    changed = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
    return stmt.on_conflict_do_update(index_elements=list(table.primary_key.columns), set_=changed)


async def save_live(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Write (or overwrite) live calls: ``callid``, ``domain_id``, ``started``, ``seen_at``, ``state``."""
    if rows:
        await session.execute(_upsert(session, _LIVE), list(rows))


async def drop_live(session: AsyncSession, callids: Sequence[str]) -> None:
    """Forget finished calls (their history row is written in the same transaction)."""
    if callids:
        await session.execute(delete(_LIVE).where(_LIVE.c.callid == bindparam("c")), [{"c": c} for c in callids])


async def claim_live(session: AsyncSession, callids: Sequence[str]) -> set[str]:
    """Delete these live calls and return those this transaction deleted: a concurrent recovery of the same calls
    waits on the rows and then finds them gone, so each call is ended by exactly one transaction."""
    if not callids:
        return set()
    result = await session.execute(delete(_LIVE).where(_LIVE.c.callid.in_(list(callids))).returning(_LIVE.c.callid))
    return set(result.scalars())


async def beat(session: AsyncSession, domain_ids: Sequence[int], at: datetime) -> None:
    """The engine wrote for these domains at ``at``: their live calls were going then."""
    if domain_ids:
        await session.execute(_upsert(session, _BEATS), [{"domain_id": d, "at": at} for d in sorted(domain_ids)])


async def live_domains(session: AsyncSession) -> list[int]:
    return list((await session.scalars(select(_LIVE.c.domain_id).distinct())).all())


async def live_calls(session: AsyncSession, domain_id: int, limit: int | None = None) -> list[LiveRow]:
    stmt = select(_LIVE.c.callid, _LIVE.c.seen_at, _LIVE.c.state).where(
        _LIVE.c.domain_id == domain_id).order_by(_LIVE.c.started, _LIVE.c.callid)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [LiveRow(r.callid, r.seen_at, r.state) for r in (await session.execute(stmt)).all()]


async def last_beat(session: AsyncSession, domain_id: int) -> datetime | None:
    value: datetime | None = await session.scalar(select(_BEATS.c.at).where(_BEATS.c.domain_id == domain_id))
    return value
