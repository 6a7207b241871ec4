"""Incoming external calls (call-flows "Incoming external call"): admission, contact lookup, greeting, route by
time, targets (user, department with its ring strategy, telnum, IVR, closed message), timeout targets,
voicemail, the CRM's responsible first; their history row and push."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.domain.phone import InvalidNumber, is_anonymous, normalize_number
from vpbx.engine.base import CallError, _leg_fields, _seconds
from vpbx.engine.flows.ringing import USER_RING_SECONDS, Ringing
from vpbx.engine.model import Call
from vpbx.notify import service as notifier
from vpbx.notify.payloads import PBX_USER, CallStatus, ContactQuery, HistoryNotice, Notice
from vpbx.services import blacklist, numbers
from vpbx.services import settings as settings_service
from vpbx.store.repositories import directory as repo
from vpbx.store.repositories import engine_writes as writes_repo
from vpbx.store.repositories import numbers as numbers_repo
from vpbx.store.tables import Domain, Group, User

GREETING_SECONDS = 5.0
MESSAGE_SECONDS = 5.0  # closed / busy message, then hang up
STAGE_RING_SECONDS = 20  # a stage with more to try after it (the CRM's responsible, its fallback) rings less
IVR_TIMEOUT_SECONDS = 10.0
VOICEMAIL_SECONDS = 60.0
MAX_HOPS = 5


class IncomingFlow(Ringing):
    """Incoming external calls."""

    async def incoming(self, domain: Domain, caller: str, dialed: str, *, from_employee: str = "") -> Call:
        """``from_employee``: the login of an employee calling one of the company's own numbers from a phone: the
        call is routed as one from outside, and that employee is busy on it (never rung for their own call)."""
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
        if from_employee:
            call.from_employee = from_employee
            self.busy.add((domain.id, from_employee))
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
                self._hear(call, "greeting", route.greeting_file)
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
                user = await writes_repo.user_by_telnum(session, call.domain_id, number)
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
        self._hear(call, "busy" if call.announcements[-1:] == ["msg_busy"] else "closed")
        self._later(call, MESSAGE_SECONDS, lambda: self._finish(call, CallStatus.MISSED))

    async def _voicemail(self, call: Call) -> None:
        call.state, call.destination = "voicemail", "vm"
        call.voicemail_at = self.now()
        self._hear(call, "voicemail")
        self._later(call, VOICEMAIL_SECONDS, lambda: self._finish(call, CallStatus.MISSED))

    async def _ivr_enter(self, call: Call, menu: dict[str, Any]) -> None:
        call.hops += 1
        if call.hops > MAX_HOPS:
            await self._voicemail(call)
            return
        call.state, call.destination, call.ivr = "ivr", "ivr", menu
        self._hear(call, "menu")
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
            self._hear(call, "callback")
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

    async def _write_incoming(self, session: AsyncSession, call: Call, status: CallStatus,
                              notices: list[Notice], record: settings_service.RecordConfig,
                              rotation: dict[int, int], history: list[dict[str, Any]]) -> None:
        answered = call.answered_at is not None
        external = (call.answered_by or "").startswith("ext:")
        answerer: dict[str, Any] = {}
        if call.answered_by and not external:
            answerer = _leg_fields(call.answer_leg) if call.answer_leg is not None else \
                await writes_repo.user_fields(session, call.domain_id, call.answered_by)
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
        user_fields = answerer or (await writes_repo.user_fields(session, call.domain_id, last_rung)
                                   if last_rung and not call.group_id else {})
        wait = _seconds(call.started, call.answered_at or call.ended_at)
        duration = _seconds(call.answered_at, call.talk_end or call.ended_at) if success else 0
        first = call.first_answered
        link = self._record_link(call, record, external=True) if success and answered else \
            self._voicemail_link(call) if not answered else ""
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
