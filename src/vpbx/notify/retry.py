"""When a failed PBX->CRM delivery is tried again, as pure functions of the clock and a random source.

Attempt 1 goes out at once. ``history``, ``rating`` and ``webhook`` are retried for about a day;
``event`` only within five minutes of its creation (a late pop-up is useless); ``contact`` is
asked while the call rings and is never retried.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Protocol

from vpbx.notify.payloads import Command


class Outcome(StrEnum):
    SUCCESS = "success"
    RETRY = "retry"
    FINAL_FAILURE = "final_failure"


class RandomSource(Protocol):
    """Anything with ``random() -> float`` in [0, 1): ``random.Random`` or a test stub."""

    def random(self) -> float: ...


# Offsets between attempts: element k is the wait before attempt k + 1 (attempt 1: none).
DAY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
EVENT_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(seconds=15),
    timedelta(seconds=30),
    timedelta(seconds=60),
    timedelta(seconds=120),
)
EVENT_WINDOW = timedelta(minutes=5)

SCHEDULES: Mapping[Command, tuple[timedelta, ...]] = {
    "history": DAY_SCHEDULE,
    "rating": DAY_SCHEDULE,
    "webhook": DAY_SCHEDULE,
    "event": EVENT_SCHEDULE,
    "contact": (timedelta(0),),
}

JITTER = 0.1
SWITCH_OFF_AFTER = timedelta(days=5)

_RETRYABLE_4XX = frozenset({408, 429})
_DEFAULT_RNG = random.Random()


def classify_outcome(status: int | None, error: str | None = None) -> Outcome:
    """SUCCESS on 2xx; RETRY on transport errors, 408, 429 and 5xx; FINAL_FAILURE on other 4xx.

    ``error`` (timeout, refused connection, TLS failure ...) means no usable answer came back.
    3xx is final: redirects are not followed, so the configured URL is wrong until someone fixes it.
    """
    if error is not None or status is None:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status in _RETRYABLE_4XX or 500 <= status < 600:
        return Outcome.RETRY
    if 300 <= status < 500:
        return Outcome.FINAL_FAILURE
    return Outcome.RETRY  # 1xx or a nonsense code: a broken hop, worth another try


def max_attempts(command: Command) -> int:
    return len(SCHEDULES[command])


def schedule_end(command: Command, created_at: datetime) -> datetime:
    """The latest moment the schedule means to try; a Retry-After never pushes past it."""
    if command == "event":
        return created_at + EVENT_WINDOW
    return created_at + sum(SCHEDULES[command], timedelta(0))


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """``Retry-After`` as delay-seconds or an HTTP-date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # RFC 9110 dates are GMT; "-0000" parses naive
    return max(when - now, timedelta(0))


def jittered(delay: timedelta, rng: RandomSource) -> timedelta:
    """``delay`` scaled by a factor in [1 - JITTER, 1 + JITTER], spreading retries of a burst."""
    factor = 1 + JITTER * (2 * rng.random() - 1)
    return delay * factor


def _aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def next_attempt_at(
    command: Command,
    attempt_no: int,
    created_at: datetime,
    now: datetime,
    retry_after: str | None = None,
    rng: RandomSource | None = None,
) -> datetime | None:
    """When to try again after attempt ``attempt_no`` (1-based) failed at ``now``; None = give up."""
    if attempt_no < 1:
        raise ValueError("attempt_no counts from 1")
    _aware(created_at, "created_at")
    _aware(now, "now")
    schedule = SCHEDULES[command]
    if attempt_no >= len(schedule):
        return None
    delay = jittered(schedule[attempt_no], rng or _DEFAULT_RNG)
    due = now + delay
    end = schedule_end(command, created_at)
    asked = parse_retry_after(retry_after, now)
    if asked is not None and asked > delay:
        # The CRM asked for more time; honour it, but not beyond the schedule's end.
        due = max(due, min(now + asked, end))
    if command == "event" and due > end:
        return None
    return due


def should_switch_off(
    first_failure_at: datetime | None, last_success_at: datetime | None, now: datetime
) -> bool:
    """True once an integration has failed for SWITCH_OFF_AFTER with no success since the streak began."""
    if first_failure_at is None:
        return False
    if last_success_at is not None and last_success_at >= first_failure_at:
        return False
    return now - first_failure_at >= SWITCH_OFF_AFTER
