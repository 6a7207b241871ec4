"""The delivery log's retention: notifications delivered or failed, with their attempts, are forgotten once older
than ``notify_retention_days`` (default 30; 0 keeps them forever). Without it the log grows for ever: a busy node's
26 pushes a second are two million rows a day, with their bodies.

A sweep runs a minute after the start, then every hour of the clock (a virtual clock's advance runs them too). It
deletes in small transactions, each a walk of the primary key from the oldest row (``repositories.outbox
.forget_settled``): on SQLite a step holds the writer turn for a few milliseconds, and a pause follows each step
that deleted, so calls and the API go on meanwhile even while years of log are caught up. A pending notification
is never forgotten, however old. Every node that delivers sweeps; the deletes are idempotent."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from vpbx.clock import Timer
from vpbx.metrics import NOTIFY_FORGOTTEN
from vpbx.runtime import Runtime
from vpbx.store.repositories import outbox as repo

log = logging.getLogger("vpbx.notify")

FIRST_SWEEP = 60.0  # seconds after the start: a server restarted often still sweeps
EVERY = 3600.0
BATCH = 256  # rows looked at per transaction
# Between two steps that deleted rows: a log that has years to catch up (the first sweep after an upgrade) is
# forgotten at about 18k rows a second (a step of 256 is 3-4 ms on SQLite), a quarter of the loop, not all of it.
PAUSE = 0.01


class Retention:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._timer: Timer | None = None
        self._stopped = False

    def start(self) -> None:
        if self.runtime.settings.notify_retention_days > 0:
            self._timer = self.runtime.clock.call_later(FIRST_SWEEP, self._on_timer)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _on_timer(self) -> None:
        self._timer = None
        if self._stopped:
            return
        try:
            await self.sweep()
        except Exception:  # the next sweep tries again; nothing pending is ever at stake
            log.exception("the delivery log's retention sweep failed")
        if not self._stopped:
            self._timer = self.runtime.clock.call_later(EVERY, self._on_timer)

    async def sweep(self) -> int:
        """Forget every settled notification older than the retention; returns how many."""
        days = self.runtime.settings.notify_retention_days
        if days <= 0:
            return 0
        before = self.runtime.clock.now() - timedelta(days=days)
        after, total, over = 0, 0, False
        while not over and not self._stopped:
            async with self.runtime.sessions() as session:
                deleted, after, over = await repo.forget_settled(session, after=after, before=before, batch=BATCH)
                await session.commit()
            total += deleted
            await asyncio.sleep(PAUSE if deleted else 0)  # the loop's other work between steps
        if total:
            NOTIFY_FORGOTTEN.inc(total)
            log.info("forgot %d settled notifications older than %g days", total, days,
                     extra={"forgotten": total, "retention_days": days})
        return total
