"""The delivery log, as the operator and the CRM developer see it: list, replay, synthetic test load.

Shared by ``/sim/v1/deliveries`` and ``vpbx deliveries``; like services, these never commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.notify.outbox import enqueue
from vpbx.notify.payloads import COMMANDS, EventNotice, EventType
from vpbx.services.errors import Invalid, NotFound
from vpbx.store.repositories import outbox as repo
from vpbx.store.tables import DeliveryAttempt, OutboxRow

STATES = ("pending", "delivered", "failed")
MAX_TEST = 100_000


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def attempt_out(a: DeliveryAttempt) -> dict[str, Any]:
    return {"attempt": a.attempt_no, "at": _iso(a.at), "url": a.url, "status_code": a.status_code,
            "latency_ms": a.latency_ms, "outcome": a.outcome, "error": a.error, "response": a.response_excerpt}


def delivery_out(row: OutboxRow, attempts: list[DeliveryAttempt] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "notification_id": row.uid, "command": row.command, "callid": row.callid, "key": row.key,
        "state": row.state, "attempts": row.attempts, "created_at": _iso(row.created_at),
        "next_attempt_at": _iso(row.next_at) if row.state == "pending" else None,
        "delivered_at": _iso(row.delivered_at), "last_status": row.last_status, "last_error": row.last_error,
        "url": row.url, "content_type": row.content_type, "body": row.body,
    }
    if attempts is not None:
        out["log"] = [attempt_out(a) for a in attempts]
    return out


def check_filters(command: str | None, state: str | None) -> None:
    if command and command not in COMMANDS:
        raise Invalid("command", f"one of {', '.join(COMMANDS)}")
    if state and state not in STATES:
        raise Invalid("state", f"one of {', '.join(STATES)}")


async def list_deliveries(session: AsyncSession, domain_id: int, *, callid: str | None = None,
                          command: str | None = None, state: str | None = None, start: int = 0,
                          limit: int | None = 100) -> tuple[list[dict[str, Any]], int]:
    check_filters(command, state)
    rows, total = await repo.deliveries(session, domain_id, callid=callid, command=command, state=state,
                                        start=start, limit=limit)
    log = await repo.attempts_of(session, [r.id for r in rows])
    return [delivery_out(r, log[r.id]) for r in rows], total


async def get_delivery(session: AsyncSession, domain_id: int, outbox_id: int) -> dict[str, Any]:
    row = await repo.delivery(session, domain_id, outbox_id)
    if row is None:
        raise NotFound("delivery")
    return delivery_out(row, (await repo.attempts_of(session, [row.id]))[row.id])


async def replay(session: AsyncSession, domain_id: int, outbox_id: int, now: datetime) -> dict[str, Any]:
    """Send it again now: same notification id and body, so a CRM that dedupes sees a duplicate."""
    row = await repo.delivery(session, domain_id, outbox_id)
    if row is None:
        raise NotFound("delivery")
    await repo.replay(session, row, now)
    return delivery_out(row)


async def enqueue_test(session: AsyncSession, domain_id: int, count: int, now: datetime | None = None) -> list[str]:
    """Diagnostics: ``count`` synthetic ``event`` notifications (INCOMING, one callid each)."""
    if not 1 <= count <= MAX_TEST:
        raise Invalid("count", f"1 to {MAX_TEST}")
    batch = uuid.uuid4().hex[:8]
    ids = []
    for i in range(count):
        notice = EventNotice(type=EventType.INCOMING, callid=f"test-{batch}-{i}", phone="79990000000", user="test",
                             direction="in")
        uid = await enqueue(session, domain_id, notice, now=now)
        if uid is None:
            raise Invalid("integration", "the integration is off or has no CRM URL")
        ids.append(uid)
    return ids
