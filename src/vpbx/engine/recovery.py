"""Ending the calls a crash left live.

The engine writes every call it accepts to ``live_calls`` in the batch that writes the call's steps, and deletes
the row in the batch that writes its history (``core.CallEngine._write_batch``). What is left there when a server
starts was live when the last one stopped (a kill, a crash, or a plain stop with calls going on). Each is ended as
of its last known moment (the later of its own last write and its domain's last beat, ``live_beats``):

* incoming (and the parts of transferred calls): answered ones ``Success`` with the talk up to that moment;
  unanswered ones ``Missed`` (missedStatus 3: nobody called the client back yet);
* outgoing: answered ``Success``; the client's number dialled and not answered ``Missed`` (as a ring timeout);
  a click-to-call whose employee never picked up ``Cancel``;
* internal: ``success`` when answered, else ``noanswer``;

with ``COMPLETED`` for every employee still talking and ``CANCELLED`` for every employee still ringing (the events
a running call would send), then the ``history`` push. One transaction per chunk of calls claims their rows (a
DELETE that returns what it deleted), writes the history rows and queues the events: a recovery that crashes
itself leaves everything to the next, and two recoveries of one domain (a cluster's new owner and a late old one)
end each call once.

``recover_domain`` is what a node runs for a domain it takes over; ``start`` (a start-up hook) runs it for every
domain with live rows before the server answers.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from vpbx.engine import durable, engine_of
from vpbx.engine.core import CallEngine, _Write
from vpbx.engine.model import Call, Leg
from vpbx.metrics import ENGINE_CALLS_RECOVERED
from vpbx.notify.payloads import CallStatus, EventType, Notice
from vpbx.runtime import Runtime
from vpbx.store.repositories import calls as calls_repo

log = logging.getLogger("vpbx.engine.recovery")

CHUNK = 500  # calls per transaction
ATTEMPTS = 6  # a failing store at start-up: tried again with back-off, then the start fails (nothing is lost)


async def start(runtime: Runtime) -> None:
    """Start-up hook: end every call the previous run left live, domain by domain. In a cluster a node ends only
    the calls of the domains it takes (``vpbx.cluster.ownership`` runs ``recover_domain`` at each claim): the other
    domains' calls are live on their owners."""
    if runtime.extras.get("cluster") is not None:
        return
    await recover_all(runtime)


async def recover_all(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        domains = await calls_repo.live_domains(session)
    return sum([await recover_domain(runtime, domain_id) for domain_id in domains])


async def recover_domain(runtime: Runtime, domain_id: int) -> int:
    """End the calls ``live_calls`` holds for the domain; the number this run ended."""
    engine = engine_of(runtime)
    ended = 0
    while True:
        async with runtime.sessions() as session:
            rows = await calls_repo.live_calls(session, domain_id, limit=CHUNK)
            beat = await calls_repo.last_beat(session, domain_id)
        if not rows:
            break
        writes, unreadable = [], []
        for row in rows:
            last = max(row.seen_at, beat) if beat is not None else row.seen_at
            try:
                call = durable.restore(row.state)
            except Exception:  # never block a start: a row no version can read is reported and dropped
                log.exception("a live call's record cannot be read; dropped", extra={"callid": row.callid})
                unreadable.append(row.callid)
                continue
            writes.append(_ending(engine, call, last))
        if unreadable:
            async with runtime.sessions() as session:
                await calls_repo.drop_live(session, unreadable)
                await session.commit()
        written = await _write(engine, writes) if writes else []
        ended += len(written)
        for w in written:
            ENGINE_CALLS_RECOVERED.labels(w.status.value if w.status else "").inc()
    if ended:
        log.warning("ended %d calls the last run left live", ended, extra={"domain_id": domain_id, "calls": ended})
    return ended


async def _write(engine: CallEngine, writes: list[_Write]) -> list[_Write]:
    """The calls this transaction ended (others were ended by a concurrent recovery)."""
    delay = 0.1
    for _ in range(ATTEMPTS - 1):
        try:
            return await engine._write_batch(writes, claim=True)
        except durable.Fenced:
            raise  # another node took the domain meanwhile: its recovery ends these calls
        except Exception:
            log.exception("ending %d calls left live failed, trying again in %.1f s", len(writes), delay)
            await asyncio.sleep(delay)
            delay *= 2
    return await engine._write_batch(writes, claim=True)


def status_of(call: Call) -> CallStatus:
    """How a call a crash interrupted ends (see the module's docstring)."""
    if call.kind == "outgoing":
        if call.answered_at is not None:
            return CallStatus.SUCCESS
        return CallStatus.MISSED if call.dialled else CallStatus.CANCEL
    return CallStatus.SUCCESS if call.answered_at is not None else CallStatus.MISSED


def _ending(engine: CallEngine, call: Call, last: datetime) -> _Write:
    """The call ended at ``last``: its closing events and its status, as the write ``_finish`` would queue."""
    notices: list[Notice] = []
    if call.kind == "incoming":
        by_person: dict[str, list[Leg]] = {}
        for leg in call.legs.values():
            if leg.state in ("ringing", "talking") and not leg.person.startswith("ext:"):
                by_person.setdefault(leg.person, []).append(leg)
        for legs in by_person.values():
            talking = next((leg for leg in legs if leg.state == "talking"), None)
            notices.append(engine._event(call, EventType.COMPLETED, talking) if talking is not None
                           else engine._event(call, EventType.CANCELLED, legs[0]))
    elif call.kind == "outgoing" and call.dialled and call.agent is not None and not call.agent_left:
        notices.append(engine._event(call, EventType.COMPLETED if call.answered_at else EventType.CANCELLED,
                                     call.agent))
    status = status_of(call)
    for leg in call.legs.values():
        leg.state = "ended"
    call.state, call.status, call.ended_at = "ended", status.value, max(last, call.started)
    if call.talk_end is not None and call.talk_end > call.ended_at:
        call.talk_end = call.ended_at
    # ``at`` is now: the outbox rows are due at once on this run's clock (a restarted virtual clock starts over).
    return _Write(call, notices if call.kind != "internal" else [], status, engine.now())
