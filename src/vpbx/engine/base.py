"""The engine's core under its flows: the live calls' state, timers on the one clock, and the write batch.

Every step of a call queues its notifications here and a finished call its history; one flush writes all that is
queued in one transaction (group commit), fenced in a cluster (``self.fence``), retried until the store takes it.
The flows (``vpbx.engine.flows``) are mixins over this class; ``vpbx.engine.core.CallEngine`` combines them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.engine import durable, records
from vpbx.engine.config import ENGINE_WRITES, ConfigCache
from vpbx.engine.model import Call, Leg
from vpbx.metrics import ENGINE_WRITE_FAILURES
from vpbx.notify import service as notifier
from vpbx.notify.payloads import CallStatus, EventNotice, EventType, HistoryNotice, Notice
from vpbx.runtime import Runtime
from vpbx.services import numbers
from vpbx.services import settings as settings_service
from vpbx.store import db
from vpbx.store.repositories import calls as calls_repo
from vpbx.store.repositories import engine_writes as writes_repo
from vpbx.store.tables import Domain, Group, Integration, User
from vpbx.tasks import spawn

log = logging.getLogger("vpbx.engine")

FLUSH_LINGER = 0.005  # seconds the real clock waits for more steps before a flush
FLUSH_QUEUE = 2000  # queued steps that start a flush at once
# A failed write batch is never dropped: it is tried again (with whatever was queued since) after a back-off
# doubling from WRITE_RETRY_FIRST to WRITE_RETRY_MAX seconds of real time (the store's outage is real time).
WRITE_RETRY_FIRST = 0.05
WRITE_RETRY_MAX = 5.0
WRITE_CONNECTIONS = 2  # the engine's own connection budget: request bursts cannot starve its writes
BEAT_SECONDS = 5.0  # live calls' "last known moment" (engine.recovery) is refreshed at least this often
# Outgoing outcomes that count as "employees called and could not reach the client" (4.2 missedStatus 4).
UNREACHED = frozenset({CallStatus.MISSED, CallStatus.BUSY, CallStatus.NOT_AVAILABLE, CallStatus.CANCEL})


class CallError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class EngineBase:
    """State and plumbing every flow shares (``CallEngine`` is the class to use)."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.live: dict[str, Call] = {}
        self.ended: OrderedDict[str, Call] = OrderedDict()
        self.busy: set[tuple[int, str]] = set()
        # Write-behind with group commit (performance.md "batch writes"): every step queues its outbox
        # rows and finished calls here; one flush writes all that is queued in ONE transaction. Flushes
        # start as soon as something is queued; simulator requests await ``flush()`` before answering.
        self._queue: list[_Write] = []
        self._flush_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self.last_answered: dict[int, int] = {}  # department pk -> user id (EVENLY), ahead of the store
        self.config = ConfigCache(runtime)
        self._write_engine = writes_repo.write_pool(runtime.engine.url, WRITE_CONNECTIONS)
        self._writes = db.session_factory(self._write_engine) if self._write_engine is not None else runtime.sessions
        self._beat_at: datetime | None = None  # the last beat written (clock time)
        self._beating = False  # a real-clock timer keeps the beat while calls are live
        self._closed = False
        # A cluster's fencing (vpbx.cluster.ownership.check): run in every write transaction, refuses (durable.Fenced)
        # domains another node owns now. None on a one-process store: no cost.
        self.fence: Callable[[AsyncSession, set[int]], Awaitable[None]] | None = None
        self.callbacks: Any = None  # a cluster's stored callbacks (vpbx.cluster.callbacks.Callbacks)
        attach = getattr(runtime.telephony, "attach", None)
        if attach is not None:
            try:
                attach(self, runtime.clock)
            except TypeError:
                attach(self)

    if TYPE_CHECKING:  # the flows' steps this module and the other flows call (``vpbx.engine.core`` has them all)
        def current(self, domain_id: int, callid: str) -> Call: ...
        def _go_live(self, call: Call) -> None: ...
        def _keep(self, call: Call) -> None: ...
        async def _finish(self, call: Call, status: CallStatus) -> None: ...
        def _event(self, call: Call, kind: EventType, leg: Leg, second_callid: str | None = None) -> EventNotice: ...
        async def _route(self, call: Call, target: numbers.Target) -> None: ...
        async def _ring_group(self, call: Call, group_id: str) -> None: ...
        async def _group_timeout(self, call: Call, group: Group) -> None: ...
        async def _fail_over(self, call: Call) -> None: ...
        async def _external_failed(self, call: Call) -> None: ...
        async def _offer_lapsed(self, call: Call, group: Group) -> None: ...
        def _schedule_callback(self, domain_id: int, domain_name: str, timezone: str, *, client: str, clid: str,
                               group_id: str, origin: str, attempt: int, delay: float | None = None,
                               key: str = "") -> None: ...
        async def internal(self, domain: Domain, from_login: str, to: str, *, consult_for: str = "") -> Call: ...
        async def outgoing(self, domain: Domain, who: str, to: str, *, consult_for: str = "") -> Call: ...
        async def make_call(self, domain: Domain, number: str, *, clid: str, user: User | None = None,
                            group: Group | None = None, show_phone: bool = False, callback_of: str = "",
                            attempt: int = 0) -> Call: ...
        async def _write_internal(self, session: AsyncSession, call: Call, status: CallStatus,
                                  record: settings_service.RecordConfig) -> None: ...
        async def _write_incoming(self, session: AsyncSession, call: Call, status: CallStatus,
                                  notices: list[Notice], record: settings_service.RecordConfig,
                                  rotation: dict[int, int], history: list[dict[str, Any]]) -> None: ...
        async def _write_outgoing(self, session: AsyncSession, call: Call, status: CallStatus,
                                  notices: list[Notice], record: settings_service.RecordConfig,
                                  history: list[dict[str, Any]]) -> None: ...

    # --- helpers ----------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.rt.clock.now()

    def _hear(self, call: Call, prompt: str, file: str | None = None) -> None:
        """The caller hears ``prompt`` now (greeting, menu, voicemail, closed, busy, rating, callback, holdmusic;
        ``file``: a catalogue file's id instead of the default). A port with media plays it (SIP through
        rtpengine); the simulator has no audio: its ``announcements`` say what the client was told."""
        hear = getattr(self.rt.telephony, "prompt", None)
        if hear is not None:
            hear(call.domain_id, call.callid, prompt, file)

    def _later(self, call: Call, delay: float, fn: Callable[[], Awaitable[None]]) -> None:
        async def fire() -> None:
            async with call.lock:
                if call.state in ("ended", "refused"):
                    return
                await fn()

        call.timers.append(self.rt.clock.call_later(delay, fire))

    async def _commit_notices(self, call: Call, notices: list[Notice]) -> None:
        if notices:
            self._queue.append(_Write(call, notices, None, self.now()))
            self._kick()

    def _kick(self) -> None:
        """Start a flush soon: on the real clock after a short linger (steps of concurrent calls share the
        transaction); on the virtual clock the request that moved the clock flushes when it is done, so only
        a long queue starts one early."""
        if self.rt.clock.virtual and len(self._queue) < FLUSH_QUEUE:
            return
        if self._flusher is None or self._flusher.done():
            self._flusher = spawn(self._flush_soon(), name="vpbx-engine-flush")

    async def _flush_soon(self) -> None:
        if not self.rt.clock.virtual:
            await asyncio.sleep(FLUSH_LINGER)
        await self.flush()

    async def flush(self) -> None:
        """Write everything queued so far (group commit); returns when it is committed. A failed batch is tried
        again, with the steps queued meanwhile, until the store takes it: calls go on, nothing is dropped."""
        async with self._flush_lock:
            delay = WRITE_RETRY_FIRST
            while self._queue or self._beat_due():
                batch, self._queue = self._queue, []
                try:
                    await self._write_batch(batch)
                except durable.Fenced as exc:  # another node owns these domains now: their state is given up
                    self._queue = [w for w in batch + self._queue if w.call.domain_id not in exc.domains]
                    durable.forget(self, exc.domains)
                    log.warning("fenced: gave up domains %s", sorted(exc.domains),
                                extra={"domains": sorted(exc.domains)})
                except Exception as exc:
                    self._queue = batch + self._queue  # in order: a call's steps stay behind its earlier ones
                    ENGINE_WRITE_FAILURES.inc()
                    log.error("writing %d call steps failed, trying again in %.2f s", len(batch), delay,
                              exc_info=exc, extra={"steps": len(batch), "retry_in": delay})
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, WRITE_RETRY_MAX)
                else:
                    delay = WRITE_RETRY_FIRST

    def _beat_due(self) -> bool:
        if not self.live:
            return False
        return self._beat_at is None or (self.now() - self._beat_at).total_seconds() >= BEAT_SECONDS

    def _durable(self, call: Call) -> None:
        """The PBX accepted the call: it is written (``live_calls``) before the simulator answers, so that a
        crash from now on ends it (``engine.recovery``) instead of losing it."""
        self._queue.append(_Write(call, [], None, self.now()))
        self._kick()
        if not self._beating and not self.rt.clock.virtual:  # the virtual clock beats as requests flush
            self._beating = True
            self.rt.clock.call_later(BEAT_SECONDS, self._beat)

    async def _beat(self) -> None:
        """Long conversations write nothing: refresh the domains' last known moment while calls are live."""
        if not self.live or self._closed:
            self._beating = False
            return
        self.rt.clock.call_later(BEAT_SECONDS, self._beat)
        if self._flusher is None or self._flusher.done():
            self._flusher = spawn(self.flush(), name="vpbx-engine-flush")

    def _live_state(self, batch: list[_Write], now: datetime, *, beat_all: bool) -> tuple[
            list[dict[str, Any]], list[str], set[int]]:
        """The batch's calls as ``live_calls`` rows to write, the callids to forget (ended), and the domains whose
        beat moves. Taken before the batch's first await: a call's state then matches the steps queued so far,
        which are all in this batch (a retried batch takes in the steps queued meanwhile)."""
        calls = {w.call.callid: w.call for w in batch}
        rows: list[dict[str, Any]] = []
        ended: list[str] = []
        domains: set[int] = set()
        for callid, call in calls.items():
            domains.add(call.domain_id)
            if call.state in ("ended", "refused"):
                ended.append(callid)
            else:
                rows.append({"callid": callid, "domain_id": call.domain_id, "started": call.started, "seen_at": now,
                             "state": durable.snapshot(call)})
        if beat_all:
            domains.update(c.domain_id for c in self.live.values())
        return rows, ended, domains

    async def close(self) -> None:
        self._closed = True  # the calls still live stay in the store: the next start ends them
        if self._write_engine is not None:
            await self._write_engine.dispose()

    async def _write_batch(self, batch: list[_Write], *, claim: bool = False) -> list[_Write]:
        """Write the batch in one transaction; returns what it wrote. ``claim`` (recovery): only the calls whose
        ``live_calls`` row this transaction deletes are written, so a call is ended once however many recoveries
        race."""
        now = self.now()
        beat_all = not claim and self._beat_due()
        live, ended, beats = self._live_state(batch, now, beat_all=beat_all)
        integrations: dict[int, Integration | None] = {}
        records: dict[int, settings_service.RecordConfig] = {}
        rotation: dict[int, int] = {}  # department pk -> the member who took its last call in this batch
        answered: list[dict[str, Any]] = []  # clients answered: their earlier missed calls are settled
        reached: list[dict[str, Any]] = []  # clients an employee called and reached (missedStatus 2)
        unreached: list[dict[str, Any]] = []  # clients an employee called and could not reach (missedStatus 4)
        history: list[dict[str, Any]] = []  # call_history rows, inserted at once
        async with self._writes() as session:
            session.info[ENGINE_WRITES] = True
            if self.fence is not None:
                await self.fence(session, beats | {w.call.domain_id for w in batch})
            if claim:
                kept = await calls_repo.claim_live(session, [w.call.callid for w in batch])
                batch = [w for w in batch if w.call.callid in kept]
            settling = await _Settling.load(session, batch)
            for w in batch:
                call = w.call
                if call.domain_id not in integrations:
                    integrations[call.domain_id] = await writes_repo.integration(session, call.domain_id)
                notices = list(w.notices)
                if w.status is not None:
                    if call.domain_id not in records:
                        records[call.domain_id] = await settings_service.record_config(session, call.domain_id)
                    if call.kind == "internal":
                        await self._write_internal(session, call, w.status, records[call.domain_id])
                        continue
                    if call.kind == "outgoing":
                        await self._write_outgoing(session, call, w.status, notices, records[call.domain_id],
                                                   history)
                        if w.status is CallStatus.SUCCESS:
                            reached.append({"d": call.domain_id, "c": call.dialed, "t": call.started})
                            settling.settle(notices, call.domain_id, call.dialed, call.started, (3, 4), 2)
                        elif call.dialled and w.status in UNREACHED:
                            unreached.append({"d": call.domain_id, "c": call.dialed, "t": call.started})
                            settling.settle(notices, call.domain_id, call.dialed, call.started, (3,), 4)
                    else:
                        await self._write_incoming(session, call, w.status, notices, records[call.domain_id],
                                                   rotation, history)
                        if w.status is CallStatus.SUCCESS and call.caller != "anonymous" and call.direction == "in":
                            answered.append({"d": call.domain_id, "c": call.caller, "t": call.started})
                            settling.settle(notices, call.domain_id, call.caller, call.started, (3, 4), 1,
                                            strictly=True)
                        elif history and history[-1]["missed_status"] == 3:
                            settling.missed(call.domain_id, call.caller, call.started)
                integration = integrations[call.domain_id]
                if integration is None:
                    continue
                for n in notices:
                    await notifier.enqueue(session, call.domain_id, n, key=call.chain or call.callid, now=w.at,
                                           integration=integration)
            if history:
                await writes_repo.insert_history(session, history)
            await session.flush()
            if answered:  # 4.2 missedStatus: 3 (or 4) -> 1, "the client called back and was answered"
                await writes_repo.settle_answered(session, answered)
            for rows, old, new in ((reached, (3, 4), 2), (unreached, (3, 3), 4)):  # call-flows "Missed-call follow-up"
                if rows:
                    await writes_repo.settle_called(session, rows, old, new)
            for pk, user_id in rotation.items():
                await writes_repo.rotate(session, pk, user_id)
            await calls_repo.drop_live(session, ended)
            await calls_repo.save_live(session, live)
            if not claim:
                await calls_repo.beat(session, sorted(beats), now)
            await session.commit()
        if beat_all:
            self._beat_at = now
        if self._write_engine is not None:  # the notifier wakes on commits of the server's own pool only
            dispatcher = notifier.dispatcher(self.rt)
            if dispatcher is not None:
                dispatcher.wake()
        return batch

    async def records_now(self, callid: str) -> bool:
        """Whether the talk starting now on ``callid`` is recorded (12.5, decided as ``_record_link`` decides it
        at the end): a port with media starts recording when it is."""
        call = self.live.get(callid)
        if call is None:
            return False
        config = await self.config.record(call.domain_id)
        external = call.kind != "internal"
        talkers = call.talkers if external else [call.caller, *call.talkers]
        return config.records(external=external, logins=talkers)

    def _voicemail_link(self, call: Call) -> str:
        """A caller who reached voicemail left a message: it is the missed call's recording, whatever 12.5 says
        (the voicemail target is the request to record)."""
        if call.voicemail_at is None:
            return ""
        call.link = records.link_for(self.rt, call.domain_id, call.callid, self.now())
        return call.link

    def _record_link(self, call: Call, config: settings_service.RecordConfig, *, external: bool) -> str:
        """Call-flows step 9: recorded when recording is on for the call's kind (12.5) and no employee
        who talked on it is an exception; the history then carries a signed link this server serves."""
        talkers = call.talkers if external else [call.caller, *call.talkers]
        if not config.records(external=external, logins=talkers):
            return ""
        call.link = records.link_for(self.rt, call.domain_id, call.callid, self.now())
        return call.link


