"""Retry policy: outcome classes, the schedules, Retry-After, jitter and the 5-day switch-off."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpbx.notify.payloads import Command
from vpbx.notify.retry import (
    EVENT_WINDOW,
    JITTER,
    SWITCH_OFF_AFTER,
    Outcome,
    Policy,
    classify_outcome,
    gives_up,
    jittered,
    max_attempts,
    next_attempt_at,
    parse_retry_after,
    schedule_end,
    should_switch_off,
)

T0 = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)


class Fixed:
    """A random source that always answers the same number."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


MID = Fixed(0.5)  # jitter factor exactly 1.0
LOW = Fixed(0.0)  # factor 0.9
HIGH = Fixed(0.999999999)  # factor just under 1.1


# --- outcomes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (200, None, Outcome.SUCCESS),
        (201, None, Outcome.SUCCESS),
        (204, None, Outcome.SUCCESS),
        (299, None, Outcome.SUCCESS),
        (None, "timeout", Outcome.RETRY),
        (None, "connection refused", Outcome.RETRY),
        (None, None, Outcome.RETRY),
        (200, "read timeout after headers", Outcome.RETRY),
        (408, None, Outcome.RETRY),
        (429, None, Outcome.RETRY),
        (500, None, Outcome.RETRY),
        (502, None, Outcome.RETRY),
        (503, None, Outcome.RETRY),
        (504, None, Outcome.RETRY),
        (599, None, Outcome.RETRY),
        # Every non-2xx answer is retried (a CRM mid-deploy answers 404 or 401 for a while) except 410.
        (400, None, Outcome.RETRY),
        (401, None, Outcome.RETRY),
        (403, None, Outcome.RETRY),
        (404, None, Outcome.RETRY),
        (405, None, Outcome.RETRY),
        (410, None, Outcome.FINAL_FAILURE),
        (413, None, Outcome.RETRY),
        (422, None, Outcome.RETRY),
        (301, None, Outcome.RETRY),
        (302, None, Outcome.RETRY),
        (100, None, Outcome.RETRY),
        (999, None, Outcome.RETRY),
    ],
)
def test_classify_outcome(status: int | None, error: str | None, expected: Outcome) -> None:
    assert classify_outcome(status, error) is expected


# --- schedules ---------------------------------------------------------------------------------

DAY_DELAYS = [5 * S, 30 * S, 2 * M, 5 * M, 15 * M, 30 * M, H, H, H]


@pytest.mark.parametrize("command", ["history", "rating", "webhook"])
@pytest.mark.parametrize(("attempt_no", "delay"), list(enumerate(DAY_DELAYS, start=1)))
def test_day_schedule(command: Command, attempt_no: int, delay: timedelta) -> None:
    now = T0 + 3 * H  # the wait counts from the failure, not from creation
    assert next_attempt_at(command, attempt_no, T0, now, None, MID) == now + delay


@pytest.mark.parametrize("command", ["history", "rating"])
def test_kept_pushes_never_give_up_by_count_or_age(command: Command) -> None:
    assert max_attempts(command) is None
    assert schedule_end(command, T0) is None
    assert next_attempt_at(command, 500, T0, T0 + 30 * D, None, MID) == T0 + 30 * D + H


def test_webhook_gives_up_once_kept_five_days() -> None:
    assert schedule_end("webhook", T0) == T0 + 5 * D
    assert next_attempt_at("webhook", 50, T0, T0 + 5 * D - 2 * H, None, MID) == T0 + 5 * D - H
    assert next_attempt_at("webhook", 51, T0, T0 + 5 * D - 30 * M, None, MID) is None
    assert next_attempt_at("webhook", 51, T0, T0 + 2 * D, None, MID, Policy(keep=D)) is None


def test_day_schedule_backs_off_to_hourly() -> None:
    now = T0
    for attempt_no in range(1, 40):
        nxt = next_attempt_at("history", attempt_no, T0, now, None, MID)
        assert nxt is not None
        assert nxt - now <= H
        now = nxt
    assert now - T0 == 5 * S + 30 * S + 2 * M + 5 * M + 15 * M + 30 * M + 33 * H


