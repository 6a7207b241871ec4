"""When a failed PBX->CRM delivery is tried again, as pure functions of the clock and a random source.

Every answer but 2xx is retried, except 410 Gone (the CRM says "stop"); redirects are not followed,
so a 3xx is retried like any other failure until the URL is fixed. Attempt 1 goes out at once.

* ``history`` and ``rating`` back off to once an hour and are kept while the CRM fails as a whole:
  after ``Policy.keep`` (default 5 days) of failures with no success the integration is switched off
  and what is pending waits for it to be switched back on. A push the CRM keeps refusing while it
  accepts others gives up once it is ``keep`` old.
* ``webhook`` (a subscription's own URL) backs off the same way and gives up once ``keep`` old.
* ``event`` lives ``Policy.event_ttl`` (default 5 minutes) from its creation: a late pop-up is useless.
* ``contact`` is asked while the call rings and is never retried.

A CRM that comes back is not left waiting for the back-off: the dispatcher probes a failing CRM every
``Policy.probe_every`` and one success ends the back-off of all its pending pushes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Protocol

from vpbx.notify.payloads import Command


class Outcome(StrEnum):
    SUCCESS = "success"
    RETRY = "retry"
    FINAL_FAILURE = "final_failure"


class RandomSource(Protocol):
    """Anything with ``random() -> float`` in [0, 1): ``random.Random`` or a test stub."""

    def random(self) -> float: ...


# Offsets between attempts: element k is the wait before attempt k + 1 (attempt 1: none); the last
# element repeats for as long as the notification is kept.
DAY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
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
KEEP = timedelta(days=5)
PROBE_EVERY = timedelta(seconds=30)
RETRY_AFTER_CAP = timedelta(days=1)  # a Retry-After longer than this is read as this

SCHEDULES: Mapping[Command, tuple[timedelta, ...]] = {
    "history": DAY_SCHEDULE,
    "rating": DAY_SCHEDULE,
    "webhook": DAY_SCHEDULE,
    "event": EVENT_SCHEDULE,
    "contact": (timedelta(0),),
}

JITTER = 0.1
SWITCH_OFF_AFTER = KEEP
KEPT: frozenset[str] = frozenset({"history", "rating"})  # kept while the CRM fails as a whole

_DEFAULT_RNG = random.Random()


@dataclass(frozen=True, slots=True)
class Policy:
    """The delivery policy's settings (``notify_event_ttl``, ``notify_keep_days``, ``notify_probe_interval``)."""

    event_ttl: timedelta = EVENT_WINDOW
    keep: timedelta = KEEP  # history/rating are kept, and a failing CRM switched off, after this
    probe_every: timedelta = PROBE_EVERY

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        return cls(timedelta(seconds=settings.notify_event_ttl), timedelta(days=settings.notify_keep_days),
                   timedelta(seconds=settings.notify_probe_interval))


DEFAULT_POLICY = Policy()


def classify_outcome(status: int | None, error: str | None = None) -> Outcome:
    """SUCCESS on 2xx; FINAL_FAILURE on 410 Gone; RETRY on anything else.

    ``error`` (timeout, refused connection, TLS failure ...) means no usable answer came back. A 4xx
    is retried too: a CRM mid-deploy answers 404 or 401 for a while, and losing a call record to that
    is worse than asking again. A 3xx is retried (redirects are not followed): the URL may be fixed.
    """
    if error is not None or status is None:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status == 410:
        return Outcome.FINAL_FAILURE
    return Outcome.RETRY


def max_attempts(command: Command) -> int | None:
    """How many attempts the schedule allows; None: no count limit (kept by age instead)."""
    return len(SCHEDULES[command]) if command in ("event", "contact") else None


def schedule_end(command: Command, created_at: datetime, policy: Policy = DEFAULT_POLICY) -> datetime | None:
    """The latest moment the schedule means to try (a Retry-After never pushes past it); None: no end
    of its own (history and rating stop when the integration is switched off)."""
    if command == "event":
        return created_at + policy.event_ttl
    if command == "contact":
        return created_at
    if command in KEPT:
        return None
    return created_at + policy.keep


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
    policy: Policy = DEFAULT_POLICY,
) -> datetime | None:
    """When to try again after attempt ``attempt_no`` (1-based) failed at ``now``; None = give up."""
    if attempt_no < 1:
        raise ValueError("attempt_no counts from 1")
    _aware(created_at, "created_at")
    _aware(now, "now")
    schedule = SCHEDULES[command]
    if command in ("event", "contact") and attempt_no >= len(schedule):
        return None
    delay = jittered(schedule[min(attempt_no, len(schedule) - 1)], rng or _DEFAULT_RNG)
    due = now + delay
    end = schedule_end(command, created_at, policy)
    asked = parse_retry_after(retry_after, now)
    if asked is not None and asked > delay:
        # The CRM asked for more time; honour it, but not beyond the schedule's end (nor a day).
        asked_due = now + min(asked, RETRY_AFTER_CAP)
        due = max(due, asked_due if end is None else min(asked_due, end))
    if end is not None and due > end:
        return None
    return due


def gives_up(command: Command, created_at: datetime, now: datetime, last_success_at: datetime | None,
             policy: Policy = DEFAULT_POLICY) -> bool:
    """A kept push (history, rating) still failing once ``keep`` old gives up only when the CRM has
    accepted something since it was made: then the CRM refuses this push, it is not down."""
    return (command in KEPT and now - created_at >= policy.keep and last_success_at is not None
            and last_success_at > created_at)


def should_switch_off(
    first_failure_at: datetime | None, last_success_at: datetime | None, now: datetime,
    after: timedelta = SWITCH_OFF_AFTER,
) -> bool:
    """True once an integration has failed for ``after`` with no success since the streak began."""
    if first_failure_at is None:
        return False
    if last_success_at is not None and last_success_at >= first_failure_at:
        return False
    return now - first_failure_at >= after