@dataclass(frozen=True)
class _Write:
    """A step's outbox rows, or (``status`` set) a finished call: its history row and last notifications."""

    call: Call
    notices: list[Notice]
    status: CallStatus | None
    at: datetime


class _Settling:
    """Which finished calls of a batch settle a client's missed calls (4.2 missedStatus: 1 the client called
    back and was answered, 2 called back and reached, 4 called and not reached): their history push carries
    the new status, so a CRM can close its missed-call card. Read once per batch, before the batch's rows."""

    def __init__(self, open_missed: dict[tuple[int, str, int], datetime]) -> None:
        self.open = open_missed  # (domain, client, 3|4) -> the earliest such missed call's start

    @classmethod
    async def load(cls, session: AsyncSession, batch: list[_Write]) -> _Settling:
        pairs = [(w.call.domain_id, w.call.dialed if w.call.kind == "outgoing" else w.call.caller)
                 for w in batch if w.status is not None and w.call.kind != "internal"]
        return cls(await calls_repo.unsettled_missed(session, pairs) if pairs else {})

    def missed(self, domain_id: int, client: str, start: datetime, status: int = 3) -> None:
        """A missed call written earlier in this batch (not in the store yet) can be settled by a later one."""
        key = (domain_id, client, status)
        if key not in self.open or start < self.open[key]:
            self.open[key] = start

    def settle(self, notices: list[Notice], domain_id: int, client: str, start: datetime, old: tuple[int, ...],
               new: int, *, strictly: bool = False) -> None:
        """Mark the call's history notice with ``new`` when a missed call in ``old`` started before it (the
        store's UPDATEs in ``_write_batch`` apply the same rule)."""
        moved = [first for status in old if (first := self.open.get((domain_id, client, status))) is not None
                 and (first < start or (not strictly and first == start))]
        if not moved:
            return
        for i, n in enumerate(notices):
            if isinstance(n, HistoryNotice):
                notices[i] = dataclasses.replace(n, missedStatus=new)
        for status in old:  # the UPDATE moves them: later calls of the batch see them as ``new``
            self.open.pop((domain_id, client, status), None)
        if new == 4:  # "not reached" can still be settled by a later answer or reach
            self.missed(domain_id, client, min(moved), 4)


def _leg_fields(leg: Leg) -> dict[str, Any]:
    return {"id": leg.user_id, "login": leg.person, "name": leg.name, "ext": leg.ext, "telnum": leg.telnum}


def _seconds(a: datetime | None, b: datetime | None) -> int:
    if a is None or b is None:
        return 0
    return max(0, round((b - a).total_seconds()))
