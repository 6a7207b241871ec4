"""Delivery that outlasts real outages (issue 19): a real loopback CRM goes down and comes back while the
virtual clock runs through hours and days of retries.

* 3 h down: the backlog reaches the CRM within a minute of its recovery (probes + the end of the back-off).
* 30 h down: history is still delivered after the recovery.
* over ``notify_keep_days`` down: the integration is switched off with everything still pending, and
  switching it back on (the CLI) re-sends it all, each call's pushes in order.
* 410 stops a push; 400, 401, 404 and 301 are retried. Events expire after ``notify_event_ttl``.
"""

from __future__ import annotations

import asyncio
import socket
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from tests.notify.conftest import Harness, Receiver, Reply, make_harness
from typer.testing import CliRunner

from vpbx.notify.payloads import CallStatus, EventNotice, EventType, HistoryNotice, RatingNotice
from vpbx.store.tables import Domain, Integration

MINUTE = 60
HOUR = 3600
DAY = 24 * HOUR


def hist(callid: str) -> HistoryNotice:
    return HistoryNotice(type="in", user="andy", phone="79101234567", start=datetime(2026, 1, 12, 9, tzinfo=UTC),
                         duration=10, callid=callid, status=CallStatus.SUCCESS)


def ev(callid: str, kind: EventType = EventType.INCOMING) -> EventNotice:
    return EventNotice(type=kind, callid=callid, phone="79101234567", user="andy", direction="in")


def rating(callid: str) -> RatingNotice:
    return RatingNotice(phone="79101234567", callid=callid, rating=5, user="andy")


def fields(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode()))


class Crm:
    """A loopback CRM that can go down (its port closed: connection refused) and come back on the same port."""

    def __init__(self) -> None:
        self.receiver = Receiver().start()
        self.port = self.receiver.port
        self.hits: list[Any] = []  # every request received, across restarts
        self.reply: Callable[[Any], Reply] = lambda hit: Reply()
        self._hold: socket.socket | None = None
        self._wire()

    def _wire(self) -> None:
        def answer(hit: Any) -> Reply:
            self.hits.append(hit)
            return self.reply(hit)

        self.receiver.reply = answer

    @property
    def url(self) -> str:
        return self.receiver.url

    def down(self) -> None:
        self.receiver.stop()
        # Keep the port: bound but not listening, it refuses connections (as a CRM that is down) and no other
        # test's server running beside this one (xdist) can take it and answer in the CRM's place.
        self._hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._hold.bind(("127.0.0.1", self.port))

    def up(self) -> None:
        if self._hold is not None:
            self._hold.close()
            self._hold = None
        self.receiver = Receiver().start(self.port)
        self._wire()

    def stop(self) -> None:
        if self._hold is not None:
            self._hold.close()
            self._hold = None
        self.receiver.stop()


@pytest.fixture
def crm() -> Any:
    c = Crm()
    yield c
    try:
        c.stop()
    except Exception:
        pass


