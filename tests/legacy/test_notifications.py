"""PBX->CRM requests to an integration of the ``legacy`` dialect (000/004 §4): history, event and
contact carry exactly the documents' fields and spellings. Through the whole outbox path (enqueue,
dispatcher, a real CRM receiver on loopback), and end to end from calls the simulator plays."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from tests.notify.conftest import Harness, Receiver, Reply

from vpbx.notify.payloads import CallStatus, ContactQuery, EventNotice, EventType, HistoryNotice, RatingNotice
from vpbx.notify.service import lookup_contact
from vpbx.services import tenancy
from vpbx.testing.server import ServerThread, Tenant

CRM_TOKEN = "76fsd7tfs-fhjdgfdjsfsk-hfgsdguuuwoeiwey1111"
FORM = "application/x-www-form-urlencoded"
# 000 §4.1-4.3's parameter tables (004 lists the same, without ``direction`` on event).
HISTORY_FIELDS = {"cmd", "type", "user", "ext", "groupRealName", "telnum", "phone", "diversion", "start", "duration",
                  "callid", "link", "crm_token", "status"}
HISTORY_REQUIRED = {"cmd", "type", "user", "phone", "start", "duration", "callid", "crm_token", "status"}
EVENT_FIELDS = {"cmd", "type", "phone", "diversion", "user", "groupRealName", "ext", "telnum", "direction", "callid",
                "crm_token"}
EVENT_REQUIRED = {"cmd", "type", "phone", "user", "direction", "callid", "crm_token"}
CONTACT_FIELDS = {"cmd", "phone", "callid", "crm_token"}
STATUSES = {"Success", "Missed", "Cancel", "Busy", "NotAvailable", "NotAllowed", "NotFound"}
EVENT_TYPES = {"INCOMING", "ACCEPTED", "COMPLETED", "CANCELLED", "OUTGOING", "TRANSFERRED"}


def lines(text: str) -> dict[str, str]:
    return dict(line.strip().split("=", 1) for line in text.strip().splitlines() if line.strip())


def body(raw: bytes) -> dict[str, str]:
    pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert len({k for k, _ in pairs}) == len(pairs), "a field sent twice"
    return dict(pairs)


async def test_history_example_000(harness: Harness, receiver: Receiver) -> None:
    """000/004 §4.1's example request, field for field."""
    domain = await harness.domain(receiver.url, dialect="legacy", token=CRM_TOKEN)
    notice = HistoryNotice(type="out", status=CallStatus.SUCCESS, phone="79101234567", user="user",
                           start=datetime(2017, 7, 3, 12, 11, 10, tzinfo=UTC), duration=124,
                           link="https://link/file.mp3", callid="B10D0EB124F4E64AF4EA-1511")
    await harness.enqueue(domain, notice, key=notice.callid)
    await harness.dispatcher.settle()
    [hit] = receiver.hits
    assert hit.headers["Content-Type"] == FORM
    assert body(hit.body) == lines("""
        cmd=history
        type=out
        status=Success
        phone=79101234567
        user=user
        start=20170703T121110Z
        duration=124
        link=https://link/file.mp3
        crm_token=76fsd7tfs-fhjdgfdjsfsk-hfgsdguuuwoeiwey1111
        callid=B10D0EB124F4E64AF4EA-1511
    """)


async def test_every_history_field_and_no_other(harness: Harness, receiver: Receiver) -> None:
    """With everything the PBX knows filled in, the legacy CRM gets the 000 table's fields only
    (no telnum_name, rating, wait, missedStatus or group of 002 / the public clients)."""
    domain = await harness.domain(receiver.url, dialect="legacy", token=CRM_TOKEN)
    notice = HistoryNotice(type="in", user="andy", phone="79101234567",
                           start=datetime(2026, 1, 12, 9, 0, 5, tzinfo=UTC),
                           duration=42, callid="c-1", status=CallStatus.parse("missed"), diversion="74951234567",
                           ext="701", groupRealName="Отдел продаж", telnum="74950000001", link="https://pbx/r.mp3",
                           telnum_name="Main", rating=5, wait=3, missedStatus=1, group="sales")
    await harness.enqueue(domain, notice, key="c-1")
    await harness.dispatcher.settle()
    got = body(receiver.hits[0].body)
    assert set(got) == HISTORY_FIELDS
    assert got["status"] == "Missed" and got["groupRealName"] == "Отдел продаж" and got["start"] == "20260112T090005Z"


async def test_event_example_000(harness: Harness, receiver: Receiver) -> None:
    """000 §4.2's example (one type of the listed five) plus ``direction``, which its table requires."""
    domain = await harness.domain(receiver.url, dialect="legacy", token=CRM_TOKEN)
    for kind in ("INCOMING", "COMPLETED", "ACCEPTED", "CANCELLED", "TRANSFERRED"):
        await harness.enqueue(domain, EventNotice(type=EventType(kind), phone="79101234567", user="andy",
                                                  callid="B10D0EB124F4E64AF4EA-1511", direction="in"),
                              key="B10D0EB124F4E64AF4EA-1511")
    await harness.dispatcher.settle()
    assert [body(h.body) for h in receiver.hits] == [lines(f"""
        cmd=event
        type={kind}
        phone=79101234567
        user=andy
        crm_token=76fsd7tfs-fhjdgfdjsfsk-hfgsdguuuwoeiwey1111
        callid=B10D0EB124F4E64AF4EA-1511
        direction=in
    """) for kind in ("INCOMING", "COMPLETED", "ACCEPTED", "CANCELLED", "TRANSFERRED")]


