"""The call engine: one state machine per call, driven by the clock and the telephony port.

Incoming external calls follow /work/shared/design/call-flows.md ("Incoming external call"):
admission, contact lookup, greeting, route by time, targets (user, group with its ring strategy,
telnum, ivr, closed message), timeout targets, events, and at the end ONE transaction holding the
history row and the call's last notifications. Internal calls leave internal history only. Outgoing
external calls ("Outgoing external call": from a device, or click-to-call that rings the employee first)
check the restrictions, choose the caller ID, send OUTGOING and end with an ``out`` history row.

The engine is a package: ``engine.base`` (the live calls' state, timers, the write batch), one module per flow
under ``engine.flows`` (mixins over it), and this module's ``CallEngine``, which combines them with the call
registry and the devices' signals (``telephony.ports.CallSignals``: answered, rejected, hung up, digits), each
dispatched to its flow. The statements it runs are in ``store.repositories.engine_writes``.
"""

from __future__ import annotations

from datetime import timedelta

from vpbx import logs
from vpbx.engine.base import (
    BEAT_SECONDS,
    FLUSH_LINGER,
    FLUSH_QUEUE,
    UNREACHED,
    WRITE_CONNECTIONS,
    WRITE_RETRY_FIRST,
    WRITE_RETRY_MAX,
    CallError,
    EngineBase,
    _Write,
)
from vpbx.engine.flows.callbacks import (
    CALLBACK_ATTEMPTS,
    CALLBACK_DELAY,
    CALLBACK_DIGIT,
    CALLBACK_RETRY,
    CallbackFlow,
)
from vpbx.engine.flows.incoming import (
    GREETING_SECONDS,
    IVR_TIMEOUT_SECONDS,
    MAX_HOPS,
    MESSAGE_SECONDS,
    STAGE_RING_SECONDS,
    VOICEMAIL_SECONDS,
    IncomingFlow,
)
from vpbx.engine.flows.internal import InternalFlow
from vpbx.engine.flows.outgoing import CLIENT_REFUSALS, OutgoingFlow
from vpbx.engine.flows.ratings import RATING_SECONDS, RATINGS, RatingFlow
from vpbx.engine.flows.ringing import USER_RING_SECONDS
from vpbx.engine.flows.transfers import TransferFlow
from vpbx.engine.model import Call
from vpbx.notify.payloads import CallStatus, EventType, Notice

__all__ = [
    "BEAT_SECONDS", "CALLBACK_ATTEMPTS", "CALLBACK_DELAY", "CALLBACK_DIGIT", "CALLBACK_RETRY", "CLIENT_REFUSALS",
    "FLUSH_LINGER", "FLUSH_QUEUE", "GREETING_SECONDS", "IVR_TIMEOUT_SECONDS", "KEEP_ENDED", "KEEP_ENDED_SECONDS",
    "MAX_HOPS", "MESSAGE_SECONDS", "RATINGS", "RATING_SECONDS", "STAGE_RING_SECONDS", "UNREACHED",
    "USER_RING_SECONDS", "VOICEMAIL_SECONDS", "WRITE_CONNECTIONS", "WRITE_RETRY_FIRST", "WRITE_RETRY_MAX",
    "CallEngine", "CallError", "_Write",
]

# Ended calls kept in memory for inspection (the simulator's GET of a call, a transfer's chain): the latest
# KEEP_ENDED, none older than KEEP_ENDED_SECONDS of the engine's clock; their history is in the store. Bounded both
# ways so a server's memory stays flat under any call rate (README "Memory").
KEEP_ENDED = 2_000
KEEP_ENDED_SECONDS = 3600.0


class CallEngine(IncomingFlow, InternalFlow, OutgoingFlow, TransferFlow, CallbackFlow, RatingFlow, EngineBase):
    """One state machine per call: the flows' steps (``engine.flows``) over the core's state (``engine.base``)."""

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
        oldest = self.now() - timedelta(seconds=KEEP_ENDED_SECONDS)
        while self.ended and ((first := next(iter(self.ended.values()))).ended_at or first.started) < oldest:
            del self.ended[first.callid]
        ended = getattr(self.rt.telephony, "call_ended", None)  # SIP: the caller's own leg ends with the call
        if ended is not None:
            ended(call)

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
        if call.from_employee:
            self.busy.discard((call.domain_id, call.from_employee))
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

    def _remember_answerer(self, call: Call) -> None:
        """EVENLY's rotation must see this answer before the store does (writes are behind)."""
        user_id = call.answerer_id
        if user_id is not None and call.group_pk is not None:
            self.last_answered[call.group_pk] = user_id