@pytest.mark.parametrize(
    ("created", "now", "last_success", "expected"),
    [
        (T0, T0 + 5 * D, T0 + D, True),  # the CRM accepted others since: this push is refused, it gives up
        (T0, T0 + 5 * D - S, T0 + D, False),  # younger than the window
        (T0, T0 + 9 * D, None, False),  # the CRM never answered: kept (the switch-off handles it)
        (T0, T0 + 9 * D, T0 - S, False),  # no success since it was made: the CRM is down, not refusing it
    ],
)
def test_a_kept_push_gives_up_only_when_the_crm_accepts_others(created: datetime, now: datetime,
                                                                 last_success: datetime | None, expected: bool) -> None:
    assert gives_up("history", created, now, last_success) is expected
    assert not gives_up("event", created, now, last_success)


@pytest.mark.parametrize("attempt_no", [1, 2, 5])
def test_contact_is_never_retried(attempt_no: int) -> None:
    assert max_attempts("contact") == 1
    assert next_attempt_at("contact", attempt_no, T0, T0 + S, None, MID) is None
    assert next_attempt_at("contact", attempt_no, T0, T0 + S, "1", MID) is None


@pytest.mark.parametrize(
    ("attempt_no", "delay"), [(1, 5 * S), (2, 15 * S), (3, 30 * S), (4, 60 * S), (5, 120 * S)]
)
def test_event_schedule(attempt_no: int, delay: timedelta) -> None:
    now = T0 + 10 * S
    assert next_attempt_at("event", attempt_no, T0, now, None, MID) == now + delay


def test_event_gives_up_after_its_schedule() -> None:
    assert next_attempt_at("event", 6, T0, T0 + M, None, MID) is None


@pytest.mark.parametrize(
    ("attempt_no", "now", "expected"),
    [
        (1, T0 + 4 * M + 50 * S, T0 + 4 * M + 55 * S),
        (1, T0 + 4 * M + 55 * S, T0 + 5 * M),  # lands exactly on the cut-off: still useful
        (1, T0 + 4 * M + 56 * S, None),
        (2, T0 + 4 * M + 50 * S, None),
        (5, T0 + 3 * M, T0 + 5 * M),
        (5, T0 + 3 * M + S, None),
        (1, T0 + 6 * M, None),  # the first send itself was late
    ],
)
def test_event_five_minute_cut_off(attempt_no: int, now: datetime, expected: datetime | None) -> None:
    assert EVENT_WINDOW == 5 * M
    assert next_attempt_at("event", attempt_no, T0, now, None, MID) == expected


def test_event_cut_off_is_from_creation_not_from_the_first_failure() -> None:
    created = T0 - 4 * M - 58 * S
    assert next_attempt_at("event", 1, created, T0, None, MID) is None
    assert next_attempt_at("history", 1, created, T0, None, MID) == T0 + 5 * S


# --- Retry-After -------------------------------------------------------------------------------


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


@pytest.mark.parametrize(
    ("command", "attempt_no", "now", "retry_after", "expected"),
    [
        # Larger than the scheduled 5 s: honoured, both spellings.
        ("history", 1, T0, "120", T0 + 120 * S),
        ("history", 1, T0, http_date(T0 + 120 * S), T0 + 120 * S),
        # Smaller than the schedule: the schedule wins.
        ("history", 4, T0, "60", T0 + 5 * M),
        ("history", 4, T0, http_date(T0 + 60 * S), T0 + 5 * M),
        ("history", 1, T0, "0", T0 + 5 * S),
        # A date already past asks for nothing.
        ("history", 1, T0, http_date(T0 - H), T0 + 5 * S),
        # Unreadable values are ignored.
        ("history", 1, T0, "soon", T0 + 5 * S),
        ("history", 1, T0, "-30", T0 + 5 * S),
        ("history", 1, T0, "1.5", T0 + 5 * S),
        ("history", 1, T0, "", T0 + 5 * S),
        ("history", 1, T0, " 120 ", T0 + 120 * S),
        # Kept pushes have no end: a Retry-After is honoured up to a day.
        ("history", 1, T0, str(7 * 24 * 3600), T0 + 24 * H),
        ("rating", 2, T0 + H, http_date(T0 + 30 * 24 * H), T0 + 25 * H),
        # A webhook's is capped at its end (created + 5 days).
        ("webhook", 7, T0 + 4 * D + 12 * H, "999999", T0 + 5 * D),
        # Events: capped at the five-minute window, and never beyond.
        ("event", 1, T0 + 10 * S, "30", T0 + 40 * S),
        ("event", 1, T0 + 10 * S, "3600", T0 + 5 * M),
        ("event", 1, T0 + 10 * S, http_date(T0 + H), T0 + 5 * M),
    ],
)
def test_retry_after(
    command: Command, attempt_no: int, now: datetime, retry_after: str, expected: datetime | None
) -> None:
    assert next_attempt_at(command, attempt_no, T0, now, retry_after, MID) == expected


