"""vpbx.crm: the receiver parses exactly what notify/payloads.build_body sends, in every dialect, and answers
the documented codes; signatures, idempotency and the ASGI app."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpbx.crm import (
    CallStatus,
    ContactAnswer,
    ContactQuery,
    EventNotice,
    EventType,
    HistoryNotice,
    MalformedRequest,
    RatingNotice,
    Receiver,
    WebhookNotice,
    parse_request,
)
from vpbx.notify import signing
from vpbx.notify.payloads import DIALECTS, LEGACY_FIELDS, Notice, build_body, supports

TOKEN = "d47f9e88-cbe3-4961-8deb-ce55c169f40c"
START = datetime(2017, 7, 3, 12, 11, 10, tzinfo=UTC)

NOTICES: list[Notice] = [
    HistoryNotice(type="in", user="ivanov", phone="79261904198", start=START, duration=124, callid="33274237",
                  status=CallStatus.SUCCESS, diversion="74952005060", ext="701", groupRealName="Отдел продаж",
                  telnum="79260000001", link="https://pbx/records/x.mp3?a=1&b=2", telnum_name="Основной",
                  rating=5, wait=7, missedStatus=2, group="sales"),
    HistoryNotice(type="out", user="pbx", phone="anonymous", start=START, duration=0, callid="c2",
                  status=CallStatus.NOT_AVAILABLE),
    EventNotice(type=EventType.INCOMING, callid="c1", phone="79261904198", user="admin", direction="in",
                diversion="74952005060", groupRealName="Отдел продаж", ext="701", telnum="79260000001",
                telnum_name="Основной"),
    EventNotice(type=EventType.TRANSFERRED, callid="c1", phone="79261904198", user="admin", direction="out",
                second_callid="c9"),
    ContactQuery(phone="79261904198", callid="c1", diversion="74952005060"),
    RatingNotice(phone="79261904198", callid="c1", rating=4, user="user", ext="701"),
    WebhookNotice(type="sipregs_error", id="w1", data={"telnum": "74950000000", "name": "Транк", "domain": "d.ru",
                                                       "nested": {"a": [1, 2]}}),
]
CASES = [(n, d) for n in NOTICES for d in DIALECTS if supports(n.command, d)]


def legacy_view(notice: Notice) -> Notice:
    """What survives the legacy dialect: its fields only (the others become their defaults)."""
    wanted = LEGACY_FIELDS[notice.command]
    cleared = {f.name: None for f in dataclasses.fields(notice) if f.name not in wanted
               and f.default is None}
    return dataclasses.replace(notice, **cleared)


@pytest.mark.parametrize(("notice", "dialect"), CASES, ids=[f"{n.command}-{d}" for n, d in CASES])
def test_round_trip_every_command_and_dialect(notice: Notice, dialect: Any) -> None:
    body, content_type = build_body(notice, crm_token=TOKEN, dialect=dialect, notification_id="n-1")
    parsed = parse_request(body, content_type)
    assert parsed.crm_token == TOKEN
    assert parsed.command == notice.command
    assert parsed.encoding == ("json" if dialect == "json" else "form")
    assert parsed.extra == {}
    assert parsed.notice == (legacy_view(notice) if dialect == "legacy" else notice)
    # Without the Content-Type header too (a proxy may drop it): the body is sniffed.
    assert parse_request(body, None).notice == parsed.notice


def test_webhook_id_is_filled_from_the_notification_id() -> None:
    body, ctype = build_body(WebhookNotice(type="sipregs_error", data={}), crm_token=TOKEN, dialect="form",
                             notification_id="n-7")
    notice = parse_request(body, ctype).notice
    assert isinstance(notice, WebhookNotice) and notice.id == "n-7" and notice.data == {}


def test_documents_example_with_upper_case_status_and_unknown_fields() -> None:
    body = json.dumps({"cmd": "history", "type": "out", "status": "SUCCESS", "phone": "74951904198", "user": "admin",
                       "start": "20170703T121110Z", "duration": 124, "link": "https://link/file.mp3",
                       "crm_token": TOKEN, "callid": "33274237", "future_field": "x"}).encode()
    parsed = parse_request(body, "application/json; charset=utf-8")
    assert isinstance(parsed.notice, HistoryNotice)
    assert parsed.notice.status is CallStatus.SUCCESS and parsed.notice.start == START
    assert parsed.notice.duration == 124 and parsed.extra == {"future_field": "x"}


def test_iso_start_and_numbers_as_text_are_read() -> None:
    parsed = parse_request(b"cmd=rating&crm_token=t&phone=1&callid=2&rating=4.0&user=u", None)
    assert isinstance(parsed.notice, RatingNotice) and parsed.notice.rating == 4
    parsed = parse_request(b"cmd=history&type=in&user=u&phone=1&start=2017-07-03T12:11:10Z&duration=3&callid=c"
                           b"&status=missed", "application/x-www-form-urlencoded")
    assert isinstance(parsed.notice, HistoryNotice)
    assert parsed.notice.start == START and parsed.notice.status is CallStatus.MISSED


def test_cp1251_form_is_read() -> None:
    body = "cmd=contact&crm_token=t&phone=1&callid=2&diversion=Отдел".encode("cp1251")
    from urllib.parse import quote_from_bytes

    encoded = b"&".join(p.split(b"=")[0] + b"=" + quote_from_bytes(p.split(b"=")[1]).encode() for p in body.split(b"&"))
    parsed = parse_request(encoded, "application/x-www-form-urlencoded; charset=windows-1251")
    assert isinstance(parsed.notice, ContactQuery) and parsed.notice.diversion == "Отдел"


@pytest.mark.parametrize("body", [
    b"", b"cmd=unknown", b"crm_token=t&phone=1", b"cmd=event&crm_token=t&type=INCOMING&callid=c&phone=1",
    b"cmd=event&crm_token=t&type=RINGING&callid=c&phone=1&user=u&direction=in",
    b"cmd=event&crm_token=t&type=INCOMING&callid=c&phone=1&user=u&direction=sideways",
    b"cmd=history&type=in&user=u&phone=1&start=yesterday&duration=3&callid=c&status=Success",
    b"cmd=history&type=in&user=u&phone=1&start=20170703T121110Z&duration=x&callid=c&status=Success",
    b"cmd=history&type=in&user=u&phone=1&start=20170703T121110Z&duration=1&callid=c&status=Great",
    b"cmd=webhook&type=x&data=notjson", b'{"cmd": "contact", "phone": {"a": 1}, "callid": "c"}', b"[1, 2]", b"{",
])
def test_malformed_requests_raise(body: bytes) -> None:
    with pytest.raises(MalformedRequest):
        parse_request(body, None)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([None, "application/json", "application/x-www-form-urlencoded"]))
def test_parser_never_fails_otherwise(body: bytes, ctype: str | None) -> None:
    try:
        parse_request(body, ctype)
    except MalformedRequest:
        pass


# --- the receiver --------------------------------------------------------------------------------

def handle(receiver: Receiver, notice: Notice, *, dialect: Any = "form", token: str = TOKEN,
           headers: dict[str, str] | None = None, nid: str | None = None) -> Any:
    body, ctype = build_body(notice, crm_token=token, dialect=dialect, notification_id=nid)
    all_headers = {"Content-Type": ctype, **({"webhook-id": nid} if nid else {}), **(headers or {})}
    return asyncio.run(receiver.handle(body, all_headers))


def test_handlers_get_typed_notices_and_contact_answers() -> None:
    receiver = Receiver(TOKEN)
    got: list[Notice] = []

    @receiver.on_contact
    def lookup(query: ContactQuery) -> dict[str, str]:
        got.append(query)
        return {"contact_name": "ООО Ромашка", "responsible": "admin", "ignored": "x"}

    @receiver.on_event
    async def event(e: EventNotice) -> None:
        got.append(e)

    receiver.on_history(got.append)
    receiver.on_rating(got.append)
    receiver.on_webhook(got.append)
    for notice in NOTICES:
        answer = handle(receiver, notice)
        assert answer.status == 200
        if notice.command == "contact":
            assert answer.body == {"contact_name": "ООО Ромашка", "responsible": "admin"}
        else:
            assert answer.body == {}
    assert got == NOTICES


def test_contact_answer_may_be_a_dataclass_or_none() -> None:
    receiver = Receiver(TOKEN)
    named = receiver.on_contact(lambda q: ContactAnswer(contact_name="Иван"))
    assert handle(receiver, NOTICES[4]).body == {"contact_name": "Иван"}
    receiver.remove(named)
    receiver.on_contact(lambda q: None)
    assert handle(receiver, NOTICES[4]).body == {}
    assert handle(Receiver(TOKEN), NOTICES[4]).body == {}  # no handler: route by the dial plan


def test_every_on_registration_adds_and_the_first_contact_answer_wins() -> None:
    """One rule for every ``on_*``: notifications run every handler in order; ``contact`` asks the handlers in
    order and the first answer that is not None wins (later ones are not called)."""
    receiver = Receiver(TOKEN)
    asked: list[str] = []

    @receiver.on_contact
    def vip_only(q: ContactQuery) -> dict[str, str] | None:
        asked.append("vip")
        return {"contact_name": "VIP"} if q.phone == "79000000001" else None

    @receiver.on_contact
    async def everyone(q: ContactQuery) -> ContactAnswer:
        asked.append("everyone")
        return ContactAnswer(contact_name="Клиент", responsible="ivan")

    @receiver.on_contact
    def never(q: ContactQuery) -> dict[str, str]:
        asked.append("never")
        return {"contact_name": "never"}

    assert handle(receiver, NOTICES[4]).body == {"contact_name": "Клиент", "responsible": "ivan"}
    assert asked == ["vip", "everyone"]
    asked.clear()
    vip = dataclasses.replace(NOTICES[4], phone="79000000001")
    assert handle(receiver, vip).body == {"contact_name": "VIP"} and asked == ["vip"]
    receiver.remove(everyone)
    receiver.remove(vip_only)
    assert handle(receiver, NOTICES[4]).body == {"contact_name": "never"}
    with pytest.raises(ValueError):
        receiver.remove(everyone)

    got: list[str] = []
    for name in ("first", "second"):
        receiver.on_event(lambda e, name=name: got.append(name))
        receiver.on_history(lambda h, name=name: got.append(f"history {name}"))
    handle(receiver, NOTICES[2], nid="e1")
    handle(receiver, NOTICES[0], nid="h1")
    assert got == ["first", "second", "history first", "history second"]


def test_wrong_or_missing_token_is_401_and_bad_body_400() -> None:
    receiver = Receiver(TOKEN)
    seen: list[Notice] = []
    receiver.on_event(seen.append)
    answer = handle(receiver, NOTICES[2], token="other")
    assert (answer.status, answer.body) == (401, {"error": "Invalid token"})
    answer = asyncio.run(receiver.handle(b"cmd=event&type=INCOMING&callid=c&phone=1&user=u&direction=in", {}))
    assert (answer.status, answer.body) == (401, {"error": "Invalid token"})
    answer = asyncio.run(receiver.handle(b"cmd=event", {}))
    assert answer.status == 400 and answer.body["error"] == "Invalid parameters"
    assert seen == []


def test_duplicates_are_acknowledged_once_handled_and_memory_is_bounded() -> None:
    receiver = Receiver(TOKEN, dedupe_size=3)
    seen: list[Notice] = []
    receiver.on_history(seen.append)
    assert handle(receiver, NOTICES[0], nid="a").status == 200
    again = handle(receiver, NOTICES[0], nid="a", dialect="json")
    assert again.status == 200 and again.duplicate
    assert len(seen) == 1
    for nid in "bcd":
        handle(receiver, NOTICES[0], nid=nid)
    assert len(seen) == 4 and len(receiver.dedupe.done) == 3
    handle(receiver, NOTICES[0], nid="a")  # forgotten: the oldest went first
    assert len(seen) == 5
    handle(receiver, NOTICES[0])  # no id: never deduplicated
    handle(receiver, NOTICES[0])
    assert len(seen) == 7


def test_a_failing_handler_answers_500_and_the_retry_is_handled() -> None:
    receiver = Receiver(TOKEN)
    calls: list[int] = []

    @receiver.on_event
    def flaky(e: EventNotice) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CRM database down")

    assert handle(receiver, NOTICES[2], nid="x").status == 500
    assert handle(receiver, NOTICES[2], nid="x").status == 200
    assert handle(receiver, NOTICES[2], nid="x").duplicate
    assert len(calls) == 2


def test_concurrent_duplicates_run_the_handler_once() -> None:
    receiver = Receiver(TOKEN)
    calls: list[int] = []

    @receiver.on_event
    async def slow(e: EventNotice) -> None:
        calls.append(1)
        await asyncio.sleep(0.05)

    body, ctype = build_body(NOTICES[2], crm_token=TOKEN, dialect="form")

    async def main() -> list[Any]:
        headers = {"content-type": ctype, "webhook-id": "same"}
        return list(await asyncio.gather(*(receiver.handle(body, headers) for _ in range(5))))

    answers = asyncio.run(main())
    assert [a.status for a in answers] == [200] * 5 and sum(a.duplicate for a in answers) == 4
    assert calls == [1]


def test_signatures_are_verified_when_a_secret_is_set() -> None:
    secret = signing.new_secret()
    receiver = Receiver(TOKEN, signing_secret=secret)
    body, ctype = build_body(NOTICES[2], crm_token=TOKEN, dialect="json")
    now = int(time.time())
    good = {"content-type": ctype, **signing.sign(secret, "n1", now, body)}
    assert asyncio.run(receiver.handle(body, good)).status == 200
    forged = {"content-type": ctype, **signing.sign(signing.new_secret(), "n2", now, body)}
    answer = asyncio.run(receiver.handle(body, forged))
    assert (answer.status, answer.body["error"]) == (401, "Invalid signature")
    stale = {"content-type": ctype, **signing.sign(secret, "n3", now - 3600, body)}
    assert asyncio.run(receiver.handle(body, stale)).status == 401
    assert asyncio.run(receiver.handle(body, {"content-type": ctype})).status == 401  # unsigned
    # contact lookups are not signed by the PBX: the token protects them
    body, ctype = build_body(NOTICES[4], crm_token=TOKEN, dialect="form")
    assert asyncio.run(receiver.handle(body, {"content-type": ctype})).status == 200


def test_asgi_app_mounted_in_starlette() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    receiver = Receiver(TOKEN)
    receiver.on_contact(lambda q: {"contact_name": f"Клиент {q.phone}"})
    app = Starlette(routes=[Mount("/vpbx", app=receiver)])

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://crm") as http:
            body, ctype = build_body(NOTICES[4], crm_token=TOKEN, dialect="json")
            r = await http.post("/vpbx/", content=body, headers={"Content-Type": ctype})
            assert r.status_code == 200 and r.json() == {"contact_name": "Клиент 79261904198"}
            assert r.headers["content-type"] == "application/json"
            r = await http.get("/vpbx/")
            assert r.status_code == 405
            r = await http.post("/vpbx/", content=b"x" * (1024 * 1024 + 1))
            assert r.status_code == 413

    asyncio.run(main())
