"""Claims deeper than a domain's request slots: a row whose lease lapsed while it waited is never posted by the
dispatcher that claimed it (another node may have taken it), and giving it back leaves that node's lease alone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from tests.engine.test_background_tasks import until
from tests.notify.conftest import Harness, Receiver, Reply

from vpbx.notify.payloads import CallStatus, HistoryNotice
from vpbx.store.tables import OutboxRow


def hist(callid: str) -> HistoryNotice:
    return HistoryNotice(type="in", user="andy", phone="79101234567", start=datetime(2026, 1, 12, 9, tzinfo=UTC),
                         duration=10, callid=callid, status=CallStatus.SUCCESS)


async def test_a_lapsed_claim_taken_by_another_node_is_not_posted_again(harness: Harness,
                                                                        receiver: Receiver) -> None:
    d = harness.dispatcher
    d.per_domain = 1  # one request at a time: the second row waits in this dispatcher's queue
    receiver.reply = lambda hit: Reply(delay=1.0) if len(receiver.hits) == 1 else Reply()
    domain = await harness.domain(receiver.url)
    await harness.enqueue(domain, hist("first"), hist("second"))
    await until(lambda: len(receiver.hits) == 1, within=20)  # the first is in flight; the second is claimed, queued
    first, second = await harness.rows(domain)
    assert second.lease_owner == d.owner
    # Meanwhile the second's lease runs out and another node claims it.
    await harness.clock.advance(d.lease.total_seconds())
    other_until = harness.clock.now() + timedelta(seconds=60)
    async with harness.runtime.sessions() as s:
        await s.execute(update(OutboxRow).where(OutboxRow.id == second.id)
                        .values(lease_owner="another-node", lease_until=other_until))
        await s.commit()
    await asyncio.wait_for(d.settle(), 30)

    assert len(receiver.hits) == 1  # the second was not posted by this dispatcher
    first, second = await harness.rows(domain)
    assert first.state == "delivered"
    assert (second.state, second.lease_owner, second.attempts) == ("pending", "another-node", 0)

    # That node dies: once its lease lapses, the row is claimed here again and sent once.
    await harness.clock.advance(61)
    await asyncio.wait_for(d.settle(), 30)
    await until(lambda: len(receiver.hits) == 2, within=20)
    await asyncio.wait_for(d.settle(), 30)
    first, second = await harness.rows(domain)
    assert (second.state, second.attempts) == ("delivered", 1)
    assert b"second" in receiver.hits[1].body
