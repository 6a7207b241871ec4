"""Outgoing external calls (call-flows "Outgoing external call"): from a device, or click-to-call that rings the
employee (or a department) first; restrictions, the caller ID, OUTGOING, an ``out`` history row."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.engine.base import CallError, _leg_fields, _seconds
from vpbx.engine.flows.ringing import USER_RING_SECONDS, Ringing
from vpbx.engine.model import Call, Leg
from vpbx.notify.payloads import PBX_USER, CallStatus, EventNotice, EventType, HistoryNotice, Notice
from vpbx.services import settings as settings_service
from vpbx.store.repositories import engine_writes as writes_repo
from vpbx.store.tables import Domain, Group, User

CLIENT_REFUSALS = {"busy": CallStatus.BUSY, "unavailable": CallStatus.NOT_AVAILABLE, "notfound": CallStatus.NOT_FOUND}


class OutgoingFlow(Ringing):
    """Outgoing external calls and click-to-call."""

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

    async def _write_outgoing(self, session: AsyncSession, call: Call, status: CallStatus,
                              notices: list[Notice], record: settings_service.RecordConfig,
                              history: list[dict[str, Any]]) -> None:
        """An outgoing call's ``out`` history row; ``diversion`` (the CSV's ``via``) is the caller ID used."""
        success = status is CallStatus.SUCCESS and call.answered_at is not None
        fields = _leg_fields(call.agent) if call.agent is not None else \
            await writes_repo.user_fields(session, call.domain_id,
                                          call.rung[-1] if call.rung and not call.group_id else "")
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
