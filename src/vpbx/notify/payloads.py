"""Bodies of the PBX->CRM requests (002 §2.1-2.4, §18.4; legacy 000/004 §4) and the contact answer.

Attribute names are the wire names (``groupRealName``, ``missedStatus``) so a notice maps onto
its body without a translation table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, get_args
from urllib.parse import parse_qs, quote_plus

Command = Literal["history", "event", "contact", "rating", "webhook"]
Dialect = Literal["form", "json", "legacy"]
Direction = Literal["in", "out"]
# The legacy documents' two editions (issue 13): 000, and 001/004 (004 is the fuller of the two, and its
# field lists hold 001's). Their answers and pushes differ; strict clients of each reject the other's fields.
Edition = Literal["000", "004"]

COMMANDS: tuple[Command, ...] = get_args(Command)
DIALECTS: tuple[Dialect, ...] = get_args(Dialect)
EDITIONS: tuple[Edition, ...] = get_args(Edition)
DEFAULT_EDITION: Edition = "000"

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"

# A missed call that reached no employee is reported for this pseudo-user (spec/README).
PBX_USER = "pbx"
START_FORMAT = "%Y%m%dT%H%M%SZ"


class CallStatus(StrEnum):
    """History statuses, spelt as 002 §2.1 lists them (its example's ``SUCCESS`` is not sent)."""

    SUCCESS = "Success"
    MISSED = "Missed"
    CANCEL = "Cancel"
    BUSY = "Busy"
    NOT_AVAILABLE = "NotAvailable"
    NOT_ALLOWED = "NotAllowed"
    NOT_FOUND = "NotFound"

    @classmethod
    def parse(cls, value: str) -> CallStatus:
        """Any casing, with or without separators: ``missed``, ``NOT_AVAILABLE``, ``not-found``."""
        key = re.sub(r"[\s_-]", "", value).casefold()
        for member in cls:
            if member.value.casefold() == key:
                return member
        raise ValueError(f"unknown call status {value!r}")


class EventType(StrEnum):
    INCOMING = "INCOMING"
    ACCEPTED = "ACCEPTED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    OUTGOING = "OUTGOING"
    TRANSFERRED = "TRANSFERRED"

    @classmethod
    def parse(cls, value: str) -> EventType:
        try:
            return cls(value.strip().upper())
        except ValueError:
            raise ValueError(f"unknown event type {value!r}") from None


class UnsupportedCommand(ValueError):
    """The dialect has no such command (the legacy documents know no ``rating`` or ``webhook``)."""


def format_start(moment: datetime) -> str:
    """``YYYYmmddTHHMMSSZ`` in UTC, the one ``start`` format of 002 and the legacy documents."""
    return _utc(moment, "start").strftime(START_FORMAT)


def _utc(moment: datetime, name: str) -> datetime:
    # The project stores aware UTC everywhere; a naive value here is a bug upstream, not local time.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC)


def _check_direction(value: str, name: str) -> None:
    if value not in ("in", "out"):
        raise ValueError(f"{name} must be 'in' or 'out', not {value!r}")


def _check_count(value: int | None, name: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int")
    if value < 0:
        raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryNotice:
    """002 §2.1 plus ``wait``, ``missedStatus`` and ``group`` that public clients read (spec/README)."""

    command: ClassVar[Command] = "history"

    type: Direction
    user: str
    phone: str
    start: datetime
    duration: int
    callid: str
    status: CallStatus
    # Required in 002 but optional in 000/004: a call may reach us other than through a number.
    diversion: str | None = None
    ext: str | None = None
    groupRealName: str | None = None
    telnum: str | None = None
    link: str | None = None
    telnum_name: str | None = None
    rating: int | None = None
    wait: int | None = None
    # 4.2's missed-call status (1-4): on a missed call, and on the call that settles one (a number, as in 4.2).
    missedStatus: int | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        _check_direction(self.type, "type")
        _utc(self.start, "start")
        _check_count(self.duration, "duration")
        _check_count(self.wait, "wait")
        _check_count(self.rating, "rating")
        _check_count(self.missedStatus, "missedStatus")
        if not isinstance(self.status, CallStatus):
            object.__setattr__(self, "status", CallStatus.parse(str(self.status)))


@dataclass(frozen=True, slots=True, kw_only=True)
class EventNotice:
    """002 §2.2."""

    command: ClassVar[Command] = "event"

    type: EventType
    callid: str
    phone: str
    user: str
    direction: Direction
    diversion: str | None = None
    groupRealName: str | None = None
    ext: str | None = None
    telnum: str | None = None
    telnum_name: str | None = None
    second_callid: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.type, EventType):
            object.__setattr__(self, "type", EventType.parse(str(self.type)))
        _check_direction(self.direction, "direction")
        # 002 sends second_callid on TRANSFERRED only; anywhere else it would mislead the CRM.
        if self.second_callid is not None and self.type is not EventType.TRANSFERRED:
            raise ValueError("second_callid belongs to TRANSFERRED events only")


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactQuery:
    """002 §2.3."""

    command: ClassVar[Command] = "contact"

    phone: str
    callid: str
    diversion: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RatingNotice:
    """002 §2.4."""

    command: ClassVar[Command] = "rating"

    phone: str
    callid: str
    rating: int
    user: str
    ext: str | None = None

    def __post_init__(self) -> None:
        _check_count(self.rating, "rating")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookNotice:
    """002 §18.4 (``sipregs_error`` carries ``telnum``, ``name``, ``domain`` in ``data``, §15.6)."""

    command: ClassVar[Command] = "webhook"

    type: str
    id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


Notice = HistoryNotice | EventNotice | ContactQuery | RatingNotice | WebhookNotice

# The legacy documents (000/004 §4) list fewer fields and no rating/webhook commands. These are 000's.
LEGACY_FIELDS: Mapping[Command, tuple[str, ...]] = {
    "history": (
        "type",
        "user",
        "ext",
        "groupRealName",
        "telnum",
        "phone",
        "diversion",
        "start",
        "duration",
        "callid",
        "link",
        "status",
    ),
    "event": ("type", "phone", "diversion", "user", "groupRealName", "ext", "telnum", "direction", "callid"),
    "contact": ("phone", "callid"),
}
# 004 (and 001) §4.1: the same history fields; events without ``direction``.
EDITION_FIELDS: Mapping[Edition, Mapping[Command, tuple[str, ...]]] = {
    "000": LEGACY_FIELDS,
    "004": {
        **LEGACY_FIELDS,
        "event": ("type", "phone", "diversion", "user", "groupRealName", "ext", "telnum", "callid"),
    },
}
# 004 §4.1.2 tells of incoming calls only, with these four types: an event without ``direction`` is taken
# for an incoming call's, so an outgoing call's events (and TRANSFERRED) are not sent in that edition.
EDITION_004_EVENTS = frozenset({EventType.INCOMING, EventType.ACCEPTED, EventType.COMPLETED, EventType.CANCELLED})


def edition_of(value: str | None) -> Edition:
    """The stored edition; 001 is 004's shorter edition and is served as 004; anything else as the default."""
    if value in ("004", "001"):
        return "004"
    return DEFAULT_EDITION


def supports(command: Command, dialect: Dialect) -> bool:
    return dialect != "legacy" or command in LEGACY_FIELDS


def sends(notice: Notice, dialect: Dialect, edition: Edition = DEFAULT_EDITION) -> bool:
    """Whether ``notice`` goes out at all in ``dialect`` (and, for the legacy dialect, ``edition``)."""
    if not supports(notice.command, dialect):
        return False
    if dialect == "legacy" and edition == "004" and isinstance(notice, EventNotice):
        return notice.direction == "in" and notice.type in EDITION_004_EVENTS
    return True


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(notice: Notice) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(type(notice))
    if names is None:
        names = _FIELD_NAMES[type(notice)] = tuple(f.name for f in fields(notice))
    return names


def _items(notice: Notice, dialect: Dialect, notification_id: str | None,
           edition: Edition) -> Iterator[tuple[str, Any]]:
    wanted = EDITION_FIELDS[edition].get(notice.command) if dialect == "legacy" else None
    for name in _field_names(notice):
        if wanted is not None and name not in wanted:
            continue
        value = getattr(notice, name)
        if value is None and name == "id" and isinstance(notice, WebhookNotice):
            # The delivery id doubles as the event id, so a receiver can dedupe on either.
            value = notification_id
        if value is None:
            continue
        if type(value) is str:
            yield name, value
            continue
        if isinstance(value, datetime):
            value = format_start(value)
        elif isinstance(value, StrEnum):
            value = value.value
        elif isinstance(value, Mapping):
            value = dict(value)  # json.dumps takes dicts only, not any Mapping
        yield name, value


def _form_value(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list):
        # A form field cannot nest; the object travels as compact JSON text.
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def build_body(
    notice: Notice,
    *,
    crm_token: str,
    dialect: Dialect,
    notification_id: str | None = None,
    edition: Edition = DEFAULT_EDITION,
) -> tuple[bytes, str]:
    """The encoded body of ``notice`` and its Content-Type.

    ``notification_id`` fills a webhook's ``id`` when the notice has none; other commands have
    no field for it (it travels in the ``webhook-id`` header instead). ``edition`` picks the legacy
    dialect's field lists (000's or 004's); the REST v1 dialects ignore it.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}")
    if edition not in EDITIONS:
        raise ValueError(f"unknown legacy edition {edition!r}")
    if not supports(notice.command, dialect):
        raise UnsupportedCommand(f"the {dialect} dialect has no {notice.command!r} command")
    pairs: list[tuple[str, Any]] = [("cmd", notice.command), ("crm_token", crm_token)]
    pairs.extend(_items(notice, dialect, notification_id, edition))
    if dialect == "json":
        body = json.dumps(dict(pairs), ensure_ascii=False, separators=(",", ":"))
        return body.encode("utf-8"), JSON_CONTENT_TYPE
    # Names are the documents' field names (ASCII letters and "_"): only the values need quoting.
    encoded = "&".join([f"{k}={_quote(_form_value(v))}" for k, v in pairs])
    return encoded.encode("ascii"), FORM_CONTENT_TYPE


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
_QUOTED: dict[str, str] = {}


def _quote(text: str) -> str:
    """``urlencode``'s quoting (quote_plus, UTF-8), with its hot cases cheap: ids, numbers and times need no
    quoting; names, tokens and departments repeat from call to call (a bounded memo)."""
    if _UNRESERVED.fullmatch(text):
        return text
    quoted = _QUOTED.get(text)
    if quoted is None:
        quoted = quote_plus(text, safe="", encoding="utf-8")
        if len(_QUOTED) >= 4096:
            _QUOTED.clear()
        _QUOTED[text] = quoted
    return quoted


@dataclass(frozen=True, slots=True)
class ContactAnswer:
    """What the CRM said about the caller; no ``responsible`` means "route by the dial plan"."""

    contact_name: str | None = None
    responsible: str | None = None


_ANSWER_KEYS = ("contact_name", "responsible")
# The legacy documents show a JavaScript literal: { contact_name: "...", responsible: andy }.
_LOOSE_PAIR = re.compile(
    r"""["']?(contact_name|responsible)["']?\s*[:=]\s*"""
    r"""(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([^,{}\[\]\s&"']+))""",
    re.IGNORECASE,
)


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = re.search(r"charset\s*=\s*\"?([\w.:-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else None


def _decode(body: bytes, content_type: str | None) -> str | None:
    candidates = [c for c in (_charset(content_type), "utf-8-sig", "cp1251") if c]
    for encoding in candidates:
        try:
            return body.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str | int | float):
        # A display name: line breaks and runs of blanks would garble a phone screen.
        text = " ".join(str(value).split())
        return text or None
    return None


def _from_mapping(data: Mapping[str, Any]) -> ContactAnswer | None:
    lowered = {str(k).strip().lower(): v for k, v in data.items()}
    answer = ContactAnswer(*(_text(lowered.get(key)) for key in _ANSWER_KEYS))
    return answer if answer != ContactAnswer() else None


_NOT_JSON = object()


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON


def _from_json(data: Any) -> ContactAnswer | None:
    if isinstance(data, list) and data:
        data = data[0]
    return _from_mapping(data) if isinstance(data, dict) else None


def _from_form(text: str) -> ContactAnswer | None:
    try:
        parsed = parse_qs(text, keep_blank_values=False)
    except ValueError:
        return None
    return _from_mapping({k: v[0] for k, v in parsed.items() if v})


def _from_loose(text: str) -> ContactAnswer | None:
    found: dict[str, str] = {}
    for match in _LOOSE_PAIR.finditer(text):
        key = match.group(1).lower()
        value = next(g for g in match.groups()[1:] if g is not None)
        found.setdefault(key, value)
    return _from_mapping(found)


def parse_contact_answer(status: int, content_type: str | None, body: bytes) -> ContactAnswer | None:
    """The CRM's ``{contact_name, responsible}`` answer, read leniently; None when nothing usable.

    Never raises: a CRM that answers badly must not stop the call, it only loses the name.
    """
    try:
        if not 200 <= status < 300 or not body:
            return None
        text = _decode(body, content_type)
        if text is None or not text.strip():
            return None
        data = _load_json(text)
        if data is not _NOT_JSON:
            # Valid JSON is taken at its word; the loose reading is only for non-JSON bodies.
            return _from_json(data)
        if "x-www-form-urlencoded" in (content_type or "").lower():
            return _from_form(text)
        return _from_loose(text)
    except Exception:  # pragma: no cover - defensive: the contract is "never raises"
        return None


def with_token(body: bytes, crm_token: str) -> bytes:
    """``body`` with its ``crm_token`` filled in at send time (the outbox keeps bodies built with an empty
    token, so the token rests only encrypted). ``cmd`` comes first and ``crm_token`` second in every
    dialect, so the field sits right after a known prefix; a body that already carries a token (written
    before bodies were stored without it) goes out as stored."""
    if not crm_token:
        return body
    if body.startswith(b'{"cmd":"'):
        at = body.find(b'","crm_token":"', 8)
        end = at + len(b'","crm_token":"')
        if at > 0 and body[end:end + 1] == b'"':
            return body[:end] + json.dumps(crm_token, ensure_ascii=False)[1:-1].encode("utf-8") + body[end:]
        return body
    if body.startswith(b"cmd="):
        at = body.find(b"&crm_token=", 4)
        end = at + len(b"&crm_token=")
        if at > 0 and body[end:end + 1] in (b"&", b""):
            return body[:end] + _quote(crm_token).encode("ascii") + body[end:]
    return body
