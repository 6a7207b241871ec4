"""The call engine: one state machine per call, driven by the clock and the telephony port.

Incoming external calls follow /work/shared/design/call-flows.md ("Incoming external call"):
admission, contact lookup, greeting, route by time, targets (user, group with its ring strategy,
telnum, ivr, closed message), timeout targets, events, and at the end ONE transaction holding the
history row and the call's last notifications. Internal calls leave internal history only. Outgoing
external calls ("Outgoing external call": from a device, or click-to-call that rings the employee first)
check the restrictions, choose the caller ID, send OUTGOING and end with an ``out`` history row.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from vpbx import logs
from vpbx.domain import ringing
from vpbx.domain.phone import InvalidNumber, is_anonymous, normalize_number
from vpbx.engine import durable, records
from vpbx.engine.config import ENGINE_WRITES, ConfigCache, Roster, Staff
from vpbx.engine.model import Call, Leg
from vpbx.metrics import ENGINE_WRITE_FAILURES
from vpbx.notify import service as notifier
from vpbx.notify.payloads import (
    PBX_USER,
    CallStatus,
    ContactQuery,
    EventNotice,
    EventType,
    HistoryNotice,
    Notice,
    RatingNotice,
)
from vpbx.runtime import Runtime
from vpbx.services import blacklist, numbers
from vpbx.services import settings as settings_service
from vpbx.store import db
from vpbx.store.repositories import calls as calls_repo
from vpbx.store.repositories import directory as repo
from vpbx.store.repositories import numbers as numbers_repo
from vpbx.store.tables import CallRecord, Domain, Group, InnerCallRecord, Integration, User

log = logging.getLogger("vpbx.engine")

GREETING_SECONDS = 5.0
MESSAGE_SECONDS = 5.0  # closed / busy message, then hang up
USER_RING_SECONDS = 60  # a personal call rings this long, then voicemail
STAGE_RING_SECONDS = 20  # a stage with more to try after it (the CRM's responsible, its fallback) rings less
IVR_TIMEOUT_SECONDS = 10.0
VOICEMAIL_SECONDS = 60.0
RATING_SECONDS = 10.0  # the client hears the rating question this long after the employee hangs up
RATINGS = range(1, 6)
MAX_HOPS = 5
# 8.3 advanced=callback: the caller presses CALLBACK_DIGIT while waiting for the department (offered at once when
# nobody is free); the PBX places the call back CALLBACK_DELAY later as a department click-to-call, retrying every
# CALLBACK_RETRY when no member picks up, CALLBACK_ATTEMPTS times in all.
CALLBACK_DIGIT = "1"
CALLBACK_DELAY = 5.0
CALLBACK_RETRY = 300.0
CALLBACK_ATTEMPTS = 3
FLUSH_LINGER = 0.005  # seconds the real clock waits for more steps before a flush
FLUSH_QUEUE = 2000  # queued steps that start a flush at once
# A failed write batch is never dropped: it is tried again (with whatever was queued since) after a back-off
# doubling from WRITE_RETRY_FIRST to WRITE_RETRY_MAX seconds of real time (the store's outage is real time).
WRITE_RETRY_FIRST = 0.05
WRITE_RETRY_MAX = 5.0
WRITE_CONNECTIONS = 2  # the engine's own connection budget: request bursts cannot starve its writes
BEAT_SECONDS = 5.0  # live calls' "last known moment" (engine.recovery) is refreshed at least this often
KEEP_ENDED = 10_000
# Outgoing outcomes that count as "employees called and could not reach the client" (4.2 missedStatus 4).
UNREACHED = frozenset({CallStatus.MISSED, CallStatus.BUSY, CallStatus.NOT_AVAILABLE, CallStatus.CANCEL})
CLIENT_REFUSALS = {"busy": CallStatus.BUSY, "unavailable": CallStatus.NOT_AVAILABLE, "notfound": CallStatus.NOT_FOUND}


class CallError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class CallEngine:
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
        self._write_engine = _write_engine(runtime)
        self._writes = db.session_factory(self._write_engine) if self._write_engine is not None else runtime.sessions
        self._beat_at: datetime | None = None  # the last beat written (clock time)
        self._beating = False  # a real-clock timer keeps the beat while calls are live
        self._closed = False
        attach = getattr(runtime.telephony, "attach", None)
        if attach is not None:
            try:
                attach(self, runtime.clock)
            except TypeError:
                attach(self)

    # --- reading ----------------------------------------------------------------------------------

    def get(self, domain_id: int, callid: str) -> Call:
        call = self.live.get(callid) or self.ended.get(callid)
        if call is None or call.domain_id != domain_id:
            raise CallError(404, "Not found")
        return call

    def _current(self, callid: str) -> Call | None:
        """The live call for ``callid``: itself, or the part a transfer continued it as (the devices and the
        simulator may still name the first part's id)."""
        call = self.live.get(callid)
        if call is not None:
            return call
        call = self.ended.get(callid)
        for _ in range(MAX_HOPS * 4):
            if call is None or not call.continued_as:
                return None
            call = self.live.get(call.continued_as) or self.ended.get(call.continued_as)
            if call is not None and call.callid in self.live:
                return call
        return None

    def current(self, domain_id: int, callid: str) -> Call:
        call = self._current(callid)
        if call is None or call.domain_id != domain_id:
            return self.get(domain_id, callid)
        return call

    def list_live(self, domain_id: int) -> list[Call]:
        return [c for c in self.live.values() if c.domain_id == domain_id]

    # --- helpers ----------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.rt.clock.now()

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
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

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
            self._flusher = asyncio.get_running_loop().create_task(self.flush())

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
            if claim:
                kept = await calls_repo.claim_live(session, [w.call.callid for w in batch])
                batch = [w for w in batch if w.call.callid in kept]
            settling = await _Settling.load(session, batch)
            for w in batch:
                call = w.call
                if call.domain_id not in integrations:
                    integrations[call.domain_id] = await session.get(Integration, call.domain_id)
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
                await session.execute(insert(cast(Table, CallRecord.__table__)), history)
            await session.flush()
            if answered:  # 4.2 missedStatus: 3 (or 4) -> 1, "the client called back and was answered"
                table = cast(Table, CallRecord.__table__)
                h = table.c
                await session.execute(update(table).where(
                    h.domain_id == bindparam("d"), h.client == bindparam("c"), h.missed_status.between(3, 4),
                    h.start < bindparam("t")).values(missed_status=1), answered)
            for rows, old, new in ((reached, (3, 4), 2), (unreached, (3, 3), 4)):  # call-flows "Missed-call follow-up"
                if rows:
                    table = cast(Table, CallRecord.__table__)
                    h = table.c
                    await session.execute(update(table).where(
                        h.domain_id == bindparam("d"), h.client == bindparam("c"), h.type == "in",
                        h.missed_status.between(*old), h.start <= bindparam("t")).values(missed_status=new), rows)
            for pk, user_id in rotation.items():
                await session.execute(update(Group).where(Group.id == pk).values(last_answered_user_id=user_id))
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

    def _event(self, call: Call, kind: EventType, leg: Leg, second_callid: str | None = None) -> EventNotice:
        """002 §2.2 ``event`` for the employee on ``leg``, in either direction (``phone`` is the client)."""
        call.events.append((kind.value, leg.person))
        return EventNotice(type=kind, callid=call.callid, phone=self._client_number(call), user=leg.person,
                           direction=call.direction,
                           diversion=call.diversion or None, groupRealName=call.group_name or None,
                           ext=leg.ext or None, telnum=leg.telnum or None, telnum_name=call.telnum_name or None,
                           second_callid=second_callid)

    def _can_take(self, call: Call, user: User, calls_enable: bool = True, *, busy_ok: bool = False) -> bool:
        return self._free(call, user.login, user.dnd, user.absent, user.mobile_redirect_enabled and bool(user.mobile),
                          calls_enable, busy_ok)

    def _free(self, call: Call, login: str, dnd: bool, absent: bool, mobile_redirect: bool, calls_enable: bool,
              busy_ok: bool = False) -> bool:
        return ringing.can_take_calls(
            dnd=dnd, absent=absent, registered=self.rt.telephony.is_registered(call.domain_id, login),
            mobile_redirect=mobile_redirect, busy=not busy_ok and (call.domain_id, login) in self.busy,
            calls_enable=calls_enable)

    def _staff_free(self, call: Call, s: Staff) -> bool:
        return self._free(call, s.login, s.dnd, s.absent, s.mobile_redirect, s.calls_enable)

    def _plan(self, call: Call, group: Group, roster: Roster) -> list[ringing.Ring]:
        """Who rings when (``domain.ringing``), from the members free now and the department's rotation."""
        return ringing.plan(
            group.call_order, [ringing.Member(s.id, self._staff_free(call, s)) for s in roster.staff],
            call_duration=group.call_duration, timeout=group.timeout_time,
            last_answered=self.last_answered.get(group.id, group.last_answered_user_id))

    @staticmethod
    def _legs_of(call: Call, person: str) -> list[Leg]:
        return [leg for leg in call.legs.values() if leg.person == person]

    @staticmethod
    def _find_leg(call: Call, who: str) -> Leg | None:
        """The leg of ``who``: a party (login or ext:<number>), or the employee a mobile leg rings for."""
        leg = call.legs.get(who)
        if leg is not None:
            return leg
        mine = [leg for leg in call.legs.values() if leg.owner == who]
        return next((leg for leg in mine if leg.state == "talking"), mine[0] if mine else None)

    # --- incoming external calls -----------------------------------------------------------------

    async def incoming(self, domain: Domain, caller: str, dialed: str) -> Call:
        now = self.now()
        anonymous = is_anonymous(caller)
        if not anonymous:
            try:
                caller = normalize_number(caller)
            except InvalidNumber:
                raise CallError(400, "from: not a phone number") from None
        call = Call(callid=uuid.uuid4().hex, domain_id=domain.id, domain_name=domain.name,
                    timezone=domain.timezone, kind="incoming", caller="anonymous" if anonymous else caller,
                    dialed=dialed, started=now)
        route = await self.config.route(domain, dialed, now)
        if route is None or route.disabled:
            call.state, call.reason = "refused", "unknown number" if route is None else "number disabled"
            self._keep(call)
            return call
        decision = await self.config.blocked(domain.id, None if anonymous else caller)
        if decision.blocked:
            async with self.rt.sessions() as session:
                await blacklist.record_blocked_call(session, domain.id, None if anonymous else caller,
                                                    route.telnum, now)
                await session.commit()
            call.state, call.reason = "refused", "blacklisted"
            self._keep(call)
            return call
        call.diversion, call.telnum_name = route.telnum, route.name
        self._go_live(call)
        answer = await notifier.lookup_contact(self.rt, domain.id, ContactQuery(
            phone=call.caller, callid=call.callid, diversion=call.diversion))
        first = route.target
        if answer is not None and answer.responsible and route.crm:
            responsible = await self._responsible(call, answer.responsible)
            if responsible is not None:  # call-flows step 2: the CRM's responsible first, then the fallback
                fallback = numbers.crm_fallback(route.crm)
                call.fallbacks = [t for t in (fallback, route.target) if t is not None]
                first = numbers.Target("user", responsible.login)
        async with call.lock:
            if answer is not None:
                call.caller_name = answer.contact_name
            if route.greeting:
                call.state = "greeting"
                self._later(call, GREETING_SECONDS, lambda: self._route(call, first))
            else:
                await self._route(call, first)
        return call

    async def _responsible(self, call: Call, who: str) -> User | None:
        """002 §2.3 ``responsible``: a login, an extension or an employee's direct number; only an
        employee who can take calls now (busy on another call counts: they get the busy fallback)."""
        who = who.strip()
        async with self.rt.sessions() as session:
            user = await repo.find_user(session, call.domain_id, who)
            if user is None:
                try:
                    number = normalize_number(who)
                except InvalidNumber:
                    return None
                user = (await session.scalars(select(User).where(
                    User.domain_id == call.domain_id, User.telnum == number).limit(1))).first()
        if user is None or not self._can_take(call, user, busy_ok=True):
            return None
        return user

    async def _route(self, call: Call, target: numbers.Target) -> None:
        kind = target.kind
        if kind == "user" and target.user:
            await self._ring_user(call, target.user, STAGE_RING_SECONDS if call.fallbacks else USER_RING_SECONDS)
        elif kind == "group" and target.group:
            await self._ring_group(call, target.group)
        elif kind == "telnum" and target.telnum:
            await self._ring_external(call, target.telnum)
        elif kind == "ivr":
            await self._ivr_enter(call, target.ivr or {})
        else:  # offtime / fax / unknown: the closed message, then hang up
            call.destination = "onduty" if target.onduty else ("fax" if kind == "fax" else "offtime")
            await self._message(call)

    async def _fail_over(self, call: Call) -> None:
        """A stage found nobody: the next target of the chain (crm option), else voicemail."""
        call.cancel_timers()
        if call.fallbacks:
            await self._route(call, call.fallbacks.pop(0))
        else:
            await self._voicemail(call)

    async def _message(self, call: Call) -> None:
        call.state = "message"
        self._later(call, MESSAGE_SECONDS, lambda: self._finish(call, CallStatus.MISSED))

    async def _voicemail(self, call: Call) -> None:
        call.state, call.destination = "voicemail", "vm"
        self._later(call, VOICEMAIL_SECONDS, lambda: self._finish(call, CallStatus.MISSED))

    async def _ivr_enter(self, call: Call, menu: dict[str, Any]) -> None:
        call.hops += 1
        if call.hops > MAX_HOPS:
            await self._voicemail(call)
            return
        call.state, call.destination, call.ivr = "ivr", "ivr", menu
        self._later(call, IVR_TIMEOUT_SECONDS, lambda: self._ivr_pick(call, "timeout"))

    async def _ivr_pick(self, call: Call, button: str) -> None:
        if call.state != "ivr":
            return
        items = (call.ivr or {}).get("items") or []
        item = next((i for i in items if str(i.get("button")) == button), None)
        if item is None:
            if button == "timeout":
                await self._finish(call, CallStatus.MISSED)
            return
        call.cancel_timers()
        kind = item.get("type")
        if kind == "ivr":  # a nested menu, named (9.6 buttons name other menus)
            menu = item.get("ivr")
            if not isinstance(menu, dict):
                async with self.rt.sessions() as session:
                    found = (await numbers_repo.menus(session, call.domain_id, [str(menu or "")])).get(str(menu))
                menu = numbers.menu_out(found, str(menu or "")) if found is not None else {}
            await self._ivr_enter(call, menu)
            return
        await self._route(call, numbers.Target(str(kind), item.get("user"), item.get("group"), None,
                                               item.get("telnum")))

    # --- ringing ---------------------------------------------------------------------------------

    async def _load_user(self, domain_id: int, login: str) -> User | None:
        return await self.config.user(domain_id, login)

    async def _ring_user(self, call: Call, login: str, seconds: float = USER_RING_SECONDS) -> None:
        user = await self._load_user(call.domain_id, login)
        call.destination = call.destination if call.group_id else "user"
        if user is None or not self._can_take(call, user):
            if user is not None and user.login not in call.rung:
                call.rung.append(user.login)
            await self._fail_over(call)
            return
        call.state = "ringing"
        await self._start_ring(call, user)
        self._later(call, seconds, lambda: self._ring_timeout(call, lambda: self._fail_over(call)))

    async def _ring_timeout(self, call: Call, then: Callable[[], Awaitable[None]]) -> None:
        if call.state != "ringing":
            return
        await self._stop_ringing(call)
        call.cancel_timers()
        await then()

    async def _ring_group(self, call: Call, group_id: str) -> None:
        call.hops += 1
        roster = await self.config.roster(call.domain_id, group_id)
        group = roster.group
        if group is None or call.hops > MAX_HOPS:
            await self._voicemail(call)
            return
        call.group_id, call.group_name, call.group_pk = group.group_id, group.name, group.id
        call.destination, call.state = "group", "ringing"
        if group.queue_position:  # call-flows step 7: the caller's place among the department's waiting calls
            ahead = sum(1 for c in self.live.values()
                        if c is not call and c.group_pk == group.id and c.state == "ringing" and c.answered_at is None)
            call.queue_position = ahead + 1
            call.announcements.append(f"queue_position:{ahead + 1}")
        plan = self._plan(call, group, roster)
        if not plan and group.advanced == "msg_busy":
            call.announcements.append("msg_busy")
            await self._message(call)
            return
        call.callback_offer = group.advanced == "callback" and call.kind == "incoming" and call.direction == "in" \
            and call.caller != "anonymous"
        if call.callback_offer:
            call.announcements.append("callback_offer")
            if not plan:  # nobody is free: the offer, then the department's timeout target
                call.state = "offer"
                self._later(call, IVR_TIMEOUT_SECONDS, lambda: self._offer_lapsed(call, group))
                return
        if not plan and call.fallbacks:
            await self._fail_over(call)
            return
        await self._follow_plan(call, roster, plan)
        after = group.timeout_time
        self._later(call, after, lambda: self._ring_timeout(call, lambda: self._group_timeout(call, group)))

    async def _follow_plan(self, call: Call, roster: Roster, plan: list[ringing.Ring]) -> None:
        """Ring the department's members by the plan (``domain.ringing``): the slots due now at once, the rest
        from ONE timer at a time, each firing the steps due then and setting the next (a dozen slots per call
        would otherwise be two dozen timers). ``cancel_timers`` stops the chain with the call's other timers.
        A step is (when, starts, member): a member's phone starts, or stops, ringing."""
        steps: list[tuple[float, bool, Staff]] = []
        for r in plan:
            member = roster.by_id[int(str(r.key))]
            if r.at <= 0:
                await self._slot_start(call, member)
            else:
                steps.append((r.at, True, member))
            steps.append((r.until, False, member))
        steps.sort(key=lambda step: step[0])  # stable: at one instant, in the plan's order, as separate timers ran
        self._chain(call, steps, 0, 0.0)

    def _chain(self, call: Call, steps: list[tuple[float, bool, Staff]], i: int, now: float) -> None:
        if i >= len(steps):
            return
        due = steps[i][0]

        async def fire() -> None:
            j = i
            while j < len(steps) and steps[j][0] <= due:
                _, starts, member = steps[j]
                if starts:
                    await self._slot_start(call, member)
                else:
                    await self._slot_end(call, member.login)
                j += 1
            self._chain(call, steps, j, due)

        self._later(call, due - now, fire)

    async def _slot_start(self, call: Call, member: Staff) -> None:
        if call.state == "ringing" and not self._legs_of(call, member.login) and self._staff_free(call, member):
            await self._start_ring(call, member.user)

    async def _slot_end(self, call: Call, login: str) -> None:
        if call.state != "ringing":
            return
        notices = [self._end_leg(call, leg) for leg in self._legs_of(call, login) if leg.state == "ringing"]
        await self._commit_notices(call, [n for n in notices if n is not None])

    async def _group_timeout(self, call: Call, group: Group) -> None:
        if call.fallbacks:
            await self._fail_over(call)
            return
        target = group.timeout_target
        if target == "user" and group.timeout_user:
            await self._ring_user(call, group.timeout_user)
        elif target == "group" and group.timeout_group:
            await self._ring_group(call, group.timeout_group)
        elif target == "telnum" and group.timeout_telnum:
            await self._ring_external(call, group.timeout_telnum)
        elif target == "msg_busy":
            call.announcements.append("msg_busy")
            await self._message(call)
        else:
            await self._voicemail(call)

    async def _ring_external(self, call: Call, number: str) -> None:
        call.state, call.destination = "ringing", "telnum"
        self._open_leg(call, f"ext:{number}", name=number)
        self._later(call, USER_RING_SECONDS, lambda: self._ring_timeout(call, lambda: self._external_failed(call)))

    async def _external_failed(self, call: Call) -> None:
        """The outside number was busy, unreachable or did not answer."""
        if call.fallbacks:
            await self._fail_over(call)
        else:
            await self._finish(call, CallStatus.MISSED)

    def _open_leg(self, call: Call, party: str, *, name: str = "", user: User | None = None,
                  owner: str = "") -> Leg:
        leg = Leg(party=party, name=user.name if user else name, ext=user.ext if user else "",
                  telnum=user.telnum if user else "", since=self.now(), caller_name=call.caller_name, owner=owner,
                  user_id=user.id if user else None)
        call.legs[party] = leg
        self.rt.telephony.ring(call.domain_id, call.callid, party, call.caller, call.caller_name)
        return leg

    async def _start_ring(self, call: Call, user: User) -> None:
        """Ring an employee (call-flows step 6, 002 §7 mobile redirect): the registered device; with the
        redirect on, their mobile as an outside leg too: alone when ``forward`` (or no device is registered),
        else ``delay`` seconds after the device started. One INCOMING per employee, whatever rings."""
        if self._legs_of(call, user.login):
            return
        mobile = user.mobile if user.mobile_redirect_enabled and user.mobile else ""
        device = self.rt.telephony.is_registered(call.domain_id, user.login) and not (
            mobile and user.mobile_redirect_forward)
        if user.login in call.rung:
            call.rung.remove(user.login)
        call.rung.append(user.login)
        first: Leg | None = None
        if device:
            first = self._open_leg(call, user.login, user=user)
        if mobile:
            if not device or user.mobile_redirect_delay <= 0:
                leg = self._open_leg(call, f"ext:{mobile}", user=user, owner=user.login)
                first = first or leg
            else:
                self._later(call, user.mobile_redirect_delay, self._mobile_start(call, user, mobile))
        if first is not None and call.kind == "incoming":
            await self._commit_notices(call, [self._event(call, EventType.INCOMING, first)])

    def _mobile_start(self, call: Call, user: User, mobile: str) -> Callable[[], Awaitable[None]]:
        async def start() -> None:
            mine = self._legs_of(call, user.login)
            if call.state == "ringing" and mine and all(leg.state == "ringing" for leg in mine) \
                    and f"ext:{mobile}" not in call.legs:
                self._open_leg(call, f"ext:{mobile}", user=user, owner=user.login)
        return start

    def _end_leg(self, call: Call, leg: Leg) -> EventNotice | None:
        """A ringing leg stops: the phone stops; when it was the employee's last leg, their card closes
        (CANCELLED). Outside numbers get no events."""
        leg.state = "ended"
        call.legs.pop(leg.party, None)
        self.rt.telephony.stop(call.domain_id, call.callid, leg.party)
        if call.kind == "outgoing" or leg.person.startswith("ext:") or self._legs_of(call, leg.person):
            return None
        return self._event(call, EventType.CANCELLED, leg)

    async def _stop_ringing(self, call: Call) -> None:
        notices = [self._end_leg(call, leg) for leg in list(call.legs.values()) if leg.state == "ringing"]
        if call.kind == "incoming":
            await self._commit_notices(call, [n for n in notices if n is not None])

    # --- signals from devices --------------------------------------------------------------------

    async def answered(self, callid: str, party: str) -> None:
        call = self._current(callid)
        if call is None:
            raise CallError(404, "Not found")
        async with call.lock:
            if call.kind == "outgoing":
                await self._out_answered(call, party)
                return
            leg = call.legs.get(party)
            if leg is None:
                found = self._find_leg(call, party)  # "ivan" answers the mobile leg that rings for him
                leg = found if found is not None and found.owner else None
            if leg is None or leg.state != "ringing" or call.state != "ringing":
                raise CallError(409, f"{party} is not ringing on this call")
            call.cancel_timers()
            notices: list[Notice] = []
            for other in list(call.legs.values()):
                if other is not leg and other.state == "ringing":
                    n = self._end_leg(call, other)
                    if n is not None:
                        notices.append(n)
            person = leg.person
            leg.state, leg.since = "talking", self.now()
            call.state, call.answered_by, call.answerer_id, call.answer_leg = "talking", person, leg.user_id, leg
            call.answered_at = call.answered_at or self.now()
            if not person.startswith("ext:"):
                if call.first_answered is None:
                    call.first_answered = leg
                if person not in call.talkers:
                    call.talkers.append(person)
                self.busy.add((call.domain_id, person))
                self._stop_elsewhere(call, person)
                if call.kind == "incoming":
                    notices.insert(0, self._event(call, EventType.ACCEPTED, leg))
            self.rt.telephony.connected(call.domain_id, callid, leg.party)
            if call.kind == "incoming":
                await self._commit_notices(call, notices)

    def _stop_elsewhere(self, call: Call, person: str) -> None:
        """No call waiting: an employee who picks up stops ringing on the domain's other calls."""
        for other in list(self.live.values()):
            if other is call or other.domain_id != call.domain_id or other.state != "ringing":
                continue
            notices = [self._end_leg(other, leg) for leg in self._legs_of(other, person) if leg.state == "ringing"]
            if other.kind == "incoming":
                found = [n for n in notices if n is not None]
                if found:
                    self._queue.append(_Write(other, list(found), None, self.now()))
                    self._kick()

    async def rejected(self, callid: str, party: str, reason: str | None = None) -> None:
        call = self._current(callid)
        if call is None:
            raise CallError(404, "Not found")
        async with call.lock:
            if call.kind == "outgoing":
                await self._out_rejected(call, party, reason)
                return
            leg = call.legs.get(party) or self._find_leg(call, party)
            if leg is None or leg.state != "ringing":
                raise CallError(409, f"{party} is not ringing on this call")
            notice = self._end_leg(call, leg)
            if call.kind == "incoming" and notice is not None:
                await self._commit_notices(call, [notice])
            ringing_left = any(other.state == "ringing" for other in call.legs.values())
            if call.kind == "internal":
                if not ringing_left:
                    await self._finish(call, CallStatus.MISSED)
            elif leg.person.startswith("ext:"):
                call.cancel_timers()
                await self._external_failed(call)
            elif not call.group_id and not ringing_left and call.state == "ringing":
                await self._fail_over(call)  # a personal call declined: busy, the next stage or voicemail

    async def hung_up(self, callid: str, party: str) -> None:
        call = self._current(callid)
        if call is None:
            raise CallError(404, "Not found")
        pair = self._consult_pair(call, party)
        if pair is not None:  # the consulting employee hangs up (on either call): the attended transfer completes
            client_call, consult = pair
            async with client_call.lock, consult.lock:  # always in this order
                if client_call.consult == consult.callid and consult.state not in ("ended", "refused"):
                    await self._complete_consult(client_call, consult)
                    return
        async with call.lock:
            if call.state in ("ended", "refused"):
                raise CallError(409, "The call is over")
            if call.kind == "outgoing":
                await self._out_hung_up(call, party)
                return
            if (party in ("client", call.caller, f"ext:{call.caller}") and call.kind == "incoming") or (
                    call.kind == "internal" and party == call.caller):
                if call.state in ("talking", "rating"):
                    await self._finish(call, CallStatus.SUCCESS)
                else:
                    if call.state == "greeting":
                        call.destination = "hello"
                    # An incoming call nobody answered is Missed wherever it was (004 lists Success and missed
                    # only); Cancel is the employee's side giving up, as when a transferred outgoing call's
                    # second part is abandoned while its target rings.
                    outward_ringing = call.state == "ringing" and call.direction == "out"
                    await self._finish(call, CallStatus.CANCEL if outward_ringing else CallStatus.MISSED)
                return
            leg = self._find_leg(call, party)
            if leg is None:
                raise CallError(409, f"{party} is not on this call")
            if leg.state == "talking" and call.kind == "incoming" and await self._asks_rating(call):
                await self._ask_rating(call, leg)
            elif leg.state == "talking":
                await self._finish(call, CallStatus.SUCCESS)
            elif leg.state == "ended":
                raise CallError(409, f"{party} is not on this call")
            else:
                notice = self._end_leg(call, leg)
                if call.kind == "incoming" and notice is not None:
                    await self._commit_notices(call, [notice])

    async def dtmf(self, domain_id: int, callid: str, digits: str) -> None:
        call = self.current(domain_id, callid)
        async with call.lock:
            for digit in digits:
                if call.state == "rating" and digit.isdigit() and int(digit) in RATINGS:
                    await self._rate(call, int(digit))
                if call.callback_offer and digit == CALLBACK_DIGIT and call.state in ("offer", "ringing") \
                        and call.answered_at is None:
                    await self._accept_callback(call)
                    break
                if call.state != "ivr":
                    break
                await self._ivr_pick(call, digit)

    # --- callbacks (8.3 advanced=callback) -------------------------------------------------------

    async def _offer_lapsed(self, call: Call, group: Group) -> None:
        if call.state == "offer":
            call.state = "ringing"
            await self._group_timeout(call, group)

    async def _accept_callback(self, call: Call) -> None:
        """The caller takes the offer: this call ends (Missed, missedStatus 3: not called back yet) and the
        PBX will call them back."""
        call.callback_requested, call.destination = True, "group"
        call.announcements.append("callback_accepted")
        await self._finish(call, CallStatus.MISSED)
        self._schedule_callback(call.domain_id, call.domain_name, call.timezone, client=call.caller,
                                clid=call.diversion, group_id=call.group_id, origin=call.callid, attempt=1)

    def _schedule_callback(self, domain_id: int, domain_name: str, timezone: str, *, client: str, clid: str,
                           group_id: str, origin: str, attempt: int) -> None:
        """The callback, an outgoing call of the department (its members ring by its strategy, then the client
        is dialled); its outcome settles the missed call's missedStatus (2 reached, 4 not reached)."""
        domain = Domain(id=domain_id, name=domain_name, timezone=timezone)

        async def place() -> None:
            try:
                group, _ = await self.config.group(domain_id, group_id)
                if group is not None:
                    await self.make_call(domain, client, clid=clid, group=group, callback_of=origin,
                                         attempt=attempt)
            except Exception:
                log.exception("placing the callback of %s failed", origin)

        self.rt.clock.call_later(CALLBACK_DELAY if attempt == 1 else CALLBACK_RETRY, place)

    # --- ratings (002 §2.4) ----------------------------------------------------------------------

    async def _asks_rating(self, call: Call) -> bool:
        telnums, groups = await self.config.rating(call.domain_id)
        return bool(call.diversion and call.diversion in telnums) or bool(call.group_id and call.group_id in groups)

    async def _ask_rating(self, call: Call, leg: Leg) -> None:
        """The employee hung up; the client stays to hear the rating question (``services.ratings``)."""
        now = self.now()
        notices: list[Notice] = [self._event(call, EventType.COMPLETED, leg)]
        leg.state = "ended"
        self.rt.telephony.stop(call.domain_id, call.callid, leg.party)
        self.busy.discard((call.domain_id, leg.person))
        call.state, call.talk_end = "rating", now
        call.announcements.append("rating")
        await self._commit_notices(call, notices)
        self._later(call, RATING_SECONDS, lambda: self._finish(call, CallStatus.SUCCESS))

    async def _rate(self, call: Call, rating: int) -> None:
        leg = call.answer_leg
        call.rating = rating
        await self._commit_notices(call, [RatingNotice(
            phone=call.caller, callid=call.callid, rating=rating, user=leg.person if leg else (call.answered_by or ""),
            ext=(leg.ext or None) if leg else None)])
        await self._finish(call, CallStatus.SUCCESS)

    async def rate(self, domain_id: int, callid: str, rating: int) -> None:
        """The client's score (the simulator's ``rate``), while the call asks for it."""
        call = self.current(domain_id, callid)
        async with call.lock:
            if call.state != "rating":
                raise CallError(409, "The call does not ask for a rating")
            if rating not in RATINGS:
                raise CallError(400, "rating: 1 to 5")
            await self._rate(call, rating)

    # --- transfers --------------------------------------------------------------------------------

    async def transfer(self, domain_id: int, callid: str, by: str, to: str, mode: str = "blind") -> Call:
        """Transfer a talking call to an employee (login or extension), a department (id or extension) or an
        outside number. Blind: TRANSFERRED (with ``second_callid``) for ``by``, whose part of the call ends
        (its own history); the client's call goes on as the new call ``second_callid``, ringing the target.
        Attended: the client waits while ``by`` calls the target (the consultation: an internal call, or an
        outgoing call to an outside number); ``by`` hanging up completes it (TRANSFERRED without
        ``second_callid``: the target joins this call), or, with the target still ringing, turns it blind
        (semi-attended). Returns the call the client is on now."""
        call = self.current(domain_id, callid)
        async with call.lock:
            leg = self._find_leg(call, by)
            if call.state != "talking" or leg is None or leg.state != "talking" or leg.person.startswith("ext:") \
                    or (call.kind == "outgoing" and leg is not call.agent):
                raise CallError(409, f"{by} is not talking on this call")
            if call.kind == "internal" or call.consult_for:
                raise CallError(409, "Internal calls are not transferred")
            if call.consult:
                raise CallError(409, "A transfer of this call is already in progress")
            target = await self._transfer_target(domain_id, to)
            if target.user == leg.person:
                raise CallError(409, f"{by} is already on this call")
            if mode == "attended":
                await self._consult(call, leg, target)
                return call
            return await self._blind(call, leg, target)

    async def _transfer_target(self, domain_id: int, to: str) -> numbers.Target:
        user = await self._load_user(domain_id, to)
        if user is not None:
            return numbers.Target("user", user.login)
        group, _ = await self.config.group(domain_id, to)
        if group is not None:
            return numbers.Target("group", None, group.group_id)
        try:
            return numbers.Target("telnum", None, None, None, normalize_number(to))
        except InvalidNumber:
            raise CallError(404, "Not found") from None

    @staticmethod
    def _client_number(call: Call) -> str:
        return call.dialed if call.kind == "outgoing" else call.caller

    def _leave(self, call: Call, leg: Leg) -> None:
        """An employee leaves a talking call (transferred it): their device stops, they are free again."""
        leg.state = "ended"
        call.legs.pop(leg.party, None)
        self.busy.discard((call.domain_id, leg.person))
        self.rt.telephony.stop(call.domain_id, call.callid, leg.party)
        if call.agent is leg:
            call.agent_left = True

    async def _blind(self, call: Call, leg: Leg, target: numbers.Target) -> Call:
        second = uuid.uuid4().hex
        await self._commit_notices(call, [self._event(call, EventType.TRANSFERRED, leg, second)])
        self._leave(call, leg)
        new = Call(callid=second, domain_id=call.domain_id, domain_name=call.domain_name, timezone=call.timezone,
                   kind="incoming", direction=call.direction, caller=self._client_number(call),
                   dialed=call.dialed if call.kind == "incoming" else call.diversion, started=self.now(),
                   caller_name=call.caller_name, diversion=call.diversion, telnum_name=call.telnum_name,
                   chain=call.chain or call.callid, transferred_from=call.callid, state="ringing")
        client = call.legs.pop(f"ext:{call.dialed}", None) if call.kind == "outgoing" else None
        if client is not None:  # the outside party of an outgoing call moves to the new call
            new.legs[client.party] = client
            self.rt.telephony.moved(call.domain_id, call.callid, new.callid, client.party)
        call.continued_as = second
        await self._finish(call, CallStatus.SUCCESS)  # this part: the transferring employee talked until now
        self._go_live(new)
        async with new.lock:
            await self._route(new, target)
        return new

    async def _consult(self, call: Call, leg: Leg, target: numbers.Target) -> None:
        domain = Domain(id=call.domain_id, name=call.domain_name, timezone=call.timezone)
        if target.kind == "telnum":
            consult = await self.outgoing(domain, leg.person, target.telnum or "", consult_for=call.callid)
        else:
            consult = await self.internal(domain, leg.person, target.user or target.group or "",
                                          consult_for=call.callid)
        if consult.state in ("ended", "refused"):
            raise CallError(409, f"The consultation call ended at once ({consult.status})")
        call.consult, call.consult_by, call.consult_target = consult.callid, leg.person, target
        call.announcements.append("hold")

    def _consult_pair(self, call: Call, party: str) -> tuple[Call, Call] | None:
        """(the client's call, the consultation) when ``party`` is the employee consulting and ``call`` is
        either of them."""
        if call.consult_for and party in (call.caller, f"user:{call.caller}"):
            client_call = self.live.get(call.consult_for)
            if client_call is not None and client_call.consult == call.callid:
                return client_call, call
        elif call.consult and party == call.consult_by:
            consult = self.live.get(call.consult)
            if consult is not None:
                return call, consult
        return None

    async def _complete_consult(self, call: Call, consult: Call) -> None:
        """The consulting employee hung up: the target joins the client's call, or (still ringing) the
        transfer goes on blind."""
        leg = self._find_leg(call, call.consult_by)
        target = call.consult_target
        call.consult, call.consult_by, call.consult_target = "", "", None
        consult.consult_for = ""
        joined = next((g for g in consult.legs.values() if g.state == "talking" and g.person != consult.caller), None)
        if leg is None:
            return
        if joined is None:  # semi-attended: nobody answered yet
            await self._finish(consult, CallStatus.CANCEL if consult.kind == "outgoing" else CallStatus.MISSED)
            await self._blind(call, leg, target)
            return
        notices: list[Notice] = [self._event(call, EventType.TRANSFERRED, leg)]
        self._leave(call, leg)
        consult.legs.pop(joined.party, None)  # the target's leg moves to the client's call, still talking
        await self._finish(consult, CallStatus.SUCCESS)
        self.rt.telephony.moved(call.domain_id, consult.callid, call.callid, joined.party)
        call.legs[joined.party] = joined
        person = joined.person
        if not person.startswith("ext:"):
            self.busy.add((call.domain_id, person))
            if person not in call.talkers:
                call.talkers.append(person)
            notices += [self._event(call, EventType.INCOMING, joined), self._event(call, EventType.ACCEPTED, joined)]
        call.answered_by, call.answerer_id, call.answer_leg = person, joined.user_id, joined
        if call.kind == "outgoing" and not person.startswith("ext:"):
            call.agent, call.agent_left = joined, False
        await self._commit_notices(call, notices)

    # --- outgoing external calls -----------------------------------------------------------------

    def _new_outgoing(self, domain: Domain, caller: str, number: str) -> Call:
        return Call(callid=uuid.uuid4().hex, domain_id=domain.id, domain_name=domain.name, timezone=domain.timezone,
                    kind="outgoing", direction="out", caller=caller, dialed=number, started=self.now())

    async def outgoing(self, domain: Domain, who: str, to: str, *, consult_for: str = "") -> Call:
        """Employee ``who`` (login or extension) dials the outside number ``to`` from a device: restrictions
        (not allowed: ``NotAllowed``, nothing dialled), the caller ID, OUTGOING, then the client's outcome."""
        user = await self._load_user(domain.id, who)
        if user is None:
            raise CallError(404, "Not found")
        try:
            number = normalize_number(to)
        except InvalidNumber:
            raise CallError(400, "to: not a phone number") from None
        call = self._new_outgoing(domain, user.login, number)
        call.consult_for = consult_for
        leg = Leg(party=user.login, name=user.name, ext=user.ext, telnum=user.telnum, state="talking",
                  since=call.started, user_id=user.id)
        call.legs[user.login], call.agent = leg, leg
        call.talkers.append(user.login)
        self.busy.add((domain.id, user.login))
        self._go_live(call)
        allowed = (await self.config.dial_rules(domain.id, user.login)).allows(number)
        clid = await self.config.caller_id(domain.id, number, user.login) if allowed else ""
        async with call.lock:
            call.diversion = clid
            if allowed:
                await self._dial_client(call)
            else:
                await self._finish(call, CallStatus.NOT_ALLOWED)
        return call

    async def make_call(self, domain: Domain, number: str, *, clid: str, user: User | None = None,
                        group: Group | None = None, show_phone: bool = False, callback_of: str = "",
                        attempt: int = 0) -> Call:
        """Click-to-call (002 §5.1, call-flows step 4): ring the employee (or the department, by its strategy)
        first; when someone answers, dial the client. Nobody answering ends the call as ``Cancel``, with no
        dial to the client. The caller has checked the employee, the number, the restrictions and ``clid``."""
        assert user is not None or group is not None
        call = self._new_outgoing(domain, user.login if user is not None else (group.group_id if group else ""),
                                  number)
        call.diversion, call.phase, call.state = clid, "agent", "ringing"
        call.callback_of, call.callback_attempt = callback_of, attempt
        call.caller_name = number if show_phone else None  # show_phone: the client's number on the device
        self._go_live(call)
        async with call.lock:
            if user is not None:
                if not self._can_take(call, user):
                    call.rung.append(user.login)
                    await self._finish(call, CallStatus.CANCEL)
                    return call
                await self._start_ring(call, user)
                self._later(call, USER_RING_SECONDS, lambda: self._finish(call, CallStatus.CANCEL))
            elif group is not None:
                await self._ring_agents(call, group)
        return call

    async def _ring_agents(self, call: Call, group: Group) -> None:
        roster = await self.config.roster(call.domain_id, group.group_id)
        call.group_id, call.group_name, call.group_pk = group.group_id, group.name, group.id
        plan = self._plan(call, group, roster)
        if not plan:
            await self._finish(call, CallStatus.CANCEL)
            return
        await self._follow_plan(call, roster, plan)
        self._later(call, group.timeout_time, lambda: self._finish(call, CallStatus.CANCEL))

    async def _dial_client(self, call: Call) -> None:
        """OUTGOING for the employee, then the client's phone rings; no answer in time is ``Missed``."""
        call.phase, call.state, call.dialled = "client", "ringing", True
        await self._commit_notices(call, [self._out_event(call, EventType.OUTGOING)])
        self._open_leg(call, f"ext:{call.dialed}", name=call.dialed)
        self._later(call, USER_RING_SECONDS, lambda: self._finish(call, CallStatus.MISSED))

    def _out_event(self, call: Call, kind: EventType) -> EventNotice:
        """An outgoing call's event goes to the employee placing it."""
        assert call.agent is not None
        return self._event(call, kind, call.agent)

    def _client_leg(self, call: Call, party: str) -> Leg | None:
        """The client's leg, named ``client``, its number, or ``ext:<number>``."""
        if party not in ("client", call.dialed, f"ext:{call.dialed}"):
            return None
        leg = call.legs.get(f"ext:{call.dialed}")
        return leg if leg is not None and not leg.owner else None

    def _agent_leg(self, call: Call, party: str) -> Leg | None:
        """A leg of the employee side: the agent's, or (makecall) one ringing for an employee."""
        if call.agent is not None and party in (call.agent.party, call.agent.person):
            return call.agent
        leg = self._find_leg(call, party)
        if leg is None:
            return None
        return leg if leg.person != f"ext:{call.dialed}" or leg.owner else None

    async def _out_answered(self, call: Call, party: str) -> None:
        if call.phase == "agent":
            leg = self._agent_leg(call, party)
            if leg is None or leg.state != "ringing":
                raise CallError(409, f"{party} is not ringing on this call")
            call.cancel_timers()
            for other in list(call.legs.values()):
                if other is not leg and other.state == "ringing":
                    self._end_leg(call, other)
            person = leg.person
            leg.state, leg.since = "talking", self.now()
            call.agent, call.caller = leg, person
            call.talkers.append(person)
            self.busy.add((call.domain_id, person))
            self._stop_elsewhere(call, person)
            self.rt.telephony.connected(call.domain_id, call.callid, leg.party)
            if call.group_id:  # a department's call: the member who picked up is the one calling
                if not (await self.config.dial_rules(call.domain_id, person)).allows(call.dialed):
                    await self._finish(call, CallStatus.NOT_ALLOWED)
                    return
            await self._dial_client(call)
            return
        client = self._client_leg(call, party)
        if call.phase != "client" or client is None or client.state != "ringing":
            raise CallError(409, f"{party} is not ringing on this call")
        call.cancel_timers()
        now = self.now()
        client.state, client.since = "talking", now
        call.state, call.phase, call.answered_at, call.answered_by = "talking", "talking", now, client.party
        self.rt.telephony.connected(call.domain_id, call.callid, client.party)
        await self._commit_notices(call, [self._out_event(call, EventType.ACCEPTED)])

    async def _out_rejected(self, call: Call, party: str, reason: str | None) -> None:
        client = self._client_leg(call, party)
        if client is not None and call.phase == "client" and client.state == "ringing":
            await self._finish(call, CLIENT_REFUSALS.get(reason or "busy", CallStatus.BUSY))
            return
        leg = self._agent_leg(call, party)
        if call.phase != "agent" or leg is None or leg.state != "ringing":
            raise CallError(409, f"{party} is not ringing on this call")
        self._end_leg(call, leg)
        if not call.group_id:  # the employee declined their own click-to-call
            await self._finish(call, CallStatus.CANCEL)

    async def _out_hung_up(self, call: Call, party: str) -> None:
        client = self._client_leg(call, party)
        if client is not None:
            if call.phase == "talking":
                await self._finish(call, CallStatus.SUCCESS)
            elif client.state == "ringing":  # declined: the PBX hears busy
                await self._finish(call, CallStatus.BUSY)
            return
        leg = self._agent_leg(call, party)
        if leg is None:
            raise CallError(409, f"{party} is not on this call")
        if call.phase == "talking":
            await self._finish(call, CallStatus.SUCCESS)
        elif call.phase == "client" and leg is call.agent:  # the employee gave up before the client answered
            await self._finish(call, CallStatus.CANCEL)
        elif leg.state == "ringing":
            self._end_leg(call, leg)
            if not call.group_id:
                await self._finish(call, CallStatus.CANCEL)

    # --- internal calls --------------------------------------------------------------------------

    async def internal(self, domain: Domain, from_login: str, to: str, *, consult_for: str = "") -> Call:
        """An employee calls another employee (login or extension), or a department (id or extension: its
        members ring by its strategy). Internal history only, no CRM requests."""
        caller = await self._load_user(domain.id, from_login)
        callee = await self._load_user(domain.id, to)
        group: Group | None = None
        if callee is None and caller is not None:
            async with self.rt.sessions() as session:
                group = await repo.find_group(session, domain.id, to)
        if caller is None or (callee is None and group is None):
            raise CallError(404, "Not found")
        call = Call(callid=uuid.uuid4().hex, domain_id=domain.id, domain_name=domain.name, timezone=domain.timezone,
                    kind="internal", caller=caller.login, dialed=callee.login if callee else "", started=self.now(),
                    caller_name=caller.name, destination="user", consult_for=consult_for)
        call.legs[caller.login] = Leg(party=caller.login, name=caller.name, ext=caller.ext, state="talking",
                                      since=self.now())
        self.busy.add((domain.id, caller.login))
        call.talkers.append(caller.login)
        self._go_live(call)
        async with call.lock:
            if callee is None:
                assert group is not None
                call.state = "ringing"
                await self._ring_group(call, group.group_id)
                return call
            if not self._can_take(call, callee):
                call.rung.append(callee.login)
                await self._finish(call, CallStatus.MISSED)
                return call
            call.state = "ringing"
            await self._start_ring(call, callee)
            self._later(call, USER_RING_SECONDS, lambda: self._finish(call, CallStatus.MISSED))
        return call

    # --- the end -----------------------------------------------------------------------------------

    def _go_live(self, call: Call) -> None:
        self.live[call.callid] = call
        self._durable(call)
        logs.call_started(call)

    def _keep(self, call: Call) -> None:
        logs.call_ended(call)
        self.live.pop(call.callid, None)
        self.ended[call.callid] = call
        while len(self.ended) > KEEP_ENDED:
            self.ended.popitem(last=False)

    async def _finish(self, call: Call, status: CallStatus) -> None:
        if call.state in ("ended", "refused"):
            return
        call.cancel_timers()
        now = self.now()
        notices: list[Notice] = []
        agent_here = call.agent is not None and not call.agent_left
        # An employee between two calls (consulting for an attended transfer) stays busy on the other one.
        held = call.caller if call.consult_for else (call.consult_by if call.consult else "")
        self._end_consult(call)
        for leg in list(call.legs.values()):
            if leg.state == "ringing":
                ended = self._end_leg(call, leg)
                if ended is not None:
                    notices.append(ended)
            elif leg.state == "talking":
                if call.kind == "incoming" and not leg.person.startswith("ext:"):
                    notices.append(self._event(call, EventType.COMPLETED, leg))
                leg.state = "ended"
                self.rt.telephony.stop(call.domain_id, call.callid, leg.party)
            if leg.person != held:
                self.busy.discard((call.domain_id, leg.person))
        if call.caller != held:
            self.busy.discard((call.domain_id, call.caller))
        if call.kind == "outgoing" and call.dialled and agent_here:  # the employee's card closes
            notices.append(self._out_event(call, EventType.COMPLETED if call.answered_at else EventType.CANCELLED))
        call.state, call.status, call.ended_at = "ended", status.value, now
        if call.callback_of and status is CallStatus.CANCEL and not call.dialled \
                and call.callback_attempt < CALLBACK_ATTEMPTS:  # no member picked up: try again later
            self._schedule_callback(call.domain_id, call.domain_name, call.timezone, client=call.dialed,
                                    clid=call.diversion, group_id=call.group_id, origin=call.callback_of,
                                    attempt=call.callback_attempt + 1)
        if call.kind == "incoming" and status is CallStatus.SUCCESS and call.group_pk is not None \
                and call.answered_by and not call.answered_by.startswith("ext:"):
            self._remember_answerer(call)
        self._queue.append(_Write(call, notices if call.kind != "internal" else [], status, now))
        self._kick()
        self._keep(call)

    def _end_consult(self, call: Call) -> None:
        """A consultation call ends uncompleted (the client is back with the employee), or the client's call
        ends while its employee consults (the consultation goes on as a plain call)."""
        if call.consult_for:
            client_call = self.live.get(call.consult_for)
            if client_call is not None and client_call.consult == call.callid:
                client_call.consult, client_call.consult_by, client_call.consult_target = "", "", None
                client_call.announcements.append("unhold")
        if call.consult:
            consult = self.live.get(call.consult)
            if consult is not None:
                consult.consult_for = ""
            call.consult = ""

    def _remember_answerer(self, call: Call) -> None:
        """EVENLY's rotation must see this answer before the store does (writes are behind)."""
        user_id = call.answerer_id
        if user_id is not None and call.group_pk is not None:
            self.last_answered[call.group_pk] = user_id

    async def _write_internal(self, session: AsyncSession, call: Call, status: CallStatus,
                              record: settings_service.RecordConfig) -> None:
        answered = status is CallStatus.SUCCESS and call.answered_at is not None
        to = call.answered_by if answered and call.answered_by else call.dialed  # a department: who answered
        callee = await repo.find_user(session, call.domain_id, to)
        session.add(InnerCallRecord(
            domain_id=call.domain_id, callid=call.callid, status="success" if answered else "noanswer",
            from_login=call.caller, from_name=call.caller_name or "", to_login=to,
            to_name=callee.name if callee else "", start=call.started,
            wait=_seconds(call.started, call.answered_at or call.ended_at),
            duration=_seconds(call.answered_at, call.ended_at) if answered else 0,
            link=self._record_link(call, record, external=False) if answered else ""))

    async def _write_incoming(self, session: AsyncSession, call: Call, status: CallStatus,
                              notices: list[Notice], record: settings_service.RecordConfig,
                              rotation: dict[int, int], history: list[dict[str, Any]]) -> None:
        answered = call.answered_at is not None
        external = (call.answered_by or "").startswith("ext:")
        answerer: dict[str, Any] = {}
        if call.answered_by and not external:
            answerer = _leg_fields(call.answer_leg) if call.answer_leg is not None else \
                await self._user_fields(session, call.domain_id, call.answered_by)
        elif call.first_answered is not None:  # transferred and the target never answered
            answerer = _leg_fields(call.first_answered)
        last_rung = call.rung[-1] if call.rung else ""
        if not answered and status is not CallStatus.SUCCESS:  # see hung_up: incoming calls know no Cancel
            status = CallStatus.CANCEL if status is CallStatus.CANCEL and call.direction == "out" \
                else CallStatus.MISSED
        success = status is CallStatus.SUCCESS
        destination = "user" if answerer and success else ("telnum" if external else call.destination)
        outward = call.direction == "out"  # a transferred outgoing call's second part
        if outward:
            destination = ""
        # 4.2 missedStatus follows calls the client was not served on; a transfer's later part is not one.
        missed = None if success or outward or call.transferred_from else 3
        user_fields = answerer or (await self._user_fields(session, call.domain_id, last_rung)
                                   if last_rung and not call.group_id else {})
        wait = _seconds(call.started, call.answered_at or call.ended_at)
        duration = _seconds(call.answered_at, call.talk_end or call.ended_at) if success else 0
        first = call.first_answered
        link = self._record_link(call, record, external=True) if success and answered else ""
        history.append(dict(
            domain_id=call.domain_id, callid=call.callid, type=call.direction, status=status.value,
            destination=destination,
            client=call.caller, user_login=user_fields.get("login", ""), user_name=user_fields.get("name", ""),
            user_ext=user_fields.get("ext", ""), user_telnum=user_fields.get("telnum", ""),
            first_login=first.person if first else "", first_name=first.name if first else "",
            group_id=call.group_id, group_name=call.group_name, diversion=call.diversion,
            telnum_name=call.telnum_name, start=call.started, wait=wait, duration=duration, link=link,
            rating=call.rating, missed_status=missed, note=""))
        if success and call.group_pk is not None and answerer.get("id") is not None:
            rotation[call.group_pk] = answerer["id"]
        hist_user = answerer.get("login") or (PBX_USER if external else last_rung) or PBX_USER
        ext_of = answerer.get("ext") or (user_fields.get("ext") if user_fields else None)
        # 002 §2.1/000/004: the push's duration is the whole call (wait + talk; talk = duration - wait); the
        # exports' (4.1, 4.2, legacy history) is the talk, as their tables say.
        notices.append(HistoryNotice(
            type=call.direction, user=hist_user, phone=call.caller, start=call.started, duration=wait + duration,
            callid=call.callid, status=status, diversion=call.diversion or None, ext=ext_of or None,
            groupRealName=call.group_name or None, telnum=answerer.get("telnum") or None, link=link or None,
            telnum_name=call.telnum_name or None, rating=call.rating, wait=wait,
            missedStatus=missed, group=call.group_id or None))

    async def _write_outgoing(self, session: AsyncSession, call: Call, status: CallStatus,
                              notices: list[Notice], record: settings_service.RecordConfig,
                              history: list[dict[str, Any]]) -> None:
        """An outgoing call's ``out`` history row; ``diversion`` (the CSV's ``via``) is the caller ID used."""
        success = status is CallStatus.SUCCESS and call.answered_at is not None
        fields = _leg_fields(call.agent) if call.agent is not None else \
            await self._user_fields(session, call.domain_id, call.rung[-1] if call.rung and not call.group_id else "")
        wait = _seconds(call.started, call.answered_at or call.ended_at)
        duration = _seconds(call.answered_at, call.ended_at) if success else 0
        link = self._record_link(call, record, external=True) if success else ""
        login = fields.get("login", "")
        history.append(dict(
            domain_id=call.domain_id, callid=call.callid, type="out", status=status.value, destination="",
            client=call.dialed, user_login=login, user_name=fields.get("name", ""),
            user_ext=fields.get("ext", ""), user_telnum=fields.get("telnum", ""),
            first_login=login if call.agent is not None else "", first_name=fields.get("name", "") if login else "",
            group_id=call.group_id, group_name=call.group_name, diversion=call.diversion, telnum_name="",
            start=call.started, wait=wait, duration=duration, link=link, rating=None, missed_status=None, note=""))
        notices.append(HistoryNotice(  # duration: the whole call, as for incoming calls
            type="out", user=login or PBX_USER, phone=call.dialed, start=call.started, duration=wait + duration,
            callid=call.callid, status=status, diversion=call.diversion or None, ext=fields.get("ext") or None,
            groupRealName=call.group_name or None, telnum=fields.get("telnum") or None, link=link or None,
            wait=wait, group=call.group_id or None))

    def _record_link(self, call: Call, config: settings_service.RecordConfig, *, external: bool) -> str:
        """Call-flows step 9: recorded when recording is on for the call's kind (12.5) and no employee
        who talked on it is an exception; the history then carries a signed link this server serves."""
        talkers = call.talkers if external else [call.caller, *call.talkers]
        if not config.records(external=external, logins=talkers):
            return ""
        call.link = records.link_for(self.rt, call.domain_id, call.callid, self.now())
        return call.link

    async def _user_fields(self, session: AsyncSession, domain_id: int, login: str) -> dict[str, Any]:
        if not login:
            return {}
        row = (await session.execute(select(User.id, User.login, User.name, User.ext, User.telnum).where(
            User.domain_id == domain_id, User.login == login))).first()
        if row is None:
            return {"login": login}
        return {"id": row.id, "login": row.login, "name": row.name, "ext": row.ext, "telnum": row.telnum}


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


def _write_engine(runtime: Runtime) -> AsyncEngine | None:
    """The engine's writes get a pool of their own (``WRITE_CONNECTIONS``): requests that hold the server's
    connections while they await the engine's flush (makecall, the simulator) can no longer starve it, which
    stalled bursts of click-to-calls for the pool's 30 s timeout. An in-memory SQLite store has one connection."""
    url = runtime.engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return db.create_engine(url.render_as_string(hide_password=False), pool_size=WRITE_CONNECTIONS, max_overflow=0)
