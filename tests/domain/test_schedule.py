from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpbx.domain.schedule import (
    WEEKDAYS,
    ExtraInterval,
    Interval,
    NumberTimeConfig,
    RouteChoice,
    ScheduleError,
    SpecialDay,
    WeeklySchedule,
    choose_route,
    dump_weekly,
    is_production_day_off,
    parse_custom_routes,
    parse_extra_interval,
    parse_special_day,
    parse_weekly,
    production_calendar_days,
)

MSK = "Europe/Moscow"

# 002 §9.9, "getting" and "setting" examples.
DOC_GET = {
    **{d: {"start": 32400, "end": 64800, "holiday": False} for d in WEEKDAYS[:5]},
    "saturday": {"start": 0, "end": 0, "holiday": True},
    "sunday": {"start": 0, "end": 0, "holiday": True},
}
DOC_SET = {d: {"start": 32400, "end": 64800} for d in WEEKDAYS[:5]}
OFFICE = parse_weekly(DOC_SET)  # Mon-Fri 09:00-18:00


def msk(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Moscow wall-clock time as an aware UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(MSK)).astimezone(UTC)


def route(config: NumberTimeConfig, at: datetime, tz: str = MSK) -> tuple[str, str]:
    choice = choose_route(config, at, tz)
    return choice.route_id, choice.reason


# --------------------------------------------------------------------------- parsing 9.9


def test_doc_examples_parse_to_office_hours() -> None:
    expected = WeeklySchedule.from_days({d: [(540, 1080)] for d in range(5)})
    assert parse_weekly(DOC_SET) == expected
    assert parse_weekly(DOC_GET) == expected


def test_dump_weekly_gives_the_doc_getting_shape() -> None:
    assert dump_weekly(OFFICE) == DOC_GET


def test_missing_null_and_holiday_days_are_days_off() -> None:
    schedule = parse_weekly(
        {"monday": {"start": 0, "end": 3600}, "tuesday": None, "wednesday": {"holiday": True}}
    )
    assert schedule.days[0] == (Interval(0, 60),)
    assert schedule.days[1:] == ((),) * 6


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [(32400, 540), (32429, 540), (32430, 541), (32459, 541), (0, 0), (29, 0), (30, 1)],
)
def test_seconds_round_to_nearest_minute(seconds: int, minutes: int) -> None:
    assert parse_weekly({"monday": {"start": seconds, "end": 64800}}).days[0][0].start == minutes


def test_rounding_edges_of_the_day() -> None:
    day = parse_weekly({"friday": {"start": 86399, "end": 86400}}).days[4][0]
    assert day == Interval(1439, 1440)
    assert parse_weekly({"friday": {"start": 3600.4, "end": 7200}}).days[4][0] == Interval(60, 120)


