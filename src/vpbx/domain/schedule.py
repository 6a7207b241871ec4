"""Which route of a number applies at an instant (002 §9.7-9.9, call-flows "Incoming" step 4).

Precedence: a matching special day (9.8) > a matching extra interval (9.7) > the weekly schedule
(9.9), which gives the number's ``work`` route inside working hours and ``other`` outside.
Everything is evaluated on the wall clock of the domain's timezone, at minute resolution.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "MINUTES_PER_DAY",
    "WEEKDAYS",
    "ExtraInterval",
    "Interval",
    "NumberTimeConfig",
    "RouteChoice",
    "RouteReason",
    "ScheduleError",
    "SpecialDay",
    "WeeklySchedule",
    "choose_route",
    "dump_weekly",
    "is_production_day_off",
    "parse_custom_routes",
    "parse_extra_interval",
    "parse_special_day",
    "parse_weekly",
    "production_calendar_days",
]

MINUTES_PER_DAY = 1440
SECONDS_PER_DAY = 86400
# Index = datetime.weekday(): Monday is 0.
WEEKDAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_INDEX = {name: i for i, name in enumerate(WEEKDAYS)}

RouteReason = Literal["special_day", "extra_interval", "work", "other"]


class ScheduleError(ValueError):
    """Invalid schedule input; ``path`` names the offending field, e.g. ``schedule.monday.start``."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


# --------------------------------------------------------------------------- intervals


@dataclass(frozen=True)
class Interval:
    """Minutes of the day ``[start, end)``; ``end <= start`` means it ends on the next day.

    ``start == end`` is a full 24 hours from ``start`` (a zero-length working day is expressed by
    leaving the day out instead).
    """

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < MINUTES_PER_DAY:
            raise ScheduleError("start", f"minute of day out of range: {self.start}")
        if not 0 <= self.end <= MINUTES_PER_DAY:
            raise ScheduleError("end", f"minute of day out of range: {self.end}")

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def covers_own_day(self, minute: int) -> bool:
        if self.crosses_midnight:
            return minute >= self.start
        return self.start <= minute < self.end

    def covers_next_day(self, minute: int) -> bool:
        return self.crosses_midnight and minute < self.end

    @classmethod
    def from_seconds(cls, start: int | float, end: int | float) -> Interval:
        start_min = min(_round_minutes(start), MINUTES_PER_DAY - 1)  # 23:59:30+ is still today
        return cls(start_min, _round_minutes(end))