def test_retry_after_is_not_jittered() -> None:
    for rng in (LOW, HIGH):
        assert next_attempt_at("history", 1, T0, T0, "600", rng) == T0 + 600 * S


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("0", timedelta(0)),
        ("120", 120 * S),
        ("86400", 24 * H),
        ("Mon, 12 Jan 2026 09:02:00 GMT", 2 * M),
        ("Mon, 12 Jan 2026 09:02:00 -0000", 2 * M),
        ("Mon, 12 Jan 2026 12:02:00 +0300", 2 * M),
        ("Mon, 12 Jan 2026 08:00:00 GMT", timedelta(0)),
        ("Monday, 12-Jan-26 09:02:00 GMT", 2 * M),  # obsolete RFC 850 form, still to be accepted
        ("tomorrow", None),
        ("12e3", None),
        ("١٢٣", None),  # non-ASCII digits
        ("", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(value, T0) == expected


# --- jitter ------------------------------------------------------------------------------------


def test_jitter_extremes() -> None:
    assert jittered(100 * S, LOW) == 90 * S
    assert jittered(100 * S, MID) == 100 * S
    # timedelta keeps microseconds, so "just under 1.1" may round onto the bound.
    assert 109.99 * S < jittered(100 * S, HIGH) <= 110 * S


@given(
    attempt_no=st.integers(min_value=1, max_value=7),
    draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    offset=st.integers(min_value=0, max_value=3 * 24 * 3600),
)
def test_jitter_stays_within_ten_percent(attempt_no: int, draw: float, offset: int) -> None:
    now = T0 + offset * S
    due = next_attempt_at("history", attempt_no, T0, now, None, Fixed(draw))
    assert due is not None
    base = DAY_DELAYS[min(attempt_no, len(DAY_DELAYS)) - 1]
    assert base * (1 - JITTER) <= due - now <= base * (1 + JITTER)


@given(seed=st.integers(), attempt_no=st.integers(min_value=1, max_value=5))
def test_jitter_with_a_real_generator(seed: int, attempt_no: int) -> None:
    base = [5 * S, 15 * S, 30 * S, 60 * S, 120 * S][attempt_no - 1]
    due = next_attempt_at("event", attempt_no, T0, T0, None, random.Random(seed))
    assert due is not None
    assert base * 0.9 <= due - T0 <= base * 1.1


def test_jitter_spreads_a_burst() -> None:
    rng = random.Random(7)
    dues = {next_attempt_at("history", 4, T0, T0, None, rng) for _ in range(50)}
    assert len(dues) > 40


def test_default_rng_is_used_when_none_given() -> None:
    due = next_attempt_at("history", 4, T0, T0)
    assert due is not None
    assert 4.5 * M <= due - T0 <= 5.5 * M


# --- arguments ---------------------------------------------------------------------------------


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        next_attempt_at("history", 0, T0, T0, None, MID)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_attempt_at("history", 1, T0.replace(tzinfo=None), T0, None, MID)
    with pytest.raises(ValueError, match="aware"):
        next_attempt_at("history", 1, T0, T0.replace(tzinfo=None), None, MID)


def test_other_timezones_compare_as_instants() -> None:
    moscow = timezone(timedelta(hours=3))
    now = (T0 + 4 * M + 50 * S).astimezone(moscow)
    assert next_attempt_at("event", 1, T0, now, None, MID) == T0 + 4 * M + 55 * S


# --- switch-off --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_failure_at", "last_success_at", "now", "expected"),
    [
        (None, None, T0, False),
        (None, T0 - D, T0 + 30 * D, False),
        (T0, None, T0 + 5 * D - S, False),
        (T0, None, T0 + 5 * D, True),
        (T0, None, T0 + 9 * D, True),
        (T0, T0 - D, T0 + 5 * D, True),  # the success came before the streak
        (T0, T0 + D, T0 + 9 * D, False),  # a success since resets it
        (T0, T0, T0 + 9 * D, False),
    ],
)
def test_should_switch_off(
    first_failure_at: datetime | None, last_success_at: datetime | None, now: datetime, expected: bool
) -> None:
    assert SWITCH_OFF_AFTER == 5 * D
    assert should_switch_off(first_failure_at, last_success_at, now) is expected
