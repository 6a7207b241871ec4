"""8.3 advanced=callback: the offer while waiting for a department, and the call back."""

from __future__ import annotations

import logging

from vpbx.engine.base import EngineBase
from vpbx.engine.model import Call
from vpbx.notify.payloads import CallStatus
from vpbx.store.tables import Domain, Group

log = logging.getLogger("vpbx.engine")

# 8.3 advanced=callback: the caller presses CALLBACK_DIGIT while waiting for the department (offered at once when
# nobody is free); the PBX places the call back CALLBACK_DELAY later as a department click-to-call, retrying every
# CALLBACK_RETRY when no member picks up, CALLBACK_ATTEMPTS times in all.
CALLBACK_DIGIT = "1"
CALLBACK_DELAY = 5.0
CALLBACK_RETRY = 300.0
CALLBACK_ATTEMPTS = 3


class CallbackFlow(EngineBase):
    """The callback offer and the scheduled call back."""

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
                           group_id: str, origin: str, attempt: int, delay: float | None = None,
                           key: str = "") -> None:
        """The callback, an outgoing call of the department (its members ring by its strategy, then the client
        is dialled); its outcome settles the missed call's missedStatus (2 reached, 4 not reached). In a cluster
        it is also kept in the store (``self.callbacks``: a new owner resumes it, ``key`` when resumed)."""
        domain = Domain(id=domain_id, name=domain_name, timezone=timezone)
        delay = (CALLBACK_DELAY if attempt == 1 else CALLBACK_RETRY) if delay is None else delay
        if self.callbacks is not None and not key:
            key = self.callbacks.keep(domain_id, delay, {
                "domain_name": domain_name, "timezone": timezone, "client": client, "clid": clid,
                "group_id": group_id, "origin": origin, "attempt": attempt})

        async def place() -> None:
            try:
                if self.callbacks is not None and not await self.callbacks.take(key):
                    return  # another node owns the domain now: it placed (or will place) this callback
                group, _ = await self.config.group(domain_id, group_id)
                if group is not None:
                    await self.make_call(domain, client, clid=clid, group=group, callback_of=origin,
                                         attempt=attempt)
            except Exception:
                log.exception("placing the callback of %s failed", origin)

        self.rt.clock.call_later(delay, place)
