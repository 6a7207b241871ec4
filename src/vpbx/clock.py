"""The one injectable clock: every timestamp and timer in vpbx comes from here.

``RealClock`` follows wall time; ``VirtualClock`` moves only when advanced, running
due timers in order, so tests and the simulator play calls fast and deterministically.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from vpbx.tasks import spawn

TimerCallback = Callable[[], Awaitable[None] | None]
log = logging.getLogger("vpbx.clock")


class Clock(Protocol):
    virtual: bool

    def now(self) -> datetime: ...

    def call_later(self, delay: float, callback: TimerCallback) -> Timer: ...

    async def sleep(self, seconds: float) -> None: ...


@dataclass(order=True)
class Timer:
    due: datetime
    seq: int
    callback: TimerCallback = field(compare=False)
    cancelled: bool = field(default=False, compare=False)
    handle: asyncio.TimerHandle | None = field(default=None, compare=False)

    def cancel(self) -> None:
        self.cancelled = True
        if self.handle is not None:
            self.handle.cancel()


async def _run(callback: TimerCallback) -> None:
    """Run a timer's callback. Nobody awaits a timer, so a failure is logged here: it never ends as an
    "exception was never retrieved" in a task, nor stops a virtual clock's advance before the next timer."""
    try:
        result = callback()
        if result is not None:
            await result
    except Exception:
        log.exception("a timer's callback failed")


class RealClock:
    virtual = False

    def __init__(self) -> None:
        self._seq = itertools.count()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def call_later(self, delay: float, callback: TimerCallback) -> Timer:
        timer = Timer(self.now() + timedelta(seconds=delay), next(self._seq), callback)

        def fire() -> None:
            if timer.cancelled:
                return
            spawn(_run(callback), name="vpbx-timer")

        timer.handle = asyncio.get_running_loop().call_later(max(delay, 0.0), fire)
        return timer

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class VirtualClock:
    """Time stands still until ``advance``; timers run in due order, ties in creation order."""

    virtual = True

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
        # (due, seq, timer): the heap compares plain tuples, not the dataclass (a call sets a dozen timers)
        self._timers: list[tuple[datetime, int, Timer]] = []
        self._seq = itertools.count()
        self._lock = asyncio.Lock()

    def now(self) -> datetime:
        return self._now

    def call_later(self, delay: float, callback: TimerCallback) -> Timer:
        timer = Timer(self._now + timedelta(seconds=max(delay, 0.0)), next(self._seq), callback)
        heapq.heappush(self._timers, (timer.due, timer.seq, timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        done = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        self.call_later(seconds, wake)
        await done

    async def advance(self, seconds: float) -> datetime:
        """Run every timer due within ``seconds``, in order, then settle at the end time."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            end = self._now + timedelta(seconds=seconds)
            while self._timers and self._timers[0][0] <= end:
                timer = heapq.heappop(self._timers)[2]
                if timer.cancelled:
                    continue
                self._now = max(self._now, timer.due)
                await _run(timer.callback)
                # Let tasks woken by this timer (sleepers) run before the next one fires. asyncio's loop shows
                # what is ready to run; when nothing is, the three spins (each an epoll) are skipped.
                ready = getattr(loop, "_ready", None)
                for _ in range(3):
                    if ready is not None and not ready:
                        break
                    await asyncio.sleep(0)
            self._now = end
            return self._now

    def set(self, at: datetime) -> None:
        if at < self._now:
            raise ValueError("a virtual clock never goes back")
        self._now = at


def make_clock(kind: str) -> RealClock | VirtualClock:
    return VirtualClock() if kind == "virtual" else RealClock()