def test_list_of_spans_per_day() -> None:
    schedule = parse_weekly({"monday": [{"start": 32400, "end": 46800}, {"start": 50400, "end": 64800}]})
    assert schedule.days[0] == (Interval(540, 780), Interval(840, 1080))
    at_lunch = msk(2026, 1, 12, 13, 30)
    assert route(NumberTimeConfig(schedule), at_lunch) == ("other", "other")
    assert route(NumberTimeConfig(schedule), msk(2026, 1, 12, 14, 0)) == ("work", "work")


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        ([], "schedule"),
        ({"mon": {"start": 0, "end": 60}}, "schedule.mon"),
        ({"Monday": {"start": 0, "end": 60}}, "schedule.Monday"),
        ({"monday": {"end": 60}}, "schedule.monday.start"),
        ({"monday": {"start": 0}}, "schedule.monday.end"),
        ({"monday": {"start": "09:00", "end": 60}}, "schedule.monday.start"),
        ({"monday": {"start": True, "end": 60}}, "schedule.monday.start"),
        ({"monday": {"start": -1, "end": 60}}, "schedule.monday.start"),
        ({"monday": {"start": 0, "end": 86401}}, "schedule.monday.end"),
        ({"monday": {"start": 86400, "end": 0}}, "schedule.monday.start"),
        ({"monday": {"start": 0, "end": 60, "holiday": "no"}}, "schedule.monday.holiday"),
        ({"monday": "9-18"}, "schedule.monday"),
        ({"monday": [{"start": 0, "end": 60}, {"start": 0}]}, "schedule.monday[1].end"),
    ],
)
def test_parse_weekly_errors_name_the_field(obj: object, path: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_weekly(obj)
    assert info.value.path == path
    assert str(info.value).startswith(path + ": ")


def test_schedule_error_is_a_value_error() -> None:
    assert issubclass(ScheduleError, ValueError)


def test_interval_validation() -> None:
    with pytest.raises(ScheduleError):
        Interval(1440, 0)
    with pytest.raises(ScheduleError):
        Interval(0, 1441)
    with pytest.raises(ScheduleError):
        WeeklySchedule(((),) * 6)
    with pytest.raises(ScheduleError):
        ExtraInterval("r", frozenset({7}), Interval(0, 60))
    with pytest.raises(ScheduleError):
        ExtraInterval("r", frozenset(), Interval(0, 60))


# --------------------------------------------------------------------------- weekly schedule


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (msk(2026, 1, 12, 8, 59), "other"),  # Monday
        (msk(2026, 1, 12, 9, 0), "work"),
        (msk(2026, 1, 12, 17, 59), "work"),
        (msk(2026, 1, 12, 18, 0), "other"),
        (msk(2026, 1, 16, 12, 0), "work"),  # Friday
        (msk(2026, 1, 17, 12, 0), "other"),  # Saturday
        (msk(2026, 1, 18, 12, 0), "other"),  # Sunday
    ],
)
def test_office_hours_in_moscow(at: datetime, expected: str) -> None:
    assert route(NumberTimeConfig(OFFICE), at) == (expected, expected)


def test_moscow_is_utc_plus_3_all_year() -> None:
    # 09:00 MSK is 06:00 UTC in winter and in summer: Moscow has no DST.
    config = NumberTimeConfig(OFFICE)
    for month in (1, 7):
        monday = next(d for d in range(1, 8) if date(2026, month, d).weekday() == 0)
        assert route(config, datetime(2026, month, monday, 6, 0, tzinfo=UTC))[1] == "work"
        assert route(config, datetime(2026, month, monday, 5, 59, tzinfo=UTC))[1] == "other"


def test_seconds_do_not_leak_past_the_end_minute() -> None:
    config = NumberTimeConfig(OFFICE)
    assert route(config, msk(2026, 1, 12, 17, 59) + timedelta(seconds=59.9))[1] == "work"


def test_night_shift_crosses_midnight() -> None:
    night = NumberTimeConfig(parse_weekly({"friday": {"start": 22 * 3600, "end": 2 * 3600}}))
    assert route(night, msk(2026, 1, 16, 21, 59))[1] == "other"  # Friday
    assert route(night, msk(2026, 1, 16, 22, 0))[1] == "work"
    assert route(night, msk(2026, 1, 17, 1, 0))[1] == "work"  # Saturday 01:00
    assert route(night, msk(2026, 1, 17, 1, 59))[1] == "work"
    assert route(night, msk(2026, 1, 17, 2, 0))[1] == "other"
    assert route(night, msk(2026, 1, 17, 22, 30))[1] == "other"  # Saturday night is not Friday's


def test_sunday_night_shift_wraps_into_monday() -> None:
    night = NumberTimeConfig(parse_weekly({"sunday": {"start": 22 * 3600, "end": 2 * 3600}}))
    assert route(night, msk(2026, 1, 19, 1, 0))[1] == "work"  # Monday 01:00
    assert route(night, msk(2026, 1, 12, 1, 0))[1] == "work"
    assert route(night, msk(2026, 1, 13, 1, 0))[1] == "other"  # Tuesday 01:00


def test_start_equal_to_end_is_a_full_day() -> None:
    day = NumberTimeConfig(parse_weekly({"wednesday": {"start": 0, "end": 0}}))
    assert route(day, msk(2026, 1, 14, 0, 0))[1] == "work"
    assert route(day, msk(2026, 1, 14, 23, 59))[1] == "work"
    assert route(day, msk(2026, 1, 15, 0, 0))[1] == "other"
    shifted = NumberTimeConfig(parse_weekly({"wednesday": {"start": 36000, "end": 36000}}))
    assert route(shifted, msk(2026, 1, 15, 9, 59))[1] == "work"  # Thursday, still Wednesday's 24 h
    assert route(shifted, msk(2026, 1, 15, 10, 0))[1] == "other"