async def test_every_event_field_and_no_other(harness: Harness, receiver: Receiver) -> None:
    domain = await harness.domain(receiver.url, dialect="legacy", token=CRM_TOKEN)
    await harness.enqueue(domain, EventNotice(type=EventType.TRANSFERRED, callid="c-1", phone="79101234567",
                                              user="andy", direction="in", diversion="74951234567",
                                              groupRealName="Продажи", ext="701", telnum="74950000001",
                                              telnum_name="Main", second_callid="c-2"), key="c-1")
    await harness.dispatcher.settle()
    assert set(body(receiver.hits[0].body)) == EVENT_FIELDS


async def test_no_rating_for_a_legacy_crm(harness: Harness, receiver: Receiver) -> None:
    domain = await harness.domain(receiver.url, dialect="legacy", token=CRM_TOKEN)
    assert await harness.enqueue(domain, RatingNotice(phone="79101234567", callid="c-9", rating=4, user="andy")) \
        == [None]
    await harness.dispatcher.settle()
    assert receiver.hits == []


async def test_contact_example_000(harness: Harness, receiver: Receiver) -> None:
    """000 §4.3's request, and its answer as printed: a JavaScript literal with a bare word."""
    domain = await harness.domain(receiver.url, dialect="legacy", token=CRM_TOKEN)
    receiver.reply = lambda hit: Reply(body='{\n    contact_name: "Менеджер ЗАО Рога и копыта",\n'
                                            '    responsible: andy\n}'.encode(), headers={"Content-Type": "text/html"})
    answer = await lookup_contact(harness.runtime, domain, ContactQuery(phone="79101234567",
                                                                        callid="B10D0EB124F4E64AF4EA-1511",
                                                                        diversion="74951234567"))
    assert body(receiver.hits[0].body) == lines("""
        cmd=contact
        phone=79101234567
        crm_token=76fsd7tfs-fhjdgfdjsfsk-hfgsdguuuwoeiwey1111
        callid=B10D0EB124F4E64AF4EA-1511
    """)
    assert answer is not None
    assert (answer.contact_name, answer.responsible) == ("Менеджер ЗАО Рога и копыта", "andy")


# --- end to end: calls the simulator plays, a legacy CRM receiving --------------------------------------

def test_calls_notify_a_legacy_crm(lserver: ServerThread, ltenant: Tenant) -> None:
    crm = Receiver().start()
    try:
        async def work() -> None:
            async with lserver.runtime.sessions() as s:
                await tenancy.set_integration(s, await tenancy.get_domain(s, ltenant.name), crm_url=crm.url,
                                              crm_token=CRM_TOKEN, dialect="legacy")
                await s.commit()

        lserver.call(work())
        t = ltenant
        for login in ("admin", "manager", "ivan", "maria"):
            assert t.client.put(f"/sim/v1/devices/{login}", json={"registered": True}).status_code == 200
        callid = t.client.post("/sim/v1/calls", json={"from": "79101234567", "to": "74951234567"}).json()["callid"]
        assert t.client.post(f"/sim/v1/calls/{callid}/answer", json={"user": "admin"}).status_code == 200
        assert t.client.post("/sim/v1/clock/advance", json={"seconds": 30}).status_code == 200
        assert t.client.post(f"/sim/v1/calls/{callid}/hangup", json={"by": "client"}).status_code == 200
        missed = t.client.post("/sim/v1/calls", json={"from": "79990000001", "to": "74951234567"}).json()["callid"]
        assert t.client.post(f"/sim/v1/calls/{missed}/hangup", json={"by": "client"}).status_code == 200

        def got(cmd: str) -> list[dict[str, str]]:
            return [b for b in (body(h.body) for h in crm.hits) if b.get("cmd") == cmd]

        deadline = time.monotonic() + 20
        while len(got("history")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(h.headers["Content-Type"] == FORM for h in crm.hits)
        contacts, events, histories = got("contact"), got("event"), got("history")
        assert [c["callid"] for c in contacts] == [callid, missed]
        assert all(set(c) == CONTACT_FIELDS and c["crm_token"] == CRM_TOKEN for c in contacts)
        assert events and all(EVENT_REQUIRED <= set(e) <= EVENT_FIELDS for e in events)
        assert {e["type"] for e in events} <= EVENT_TYPES
        assert [(e["type"], e["user"]) for e in events if e["callid"] == callid][:2] == [("INCOMING", "admin"),
                                                                                         ("ACCEPTED", "admin")]
        assert len(histories) == 2 and all(HISTORY_REQUIRED <= set(h) <= HISTORY_FIELDS for h in histories)
        by_call = {h["callid"]: h for h in histories}
        assert by_call[callid]["status"] == "Success" and by_call[callid]["user"] == "admin"
        assert by_call[callid]["type"] == "in" and by_call[callid]["duration"] == "30"
        assert by_call[missed]["status"] in STATUSES - {"Success"}
        assert all(len(h["start"]) == 16 and h["start"].endswith("Z") for h in histories)  # YYYYmmddTHHMMSSZ
    finally:
        crm.stop()
