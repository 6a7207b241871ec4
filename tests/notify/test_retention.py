"""The delivery log's retention: settled notifications (delivered, failed) older than ``notify_retention_days`` are
forgotten with their attempts, in small steps; pending ones and younger ones stay; the sweep runs on the clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from tests.notify.conftest import Harness, Receiver, Reply, make_harness

from vpbx.notify import retention as retention_mod
from vpbx.notify.payloads import CallStatus, HistoryNotice
from vpbx.notify.retention import Retention
from vpbx.store.tables import DeliveryAttempt, OutboxRow


def hist(callid: str) -> HistoryNotice:
    return HistoryNotice(type="in", user="andy", phone="79101234567", start=datetime(2026, 1, 12, 9, tzinfo=UTC),
                         duration=10, callid=callid, status=CallStatus.SUCCESS)


async def _age(harness: Harness, ids: list[int], days: float) -> None:
    """Make rows look written ``days`` ago. A pending one's next try stays a day away: the running dispatcher
    leaves it alone (tried now, a push that old would be given up and fail)."""
    at = harness.clock.now() - timedelta(days=days)
    async with harness.runtime.sessions() as s:
        await s.execute(update(OutboxRow).where(OutboxRow.id.in_(ids)).values(created_at=at))
        await s.execute(update(OutboxRow).where(OutboxRow.id.in_(ids), OutboxRow.state == "pending")
                        .values(next_at=harness.clock.now() + timedelta(days=1)))
        await s.commit()


async def _settled(harness: Harness, domain: int, expected: dict[str, str]) -> dict[str, Any]:
    """The domain's rows by callid, once each has the state expected (the dispatcher records outcomes as they
    come: waited for, not assumed)."""
    rows: dict[str, Any] = {}
    for _ in range(400):
        rows = {r.callid: r for r in await harness.rows(domain)}
        if {c: r.state for c, r in rows.items()} == expected:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError({c: r.state for c, r in rows.items()})


async def _attempts(harness: Harness, ids: list[int]) -> int:
    async with harness.runtime.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(DeliveryAttempt)
                                  .where(DeliveryAttempt.outbox_id.in_(ids))) or 0)


async def test_settled_notifications_past_the_retention_go_with_their_attempts_and_nothing_else(
        harness: Harness, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention_mod, "BATCH", 2)  # several steps, the walk's end found among them
    # Delivered, refused for good (410 is final), and one the CRM keeps failing (pending, retried later).
    receiver.reply = lambda hit: (Reply(status=410) if b"refused" in hit.body
                                  else Reply(status=503) if b"later" in hit.body else Reply())
    domain = await harness.domain(receiver.url)
    await harness.enqueue(domain, *(hist(f"old-{i}") for i in range(5)), hist("refused"), hist("later"),
                          hist("young"))
    await harness.dispatcher.settle()
    rows = await _settled(harness, domain, {**{f"old-{i}": "delivered" for i in range(5)}, "young": "delivered",
                                            "refused": "failed", "later": "pending"})
    old = [r.id for c, r in rows.items() if c != "young"]
    await _age(harness, old, 31)
    await _age(harness, [rows["young"].id], 29)
    assert await _attempts(harness, old) >= len(old)

    forgotten = await Retention(harness.runtime).sweep()

    left = {r.callid for r in await harness.rows(domain)}
    assert forgotten == 6 and left == {"later", "young"}
    assert await _attempts(harness, [rows[c].id for c in rows if c not in left]) == 0  # their attempts went too
    assert await _attempts(harness, [rows["later"].id, rows["young"].id]) >= 2


async def test_the_sweep_runs_on_the_clock_and_retention_zero_keeps_everything(
        store_url: str, tmp_path: Path, receiver: Receiver) -> None:
    for days, kept in ((30.0, 0), (0.0, 1)):
        harness = await make_harness(store_url, tmp_path / f"r{days:g}", notify_retention_days=days)
        try:
            domain = await harness.domain(receiver.url)
            await harness.enqueue(domain, hist(f"c{days:g}"))
            await harness.dispatcher.settle()
            await _age(harness, [r.id for r in await harness.rows(domain)], 45)
            retention = Retention(harness.runtime)
            retention.start()
            await harness.clock.advance(retention_mod.FIRST_SWEEP)  # the first sweep, a minute after the start
            assert len(await harness.rows(domain)) == kept
            retention.stop()
        finally:
            await harness.dispatcher.stop()
            harness.runtime.reader.dispose()
            await harness.runtime.engine.dispose()