def test_custom_work_and_other_route_ids() -> None:
    config = NumberTimeConfig(OFFICE, work_route="sales", other_route="voicemail")
    assert choose_route(config, msk(2026, 1, 12, 10, 0), MSK) == RouteChoice("sales", "work")
    assert choose_route(config, msk(2026, 1, 12, 20, 0), MSK) == RouteChoice("voicemail", "other")


def test_dst_zone_spring_forward_and_fall_back() -> None:
    # Berlin, 2026-03-29 (Sunday): 02:00 CET jumps to 03:00 CEST.
    config = NumberTimeConfig(parse_weekly({"sunday": {"start": 3 * 3600, "end": 4 * 3600}}))
    assert route(config, datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "Europe/Berlin")[1] == "other"  # 01:59
    assert route(config, datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "Europe/Berlin")[1] == "work"  # 03:00
    assert route(config, datetime(2026, 3, 29, 2, 0, tzinfo=UTC), "Europe/Berlin")[1] == "other"  # 04:00
    # 2026-10-25 (Sunday): 02:00-03:00 happens twice; both are within 02:00-03:00.
    twice = NumberTimeConfig(parse_weekly({"sunday": {"start": 2 * 3600, "end": 3 * 3600}}))
    assert route(twice, datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "Europe/Berlin")[1] == "work"  # CEST
    assert route(twice, datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "Europe/Berlin")[1] == "work"  # CET
    assert route(twice, datetime(2026, 10, 25, 2, 0, tzinfo=UTC), "Europe/Berlin")[1] == "other"  # 03:00


def test_same_instant_different_domains() -> None:
    at = datetime(2026, 1, 12, 7, 0, tzinfo=UTC)  # 10:00 Moscow, 16:00 Tokyo, 02:00 New York
    config = NumberTimeConfig(OFFICE)
    assert route(config, at, MSK)[1] == "work"
    assert route(config, at, "Asia/Tokyo")[1] == "work"
    assert route(config, at, "America/New_York")[1] == "other"


def test_timezone_object_and_non_utc_instant_accepted() -> None:
    at = datetime(2026, 1, 12, 10, 0, tzinfo=timezone(timedelta(hours=3)))
    assert route(NumberTimeConfig(OFFICE), at)[1] == "work"
    assert choose_route(NumberTimeConfig(OFFICE), at, ZoneInfo(MSK)).reason == "work"


def test_naive_instant_and_unknown_zone_are_rejected() -> None:
    with pytest.raises(ValueError):
        choose_route(NumberTimeConfig(OFFICE), datetime(2026, 1, 12, 10, 0), MSK)
    with pytest.raises(ScheduleError) as info:
        choose_route(NumberTimeConfig(OFFICE), msk(2026, 1, 12, 10, 0), "Mars/Olympus")
    assert info.value.path == "timezone"


# --------------------------------------------------------------------------- extra intervals 9.7

DOC_INTERVAL = {
    "route_name": "Третья смена",
    "start": 68400,
    "end": 82800,
    "days": ["monday", "tuesday", "wednesday"],
}


def test_parse_doc_extra_interval() -> None:
    extra = parse_extra_interval(DOC_INTERVAL, route_id="third")
    assert extra == ExtraInterval("third", frozenset({0, 1, 2}), Interval(1140, 1380))


def test_extra_interval_route() -> None:
    extra = parse_extra_interval(DOC_INTERVAL, route_id="third")
    config = NumberTimeConfig(OFFICE, extra_intervals=(extra,))
    assert choose_route(config, msk(2026, 1, 12, 20, 0), MSK) == RouteChoice("third", "extra_interval", extra)
    assert route(config, msk(2026, 1, 12, 18, 59)) == ("other", "other")
    assert route(config, msk(2026, 1, 12, 19, 0)) == ("third", "extra_interval")
    assert route(config, msk(2026, 1, 12, 23, 0)) == ("other", "other")
    assert route(config, msk(2026, 1, 15, 20, 0)) == ("other", "other")  # Thursday


