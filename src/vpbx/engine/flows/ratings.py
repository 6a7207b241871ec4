"""002 §2.4 ratings: the client stays after the employee hangs up to score the call."""

from __future__ import annotations

from vpbx.engine.base import CallError, EngineBase
from vpbx.engine.model import Call, Leg
from vpbx.notify.payloads import CallStatus, EventType, Notice, RatingNotice

RATING_SECONDS = 10.0  # the client hears the rating question this long after the employee hangs up
RATINGS = range(1, 6)


class RatingFlow(EngineBase):
    """The rating question and the client's score."""

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
        self._hear(call, "rating")
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
