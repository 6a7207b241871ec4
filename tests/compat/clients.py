"""Strict CRM-side parsers of the PBX's requests, written to the documents' field lists, as the platform's public
clients are: a field a document does not list, a missing required one or a mistyped value is refused.

- ``Legacy000``: 000 §4.1-4.3 (history, event with ``direction``, contact).
- ``Legacy004``: 004 §4.1.1-4.1.3 (the same history fields; events of incoming calls, no ``direction``).
  001 lists a subset of these fields; a client of either is served by the 004 edition.
- ``RestV1``: 002 §2.1-2.4, form-encoded (002 §2) or JSON (its examples), plus what the platform's public
  clients read on ``history`` (spec/README: ``wait``, ``missedStatus``, ``group``). In JSON the numbers
  (``duration``, ``wait``, ``rating``, ``missedStatus``) are numbers, as in 4.2.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

START = re.compile(r"^\d{8}T\d{6}Z$")
# 000 §4.1 (and 002 §2.1) statuses; compared case-insensitively, as the clients do.
STATUSES = frozenset({"success", "missed", "cancel", "busy", "notavailable", "notallowed", "notfound"})
# 004 §4.1.1: an incoming call is Success or missed; nothing else.
STATUSES_004_IN = frozenset({"success", "missed"})
EVENTS_000 = frozenset({"INCOMING", "ACCEPTED", "COMPLETED", "CANCELLED", "OUTGOING", "TRANSFERRED"})
EVENTS_004 = frozenset({"INCOMING", "ACCEPTED", "COMPLETED", "CANCELLED"})


class Refused(AssertionError):
    """The strict client refuses the request."""


@dataclass(frozen=True)
class Captured:
    """One request as the loopback receiver got it."""

    content_type: str
    body: bytes

    def fields(self) -> dict[str, Any]:
        if "json" in self.content_type:
            data = json.loads(self.body)
            if not isinstance(data, dict):
                raise Refused("the body is not an object")
            return data
        if not self.content_type.startswith("application/x-www-form-urlencoded"):
            raise Refused(f"unexpected Content-Type {self.content_type!r}")
        pairs = parse_qsl(self.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        names = [k for k, _ in pairs]
        if len(names) != len(set(names)):
            raise Refused(f"a field repeats: {names}")
        return dict(pairs)

    @property
    def cmd(self) -> str:
        return str(self.fields().get("cmd", ""))


def _check(data: Mapping[str, Any], allowed: set[str], required: set[str], what: str) -> None:
    extra = set(data) - allowed
    if extra:
        raise Refused(f"{what}: fields the document does not list: {sorted(extra)}")
    missing = required - set(data)
    if missing:
        raise Refused(f"{what}: required fields missing: {sorted(missing)}")


def _text_int(data: Mapping[str, Any], name: str) -> int | None:
    """A number sent as form text: digits only."""
    if name not in data:
        return None
    value = data[name]
    if not isinstance(value, str) or not value.isdigit():
        raise Refused(f"{name} is not a number: {value!r}")
    return int(value)


def _json_int(data: Mapping[str, Any], name: str) -> int | None:
    """A number in JSON: a number, never a string (4.2's types)."""
    if name not in data:
        return None
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refused(f"{name} is not a JSON number: {value!r}")
    return value


class Legacy000:
    """000 §4: one URL, form fields, ``crm_token`` in the body."""

    HISTORY = {"cmd", "type", "user", "ext", "groupRealName", "telnum", "phone", "diversion", "start", "duration",
               "callid", "link", "crm_token", "status"}
    HISTORY_REQUIRED = {"cmd", "type", "user", "phone", "start", "duration", "callid", "crm_token", "status"}
    EVENT = {"cmd", "type", "phone", "diversion", "user", "groupRealName", "ext", "telnum", "direction", "callid",
             "crm_token"}
    EVENT_REQUIRED = {"cmd", "type", "phone", "user", "direction", "callid", "crm_token"}
    EVENT_TYPES = EVENTS_000
    CONTACT = {"cmd", "phone", "callid", "crm_token"}

    def parse(self, req: Captured) -> dict[str, Any]:
        if "json" in req.content_type:
            raise Refused("the legacy documents' requests are form fields")
        data = req.fields()
        cmd = data.get("cmd")
        if cmd == "history":
            _check(data, self.HISTORY, self.HISTORY_REQUIRED, "history")
            if data["type"] not in ("in", "out"):
                raise Refused(f"type {data['type']!r}")
            if not START.match(data["start"]):
                raise Refused(f"start {data['start']!r}")
            self.check_status(data["type"], data["status"])
            return {**data, "duration": _text_int(data, "duration")}
        if cmd == "event":
            _check(data, self.EVENT, self.EVENT_REQUIRED, "event")
            if data["type"] not in self.EVENT_TYPES:
                raise Refused(f"event type {data['type']!r}")
            if "direction" in data and data["direction"] not in ("in", "out"):
                raise Refused(f"direction {data['direction']!r}")
            return data
        if cmd == "contact":
            _check(data, self.CONTACT, self.CONTACT, "contact")
            return data
        raise Refused(f"no such command in the legacy documents: {cmd!r}")

    def check_status(self, direction: str, status: str) -> None:
        if status.casefold() not in STATUSES:
            raise Refused(f"status {status!r}")


class Legacy004(Legacy000):
    """004 §4.1 (001's lists are a subset): the history fields of 000; events without ``direction``, of
    incoming calls only; an incoming call's status Success or missed."""

    EVENT = Legacy000.EVENT - {"direction"}
    EVENT_REQUIRED = Legacy000.EVENT_REQUIRED - {"direction"}
    EVENT_TYPES = EVENTS_004

    def check_status(self, direction: str, status: str) -> None:
        super().check_status(direction, status)
        if direction == "in" and status.casefold() not in STATUSES_004_IN:
            raise Refused(f"an incoming call's status in 004 is Success or missed, not {status!r}")


class RestV1:
    """002 §2.1-2.4 in the form (§2) or JSON (its examples) encoding."""

    HISTORY = {"cmd", "crm_token", "type", "user", "phone", "diversion", "start", "duration", "callid", "status",
               "ext", "groupRealName", "telnum", "link", "telnum_name", "rating",
               "wait", "missedStatus", "group"}  # the last three: spec/README, what public clients read
    HISTORY_REQUIRED = {"cmd", "crm_token", "type", "user", "phone", "start", "duration", "callid", "status"}
    EVENT = {"cmd", "crm_token", "type", "callid", "phone", "user", "direction", "diversion", "groupRealName", "ext",
             "telnum", "telnum_name", "second_callid"}
    EVENT_REQUIRED = {"cmd", "crm_token", "type", "callid", "phone", "user", "direction"}
    CONTACT = {"cmd", "crm_token", "phone", "callid", "diversion"}
    RATING = {"cmd", "crm_token", "phone", "callid", "rating", "user", "ext"}
    WEBHOOK = {"cmd", "type", "crm_token", "id", "data"}  # 18.4
    NUMBERS = ("duration", "wait", "rating", "missedStatus")

    def __init__(self, dialect: str) -> None:
        assert dialect in ("form", "json")
        self.dialect = dialect

    def parse(self, req: Captured) -> dict[str, Any]:
        is_json = "json" in req.content_type
        if is_json != (self.dialect == "json"):
            raise Refused(f"a {self.dialect} client got {req.content_type!r}")
        data = req.fields()
        number = _json_int if is_json else _text_int
        cmd = data.get("cmd")
        if cmd == "history":
            _check(data, self.HISTORY, self.HISTORY_REQUIRED, "history")
            if not START.match(str(data["start"])):
                raise Refused(f"start {data['start']!r}")
            if str(data["status"]).casefold() not in STATUSES:
                raise Refused(f"status {data['status']!r}")
            out = dict(data)
            for name in self.NUMBERS:
                value = number(data, name)
                if value is not None:
                    out[name] = value
            if out.get("missedStatus") is not None and out["missedStatus"] not in (1, 2, 3, 4):
                raise Refused(f"missedStatus {out['missedStatus']!r}")
            return out
        if cmd == "event":
            _check(data, self.EVENT, self.EVENT_REQUIRED, "event")
            if data["type"] not in EVENTS_000:
                raise Refused(f"event type {data['type']!r}")
            return data
        if cmd == "contact":
            _check(data, self.CONTACT, self.CONTACT - {"diversion"}, "contact")
            return data
        if cmd == "rating":
            _check(data, self.RATING, self.RATING - {"ext"}, "rating")
            return {**data, "rating": number(data, "rating")}
        if cmd == "webhook":
            _check(data, self.WEBHOOK, {"cmd"}, "webhook")
            return data
        raise Refused(f"unknown command {cmd!r}")


CLIENTS: dict[str, Any] = {
    "legacy-000": Legacy000(),
    "legacy-004": Legacy004(),
    "form": RestV1("form"),
    "json": RestV1("json"),
}
# (dialect, legacy edition) each client is configured with.
SETUP = {"legacy-000": ("legacy", "000"), "legacy-004": ("legacy", "004"), "form": ("form", "000"),
         "json": ("json", "000")}