def test_extra_interval_beats_working_hours() -> None:
    lunch = ExtraInterval("lunch", frozenset(range(5)), Interval(13 * 60, 14 * 60))
    config = NumberTimeConfig(OFFICE, extra_intervals=(lunch,))
    assert route(config, msk(2026, 1, 14, 13, 30)) == ("lunch", "extra_interval")
    assert route(config, msk(2026, 1, 14, 14, 0)) == ("work", "work")


def test_extra_interval_crossing_midnight_belongs_to_its_start_day() -> None:
    extra = ExtraInterval("night", frozenset({4}), Interval(22 * 60, 2 * 60))  # Friday night
    config = NumberTimeConfig(OFFICE, extra_intervals=(extra,))
    assert route(config, msk(2026, 1, 17, 1, 0)) == ("night", "extra_interval")  # Saturday 01:00
    assert route(config, msk(2026, 1, 16, 1, 0)) == ("other", "other")  # Friday 01:00 (Thursday's)


def test_first_matching_extra_interval_wins() -> None:
    a = ExtraInterval("a", frozenset({0}), Interval(600, 700))
    b = ExtraInterval("b", frozenset({0}), Interval(0, 1440))
    config = NumberTimeConfig(OFFICE, extra_intervals=(a, b))
    assert route(config, msk(2026, 1, 12, 10, 30)) == ("a", "extra_interval")
    assert route(config, msk(2026, 1, 12, 12, 0)) == ("b", "extra_interval")


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        ({**DOC_INTERVAL, "days": []}, "interval.days"),
        ({**DOC_INTERVAL, "days": "monday"}, "interval.days"),
        ({**DOC_INTERVAL, "days": ["monday", "funday"]}, "interval.days[1]"),
        ({**DOC_INTERVAL, "start": None}, "interval.start"),
        ({**DOC_INTERVAL, "end": 90000}, "interval.end"),
        (DOC_INTERVAL, "interval.route_id"),  # only route_name: the caller must resolve it
        ("x", "interval"),
    ],
)
def test_parse_extra_interval_errors(obj: object, path: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_extra_interval(obj)
    assert info.value.path == path


def test_extra_interval_route_id_from_the_object() -> None:
    extra = parse_extra_interval({**DOC_INTERVAL, "route_id": "r1", "id": "cf14"})
    assert (extra.route_id, extra.id) == ("r1", "cf14")


# --------------------------------------------------------------------------- special days 9.8

DOC_SPECIAL = {"route_name": "Новый год", "start": "2023-12-31T00:00:00", "end": "2024-01-07T23:59:00"}


def test_parse_doc_special_day() -> None:
    special = parse_special_day(DOC_SPECIAL, route_id="ny")
    assert special == SpecialDay("ny", datetime(2023, 12, 31), datetime(2024, 1, 7, 23, 59))


def test_doc_special_day_bounds_are_moscow_wall_clock_and_inclusive() -> None:
    special = parse_special_day(DOC_SPECIAL, route_id="ny")
    config = NumberTimeConfig(WeeklySchedule.always(), special_days=(special,))
    assert route(config, datetime(2023, 12, 30, 20, 59, tzinfo=UTC)) == ("work", "work")  # 23:59 MSK
    assert route(config, datetime(2023, 12, 30, 21, 0, tzinfo=UTC)) == ("ny", "special_day")  # 00:00 MSK
    assert route(config, msk(2024, 1, 3, 12, 0)) == ("ny", "special_day")
    assert route(config, msk(2024, 1, 7, 23, 59) + timedelta(seconds=59)) == ("ny", "special_day")
    assert route(config, msk(2024, 1, 8, 0, 0)) == ("work", "work")


def test_special_day_with_explicit_offset_is_an_instant() -> None:
    special = parse_special_day({"start": "2026-05-01T00:00:00Z", "end": "2026-05-01T23:59:00+00:00"}, "may")
    config = NumberTimeConfig(special_days=(special,))
    assert route(config, msk(2026, 5, 1, 2, 59)) == ("other", "other")  # 23:59 UTC on April 30
    assert route(config, msk(2026, 5, 1, 3, 0)) == ("may", "special_day")
    assert route(config, msk(2026, 5, 2, 2, 59)) == ("may", "special_day")  # 23:59 UTC
    assert route(config, msk(2026, 5, 2, 3, 0)) == ("other", "other")


def test_date_only_special_day_covers_whole_local_days() -> None:
    special = parse_special_day({"start": "2026-06-01", "end": "2026-06-02"}, "summer")
    assert special.start == date(2026, 6, 1)
    config = NumberTimeConfig(OFFICE, special_days=(special,))
    assert route(config, msk(2026, 5, 31, 23, 59)) == ("other", "other")
    assert route(config, msk(2026, 6, 1, 0, 0)) == ("summer", "special_day")
    assert route(config, msk(2026, 6, 2, 23, 59)) == ("summer", "special_day")
    assert route(config, msk(2026, 6, 3, 0, 0)) == ("other", "other")


def test_special_day_beats_extra_interval_and_schedule() -> None:
    extra = ExtraInterval("extra", frozenset(range(7)), Interval(0, 0))
    special = SpecialDay("closed", date(2026, 1, 12), date(2026, 1, 12))
    config = NumberTimeConfig(WeeklySchedule.always(), extra_intervals=(extra,), special_days=(special,))
    assert choose_route(config, msk(2026, 1, 12, 10, 0), MSK) == RouteChoice("closed", "special_day", special)
    assert route(config, msk(2026, 1, 13, 10, 0)) == ("extra", "extra_interval")


# --------------------------------------------------------------------------- production calendar


def test_production_calendar_2026() -> None:
    days = production_calendar_days(range(2026, 2027))
    assert len(days) == 118  # 365 - 247 working days, the official 2026 calendar
    for off in (
        "2026-01-01",
        "2026-01-08",
        "2026-01-09",
        "2026-02-23",
        "2026-03-09",
        "2026-05-11",
        "2026-06-12",
        "2026-11-04",
        "2026-12-31",
        "2026-01-10",
        "2026-07-05",
    ):
        assert date.fromisoformat(off) in days, off
    for work in ("2026-01-12", "2026-03-10", "2026-05-12", "2026-11-05"):
        assert date.fromisoformat(work) not in days, work
    assert all(d.year == 2026 for d in days)


def test_production_calendar_working_saturday() -> None:
    # 2025-11-01 was a working Saturday (transferred), 2025-11-03 the day off it moved to.
    assert not is_production_day_off(date(2025, 11, 1))
    assert is_production_day_off(date(2025, 11, 3))
    assert is_production_day_off(date(2025, 11, 8))  # an ordinary Saturday
    assert production_calendar_days([2024, 2025]) >= {date(2024, 12, 30), date(2025, 12, 31)}


HOLIDAY_ROUTE = SpecialDay("holiday", calendar_predefined=True)
CALENDAR = NumberTimeConfig(OFFICE, special_days=(HOLIDAY_ROUTE,))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (msk(2026, 1, 1, 11, 0), ("holiday", "special_day")),  # New Year, a Thursday
        (msk(2026, 1, 9, 11, 0), ("holiday", "special_day")),  # transferred day off, Friday
        (msk(2026, 1, 12, 11, 0), ("work", "work")),
        (msk(2026, 3, 9, 11, 0), ("holiday", "special_day")),  # Monday, Women's Day observed
        (msk(2026, 3, 10, 11, 0), ("work", "work")),
        (msk(2026, 3, 9, 0, 0), ("holiday", "special_day")),  # 2026-03-08 21:00 UTC
        (msk(2026, 3, 8, 23, 59), ("holiday", "special_day")),  # Sunday: weekends are days off too
        (msk(2025, 11, 1, 11, 0), ("other", "other")),  # working Saturday: the weekly schedule decides
        (msk(2025, 12, 31, 11, 0), ("holiday", "special_day")),  # Wednesday, transferred day off
    ],
)
def test_calendar_predefined_special_day(at: datetime, expected: tuple[str, str]) -> None:
    assert route(CALENDAR, at) == expected


