"""Retries, ordering, outages and switch-off, on a virtual clock driven by VirtualClock.advance."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

from tests.notify.conftest import Harness, Receiver, Reply, make_harness

from vpbx.api.errors import ApiError
from vpbx.notify.payloads import CallStatus, EventNotice, EventType, HistoryNotice
from vpbx.store.tables import Integration


def hist(callid: str) -> HistoryNotice:
    return HistoryNotice(type="in", user="andy", phone="79101234567", start=datetime(2026, 1, 12, 9, tzinfo=UTC),
                         duration=10, callid=callid, status=CallStatus.SUCCESS)


def ev(callid: str, kind: EventType) -> EventNotice:
    return EventNotice(type=kind, callid=callid, phone="79101234567", user="andy", direction="in")


def fields(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode()))


async def attempt_times(h: Harness, domain: int) -> list[float]:
    from vpbx.notify import deliveries

    async with h.runtime.sessions() as s:
        (item,), _ = await deliveries.list_deliveries(s, domain)
    t0 = datetime.fromisoformat(item["log"][0]["at"])
    return [(datetime.fromisoformat(a["at"]) - t0).total_seconds() for a in item["log"]]


async def test_history_retry_schedule(store_url: str, tmp_path: Path, receiver: Receiver) -> None:
    # Probes off (a day apart) so that the row's own schedule shows.
    harness = await make_harness(store_url, tmp_path, notify_probe_interval=86400)
    try:
        failures = 6
        receiver.reply = lambda hit: Reply(500) if len(receiver.hits) <= failures else Reply(200)
        domain = await harness.domain(receiver.url)
        await harness.enqueue(domain, hist("r-1"))
        await harness.dispatcher.settle()
        assert len(receiver.hits) == 1
        await harness.advance(4)
        assert len(receiver.hits) == 1  # not before 5 s
        await harness.advance(1)
        assert len(receiver.hits) == 2
        await harness.advance(3 * 3600, step=60)
        assert len(receiver.hits) == 7
        (row,) = await harness.rows(domain)
        assert row.state == "delivered"
        # 0, +5 s, +30 s, +2 min, +5 min, +15 min, +30 min (no jitter in this harness)
        assert await attempt_times(harness, domain) == [0, 5, 35, 155, 455, 1355, 3155]
    finally:
        await harness.dispatcher.stop()
        harness.runtime.reader.dispose()
        await harness.runtime.engine.dispose()


async def test_every_non_2xx_is_retried_but_410_stops(harness: Harness, receiver: Receiver) -> None:
    receiver.reply = lambda hit: Reply(410) if b"gone" in hit.body else Reply(404)
    domain = await harness.domain(receiver.url)
    await harness.enqueue(domain, hist("gone-1"), hist("f-1"))
    await harness.dispatcher.settle()
    await harness.advance(3600, step=60)
    gone, missing = await harness.rows(domain)
    assert (gone.state, gone.last_status, gone.attempts) == ("failed", 410, 1)
    assert (missing.state, missing.last_status) == ("pending", 404)
    assert missing.attempts > 3


async def test_retry_after_is_honoured(harness: Harness, receiver: Receiver) -> None:
    receiver.reply = lambda hit: Reply(429, headers={"Retry-After": "120"}) if len(receiver.hits) == 1 else Reply()
    domain = await harness.domain(receiver.url)
    await harness.enqueue(domain, hist("ra-1"))
    await harness.dispatcher.settle()
    await harness.advance(119, step=1)
    assert len(receiver.hits) == 1  # the schedule said 5 s; the CRM asked for 120
    await harness.advance(1)
    assert len(receiver.hits) == 2
    assert await attempt_times(harness, domain) == [0, 120]


async def test_event_gives_up_within_five_minutes(harness: Harness, receiver: Receiver) -> None:
    receiver.reply = lambda hit: Reply(503)
    domain = await harness.domain(receiver.url)
    await harness.enqueue(domain, ev("e-1", EventType.INCOMING))
    await harness.advance(3600, step=5)
    (row,) = await harness.rows(domain)
    assert row.state == "failed"
    times = await attempt_times(harness, domain)
    assert times == [0, 5, 20, 50, 110, 230]
    assert max(times) <= 300


async def test_one_calls_notifications_arrive_in_order_under_concurrency(harness: Harness,
                                                                        receiver: Receiver) -> None:
    rng = random.Random(7)
    # A flaky CRM: a third of first tries fail, some answers are slow, so retries interleave.
    seen: set[bytes] = set()

    def reply(hit: object) -> Reply:
        body = receiver.hits[-1].body
        if body not in seen and rng.random() < 0.33:
            seen.add(body)
            return Reply(503)
        return Reply(200, delay=rng.random() * 0.01)

    receiver.reply = reply
    domains = [await harness.domain(receiver.url) for _ in range(3)]
    steps = [EventType.INCOMING, EventType.ACCEPTED, EventType.COMPLETED]
    calls = [(d, f"call-{d}-{i}") for d in domains for i in range(15)]
    # Interleave the calls' steps across transactions, as concurrent calls would write them.
    for step in [*steps, "history"]:
        rng.shuffle(calls)
        for d, callid in calls:
            notice = hist(callid) if step == "history" else ev(callid, step)  # type: ignore[arg-type]
            await harness.enqueue(d, notice)
    await harness.advance(600, step=5)
    # The first time each notification reached the CRM, per call, in the order they happened.
    firsts: dict[str, list[str]] = defaultdict(list)
    seen_ids: set[str] = set()
    for hit in receiver.hits:
        uid = hit.headers["webhook-id"]
        f = fields(hit.body)
        if uid in seen_ids:
            continue
        seen_ids.add(uid)
        firsts[f["callid"]].append(f["type"] if f["cmd"] == "event" else "history")
    assert len(firsts) == len(calls)
    for _, callid in calls:
        assert firsts[callid] == ["INCOMING", "ACCEPTED", "COMPLETED", "history"], callid
    for d in domains:
        assert {r.state for r in await harness.rows(d)} == {"delivered"}


async def test_a_crm_down_for_30_minutes_gets_everything_after(harness: Harness, receiver: Receiver) -> None:
    down = True
    receiver.reply = lambda hit: Reply(503) if down else Reply(200)
    domain = await harness.domain(receiver.url)
    for minute in range(30):
        await harness.enqueue(domain, hist(f"down-{minute}"))
        await harness.advance(60, step=5)
    down = False
    await harness.advance(3 * 3600, step=30)
    rows = await harness.rows(domain)
    assert len(rows) == 30 and {r.state for r in rows} == {"delivered"}
    got = {fields(h.body)["callid"] for h in receiver.hits}
    assert got == {f"down-{m}" for m in range(30)}


async def test_five_days_of_failures_switch_the_integration_off(store_url: str, tmp_path: Path,
                                                                 receiver: Receiver) -> None:
    # Probes hourly: six virtual days of the default 30 s probes are 17,000 attempts for nothing more.
    harness = await make_harness(store_url, tmp_path, notify_probe_interval=3600)
    try:
        await _five_days(harness, receiver)
    finally:
        await harness.dispatcher.stop()
        harness.runtime.reader.dispose()
        await harness.runtime.engine.dispose()


async def _five_days(harness: Harness, receiver: Receiver) -> None:
    from vpbx.services import tenancy

    receiver.reply = lambda hit: Reply(500)
    domain = await harness.domain(receiver.url)
    async with harness.runtime.sessions() as s:
        d = await s.get(tenancy.Domain, domain)
        assert d is not None
        key = await tenancy.create_key(s, d, harness.clock.now())
        await s.commit()
    for day in range(6):
        await harness.enqueue(domain, hist(f"day-{day}"))
        await harness.advance(24 * 3600, step=3600)
        async with harness.runtime.sessions() as s:
            integration = await s.get(Integration, domain)
            assert integration is not None
            if day < 4:
                assert not integration.switched_off, day
    assert integration.switched_off
    harness.runtime.auth.clear()
    try:
        await harness.runtime.auth.principal(harness.runtime, key)
        raise AssertionError("the API must refuse a switched-off CRM")
    except ApiError as exc:
        assert (exc.status, exc.message) == (401, "CRM switched off")
    # Switched off: nothing more is written or sent.
    before = len(receiver.hits)
    assert await harness.enqueue(domain, hist("after")) == [None]
    await harness.advance(3600, step=600)
    assert len(receiver.hits) == before
    assert harness.clock.now() - (await harness.rows(domain))[0].created_at >= timedelta(days=5)
