"""Ringing employees and outside numbers, shared by every flow: legs, events, who can take a call, ring plans."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from vpbx.domain import ringing
from vpbx.engine.base import EngineBase, _Write
from vpbx.engine.config import Roster, Staff
from vpbx.engine.model import Call, Leg
from vpbx.notify.payloads import EventNotice, EventType
from vpbx.store.tables import Group, User

USER_RING_SECONDS = 60  # a personal call rings this long, then voicemail


class Ringing(EngineBase):
    """Legs and ring plans (call-flows step 6) for the flows above it."""

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

    def _roster_free(self, call: Call, roster: Roster) -> list[bool]:
        """``_staff_free`` for each member, the devices asked once for the whole roster (a department of a
        thousand is planned on every call)."""
        registered_of = getattr(self.rt.telephony, "registered_of", None)
        if registered_of is None:
            return [self._staff_free(call, s) for s in roster.staff]
        registered = registered_of(call.domain_id, [s.login for s in roster.staff])
        busy, domain_id = self.busy, call.domain_id
        return [ringing.can_take_calls(dnd=s.dnd, absent=s.absent, registered=s.login in registered,
                                       mobile_redirect=s.mobile_redirect, busy=(domain_id, s.login) in busy,
                                       calls_enable=s.calls_enable) for s in roster.staff]

    def _plan(self, call: Call, group: Group, roster: Roster) -> list[ringing.Ring]:
        """Who rings when (``domain.ringing``), from the members free now and the department's rotation."""
        members = [ringing.Member(s.id, free) for s, free in zip(roster.staff, self._roster_free(call, roster),
                                                                 strict=True)]
        last = self.last_answered.get(group.id, group.last_answered_user_id)
        if group.call_order.upper() == "EVENLY":
            # The rotation moves when a call ends: calls arriving together would all ring the same member first,
            # who answers one and stops ringing on the others until their next slot. Members already ringing on
            # another call go last, so simultaneous calls spread (one by one, nothing changes).
            busy_ringing = self._ringing_now(call)
            logins = {s.id: s.login for s in roster.staff}
            members = sorted(ringing.rotation(members, last), key=lambda m: logins[int(str(m.key))] in busy_ringing)
            last = None
        return ringing.plan(group.call_order, members, call_duration=group.call_duration,
                            timeout=group.timeout_time, last_answered=last)

    def _ringing_now(self, call: Call) -> set[str]:
        """Who is ringing on the domain's other calls (calls being answered or talking are skipped at once)."""
        return {leg.person for other in self.live.values()
                if other is not call and other.domain_id == call.domain_id and other.state == "ringing"
                for leg in other.legs.values() if leg.state == "ringing"}

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

    @staticmethod
    def _client_number(call: Call) -> str:
        return call.dialed if call.kind == "outgoing" else call.caller

    async def _load_user(self, domain_id: int, login: str) -> User | None:
        return await self.config.user(domain_id, login)

    async def _ring_timeout(self, call: Call, then: Callable[[], Awaitable[None]]) -> None:
        if call.state != "ringing":
            return
        await self._stop_ringing(call)
        call.cancel_timers()
        await then()

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

    def _leave(self, call: Call, leg: Leg) -> None:
        """An employee leaves a talking call (transferred it): their device stops, they are free again."""
        leg.state = "ended"
        call.legs.pop(leg.party, None)
        self.busy.discard((call.domain_id, leg.person))
        self.rt.telephony.stop(call.domain_id, call.callid, leg.party)
        if call.agent is leg:
            call.agent_left = True
