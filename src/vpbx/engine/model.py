"""The in-memory state of live calls: one ``Call`` per dial, one ``Leg`` per party rung."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from vpbx.clock import Timer
from vpbx.domain.history import iso
from vpbx.notify.payloads import Notice


@dataclass
class Leg:
    party: str  # login, or ext:<number>
    name: str = ""
    ext: str = ""
    telnum: str = ""
    state: str = "ringing"  # ringing | talking | ended
    since: datetime | None = None
    caller_name: str | None = None
    owner: str = ""  # the employee a mobile-redirect leg (ext:<mobile>) rings for
    user_id: int | None = None

    @property
    def person(self) -> str:
        """Who this leg is: the employee's login (also for their mobile), or ext:<number>."""
        return self.owner or self.party


@dataclass
class Call:
    callid: str
    domain_id: int
    domain_name: str
    timezone: str
    kind: str  # incoming | internal | outgoing
    caller: str  # client number, or the calling employee's login (outgoing: the employee, or the department)
    dialed: str  # the domain's number, the called employee, or the client an outgoing call dials
    started: datetime
    # routing | greeting | ivr | ringing | talking | rating | voicemail | message | ended | refused
    state: str = "routing"
    caller_name: str | None = None
    diversion: str = ""
    telnum_name: str = ""
    group_id: str = ""
    group_name: str = ""
    group_pk: int | None = None
    destination: str = ""
    ivr: dict[str, Any] | None = None
    legs: dict[str, Leg] = field(default_factory=dict)
    rung: list[str] = field(default_factory=list)  # employees rung, in order
    answered_by: str | None = None
    answerer_id: int | None = None
    answer_leg: Leg | None = None
    first_answered: Leg | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    status: str | None = None
    reason: str | None = None
    hops: int = 0
    timers: list[Timer] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    events: list[tuple[str, str]] = field(default_factory=list)
    pending: list[Notice] = field(default_factory=list)
    fallbacks: list[Any] = field(default_factory=list)  # numbers.Target to try when a stage fails (crm option)
    queue_position: int | None = None
    announcements: list[str] = field(default_factory=list)
    talkers: list[str] = field(default_factory=list)  # employees who talked on the call, in order
    link: str = ""
    voicemail_at: datetime | None = None  # the caller reached voicemail: the message is the call's recording
    from_employee: str = ""  # an employee's phone called one of the company's numbers (busy while it lasts)
    # Outgoing calls: ``agent`` rings first (makecall), ``client`` is the outside number dialled after.
    phase: str = ""  # agent | client | talking
    agent: Leg | None = None  # the employee placing the call (the one who picked up, for a department)
    dialled: bool = False  # the client's number was dialled (OUTGOING sent)
    rating: int | None = None  # the client's score (002 §2.4), when the number or department asked for one
    talk_end: datetime | None = None  # the employee hung up (the client may still be rating the call)
    # Transfers: a blind (or semi-attended) transfer ends this call's part and continues the client's call as a
    # new call (``continued_as`` = the event's ``second_callid``); ``chain`` is the first callid, which keeps the
    # notifications of all parts in one delivery order.
    direction: Literal["in", "out"] = "in"  # the client's call as the CRM sees it (transferred outgoing: out)
    chain: str = ""
    transferred_from: str = ""
    continued_as: str = ""
    agent_left: bool = False  # the employee who placed an outgoing call transferred it away
    # Attended transfers: the client waits while the employee calls the target (the consultation call).
    consult: str = ""  # on the client's call: the consultation call's id
    consult_by: str = ""  # on the client's call: the employee consulting
    consult_target: Any = None  # on the client's call: numbers.Target, for a semi-attended completion
    consult_for: str = ""  # on the consultation call: the client's call it may be transferred into
    # Callbacks (8.3 advanced=callback): the client asked for one (this call), or this call places one.
    callback_offer: bool = False
    callback_requested: bool = False
    callback_of: str = ""
    callback_attempt: int = 0

    def cancel_timers(self) -> None:
        for t in self.timers:
            t.cancel()
        self.timers.clear()

    def view(self) -> dict[str, Any]:
        return {
            "callid": self.callid,
            "kind": self.kind,
            "from": self.caller,
            "to": self.dialed,
            "state": self.state,
            "started": iso(self.started),
            "caller_name": self.caller_name,
            "diversion": self.diversion or None,
            "group": self.group_id or None,
            "destination": self.destination or None,
            "answered_by": self.answered_by,
            "answered_at": iso(self.answered_at) if self.answered_at else None,
            "ended_at": iso(self.ended_at) if self.ended_at else None,
            "status": self.status,
            "reason": self.reason,
            "queue_position": self.queue_position,
            "announcements": list(self.announcements),
            "link": self.link or None,
            "phase": self.phase or None,
            "rating": self.rating,
            "direction": self.direction,
            "transferred_from": self.transferred_from or None,
            "continued_as": self.continued_as or None,
            "consult": self.consult or None,
            "consult_for": self.consult_for or None,
            "callback_requested": self.callback_requested,
            "callback_of": self.callback_of or None,
            "legs": [
                {"party": leg.party, "name": leg.name, "state": leg.state, "owner": leg.owner or None,
                 "since": iso(leg.since) if leg.since else None, "caller_name": leg.caller_name}
                for leg in self.legs.values()
            ],
            "events": [{"type": t, "user": u} for t, u in self.events],
        }