def test_calendar_predefined_uses_the_domain_date() -> None:
    at = datetime(2025, 12, 31, 22, 0, tzinfo=UTC)  # 2026-01-01 01:00 in Moscow, still Dec 31 in London
    always = NumberTimeConfig(WeeklySchedule.always(), special_days=(HOLIDAY_ROUTE,))
    assert route(always, at, MSK) == ("holiday", "special_day")
    assert route(always, datetime(2025, 12, 30, 22, 0, tzinfo=UTC), "Europe/London") == ("work", "work")


def test_calendar_predefined_limited_by_dates() -> None:
    january = parse_special_day(
        {"calendar_predefined": True, "start": "2026-01-01", "end": "2026-01-31"}, "jan"
    )
    config = NumberTimeConfig(OFFICE, special_days=(january,))
    assert route(config, msk(2026, 1, 2, 11, 0)) == ("jan", "special_day")
    assert route(config, msk(2026, 2, 23, 11, 0)) == ("work", "work")  # a holiday (Monday), but outside


def test_explicit_special_day_beats_production_calendar_whatever_the_order() -> None:
    explicit = SpecialDay("duty", date(2026, 1, 2), date(2026, 1, 2))
    config = NumberTimeConfig(OFFICE, special_days=(HOLIDAY_ROUTE, explicit))
    assert route(config, msk(2026, 1, 2, 11, 0)) == ("duty", "special_day")
    assert route(config, msk(2026, 1, 3, 11, 0)) == ("holiday", "special_day")


