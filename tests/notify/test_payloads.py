"""PBX->CRM bodies field by field in every dialect, and the lenient contact-answer parser."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpbx.notify.payloads import (
    COMMANDS,
    DIALECTS,
    PBX_USER,
    CallStatus,
    ContactAnswer,
    ContactQuery,
    EventNotice,
    EventType,
    HistoryNotice,
    RatingNotice,
    UnsupportedCommand,
    WebhookNotice,
    build_body,
    format_start,
    parse_contact_answer,
    supports,
)

TOKEN = "d47f9e88-cbe3-4961-8deb-ce55c169f40c"
START = datetime(2017, 7, 3, 12, 11, 10, tzinfo=UTC)
FORM = "application/x-www-form-urlencoded"


def form(body: bytes) -> dict[str, list[str]]:
    # strict_parsing: a malformed pair fails the test instead of vanishing.
    return parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)


def flat(d: dict[str, Any]) -> dict[str, list[str]]:
    return {k: [v] for k, v in d.items()}


def full_history() -> HistoryNotice:
    return HistoryNotice(
        type="in",
        user="ivanov",
        phone="79261904198",
        start=START,
        duration=124,
        callid="33274237",
        status=CallStatus.SUCCESS,
        diversion="74952005060",
        ext="701",
        groupRealName="Отдел продаж",
        telnum="79260000001",
        link="https://pbx.example/rec/abc.mp3?sig=x&exp=1",
        telnum_name="Основной",
        rating=5,
        wait=12,
        missedStatus=3,
        group="sales",
    )


HISTORY_STRINGS = {
    "type": "in",
    "user": "ivanov",
    "phone": "79261904198",
    "start": "20170703T121110Z",
    "duration": "124",
    "callid": "33274237",
    "status": "Success",
    "diversion": "74952005060",
    "ext": "701",
    "groupRealName": "Отдел продаж",
    "telnum": "79260000001",
    "link": "https://pbx.example/rec/abc.mp3?sig=x&exp=1",
    "telnum_name": "Основной",
    "rating": "5",
    "wait": "12",
    "missedStatus": "3",
    "group": "sales",
}


# --- documented field sets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (
            HistoryNotice,
            {
                "type", "user", "ext", "groupRealName", "telnum", "telnum_name", "phone", "diversion",
                "start", "duration", "callid", "link", "status", "rating", "wait", "missedStatus", "group",
            },
        ),
        (
            EventNotice,
            {
                "type", "callid", "phone", "user", "direction", "diversion", "groupRealName", "ext",
                "telnum", "telnum_name", "second_callid",
            },
        ),
        (ContactQuery, {"phone", "callid", "diversion"}),
        (RatingNotice, {"phone", "callid", "rating", "user", "ext"}),
        (WebhookNotice, {"type", "id", "data"}),
    ],
)  # fmt: skip
def test_notices_carry_exactly_the_documented_fields(cls: type, expected: set[str]) -> None:
    assert {f.name for f in fields(cls)} == expected


def test_command_names() -> None:
    assert COMMANDS == ("history", "event", "contact", "rating", "webhook")
    assert [
        c.command for c in (HistoryNotice, EventNotice, ContactQuery, RatingNotice, WebhookNotice)
    ] == list(COMMANDS)


# --- history -----------------------------------------------------------------------------------


def test_history_form_every_field() -> None:
    body, ctype = build_body(full_history(), crm_token=TOKEN, dialect="form", notification_id="n1")
    assert ctype == FORM
    assert form(body) == flat({"cmd": "history", "crm_token": TOKEN, **HISTORY_STRINGS})


def test_history_json_every_field_with_numbers_as_numbers() -> None:
    body, ctype = build_body(full_history(), crm_token=TOKEN, dialect="json", notification_id=None)
    assert ctype == "application/json"
    expected: dict[str, Any] = {"cmd": "history", "crm_token": TOKEN, **HISTORY_STRINGS}
    expected.update(duration=124, rating=5, wait=12, missedStatus=3)
    assert json.loads(body) == expected
    # UTF-8 text, not \u escapes: CRMs that log the raw body stay readable.
    assert "Отдел продаж".encode() in body


def test_history_legacy_keeps_only_the_legacy_fields() -> None:
    body, ctype = build_body(full_history(), crm_token=TOKEN, dialect="legacy", notification_id=None)
    assert ctype == FORM
    legacy_keys = (
        "type", "user", "ext", "groupRealName", "telnum", "phone", "diversion",
        "start", "duration", "callid", "link", "status",
    )  # fmt: skip
    expected = {k: HISTORY_STRINGS[k] for k in legacy_keys}
    assert form(body) == flat({"cmd": "history", "crm_token": TOKEN, **expected})


def test_history_002_example_reproduced_in_json() -> None:
    # 002 §2.1 example, with the listed status spelling (the example's SUCCESS is a known typo).
    example = {
        "cmd": "history",
        "type": "out",
        "status": "Success",
        "phone": "74951904198",
        "user": "admin",
        "start": "20170703T121110Z",
        "duration": 124,
        "link": "https://link/file.mp3",
        "crm_token": "d47f9e88-cbe3-4961-8deb-ce55c169f40c",
        "callid": "33274237",
    }
    notice = HistoryNotice(
        type="out",
        status=CallStatus.parse("SUCCESS"),
        phone="74951904198",
        user="admin",
        start=START,
        duration=124,
        link="https://link/file.mp3",
        callid="33274237",
    )
    body, _ = build_body(notice, crm_token=TOKEN, dialect="json")
    assert json.loads(body) == example


def test_history_legacy_example_reproduced() -> None:
    # 000/004 §4.1 example request, line for line.
    notice = HistoryNotice(
        type="out",
        status=CallStatus.SUCCESS,
        phone="79101234567",
        user="user",
        start=START,
        duration=124,
        link="https://link/file.mp3",
        callid="B10D0EB124F4E64AF4EA-1511",
    )
    token = "76fsd7tfs-fhjdgfdjsfsk-hfgsdguuuwoeiwey1111"
    body, _ = build_body(notice, crm_token=token, dialect="legacy")
    assert form(body) == flat(
        {
            "cmd": "history",
            "type": "out",
            "status": "Success",
            "phone": "79101234567",
            "user": "user",
            "start": "20170703T121110Z",
            "duration": "124",
            "link": "https://link/file.mp3",
            "crm_token": token,
            "callid": "B10D0EB124F4E64AF4EA-1511",
        }
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_history_minimal_omits_every_unset_optional(dialect: Any) -> None:
    notice = HistoryNotice(
        type="in", user="a", phone="7", start=START, duration=0, callid="c", status=CallStatus.MISSED
    )
    body, _ = build_body(notice, crm_token="t", dialect=dialect)
    assert b"None" not in body and b"null" not in body
    decoded = json.loads(body) if dialect == "json" else {k: v[0] for k, v in form(body).items()}
    # duration=0 is a value, not an absence.
    assert set(decoded) == {
        "cmd",
        "crm_token",
        "type",
        "user",
        "phone",
        "start",
        "duration",
        "callid",
        "status",
    }
    assert decoded["duration"] in (0, "0")


def test_missed_call_tied_to_no_employee_goes_to_user_pbx() -> None:
    notice = HistoryNotice(
        type="in",
        user=PBX_USER,
        phone="79261904198",
        start=START,
        duration=30,
        callid="c1",
        status=CallStatus.MISSED,
        wait=30,
        missedStatus=3,
        group="sales",
    )
    body, _ = build_body(notice, crm_token="t", dialect="form")
    got = form(body)
    assert got["user"] == ["pbx"]
    assert got["status"] == ["Missed"]
    assert (got["wait"], got["missedStatus"], got["group"]) == (["30"], ["3"], ["sales"])


@pytest.mark.parametrize(
    ("raw", "sent"),
    [
        ("SUCCESS", "Success"),
        ("success", "Success"),
        ("missed", "Missed"),
        ("CANCEL", "Cancel"),
        ("busy", "Busy"),
        ("notavailable", "NotAvailable"),
        ("NOT_AVAILABLE", "NotAvailable"),
        ("notallowed", "NotAllowed"),
        ("Not-Found", "NotFound"),
    ],
)
def test_status_sent_in_the_listed_spelling_whatever_the_input_casing(raw: str, sent: str) -> None:
    notice = HistoryNotice(
        type="out",
        user="a",
        phone="7",
        start=START,
        duration=1,
        callid="c",
        status=raw,  # type: ignore[arg-type]  # a caller holding a stored string
    )
    assert notice.status is CallStatus(sent)
    for dialect in DIALECTS:
        body, _ = build_body(notice, crm_token="t", dialect=dialect)
        status = json.loads(body)["status"] if dialect == "json" else form(body)["status"][0]
        assert status == sent


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown call status"):
        CallStatus.parse("Answered")


def test_start_is_converted_to_utc() -> None:
    moscow = timezone(timedelta(hours=3))
    assert format_start(datetime(2017, 7, 3, 15, 11, 10, tzinfo=moscow)) == "20170703T121110Z"
    assert format_start(datetime(2024, 1, 1, 0, 30, 0, tzinfo=moscow)) == "20231231T213000Z"


def test_naive_start_is_a_bug_not_local_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        HistoryNotice(
            type="in", user="a", phone="7", start=datetime(2017, 7, 3), duration=1, callid="c",
            status=CallStatus.SUCCESS,
        )  # fmt: skip


@pytest.mark.parametrize(
    "changes",
    [{"type": "incoming"}, {"duration": -1}, {"wait": -5}, {"rating": True}, {"duration": 1.5}],
)
def test_history_rejects_values_the_documents_do_not_allow(changes: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = dict(
        type="in", user="a", phone="7", start=START, duration=1, callid="c", status=CallStatus.SUCCESS
    )
    kwargs.update(changes)
    with pytest.raises((ValueError, TypeError)):
        HistoryNotice(**kwargs)


def test_form_encoding_escapes_reserved_characters() -> None:
    body, _ = build_body(full_history(), crm_token="a&b=c", dialect="form")
    assert b"link=https%3A%2F%2Fpbx.example%2Frec%2Fabc.mp3%3Fsig%3Dx%26exp%3D1" in body
    assert form(body)["crm_token"] == ["a&b=c"]
    assert b"groupRealName=%D0%9E%D1%82%D0%B4%D0%B5%D0%BB+%D0%BF%D1%80%D0%BE%D0%B4%D0%B0%D0%B6" in body


# --- event -------------------------------------------------------------------------------------


def full_event(**changes: Any) -> EventNotice:
    kwargs: dict[str, Any] = dict(
        type=EventType.TRANSFERRED,
        callid="33274237",
        phone="79261904198",
        user="ivanov",
        direction="in",
        diversion="74952005060",
        groupRealName="Отдел продаж",
        ext="701",
        telnum="79260000001",
        telnum_name="Основной",
        second_callid="33274299",
    )
    kwargs.update(changes)
    return EventNotice(**kwargs)


EVENT_STRINGS = {
    "type": "TRANSFERRED",
    "callid": "33274237",
    "phone": "79261904198",
    "user": "ivanov",
    "direction": "in",
    "diversion": "74952005060",
    "groupRealName": "Отдел продаж",
    "ext": "701",
    "telnum": "79260000001",
    "telnum_name": "Основной",
    "second_callid": "33274299",
}


def test_event_form_every_field() -> None:
    body, ctype = build_body(full_event(), crm_token=TOKEN, dialect="form")
    assert ctype == FORM
    assert form(body) == flat({"cmd": "event", "crm_token": TOKEN, **EVENT_STRINGS})


def test_event_json_every_field() -> None:
    body, _ = build_body(full_event(), crm_token=TOKEN, dialect="json")
    assert json.loads(body) == {"cmd": "event", "crm_token": TOKEN, **EVENT_STRINGS}


def test_event_legacy_drops_telnum_name_and_second_callid() -> None:
    body, ctype = build_body(full_event(), crm_token=TOKEN, dialect="legacy")
    assert ctype == FORM
    expected = {k: v for k, v in EVENT_STRINGS.items() if k not in ("telnum_name", "second_callid")}
    assert form(body) == flat({"cmd": "event", "crm_token": TOKEN, **expected})


def test_event_002_example_reproduced_plus_required_direction() -> None:
    # The 002 §2.2 example leaves out ``direction``, which its own table marks required.
    example = {
        "cmd": "event",
        "type": "INCOMING",
        "phone": "79261904198",
        "diversion": "74952005060",
        "user": "admin",
        "crm_token": "d47f9e88-cbe3-4961-8deb-ce55c169f40c",
        "callid": "33274237",
    }
    notice = EventNotice(
        type=EventType.INCOMING,
        phone="79261904198",
        diversion="74952005060",
        user="admin",
        callid="33274237",
        direction="in",
    )
    body, _ = build_body(notice, crm_token=TOKEN, dialect="json")
    assert json.loads(body) == {**example, "direction": "in"}


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_event_type_goes_out_verbatim(event_type: EventType) -> None:
    notice = EventNotice(type=event_type, callid="c", phone="7", user="u", direction="out")
    for dialect in DIALECTS:
        body, _ = build_body(notice, crm_token="t", dialect=dialect)
        sent = json.loads(body)["type"] if dialect == "json" else form(body)["type"][0]
        assert sent == event_type.value


def test_event_type_from_a_string_is_normalised() -> None:
    notice = EventNotice(type="accepted", callid="c", phone="7", user="u", direction="in")  # type: ignore[arg-type]
    assert notice.type is EventType.ACCEPTED
    with pytest.raises(ValueError, match="unknown event type"):
        EventNotice(type="RINGING", callid="c", phone="7", user="u", direction="in")  # type: ignore[arg-type]


@pytest.mark.parametrize("event_type", [t for t in EventType if t is not EventType.TRANSFERRED])
def test_second_callid_only_on_transferred(event_type: EventType) -> None:
    with pytest.raises(ValueError, match="TRANSFERRED"):
        full_event(type=event_type)


def test_event_direction_is_checked() -> None:
    with pytest.raises(ValueError, match="direction"):
        full_event(direction="inbound")


# --- contact -----------------------------------------------------------------------------------


def test_contact_002_example_reproduced() -> None:
    notice = ContactQuery(phone="79261904198", diversion="74952005060", callid="33274237")
    body, _ = build_body(notice, crm_token=TOKEN, dialect="json")
    assert json.loads(body) == {
        "cmd": "contact",
        "phone": "79261904198",
        "diversion": "74952005060",
        "crm_token": "d47f9e88-cbe3-4961-8deb-ce55c169f40c",
        "callid": "33274237",
    }
    body, ctype = build_body(notice, crm_token=TOKEN, dialect="form")
    assert ctype == FORM
    assert form(body) == flat(
        {"cmd": "contact", "phone": "79261904198", "diversion": "74952005060", "crm_token": TOKEN,
         "callid": "33274237"}
    )  # fmt: skip


def test_contact_legacy_has_no_diversion() -> None:
    notice = ContactQuery(phone="79101234567", diversion="74952005060", callid="B10D0EB124F4E64AF4EA-1511")
    token = "76fsd7tfs-fhjdgfdjsfsk-hfgsdguuuwoeiwey1111"
    body, _ = build_body(notice, crm_token=token, dialect="legacy")
    assert form(body) == flat(
        {"cmd": "contact", "phone": "79101234567", "crm_token": token, "callid": "B10D0EB124F4E64AF4EA-1511"}
    )


# --- rating ------------------------------------------------------------------------------------


def test_rating_002_example_reproduced() -> None:
    notice = RatingNotice(phone="79261904198", rating=4, user="user", ext="701", callid="33274237")
    body, _ = build_body(notice, crm_token=TOKEN, dialect="json")
    assert json.loads(body) == {
        "cmd": "rating",
        "phone": "79261904198",
        "rating": 4,
        "user": "user",
        "ext": "701",
        "crm_token": "d47f9e88-cbe3-4961-8deb-ce55c169f40c",
        "callid": "33274237",
    }
    body, _ = build_body(notice, crm_token=TOKEN, dialect="form")
    assert form(body) == flat(
        {"cmd": "rating", "phone": "79261904198", "rating": "4", "user": "user", "ext": "701",
         "crm_token": TOKEN, "callid": "33274237"}
    )  # fmt: skip


def test_rating_without_ext() -> None:
    body, _ = build_body(
        RatingNotice(phone="7", rating=1, user="u", callid="c"), crm_token="t", dialect="form"
    )
    assert form(body) == flat({"cmd": "rating", "crm_token": "t", "phone": "7", "rating": "1", "user": "u",
                               "callid": "c"})  # fmt: skip


@pytest.mark.parametrize(
    "notice",
    [RatingNotice(phone="7", rating=1, user="u", callid="c"), WebhookNotice(type="sipregs_error")],
)
def test_legacy_dialect_has_no_rating_or_webhook(notice: Any) -> None:
    assert not supports(notice.command, "legacy")
    with pytest.raises(UnsupportedCommand):
        build_body(notice, crm_token="t", dialect="legacy")


def test_supports_matrix() -> None:
    assert {(c, d) for c in COMMANDS for d in DIALECTS if not supports(c, d)} == {
        ("rating", "legacy"),
        ("webhook", "legacy"),
    }


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="dialect"):
        build_body(ContactQuery(phone="7", callid="c"), crm_token="t", dialect="xml")  # type: ignore[arg-type]


# --- webhook -----------------------------------------------------------------------------------

SIPREG_DATA = {"telnum": "74950000000", "name": "Транк", "domain": "sip.example.ru"}


def test_webhook_json_nests_data() -> None:
    notice = WebhookNotice(type="sipregs_error", id="898254be", data=SIPREG_DATA)
    body, ctype = build_body(notice, crm_token=TOKEN, dialect="json", notification_id="msg_1")
    assert ctype == "application/json"
    assert json.loads(body) == {
        "cmd": "webhook",
        "crm_token": TOKEN,
        "type": "sipregs_error",
        "id": "898254be",
        "data": SIPREG_DATA,
    }


def test_webhook_form_carries_data_as_json_text() -> None:
    notice = WebhookNotice(type="sipregs_error", data={**SIPREG_DATA, "active": True, "n": 2})
    body, _ = build_body(notice, crm_token=TOKEN, dialect="form", notification_id="msg_1")
    got = form(body)
    assert set(got) == {"cmd", "crm_token", "type", "id", "data"}
    assert got["cmd"] == ["webhook"]
    assert got["id"] == ["msg_1"]  # the delivery id fills the absent event id
    assert json.loads(got["data"][0]) == {**SIPREG_DATA, "active": True, "n": 2}


def test_webhook_without_any_id_omits_it() -> None:
    body, _ = build_body(WebhookNotice(type="sipregs_error"), crm_token="t", dialect="json")
    assert json.loads(body) == {"cmd": "webhook", "crm_token": "t", "type": "sipregs_error", "data": {}}


@pytest.mark.parametrize("notice", [ContactQuery(phone="7", callid="c"), full_history(), full_event()])
def test_notification_id_never_leaks_into_call_commands(notice: Any) -> None:
    for dialect in DIALECTS:
        body, _ = build_body(notice, crm_token="t", dialect=dialect, notification_id="msg_secret_id")
        assert b"msg_secret_id" not in body


def test_notices_are_immutable() -> None:
    notice = ContactQuery(phone="7", callid="c")
    with pytest.raises(AttributeError):
        notice.phone = "8"  # type: ignore[misc]


# --- contact answer ----------------------------------------------------------------------------

J = "application/json"


@pytest.mark.parametrize(
    ("status", "ctype", "body", "expected"),
    [
        (200, J, '{"contact_name": "Менеджер Мебель", "responsible": "admin"}',
         ContactAnswer("Менеджер Мебель", "admin")),
        (200, J, '{"contact_name": "A", "responsible": "701", "extra": [1, 2], "x": null}',
         ContactAnswer("A", "701")),
        (200, J, '{"contact_name": "Only name"}', ContactAnswer("Only name", None)),
        (200, J, '{"responsible": "79260000001"}', ContactAnswer(None, "79260000001")),
        (200, J, '{"contact_name": "A", "responsible": 701}', ContactAnswer("A", "701")),
        (200, J, '{"contact_name": "A", "responsible": 701.0}', ContactAnswer("A", "701")),
        (200, J, '{"Contact_Name": "A", "RESPONSIBLE": "b"}', ContactAnswer("A", "b")),
        (200, J, '{"contact_name": "  Рога\\n и   копыта ", "responsible": " andy "}',
         ContactAnswer("Рога и копыта", "andy")),
        (200, J, '{"contact_name": "", "responsible": ""}', None),
        (200, J, '{"contact_name": null, "responsible": false}', None),
        (200, J, '{"contact_name": {"first": "A"}, "responsible": ["x"]}', None),
        (200, J, '{"contact_name": "A", "responsible": {}}', ContactAnswer("A", None)),
        (200, J, "{}", None),
        (200, J, "[]", None),
        (200, J, "null", None),
        (200, J, "42", None),
        (200, J, '"admin"', None),
        (200, J, '[{"contact_name": "A", "responsible": "b"}]', ContactAnswer("A", "b")),
        (201, J, '{"contact_name": "A"}', ContactAnswer("A", None)),
        (200, "text/html", '{"contact_name": "A", "responsible": "b"}', ContactAnswer("A", "b")),
        (200, None, '{"contact_name": "A", "responsible": "b"}', ContactAnswer("A", "b")),
        (200, "text/html", "<html><body>Internal error</body></html>", None),
        (200, J, "", None),
        (200, J, "   ", None),
        # A truncated body keeps what arrived whole, never a value cut in half.
        (200, J, '{"contact_name": "A", ', ContactAnswer("A", None)),
        (200, J, '{"contact_name": "A", "responsible": "adm', ContactAnswer("A", None)),
        (200, J, '{"contact_name": "Ann', None),
        (204, None, "", None),
        (404, J, '{"contact_name": "A", "responsible": "b"}', None),
        (500, J, '{"contact_name": "A", "responsible": "b"}', None),
        (302, J, '{"contact_name": "A", "responsible": "b"}', None),
        (401, J, '{ error: "Invalid token" }', None),
        # The legacy documents' answer is a JavaScript literal with comments and a bare word.
        (200, J, '{\n    contact_name: "Менеджер ЗАО Рога и \nкопыта", // имя контакта\n'
                 "    responsible:andy // id ответственного пользователя\n}",
         ContactAnswer("Менеджер ЗАО Рога и копыта", "andy")),
        (200, J, "{contact_name: 'Single', responsible: 702}", ContactAnswer("Single", "702")),
        (200, "application/x-www-form-urlencoded", "contact_name=%D0%98%D0%B2%D0%B0%D0%BD&responsible=701",
         ContactAnswer("Иван", "701")),
    ],
)  # fmt: skip
def test_parse_contact_answer(
    status: int, ctype: str | None, body: str, expected: ContactAnswer | None
) -> None:
    assert parse_contact_answer(status, ctype, body.encode("utf-8")) == expected


def test_contact_answer_in_windows_1251() -> None:
    raw = '{"contact_name": "Менеджер Мебель", "responsible": "admin"}'.encode("cp1251")
    expected = ContactAnswer("Менеджер Мебель", "admin")
    assert parse_contact_answer(200, "application/json; charset=windows-1251", raw) == expected
    # No charset given: UTF-8 fails, the Russian default is tried next.
    assert parse_contact_answer(200, "application/json", raw) == expected


def test_contact_answer_with_utf8_bom_and_bogus_charset() -> None:
    raw = b"\xef\xbb\xbf" + '{"contact_name": "Ёж", "responsible": "a"}'.encode()
    answer = parse_contact_answer(200, "application/json; charset=no-such-codec", raw)
    assert answer == ContactAnswer("Ёж", "a")


@given(
    status=st.integers(min_value=-1000, max_value=1000),
    ctype=st.one_of(st.none(), st.text(max_size=60)),
    body=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda s: s.encode("utf-8")),
        st.dictionaries(st.sampled_from(["contact_name", "responsible", "x"]),
                        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()))
        .map(lambda d: json.dumps(d).encode()),
    ),
)  # fmt: skip
def test_parse_contact_answer_never_raises(status: int, ctype: str | None, body: bytes) -> None:
    answer = parse_contact_answer(status, ctype, body)
    assert answer is None or isinstance(answer, ContactAnswer)
    if answer is not None:
        assert 200 <= status < 300
        assert answer != ContactAnswer()
        for value in (answer.contact_name, answer.responsible):
            assert value is None or (value == value.strip() and value != "")
