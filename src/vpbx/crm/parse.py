"""Parse the PBX's requests to a CRM (002 §2, §18.4; legacy 000/004 §4) into the typed notices of
``vpbx.notify.payloads`` -- the very classes the PBX builds its bodies from, so what the PBX sends and
what a CRM reads cannot drift apart.

Both encodings (form-urlencoded, the documents' default, and JSON) and the legacy dialect (form, fewer
fields) are read; values are typed (``start`` a UTC datetime, ``duration`` an int, ``status`` a
``CallStatus`` from any casing). Anything unusable raises ``MalformedRequest``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from vpbx.notify.payloads import (
    COMMANDS,
    START_FORMAT,
    CallStatus,
    ContactQuery,
    EventNotice,
    EventType,
    HistoryNotice,
    Notice,
    RatingNotice,
    WebhookNotice,
)

NOTICE_TYPES: dict[str, type[Any]] = {
    "history": HistoryNotice,
    "event": EventNotice,
    "contact": ContactQuery,
    "rating": RatingNotice,
    "webhook": WebhookNotice,
}
_INTS = frozenset({"duration", "wait", "rating", "missedStatus"})  # 4.2: missedStatus is a number
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


class MalformedRequest(ValueError):
    """Not a request of the PBX: no or unknown ``cmd``, a missing or mistyped field, an unreadable body."""


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """One request of the PBX: the typed notice, the ``crm_token`` it carried, and fields we do not know."""

    notice: Notice
    crm_token: str | None
    encoding: str  # "form" (also the legacy dialect) or "json"
    extra: Mapping[str, Any]

    @property
    def command(self) -> str:
        return self.notice.command


def _charset(content_type: str) -> str:
    match = re.search(r"charset\s*=\s*\"?([\w.:-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else "utf-8"


def _decode_json(body: bytes, content_type: str) -> dict[str, Any]:
    for encoding in dict.fromkeys((_charset(content_type), "utf-8-sig", "cp1251")):
        try:
            text = body.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise MalformedRequest(f"invalid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MalformedRequest("the JSON body is not an object")
        return data
    raise MalformedRequest("undecodable body")


def _decode_form(body: bytes, content_type: str) -> dict[str, Any]:
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        text = body.decode(_charset(content_type), errors="replace")
    for encoding in dict.fromkeys((_charset(content_type), "utf-8", "cp1251")):
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, encoding=encoding,
                              errors="strict")
        except (LookupError, UnicodeDecodeError):
            continue
        return dict(pairs)  # a repeated field: the last one wins
    raise MalformedRequest("undecodable form body")


def decode_body(body: bytes, content_type: str | None) -> tuple[dict[str, Any], str]:
    """The body's fields and its encoding (``json`` or ``form``); the Content-Type wins, else a sniff."""
    ctype = (content_type or "").lower()
    if "json" in ctype or (not ctype.startswith("application/x-www-form-urlencoded")
                           and body.lstrip()[:1] == b"{"):
        return _decode_json(body, ctype), "json"
    return _decode_form(body, ctype), "form"


def parse_start(value: Any) -> datetime:
    """``YYYYmmddTHHMMSSZ`` (the documents' format) or ISO 8601; always aware UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    try:
        return datetime.strptime(text, START_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        pass
    if _ISO.match(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    raise MalformedRequest(f"start: not YYYYmmddTHHMMSSZ: {text!r}")


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise MalformedRequest(f"{name}: not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    try:
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else int(float(text))
    except (ValueError, OverflowError):
        raise MalformedRequest(f"{name}: not a number: {value!r}") from None


def _convert(command: str, name: str, value: Any) -> Any:
    if name == "start":
        return parse_start(value)
    if name in _INTS:
        return _int(name, value)
    if command == "history" and name == "status":
        return CallStatus.parse(str(value))
    if command == "event" and name == "type":
        return EventType.parse(str(value))
    if command == "webhook" and name == "data":
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if not isinstance(value, dict):
            raise MalformedRequest("data: not an object")
        return value
    if isinstance(value, dict | list):
        raise MalformedRequest(f"{name}: not a scalar")
    return value if isinstance(value, str) else str(value)


def parse_request(body: bytes, content_type: str | None = None) -> ParsedRequest:
    """Parse one request body of the PBX; raise ``MalformedRequest`` when it is not one."""
    data, encoding = decode_body(body, content_type)
    command = str(data.pop("cmd", "") or "").strip().lower()
    if command not in COMMANDS:
        raise MalformedRequest(f"cmd: one of {', '.join(COMMANDS)}" if command else "cmd is missing")
    token = data.pop("crm_token", None)
    cls = NOTICE_TYPES[command]
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            extra[key] = value
        elif value is None or value == "":
            continue  # an empty optional field is an absent one
        else:
            try:
                kwargs[key] = _convert(command, key, value)
            except MalformedRequest:
                raise
            except ValueError as exc:
                raise MalformedRequest(f"{key}: {exc}") from None
    missing = [n for n, f in known.items()
               if n not in kwargs and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise MalformedRequest(f"missing {', '.join(missing)}")
    try:
        notice = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise MalformedRequest(str(exc)) from None
    return ParsedRequest(notice, None if token is None else str(token), encoding, extra)