def test_parse_calendar_predefined_without_dates() -> None:
    parsed = parse_special_day({"calendar_predefined": True, "route_id": "h"})
    assert parsed == SpecialDay("h", calendar_predefined=True)


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        ({"route_id": "r", "end": "2024-01-07T23:59:00"}, "calendar.start"),
        ({"route_id": "r", "start": "2024-01-07T23:59:00"}, "calendar.end"),
        ({"route_id": "r", "start": "2024-01-07", "end": "2024-01-06"}, "calendar.end"),
        ({"route_id": "r", "start": "2024-01-07T10:00", "end": "2024-01-07T09:00"}, "calendar.end"),
        ({"route_id": "r", "start": "07.01.2024", "end": "2024-01-08"}, "calendar.start"),
        ({"route_id": "r", "start": 20240107, "end": "2024-01-08"}, "calendar.start"),
        ({"route_id": "r", "calendar_predefined": "yes"}, "calendar.calendar_predefined"),
        (DOC_SPECIAL, "calendar.route_id"),
        (None, "calendar"),
    ],
)
def test_parse_special_day_errors(obj: object, path: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_special_day(obj)
    assert info.value.path == path


def test_parse_custom_routes() -> None:
    extras, specials = parse_custom_routes(
        [
            {
                "id": "r1",
                "name": "Третья смена",
                "interval_schedule": [{"id": "i1", **{k: DOC_INTERVAL[k] for k in ("days", "start", "end")}}],
                "calendar_schedule": [],
            },
            {
                "id": "r2",
                "name": "Праздники",
                "calendar_schedule": [{"id": "c1", "calendar_predefined": True}],
            },
        ]
    )
    assert extras == (ExtraInterval("r1", frozenset({0, 1, 2}), Interval(1140, 1380), "i1"),)
    assert specials == (SpecialDay("r2", calendar_predefined=True, id="c1"),)
    assert parse_custom_routes(None) == ((), ())
    with pytest.raises(ScheduleError) as info:
        parse_custom_routes([{"id": "r1", "interval_schedule": [{"days": ["monday"], "start": 0}]}])
    assert info.value.path == "custom_routes[0].interval_schedule[0].end"


# --------------------------------------------------------------------------- properties

ZONES = ["Europe/Moscow", "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
FIXED_ZONES = ["Europe/Moscow", "UTC", "Etc/GMT-5", "Asia/Kolkata", "Asia/Tokyo"]

instants = st.datetimes(
    min_value=datetime(2015, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
intervals = st.builds(Interval, st.integers(0, 1439), st.integers(0, 1440))
weekly = st.lists(st.lists(intervals, max_size=3).map(tuple), min_size=7, max_size=7).map(
    lambda days: WeeklySchedule(tuple(days))
)
extras = st.builds(
    ExtraInterval,
    st.sampled_from(["e1", "e2", "e3"]),
    st.frozensets(st.integers(0, 6), min_size=1),
    intervals,
)


def minute_table(spans_by_day: list[list[Interval]] | tuple[tuple[Interval, ...], ...]) -> set[int]:
    """Brute-force oracle: the set of week-minutes (weekday*1440 + minute) covered."""
    covered: set[int] = set()
    for day, spans in enumerate(spans_by_day):
        for span in spans:
            length = span.end - span.start if span.end > span.start else 1440 - span.start + span.end
            covered.update((day * 1440 + span.start + k) % (7 * 1440) for k in range(length))
    return covered


def week_minute(at: datetime, tz: str) -> int:
    local = at.astimezone(ZoneInfo(tz))
    return local.weekday() * 1440 + local.hour * 60 + local.minute


@given(weekly, instants, st.sampled_from(ZONES))
def test_weekly_matches_minute_table_oracle(schedule: WeeklySchedule, at: datetime, tz: str) -> None:
    working = week_minute(at, tz) in minute_table(schedule.days)
    assert choose_route(NumberTimeConfig(schedule), at, tz).reason == ("work" if working else "other")


@given(weekly, st.lists(extras, max_size=3), instants, st.sampled_from(ZONES))
def test_extra_intervals_match_oracle(
    schedule: WeeklySchedule, extra_list: list[ExtraInterval], at: datetime, tz: str
) -> None:
    minute = week_minute(at, tz)
    expected: tuple[str, str] | None = None
    for extra in extra_list:
        table = minute_table([[extra.interval] if d in extra.days else [] for d in range(7)])
        if minute in table:
            expected = (extra.route_id, "extra_interval")
            break
    if expected is None:
        expected = ("work", "work") if minute in minute_table(schedule.days) else ("other", "other")
    config = NumberTimeConfig(schedule, extra_intervals=tuple(extra_list))
    assert route(config, at, tz) == expected


@given(
    weekly, st.lists(extras, max_size=3), instants, st.sampled_from(ZONES), st.integers(0, 3), st.booleans()
)
def test_special_day_always_wins(
    schedule: WeeklySchedule,
    extra_list: list[ExtraInterval],
    at: datetime,
    tz: str,
    span: int,
    predefined: bool,
) -> None:
    today = at.astimezone(ZoneInfo(tz)).date()
    special = SpecialDay("special", today - timedelta(days=span), today + timedelta(days=span))
    # The production-calendar rule sits in front and may or may not match: the dated one still wins.
    rules = (HOLIDAY_ROUTE, special) if predefined else (special,)
    config = NumberTimeConfig(schedule, extra_intervals=tuple(extra_list), special_days=rules)
    assert choose_route(config, at, tz) == RouteChoice("special", "special_day", special)


@given(instants, st.sampled_from(ZONES))
def test_empty_schedule_is_always_other(at: datetime, tz: str) -> None:
    assert choose_route(NumberTimeConfig(), at, tz) == RouteChoice("other", "other")


@given(instants, st.sampled_from(ZONES), st.integers(0, 1439))
def test_round_the_clock_is_always_work(at: datetime, tz: str, start: int) -> None:
    assert choose_route(NumberTimeConfig(WeeklySchedule.always()), at, tz) == RouteChoice("work", "work")
    # start == end on every day is 24 h from start, which also covers the whole week.
    every_day = WeeklySchedule(((Interval(start, start),),) * 7)
    assert choose_route(NumberTimeConfig(every_day), at, tz).reason == "work"


# Moscow's offset is fixed since 2014-10-26 (UTC+4 before): 50 weeks either side of 2016 stays after that.
fixed_instants = st.datetimes(min_value=datetime(2016, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))


@given(weekly, st.lists(extras, max_size=2), fixed_instants, st.sampled_from(FIXED_ZONES), st.integers(-50, 50))
def test_whole_weeks_do_not_change_the_answer_in_fixed_offset_zones(
    schedule: WeeklySchedule, extra_list: list[ExtraInterval], at: datetime, tz: str, weeks: int
) -> None:
    config = NumberTimeConfig(schedule, extra_intervals=tuple(extra_list))
    assert choose_route(config, at, tz) == choose_route(config, at + timedelta(weeks=weeks), tz)


@given(weekly)
def test_dump_then_parse_round_trips(schedule: WeeklySchedule) -> None:
    assert parse_weekly(dump_weekly(schedule)) == schedule


@given(st.integers(0, 86399), st.integers(0, 86400))
def test_parsed_seconds_round_to_nearest_minute(start: int, end: int) -> None:
    span = parse_weekly({"tuesday": {"start": start, "end": end}}).days[1][0]
    assert abs(span.end * 60 - end) <= 30
    assert abs(span.start * 60 - start) <= 30 or span.start == 1439