@pytest.fixture
async def make(store_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    made: list[Harness] = []

    async def build(**settings: Any) -> Harness:
        h = await make_harness(store_url, tmp_path, **settings)
        made.append(h)
        return h

    yield build
    for h in made:
        await h.dispatcher.stop()
        h.runtime.reader.dispose()
        await h.runtime.engine.dispose()


async def states(h: Harness, domain: int) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in await h.rows(domain):
        out[r.state] += 1
    return dict(out)


async def integration(h: Harness, domain: int) -> Integration:
    async with h.runtime.sessions() as s:
        i = await s.get(Integration, domain)
        assert i is not None
        return i


async def recovery_seconds(h: Harness, domain: int, total: int, limit: int = 5 * MINUTE) -> int:
    """Advance the clock second by second after the CRM came back; the seconds until all ``total`` are delivered."""
    for second in range(1, limit + 1):
        await h.advance(1)
        if (await states(h, domain)).get("delivered", 0) == total:
            return second
    raise AssertionError(f"backlog not delivered {limit} s after recovery: {await states(h, domain)}")


async def test_three_hour_outage_backlog_delivered_within_a_minute_of_recovery(make: Any, crm: Crm) -> None:
    h = await make()  # default policy: probes every 30 s
    domain = await h.domain(crm.url)
    await h.enqueue(domain, hist("before"))
    await h.dispatcher.settle()
    assert [fields(x.body)["callid"] for x in crm.hits] == ["before"]
    crm.down()
    calls = [f"c{n}" for n in range(36)]
    for callid in calls:  # a call every 5 minutes through the outage
        await h.enqueue(domain, ev(callid), hist(callid), rating(callid))
        await h.advance(5 * MINUTE, step=MINUTE)
    assert h.clock.now() - (await h.rows(domain))[1].created_at == timedelta(hours=3)
    pending = await states(h, domain)
    assert pending.get("pending", 0) == 2 * len(calls)  # history and rating kept; the events expired
    crm.up()
    took = await recovery_seconds(h, domain, 1 + 2 * len(calls))
    print(f"\n3 h outage: backlog of {2 * len(calls)} pushes delivered {took} s (virtual) after recovery")
    assert took <= MINUTE
    got = [fields(x.body) for x in crm.hits if x.body]
    delivered = {(f["cmd"], f["callid"]) for f in got}
    assert {("history", c) for c in calls} | {("rating", c) for c in calls} <= delivered
    for callid in calls:  # each call's history before its rating
        order = [f["cmd"] for f in got if f["callid"] == callid and f["cmd"] != "event"]
        assert order[-2:] == ["history", "rating"], (callid, order)


async def test_thirty_hour_outage_history_still_delivered(make: Any, crm: Crm) -> None:
    h = await make()
    domain = await h.domain(crm.url)
    crm.down()
    await h.enqueue(domain, hist("first"))
    await h.dispatcher.settle()
    for hour in range(30):
        await h.enqueue(domain, hist(f"h{hour}"))
        await h.advance(HOUR, step=10 * MINUTE)
    assert (await states(h, domain)) == {"pending": 31}
    assert not (await integration(h, domain)).switched_off
    crm.up()
    took = await recovery_seconds(h, domain, 31)
    print(f"\n30 h outage: 31 history pushes delivered {took} s (virtual) after recovery")
    assert took <= MINUTE
    assert {fields(x.body)["callid"] for x in crm.hits} >= {"first", *(f"h{n}" for n in range(30))}


async def test_past_the_keep_window_the_integration_is_switched_off_and_reenabling_resends_in_order(
        make: Any, crm: Crm, store_url: str, tmp_path: Path) -> None:
    # Probes hourly: the same policy, fewer attempts to play through six virtual days.
    h = await make(notify_probe_interval=HOUR)
    domain = await h.domain(crm.url)
    crm.down()
    calls = [f"k{n}" for n in range(8)]
    for callid in calls:
        await h.enqueue(domain, hist(callid), rating(callid))
        await h.advance(3 * HOUR, step=HOUR)
    await h.advance(5 * DAY, step=HOUR)
    assert (await integration(h, domain)).switched_off
    assert (await states(h, domain)) == {"pending": 2 * len(calls)}  # nothing dropped
    crm.up()
    await h.advance(2 * HOUR, step=HOUR)
    assert crm.hits == []  # switched off: nothing is sent until someone switches it back on
    async with h.runtime.sessions() as s:
        domain_row = await s.get(Domain, domain)
        assert domain_row is not None
        name = domain_row.name

    def cli_on() -> Any:
        from vpbx.cli import app

        return CliRunner().invoke(app, ["integration", "set", "-d", name, "--on", "--db", store_url,
                                        "--home", str(tmp_path)])

    result = await asyncio.to_thread(cli_on)
    assert result.exit_code == 0, result.output
    assert not (await integration(h, domain)).switched_off
    await h.dispatcher.settle()
    for _ in range(100):
        if (await states(h, domain)) == {"delivered": 2 * len(calls)}:
            break
        await asyncio.sleep(0.05)  # the dispatcher re-reads the integration within its cache time (2 s)
        await h.dispatcher.settle()
    assert (await states(h, domain)) == {"delivered": 2 * len(calls)}
    got = [fields(x.body) for x in crm.hits]
    for callid in calls:
        assert [f["cmd"] for f in got if f["callid"] == callid] == ["history", "rating"]
    assert all(f["crm_token"].startswith("tok-") for f in got)  # the token is put in as it is sent


@pytest.mark.parametrize("status", [400, 401, 404, 301, 500])
async def test_non_2xx_answers_are_retried(make: Any, crm: Crm, status: int) -> None:
    h = await make()
    crm.reply = lambda hit: Reply(status, headers={"Location": "/elsewhere"}) if len(crm.hits) <= 3 else Reply()
    domain = await h.domain(crm.url)
    await h.enqueue(domain, hist("r"))
    await h.advance(10 * MINUTE, step=5)
    (row,) = await h.rows(domain)
    assert (row.state, row.attempts) == ("delivered", 4)
    assert [x.path for x in crm.hits] == ["/crm"] * 4  # the redirect was never followed


async def test_410_stops_a_push(make: Any, crm: Crm) -> None:
    h = await make()
    crm.reply = lambda hit: Reply(410)
    domain = await h.domain(crm.url)
    await h.enqueue(domain, hist("gone"))
    await h.advance(HOUR, step=MINUTE)
    (row,) = await h.rows(domain)
    assert (row.state, row.attempts, row.last_status) == ("failed", 1, 410)
    assert len(crm.hits) == 1


async def test_events_live_as_long_as_the_setting_says(make: Any, crm: Crm) -> None:
    h = await make(notify_event_ttl=30)
    crm.reply = lambda hit: Reply(503)
    domain = await h.domain(crm.url)
    await h.enqueue(domain, ev("late"))
    await h.advance(10 * MINUTE, step=1)
    (row,) = await h.rows(domain)
    assert row.state == "failed"
    async with h.runtime.sessions() as s:
        from vpbx.notify import deliveries

        (item,), _ = await deliveries.list_deliveries(s, domain)
    times = [datetime.fromisoformat(a["at"]) for a in item["log"]]
    assert max(times) - row.created_at <= timedelta(seconds=30)
    assert len(crm.hits) == len(times) >= 2


async def test_a_push_the_crm_keeps_refusing_gives_up_while_others_get_through(make: Any, crm: Crm) -> None:
    h = await make(notify_keep_days=0.5)
    crm.reply = lambda hit: Reply(400) if b"poison" in hit.body else Reply()
    domain = await h.domain(crm.url)
    await h.enqueue(domain, hist("poison"))
    for n in range(16):  # the CRM accepts the other calls meanwhile
        await h.enqueue(domain, hist(f"ok{n}"))
        await h.advance(HOUR, step=10 * MINUTE)
    rows = {r.callid: r for r in await h.rows(domain)}
    assert rows["poison"].state == "failed" and rows["poison"].last_status == 400
    assert all(r.state == "delivered" for c, r in rows.items() if c != "poison")
    assert not (await integration(h, domain)).switched_off
