"""Safety and isolation: SSRF refusals, a hanging CRM versus another domain, the bounded contact lookup."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from tests.notify.conftest import Harness, Receiver, Reply, make_harness

from vpbx.notify import service
from vpbx.notify.payloads import CallStatus, ContactAnswer, ContactQuery, HistoryNotice
from vpbx.notify.ssrf import Refused, allow_private, check_url
from vpbx.settings import Settings


def hist(callid: str) -> HistoryNotice:
    from datetime import UTC, datetime

    return HistoryNotice(type="in", user="andy", phone="79101234567", start=datetime(2026, 1, 12, 9, tzinfo=UTC),
                         duration=10, callid=callid, status=CallStatus.SUCCESS)


@pytest.mark.parametrize("url", ["ftp://crm.example/x", "file:///etc/passwd", "gopher://x", "http:///nohost",
                                 "http://10.0.0.5/crm", "http://127.0.0.1:8080/", "http://[::1]/",
                                 "http://169.254.169.254/latest/meta-data", "http://[::ffff:127.0.0.1]/",
                                 "http://localhost/", "http://0.0.0.0/", "http://192.168.1.1/"])
def test_check_url_refuses(url: str) -> None:
    with pytest.raises(Refused):
        check_url(url, private_ok=False)


def test_check_url_allows_public_and_private_when_allowed() -> None:
    assert check_url("https://crm.example.com/hook", private_ok=False) == "crm.example.com"
    assert check_url("http://93.184.216.34/x", private_ok=False) == "93.184.216.34"
    assert check_url("http://127.0.0.1:9/x", private_ok=True) == "127.0.0.1"
    with pytest.raises(Refused):
        check_url("ftp://127.0.0.1/", private_ok=True)


def test_private_refused_by_default_whatever_the_listening_address() -> None:
    assert not allow_private(Settings(host="127.0.0.1"))
    assert not allow_private(Settings(host="::1"))
    assert not allow_private(Settings(host="0.0.0.0"))
    assert allow_private(Settings(host="0.0.0.0", allow_private_crm=True))
    assert allow_private(Settings(host="127.0.0.1", allow_private_crm=True))


@pytest.mark.parametrize("allowed", [False, True])
async def test_public_server_refuses_private_crm(store_url: str, tmp_path: Path, receiver: Receiver,
                                                 allowed: bool) -> None:
    h = await make_harness(store_url, tmp_path, host="0.0.0.0", allow_private_crm=allowed)
    try:
        literal = await h.domain(receiver.url)
        named = await h.domain(receiver.url.replace("127.0.0.1", "localhost"))
        await h.enqueue(literal, hist("s-1"))
        await h.enqueue(named, hist("s-2"))
        await h.dispatcher.settle()
        await h.advance(600, step=60)
        rows = await h.rows(literal) + await h.rows(named)
        if allowed:
            assert [r.state for r in rows] == ["delivered", "delivered"]
            assert len(receiver.hits) == 2
        else:
            assert receiver.hits == []
            assert [r.state for r in rows] == ["failed", "failed"]  # final: refused, never retried
            assert [r.attempts for r in rows] == [1, 1]
            assert all("refused" in (r.last_error or "") for r in rows)
    finally:
        await h.dispatcher.stop()
        h.runtime.reader.dispose()
        await h.runtime.engine.dispose()


async def test_redirects_are_not_followed(harness: Harness, receiver: Receiver) -> None:
    receiver.reply = lambda hit: Reply(302, headers={"Location": "/elsewhere"}) if hit.path == "/crm" else Reply()
    domain = await harness.domain(receiver.url)
    await harness.enqueue(domain, hist("redir"))
    await harness.dispatcher.settle()
    assert [h.path for h in receiver.hits] == ["/crm"]
    (row,) = await harness.rows(domain)
    assert (row.state, row.last_status) == ("pending", 302)  # not followed; retried like any non-2xx


async def test_a_hanging_crm_does_not_block_another_domain(store_url: str, tmp_path: Path) -> None:
    hanging, fast = Receiver().start(), Receiver().start()
    hanging.reply = lambda hit: Reply(delay=30)
    h = await make_harness(store_url, tmp_path, clock="real", notify_timeout=3, notify_domain_concurrency=4,
                           notify_batch=16)
    try:
        slow_domain = await h.domain(hanging.url)
        fast_domain = await h.domain(fast.url)
        await h.enqueue(slow_domain, *[hist(f"slow-{i}") for i in range(100)])
        await asyncio.sleep(0.3)  # the slow domain's requests are now in flight and hanging
        started = time.monotonic()
        await h.enqueue(fast_domain, *[hist(f"fast-{i}") for i in range(50)])
        for _ in range(500):
            if len(fast.hits) >= 50:
                break
            await asyncio.sleep(0.02)
        elapsed = time.monotonic() - started
        assert len(fast.hits) == 50
        assert elapsed < 2.0, elapsed  # well within one hanging request's timeout (3 s)
        assert len(hanging.hits) <= 8  # per-domain concurrency held (4 at a time)
    finally:
        await h.dispatcher.stop(grace=0.1)
        h.runtime.reader.dispose()
        await h.runtime.engine.dispose()
        hanging.stop()
        fast.stop()


async def test_contact_lookup(harness: Harness, receiver: Receiver) -> None:
    receiver.reply = lambda hit: Reply(body='{"contact_name": "ООО Мебель", "responsible": "andy"}'.encode())
    domain = await harness.domain(receiver.url, dialect="json", token="tok")
    answer = await service.lookup_contact(harness.runtime, domain, ContactQuery(phone="79101234567", callid="k-1",
                                                                                 diversion="74950000001"))
    assert answer == ContactAnswer("ООО Мебель", "andy")
    import json

    assert json.loads(receiver.hits[0].body) == {"cmd": "contact", "crm_token": "tok", "phone": "79101234567",
                                                 "callid": "k-1", "diversion": "74950000001"}


@pytest.mark.parametrize("reply", [Reply(500), Reply(200, body=b"not json at all {"), Reply(200, delay=3)])
async def test_contact_lookup_failures_return_none_in_time(harness: Harness, receiver: Receiver,
                                                           reply: Reply) -> None:
    receiver.reply = lambda hit: reply
    domain = await harness.domain(receiver.url, lookup_timeout=0.5)
    started = time.monotonic()
    assert await service.lookup_contact(harness.runtime, domain, ContactQuery(phone="7910", callid="k")) is None
    assert time.monotonic() - started < 1.5


async def test_contact_lookup_without_crm_is_none(harness: Harness) -> None:
    domain = await harness.domain("")
    assert await service.lookup_contact(harness.runtime, domain, ContactQuery(phone="7910", callid="k")) is None
    dead = await harness.domain("http://127.0.0.1:1/crm")
    assert await service.lookup_contact(harness.runtime, dead, ContactQuery(phone="7910", callid="k")) is None
