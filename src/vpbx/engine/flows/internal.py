"""Internal calls: an employee calls another, or a department; internal history only, no CRM requests."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.engine.base import CallError, _seconds
from vpbx.engine.flows.ringing import USER_RING_SECONDS, Ringing
from vpbx.engine.model import Call, Leg
from vpbx.notify.payloads import CallStatus
from vpbx.services import settings as settings_service
from vpbx.store.repositories import directory as repo
from vpbx.store.repositories import engine_writes as writes_repo
from vpbx.store.tables import Domain, Group


class InternalFlow(Ringing):
    """Internal calls."""

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

    async def _write_internal(self, session: AsyncSession, call: Call, status: CallStatus,
                              record: settings_service.RecordConfig) -> None:
        answered = status is CallStatus.SUCCESS and call.answered_at is not None
        to = call.answered_by if answered and call.answered_by else call.dialed  # a department: who answered
        callee = await repo.find_user(session, call.domain_id, to)
        writes_repo.add_internal(session, dict(
            domain_id=call.domain_id, callid=call.callid, status="success" if answered else "noanswer",
            from_login=call.caller, from_name=call.caller_name or "", to_login=to,
            to_name=callee.name if callee else "", start=call.started,
            wait=_seconds(call.started, call.answered_at or call.ended_at),
            duration=_seconds(call.answered_at, call.ended_at) if answered else 0,
            link=self._record_link(call, record, external=False) if answered else ""))
