"""Queries over the notifier's outbox, delivery log and delivery health."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.store.base import UTCDateTime
from vpbx.store.tables import DeliveryAttempt, DeliveryHealth, Integration, OutboxRow

CLAIM_COLUMNS = (OutboxRow.id, OutboxRow.uid, OutboxRow.domain_id, OutboxRow.command, OutboxRow.key,
                 OutboxRow.url, OutboxRow.body, OutboxRow.content_type, OutboxRow.attempts,
                 OutboxRow.round_attempts, OutboxRow.created_at, OutboxRow.next_at)


_T = cast(Table, OutboxRow.__table__)
_ATTEMPTS = cast(Table, DeliveryAttempt.__table__)


def _claim_statement() -> Any:
    """Built once: the hot claim runs as a cached, compiled Core statement with bound parameters."""
    t = _T
    o = t.alias("o")
    earlier = t.alias("earlier")
    i = cast(Table, Integration.__table__)
    now = bindparam("now", type_=UTCDateTime())
    off = select(i.c.domain_id).where(or_(i.c.enabled.is_(False), i.c.switched_off.is_(True)))
    # The oldest due rows first (walking the (state, next_at) index, stopping at :scan), then at most
    # :per_domain of each domain among them, then :limit in all.
    candidates = (select(o.c.id, o.c.domain_id, o.c.next_at)
                  .where(o.c.state == "pending", o.c.next_at <= now,
                         or_(o.c.lease_until.is_(None), o.c.lease_until < now),
                         o.c.domain_id.not_in(off),
                         o.c.domain_id.not_in(bindparam("busy", expanding=True)),
                         o.c.id.not_in(bindparam("inflight", expanding=True)),
                         or_(o.c.key.is_(None),
                             ~exists().where(earlier.c.domain_id == o.c.domain_id, earlier.c.key == o.c.key,
                                             earlier.c.state == "pending", earlier.c.id < o.c.id)))
                  .order_by(o.c.next_at, o.c.id).limit(bindparam("scan")).subquery())
    c = candidates
    ranked = (select(c.c.id, c.c.next_at,
                     func.row_number().over(partition_by=c.c.domain_id, order_by=(c.c.next_at, c.c.id)).label("rank"))
              .subquery())
    chosen = (select(ranked.c.id).where(ranked.c.rank <= bindparam("per_domain"))
              .order_by(ranked.c.next_at, ranked.c.id).limit(bindparam("limit")))
    columns = [t.c[c.key] for c in CLAIM_COLUMNS]
    return (update(t).where(t.c.id.in_(chosen), t.c.state == "pending",
                            or_(t.c.lease_until.is_(None), t.c.lease_until < now))
            .values(lease_until=bindparam("lease_until"), lease_owner=bindparam("owner"))
            .returning(*columns))


_CLAIM = _claim_statement()
_NEXT_DUE = select(func.min(_T.c.next_at)).where(_T.c.state == "pending", _T.c.next_at > bindparam("after"))


async def claim(session: AsyncSession, *, now: datetime, limit: int, per_domain: int, owner: str,
                lease_until: datetime, exclude_domains: Iterable[int] = (),
                exclude_ids: Iterable[int] = ()) -> Sequence[Row[Any]]:
    """Lease up to ``limit`` due rows (at most ``per_domain`` of one domain) in one statement.

    A row is due when pending, ``next_at`` has come, its lease (if any) expired, its integration is on,
    and no earlier row of its ordering key is still pending: one key's rows go out strictly in order.
    """
    conn = await session.connection()
    result = await conn.execute(_CLAIM, {"now": now, "limit": limit, "scan": limit * 4, "per_domain": per_domain,
                                         "owner": owner,
                                         "lease_until": lease_until, "busy": list(exclude_domains),
                                         "inflight": list(exclude_ids)})
    rows: list[Any] = list(result.all())
    return sorted(rows, key=lambda r: (r.next_at, r.id))


async def next_due(session: AsyncSession, after: datetime) -> datetime | None:
    """The earliest future ``next_at`` of a pending row: when the dispatcher should look again."""
    conn = await session.connection()
    due: datetime | None = (await conn.execute(_NEXT_DUE, {"after": after})).scalar()
    return due


async def record(session: AsyncSession, updates: list[dict[str, Any]], attempts: list[dict[str, Any]]) -> None:
    """Write a batch of attempt outcomes: row updates by primary key and delivery-log rows."""
    conn = await session.connection()
    if updates:
        await conn.execute(_RECORD, updates)
    if attempts:
        await conn.execute(insert(_ATTEMPTS), attempts)


_RECORD = update(_T).where(_T.c.id == bindparam("_id")).values(
    state=bindparam("state"), attempts=bindparam("attempts"), round_attempts=bindparam("round_attempts"),
    next_at=bindparam("next_at"), lease_until=None, lease_owner=None, delivered_at=bindparam("delivered_at"),
    last_status=bindparam("last_status"), last_error=bindparam("last_error"))
_RELEASE = update(_T).where(_T.c.id == bindparam("_id")).values(lease_until=None, lease_owner=None)


async def release(session: AsyncSession, ids: list[int]) -> None:
    """Give leased rows back without an attempt (their integration went off meanwhile)."""
    if ids:
        conn = await session.connection()
        await conn.execute(_RELEASE, [{"_id": i} for i in ids])


async def integrations(session: AsyncSession, domain_ids: Iterable[int]) -> list[Integration]:
    ids = list(domain_ids)
    if not ids:
        return []
    return list((await session.scalars(select(Integration).where(Integration.domain_id.in_(ids)))).all())


async def health(session: AsyncSession, domain_ids: Iterable[int]) -> dict[int, DeliveryHealth]:
    ids = list(domain_ids)
    if not ids:
        return {}
    rows = await session.scalars(select(DeliveryHealth).where(DeliveryHealth.domain_id.in_(ids)))
    return {h.domain_id: h for h in rows}


async def save_health(session: AsyncSession, domain_id: int, first_failure_at: datetime | None,
                      last_success_at: datetime | None) -> None:
    row = await session.get(DeliveryHealth, domain_id)
    if row is None:
        session.add(DeliveryHealth(domain_id=domain_id, first_failure_at=first_failure_at,
                                   last_success_at=last_success_at))
    else:
        row.first_failure_at = first_failure_at
        row.last_success_at = last_success_at
    await session.flush()


async def switch_off(session: AsyncSession, domain_id: int) -> None:
    await session.execute(update(Integration).where(Integration.domain_id == domain_id)
                          .values(switched_off=True).execution_options(synchronize_session=False))


async def deliveries(session: AsyncSession, domain_id: int, *, callid: str | None = None,
                     command: str | None = None, state: str | None = None, start: int = 0,
                     limit: int | None = 100) -> tuple[list[OutboxRow], int]:
    """A domain's notifications, newest first, and how many match."""
    conditions = [OutboxRow.domain_id == domain_id]
    if callid:
        conditions.append(OutboxRow.callid == callid)
    if command:
        conditions.append(OutboxRow.command == command)
    if state:
        conditions.append(OutboxRow.state == state)
    total = await session.scalar(select(func.count()).select_from(OutboxRow).where(*conditions)) or 0
    query = select(OutboxRow).where(*conditions).order_by(OutboxRow.id.desc()).offset(start)
    if limit is not None:
        query = query.limit(limit)
    return list((await session.scalars(query)).all()), total


async def attempts_of(session: AsyncSession, outbox_ids: Iterable[int]) -> dict[int, list[DeliveryAttempt]]:
    ids = list(outbox_ids)
    out: dict[int, list[DeliveryAttempt]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = await session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.outbox_id.in_(ids))
                                 .order_by(DeliveryAttempt.id))
    for a in rows:
        out[a.outbox_id].append(a)
    return out


async def delivery(session: AsyncSession, domain_id: int, outbox_id: int) -> OutboxRow | None:
    return await session.scalar(select(OutboxRow).where(OutboxRow.id == outbox_id, OutboxRow.domain_id == domain_id))


async def replay(session: AsyncSession, row: OutboxRow, now: datetime) -> None:
    """Send the notification again now (same id, same body), with a fresh retry schedule."""
    row.state = "pending"
    row.next_at = now
    row.round_attempts = 0
    row.lease_until = None
    row.lease_owner = None
    await session.flush()


async def counts(session: AsyncSession, domain_id: int | None = None) -> dict[str, int]:
    query = select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
    if domain_id is not None:
        query = query.where(OutboxRow.domain_id == domain_id)
    return {state: n for state, n in (await session.execute(query)).all()}
