"""The full outbox path against a real CRM receiver on loopback: bodies, headers, signing, dedupe ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest
from tests.notify.conftest import Harness, Receiver

from vpbx.notify import signing
from vpbx.notify.payloads import CallStatus, EventNotice, EventType, HistoryNotice, RatingNotice, WebhookNotice

START = datetime(2026, 1, 12, 9, 0, 5, tzinfo=UTC)


def history() -> HistoryNotice:
    return HistoryNotice(type="in", user="andy", phone="79101234567", start=START, duration=42, callid="c-1",
                         status=CallStatus.SUCCESS, diversion="74951234567", ext="701", groupRealName="Продажи",
                         telnum="74950000001", link="https://pbx/rec/1.mp3", telnum_name="Main", rating=5, wait=3,
                         missedStatus=None, group="sales")


def event() -> EventNotice:
    return EventNotice(type=EventType.ACCEPTED, callid="c-1", phone="79101234567", user="andy", direction="in",
                       diversion="74951234567", groupRealName="Продажи", ext="701", telnum="74950000001",
                       telnum_name="Main")


def decode(hit_body: bytes, content_type: str) -> dict[str, object]:
    if content_type.startswith("application/json"):
        return dict(json.loads(hit_body))
    return dict(parse_qsl(hit_body.decode("ascii"), keep_blank_values=True))


FULL_HISTORY = {"cmd": "history", "type": "in", "user": "andy", "phone": "79101234567", "start": "20260112T090005Z",
                "duration": 42, "callid": "c-1", "status": "Success", "diversion": "74951234567", "ext": "701",
                "groupRealName": "Продажи", "telnum": "74950000001", "link": "https://pbx/rec/1.mp3",
                "telnum_name": "Main", "rating": 5, "wait": 3, "group": "sales"}
FULL_EVENT = {"cmd": "event", "type": "ACCEPTED", "callid": "c-1", "phone": "79101234567", "user": "andy",
              "direction": "in", "diversion": "74951234567", "groupRealName": "Продажи", "ext": "701",
              "telnum": "74950000001", "telnum_name": "Main"}
LEGACY_HISTORY = {k: v for k, v in FULL_HISTORY.items() if k not in ("telnum_name", "rating", "wait", "group")}
LEGACY_EVENT = {k: v for k, v in FULL_EVENT.items() if k != "telnum_name"}


@pytest.mark.parametrize("dialect", ["form", "json", "legacy"])
async def test_dialects_field_for_field(harness: Harness, receiver: Receiver, dialect: str) -> None:
    domain = await harness.domain(receiver.url, dialect=dialect, token="crm-secret-token")
    ids = await harness.enqueue(domain, event(), history())
    assert all(ids)
    await harness.dispatcher.settle()
    assert len(receiver.hits) == 2
    full_event = LEGACY_EVENT if dialect == "legacy" else FULL_EVENT
    full_history = LEGACY_HISTORY if dialect == "legacy" else FULL_HISTORY
    for hit, want, uid in zip(receiver.hits, (full_event, full_history), ids, strict=True):
        content_type = hit.headers["Content-Type"]
        assert content_type == ("application/json" if dialect == "json" else "application/x-www-form-urlencoded")
        got = decode(hit.body, content_type)
        expected = {"crm_token": "crm-secret-token", **want}
        if dialect != "json":  # form values are text
            expected = {k: str(v) for k, v in expected.items()}
        assert got == expected
        assert hit.headers["webhook-id"] == uid
        assert "webhook-signature" not in hit.headers
    rows = await harness.rows(domain)
    assert [r.state for r in rows] == ["delivered", "delivered"]
    assert [r.attempts for r in rows] == [1, 1]


async def test_legacy_dialect_skips_rating(harness: Harness, receiver: Receiver) -> None:
    domain = await harness.domain(receiver.url, dialect="legacy")
    assert await harness.enqueue(domain, RatingNotice(phone="79101234567", callid="c-9", rating=4, user="andy")) \
        == [None]


async def test_signed_when_secret_set(harness: Harness, receiver: Receiver) -> None:
    secret = signing.new_secret()
    domain = await harness.domain(receiver.url, dialect="json", signing_secret=secret)
    (uid,) = await harness.enqueue(domain, RatingNotice(phone="79101234567", callid="c-2", rating=4, user="andy"))
    await harness.dispatcher.settle()
    (hit,) = receiver.hits
    signing.verify(secret, hit.headers, hit.body)  # raises unless valid
    assert hit.headers["webhook-id"] == uid
    assert json.loads(hit.body) == {"cmd": "rating", "crm_token": json.loads(hit.body)["crm_token"],
                                    "phone": "79101234567", "callid": "c-2", "rating": 4, "user": "andy"}


async def test_webhook_goes_to_its_subscription_with_the_notification_id(harness: Harness,
                                                                        receiver: Receiver) -> None:
    domain = await harness.domain(receiver.url, dialect="json", token="t0k")
    notice = WebhookNotice(type="sipregs_error", data={"telnum": "74950000001", "name": "trunk", "domain": "x"})
    (uid,) = await harness.enqueue(domain, notice, url=receiver.url.replace("/crm", "/hook"))
    await harness.dispatcher.settle()
    (hit,) = receiver.hits
    assert hit.path == "/hook"
    assert json.loads(hit.body) == {"cmd": "webhook", "crm_token": "t0k", "type": "sipregs_error", "id": uid,
                                    "data": {"telnum": "74950000001", "name": "trunk", "domain": "x"}}
    assert hit.headers["webhook-id"] == uid


async def test_integration_off_or_without_url_enqueues_nothing(harness: Harness, receiver: Receiver) -> None:
    no_url = await harness.domain("")
    assert await harness.enqueue(no_url, event()) == [None]
    assert await harness.rows(no_url) == []


async def test_replay_sends_the_same_notification_again(harness: Harness, receiver: Receiver) -> None:
    from vpbx.notify import deliveries

    domain = await harness.domain(receiver.url)
    (uid,) = await harness.enqueue(domain, history())
    await harness.dispatcher.settle()
    (row,) = await harness.rows(domain)
    async with harness.runtime.sessions() as s:
        await deliveries.replay(s, domain, row.id, harness.clock.now())
        await s.commit()
    harness.dispatcher.wake()
    await harness.dispatcher.settle()
    assert [h.headers["webhook-id"] for h in receiver.hits] == [uid, uid]
    assert receiver.hits[0].body == receiver.hits[1].body
    async with harness.runtime.sessions() as s:
        items, total = await deliveries.list_deliveries(s, domain, callid="c-1")
    assert total == 1
    assert items[0]["state"] == "delivered"
    assert [a["attempt"] for a in items[0]["log"]] == [1, 2]
    assert items[0]["log"][0]["status_code"] == 200