def _round_minutes(seconds: int | float) -> int:
    # 9.9: "Время работы округляется до минут" -- nearest minute, halves up.
    return int((seconds + 30) // 60)


def _covers(intervals_by_day: Sequence[Sequence[Interval]], weekday: int, minute: int) -> bool:
    if any(iv.covers_own_day(minute) for iv in intervals_by_day[weekday]):
        return True
    return any(iv.covers_next_day(minute) for iv in intervals_by_day[(weekday - 1) % 7])


@dataclass(frozen=True)
class WeeklySchedule:
    """Working intervals per weekday (index 0 = Monday); a day with none is a day off."""

    days: tuple[tuple[Interval, ...], ...] = ((),) * 7

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ScheduleError("schedule", f"expected 7 weekdays, got {len(self.days)}")

    @classmethod
    def from_days(cls, days: Mapping[int, Iterable[tuple[int, int]]]) -> WeeklySchedule:
        """Build from ``{weekday: [(start_minute, end_minute), ...]}``."""
        out: list[tuple[Interval, ...]] = [() for _ in range(7)]
        for day, spans in days.items():
            if not 0 <= day < 7:
                raise ScheduleError("schedule", f"weekday out of range: {day}")
            out[day] = tuple(Interval(s, e) for s, e in spans)
        return cls(tuple(out))

    @classmethod
    def always(cls) -> WeeklySchedule:
        return cls(((Interval(0, MINUTES_PER_DAY),),) * 7)

    def is_working(self, weekday: int, minute: int) -> bool:
        return _covers(self.days, weekday, minute)


@dataclass(frozen=True)
class ExtraInterval:
    """9.7: on the given weekdays, during ``interval`` (wall clock), use ``route_id``.

    An interval crossing midnight belongs to the weekday it starts on.
    """

    route_id: str
    days: frozenset[int]
    interval: Interval
    id: str | None = None

    def __post_init__(self) -> None:
        if not self.days or not self.days <= frozenset(range(7)):
            raise ScheduleError("days", f"weekdays must be a non-empty subset of 0..6: {sorted(self.days)}")

    def covers(self, weekday: int, minute: int) -> bool:
        if weekday in self.days and self.interval.covers_own_day(minute):
            return True
        return (weekday - 1) % 7 in self.days and self.interval.covers_next_day(minute)


Bound = date | datetime


@dataclass(frozen=True)
class SpecialDay:
    """9.8: from ``start`` to ``end`` (both inclusive, to the minute) use ``route_id``.

    Bounds are dates (whole days) or ISO date-times; naive ones are wall-clock time of the domain.
    With ``calendar_predefined`` it matches the non-working days of the Russian production
    calendar, limited to ``start``/``end`` when those are given.
    """

    route_id: str
    start: Bound | None = None
    end: Bound | None = None
    calendar_predefined: bool = False
    id: str | None = None

    def __post_init__(self) -> None:
        if not self.calendar_predefined and (self.start is None or self.end is None):
            raise ScheduleError("start" if self.start is None else "end", "required")
        if self.start is not None and self.end is not None:
            lo, hi = _comparable(self.start, is_end=False), _comparable(self.end, is_end=True)
            if (lo.tzinfo is None) == (hi.tzinfo is None) and lo > hi:
                raise ScheduleError("end", "is before start")

    def matches(self, at: datetime, local: datetime) -> bool:
        """``at``: the aware instant floored to the minute; ``local``: the same in the domain zone."""
        if self.start is not None and _before_start(at, local, self.start):
            return False
        if self.end is not None and _after_end(at, local, self.end):
            return False
        return not self.calendar_predefined or is_production_day_off(local.date())


def _comparable(bound: Bound, *, is_end: bool) -> datetime:
    if isinstance(bound, datetime):
        return bound.replace(second=0, microsecond=0)
    return datetime.combine(bound, datetime.max.time() if is_end else datetime.min.time())


def _before_start(at: datetime, local: datetime, start: Bound) -> bool:
    if not isinstance(start, datetime):
        return local.date() < start
    start = start.replace(second=0, microsecond=0)
    if start.tzinfo is not None:
        return at < start
    return local.replace(tzinfo=None) < start


def _after_end(at: datetime, local: datetime, end: Bound) -> bool:
    if not isinstance(end, datetime):
        return local.date() > end
    # Inclusive to the minute: "...T23:59:00" covers 23:59:59 too.
    end = end.replace(second=0, microsecond=0)
    if end.tzinfo is not None:
        return at > end
    return local.replace(tzinfo=None) > end


@dataclass(frozen=True)
class NumberTimeConfig:
    """Everything about one number's routing that depends on time."""

    weekly: WeeklySchedule = field(default_factory=WeeklySchedule)
    work_route: str = "work"
    other_route: str = "other"
    extra_intervals: tuple[ExtraInterval, ...] = ()
    special_days: tuple[SpecialDay, ...] = ()


@dataclass(frozen=True)
class RouteChoice:
    route_id: str
    reason: RouteReason
    rule: SpecialDay | ExtraInterval | None = None


# --------------------------------------------------------------------------- production calendar


@functools.lru_cache(maxsize=64)
def _days_off(year: int) -> frozenset[date]:
    # is_working_day = not (weekend or holiday or transferred day off), and True for working
    # Saturdays (weekend_workdays): exactly Russia's production calendar.
    import holidays  # its country tables load at the first schedule that needs them, not at start (issue 14)

    cal = holidays.country_holidays("RU", years=year)
    day, out = date(year, 1, 1), set()
    while day.year == year:
        if not cal.is_working_day(day):
            out.add(day)
        day += timedelta(days=1)
    return frozenset(out)


def production_calendar_days(years: Iterable[int]) -> frozenset[date]:
    """Non-working days of the Russian production calendar in ``years`` (e.g. ``range(2025, 2027)``)."""
    out: set[date] = set()
    for year in years:
        out |= _days_off(year)
    return frozenset(out)


def is_production_day_off(day: date) -> bool:
    return day in _days_off(day.year)


# --------------------------------------------------------------------------- the decision


def choose_route(config: NumberTimeConfig, at: datetime, tz: str | tzinfo) -> RouteChoice:
    """The route of a number at the aware instant ``at``, in the domain's timezone ``tz``."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("choose_route needs an aware datetime")
    zone = _zone(tz)
    at = at.replace(second=0, microsecond=0)  # offsets are whole minutes: flooring commutes
    local = at.astimezone(zone)
    for special in _special_day_order(config.special_days):
        if special.matches(at, local):
            return RouteChoice(special.route_id, "special_day", special)
    weekday, minute = local.weekday(), local.hour * 60 + local.minute
    for extra in config.extra_intervals:
        if extra.covers(weekday, minute):
            return RouteChoice(extra.route_id, "extra_interval", extra)
    if config.weekly.is_working(weekday, minute):
        return RouteChoice(config.work_route, "work")
    return RouteChoice(config.other_route, "other")


def _special_day_order(days: Sequence[SpecialDay]) -> list[SpecialDay]:
    # An explicitly dated special day is the more specific rule: it beats the production calendar.
    return sorted(days, key=lambda d: d.calendar_predefined)


def _zone(tz: str | tzinfo) -> tzinfo:
    if not isinstance(tz, str):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError("timezone", f"unknown timezone {tz!r}") from exc


# --------------------------------------------------------------------------- API shapes


def _seconds(obj: Mapping[str, Any], key: str, path: str) -> int | float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScheduleError(f"{path}.{key}", "must be a number of seconds")
    if not 0 <= value <= SECONDS_PER_DAY:
        raise ScheduleError(f"{path}.{key}", f"must be within 0..{SECONDS_PER_DAY}")
    return value


def _mapping(obj: object, path: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ScheduleError(path, "must be an object")
    return obj


def _day_interval(obj: object, path: str) -> Interval | None:
    day = _mapping(obj, path)
    holiday = day.get("holiday", False)
    if not isinstance(holiday, bool):
        raise ScheduleError(f"{path}.holiday", "must be a boolean")
    if holiday:
        return None
    start = _seconds(day, "start", path)
    if start >= SECONDS_PER_DAY:
        raise ScheduleError(f"{path}.start", "must be before 86400")
    return Interval.from_seconds(start, _seconds(day, "end", path))


def parse_weekly(obj: object, path: str = "schedule") -> WeeklySchedule:
    """Parse the 9.9 shape ``{"monday": {"start": 32400, "end": 64800, "holiday": false}, ...}``.

    A day left out, null, or with ``holiday: true`` is a day off; seconds round to minutes.
    A day may also be a list of such objects (several working spans, e.g. around a lunch break).
    """
    data = _mapping(obj, path)
    days: list[tuple[Interval, ...]] = [() for _ in range(7)]
    for key, value in data.items():
        day_path = f"{path}.{key}"
        index = _DAY_INDEX.get(key) if isinstance(key, str) else None
        if index is None:
            raise ScheduleError(day_path, f"unknown weekday (expected one of {', '.join(WEEKDAYS)})")
        if value is None:
            continue
        items = value if isinstance(value, list) else [value]
        spans = [
            _day_interval(item, f"{day_path}[{i}]" if isinstance(value, list) else day_path)
            for i, item in enumerate(items)
        ]
        days[index] = tuple(span for span in spans if span is not None)
    return WeeklySchedule(tuple(days))


def dump_weekly(schedule: WeeklySchedule) -> dict[str, Any]:
    """The 9.9 "getting" shape: every weekday, ``holiday`` true with zero times for days off."""
    out: dict[str, Any] = {}
    for name, spans in zip(WEEKDAYS, schedule.days, strict=True):
        items = [{"start": s.start * 60, "end": s.end * 60, "holiday": False} for s in spans]
        if not items:
            out[name] = {"start": 0, "end": 0, "holiday": True}
        else:
            out[name] = items[0] if len(items) == 1 else items
    return out


def _optional_str(data: Mapping[str, Any], key: str, path: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ScheduleError(f"{path}.{key}", "must be a string")
    return value


def _route_id(data: Mapping[str, Any], route_id: str | None, path: str) -> str:
    chosen = route_id or _optional_str(data, "route_id", path)
    if chosen is None:
        raise ScheduleError(f"{path}.route_id", "required")
    return chosen


def parse_extra_interval(obj: object, route_id: str | None = None, path: str = "interval") -> ExtraInterval:
    """Parse 9.7 ``{"days": ["monday", ...], "start": 68400, "end": 82800, "route_id": ...}``.

    ``route_id`` overrides the object's own (the caller resolves ``route_name`` to a route).
    """
    data = _mapping(obj, path)
    raw_days = data.get("days")
    if not isinstance(raw_days, list) or not raw_days:
        raise ScheduleError(f"{path}.days", "must be a non-empty list of weekdays")
    days: set[int] = set()
    for i, name in enumerate(raw_days):
        index = _DAY_INDEX.get(name) if isinstance(name, str) else None
        if index is None:
            raise ScheduleError(f"{path}.days[{i}]", f"unknown weekday {name!r}")
        days.add(index)
    start = _seconds(data, "start", path)
    if start >= SECONDS_PER_DAY:
        raise ScheduleError(f"{path}.start", "must be before 86400")
    interval = Interval.from_seconds(start, _seconds(data, "end", path))
    return ExtraInterval(
        _route_id(data, route_id, path), frozenset(days), interval, _optional_str(data, "id", path)
    )


_DATE_ONLY = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")


def _parse_bound(data: Mapping[str, Any], key: str, path: str) -> Bound | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ScheduleError(f"{path}.{key}", "must be an ISO 8601 string")
    try:
        if _DATE_ONLY.match(value):
            return date.fromisoformat(value)
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise ScheduleError(f"{path}.{key}", f"not an ISO 8601 date or date-time: {value!r}") from exc


def parse_special_day(obj: object, route_id: str | None = None, path: str = "calendar") -> SpecialDay:
    """Parse 9.8 ``{"start": "2023-12-31T00:00:00", "end": "2024-01-07T23:59:00", ...}``.

    ``start``/``end`` are optional with ``calendar_predefined: true``.
    """
    data = _mapping(obj, path)
    predefined = data.get("calendar_predefined", False)
    if predefined is None:
        predefined = False
    if not isinstance(predefined, bool):
        raise ScheduleError(f"{path}.calendar_predefined", "must be a boolean")
    start, end = _parse_bound(data, "start", path), _parse_bound(data, "end", path)
    rid, own_id = _route_id(data, route_id, path), _optional_str(data, "id", path)
    try:
        return SpecialDay(rid, start, end, predefined, own_id)
    except ScheduleError as exc:
        raise ScheduleError(f"{path}.{exc.path}", exc.message) from exc


def _rules(route: Mapping[str, Any], key: str, path: str) -> list[Any]:
    rules = route.get(key) or []
    if not isinstance(rules, list):
        raise ScheduleError(f"{path}.{key}", "must be a list")
    return rules


def parse_custom_routes(
    obj: object, path: str = "custom_routes"
) -> tuple[tuple[ExtraInterval, ...], tuple[SpecialDay, ...]]:
    """Parse the 9.9 "additional routes": ``[{"id", "name", "interval_schedule", "calendar_schedule"}]``."""
    if obj is None:
        return (), ()
    if not isinstance(obj, list):
        raise ScheduleError(path, "must be a list of routes")
    extras: list[ExtraInterval] = []
    specials: list[SpecialDay] = []
    for i, item in enumerate(obj):
        route_path = f"{path}[{i}]"
        route = _mapping(item, route_path)
        rid = _optional_str(route, "id", route_path)
        if rid is None:
            raise ScheduleError(f"{route_path}.id", "required")
        extras.extend(
            parse_extra_interval(rule, rid, f"{route_path}.interval_schedule[{j}]")
            for j, rule in enumerate(_rules(route, "interval_schedule", route_path))
        )
        specials.extend(
            parse_special_day(rule, rid, f"{route_path}.calendar_schedule[{j}]")
            for j, rule in enumerate(_rules(route, "calendar_schedule", route_path))
        )
    return tuple(extras), tuple(specials)
