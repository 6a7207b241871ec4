"""History export rules (002 §4): date parameters, the §4.5 period rules and field formats. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PERIODS = ("today", "yesterday", "this_week", "last_week", "this_month", "last_month")
# 002 §4.1's example sends "week"; the legacy clients send "month" too: the current one is meant.
PERIOD_ALIASES = {"week": "this_week", "month": "this_month"}

_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z?$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-]00:?00)?$")


class BadParameter(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_moment(text: str, field: str) -> datetime:
    """``YYYYmmddTHHMMSSZ`` or ``YYYY-MM-DDTHH:MM:SSZ``, always UTC."""
    value = text.strip()
    match = _COMPACT.match(value) or _ISO.match(value)
    if match is None:
        raise BadParameter(field, "expected YYYYmmddTHHMMSSZ or YYYY-MM-DDTHH:MM:SSZ")
    try:
        y, mo, d, h, mi, sec = (int(g) for g in match.groups())
        return datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
    except ValueError as exc:
        raise BadParameter(field, str(exc)) from None


@dataclass(frozen=True)
class Window:
    """A half-open UTC interval ``[lo, hi)``."""

    lo: datetime
    hi: datetime


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _days(first: date, last_exclusive: date, tz: ZoneInfo) -> Window:
    return Window(_local_midnight(first, tz), _local_midnight(last_exclusive, tz))


def period_window(period: str, now: datetime, timezone: str) -> Window:
    """The named period, in the domain's timezone; weeks start on Monday."""
    name = PERIOD_ALIASES.get(period, period)
    tz = ZoneInfo(timezone)
    today = now.astimezone(tz).date()
    if name == "today":
        return _days(today, today + timedelta(days=1), tz)
    if name == "yesterday":
        return _days(today - timedelta(days=1), today, tz)
    monday = today - timedelta(days=today.weekday())
    if name == "this_week":
        return _days(monday, monday + timedelta(days=7), tz)
    if name == "last_week":
        return _days(monday - timedelta(days=7), monday, tz)
    first = today.replace(day=1)
    next_month = (first + timedelta(days=32)).replace(day=1)
    if name == "this_month":
        return _days(first, next_month, tz)
    if name == "last_month":
        previous = (first - timedelta(days=1)).replace(day=1)
        return _days(previous, first, tz)
    raise BadParameter("period", f"expected one of {', '.join(PERIODS)}")


def export_window(period: str | None, start: str | None, end: str | None, now: datetime,
                  timezone: str) -> Window:
    """002 §4.5: ``period`` wins over ``start``/``end``; no ``end`` means today; no ``start`` means
    the day of ``end``; nothing at all means today. Explicit bounds are inclusive to the second."""
    if period:
        return period_window(period, now, timezone)
    if not start and not end:
        return period_window("today", now, timezone)
    tz = ZoneInfo(timezone)
    if end:
        hi = parse_moment(end, "end") + timedelta(seconds=1)
    else:
        hi = period_window("today", now, timezone).hi
    if start:
        lo = parse_moment(start, "start")
    else:
        last_second = hi - timedelta(seconds=1)
        lo = _local_midnight(last_second.astimezone(tz).date(), tz)
    if lo >= hi:
        raise BadParameter("start", "start must not be after end")
    return Window(lo, hi)


def iso(moment: datetime) -> str:
    """``2024-01-01T10:00:00Z``: the exports' one time format."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- statuses and the CSV type column ---------------------------------------------------------

INCOMING_UNANSWERED = ("Missed", "Cancel")


def json_status(call_type: str, status: str) -> str:
    """4.2 ``status``: success, missed (nobody answered) or cancel (an outgoing call that failed)."""
    if status == "Success":
        return "success"
    if call_type == "in" or status == "Missed":
        return "missed"
    return "cancel"


def csv_type(call_type: str, status: str) -> str:
    """The CSV's second column, as the legacy history defines it: in, out or missed."""
    if call_type == "in" and status != "Success":
        return "missed"
    return call_type


def account(login: str, group_id: str, destination: str, domain: str) -> str:
    """``login@domain``; for a call no employee took, the department (``id@domain``) or the
    destination code (``ivr@domain``, ``vm@domain``, ...); ``pbx@domain`` when nothing else."""
    name = login or group_id or destination or "pbx"
    return f"{name}@{domain}"


def csv_field(value: str) -> str:
    """Fields are never quoted: separators and line breaks cannot appear in a field."""
    return value.replace(",", " ").replace("\r", " ").replace("\n", " ")
