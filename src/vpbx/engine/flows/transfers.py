"""Transfers of a talking call: blind, and attended (a consultation call first)."""

from __future__ import annotations

import uuid

from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.engine.base import CallError
from vpbx.engine.flows.ringing import Ringing
from vpbx.engine.model import Call, Leg
from vpbx.notify.payloads import CallStatus, EventType, Notice
from vpbx.services import numbers
from vpbx.store.tables import Domain


class TransferFlow(Ringing):
    """Blind and attended transfers."""

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
            leg = self._transferring_leg(call, by)
            target = await self._transfer_target(domain_id, to)
            if target.user == leg.person:
                raise CallError(409, f"{by} is already on this call")
            if mode == "attended":
                await self._consult(call, leg, target)
                return call
            return await self._blind(call, leg, target)

    def _transferring_leg(self, call: Call, by: str) -> Leg:
        """``by``'s talking leg on ``call``, which may be transferred now (else the 409 that says why not)."""
        leg = self._find_leg(call, by)
        if call.state != "talking" or leg is None or leg.state != "talking" or leg.person.startswith("ext:") \
                or (call.kind == "outgoing" and leg is not call.agent):
            raise CallError(409, f"{by} is not talking on this call")
        if call.kind == "internal" or call.consult_for:
            raise CallError(409, "Internal calls are not transferred")
        if call.consult:
            raise CallError(409, "A transfer of this call is already in progress")
        return leg

    async def transfer_into(self, domain_id: int, callid: str, by: str, consult_callid: str) -> Call:
        """An attended transfer whose consultation ``by`` placed as a call of its own (a SIP phone: REFER with
        ``Replaces`` naming its second call): ``consult_callid`` (an internal or outgoing call ``by`` made)
        becomes the consultation of the client's call ``callid`` and completes at once, as when ``by`` hangs up
        after ``transfer(..., "attended")``: the target joins the client's call, or (still ringing) the transfer
        goes on blind. Returns the call the client is on now."""
        call = self.current(domain_id, callid)
        consult = self.current(domain_id, consult_callid)
        if consult is call:
            raise CallError(409, "A call is not transferred into itself")
        async with call.lock, consult.lock:  # the client's call first, as hung_up takes them
            leg = self._transferring_leg(call, by)
            if consult.kind not in ("internal", "outgoing") or consult.caller != leg.person or consult.consult \
                    or consult.consult_for or consult.state not in ("ringing", "talking"):
                raise CallError(409, f"{consult_callid} is not a call {by} placed")
            if consult.kind == "outgoing":
                target = numbers.Target("telnum", None, None, None, consult.dialed)
            elif consult.dialed:
                target = numbers.Target("user", consult.dialed)
            else:
                target = numbers.Target("group", None, consult.group_id)
            call.consult, call.consult_by, call.consult_target = consult.callid, leg.person, target
            consult.consult_for = call.callid
            call.announcements.append("hold")
            await self._complete_consult(call, consult)
        return self.live.get(call.continued_as or call.callid) or call  # semi-attended: the new call

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
        self._hear(call, "holdmusic")

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
        # Moved before the consultation ends: a port ending its call (SIP) would otherwise stop the moved leg too.
        self.rt.telephony.moved(call.domain_id, consult.callid, call.callid, joined.party)
        await self._finish(consult, CallStatus.SUCCESS)
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
