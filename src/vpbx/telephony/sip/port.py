"""SIP telephony: the ``Telephony`` port on a real SIP network (sippy as the stack, vpbx as a B2BUA).

The engine does not know SIP. It asks this port to ring a party (a login: every registered contact of the
employee gets an INVITE, forked; ``ext:<number>``: an INVITE to the carrier) and to stop a leg (CANCEL
before an answer, BYE after); the port reports answers, rejections and hang-ups to the engine's signals.

Calls from the network (``calls.py``) are "A-legs": a carrier's INVITE (an incoming call) or a phone's
(internal or outgoing). Their SDP offer goes to every party rung for the call, and the answering party's
SDP goes back in the A-leg's 200: media flows end to end (part 2 anchors it). When the engine ends a call
(``call_ended``) the A-leg gets its final response (a status mapped to a SIP code) or a BYE.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vpbx.telephony.sip import auth, outbound
from vpbx.telephony.sip.registrar import Location, Registrar
from vpbx.telephony.sip.stack import SipStack, local_contact

if TYPE_CHECKING:
    from vpbx.clock import RealClock, VirtualClock
    from vpbx.engine.model import Call
    from vpbx.runtime import Runtime
    from vpbx.telephony.media.recordings import RecordingStore
    from vpbx.telephony.ports import CallSignals
    from vpbx.telephony.sip.media import SipMedia

log = logging.getLogger("vpbx.sip.port")

# SIP final responses of an outside number -> the engine's reasons (002 §2.1 Busy, NotAvailable, NotFound).
REASONS = {486: "busy", 600: "busy", 480: "unavailable", 408: "unavailable", 503: "unavailable",
           404: "notfound", 484: "notfound", 604: "notfound"}
# How a call the engine ended answers its A-leg when it was never answered (history status -> SIP).
UNAVAILABLE = (480, "Temporarily Unavailable")
FINAL = {"NotAllowed": (403, "Forbidden"), "Busy": (486, "Busy Here"), "NotAvailable": UNAVAILABLE,
         "NotFound": (404, "Not Found"), "Missed": UNAVAILABLE, "Cancel": (487, "Request Terminated"),
         "Success": UNAVAILABLE}
REFUSED = {"unknown number": (404, "Not Found"), "number disabled": (480, "Temporarily Unavailable"),
           "blacklisted": (403, "Forbidden")}

# The A-leg whose engine call is being set up (engine.incoming/outgoing/internal ring parties before they return).
current_a_leg: contextvars.ContextVar[ALeg | None] = contextvars.ContextVar("vpbx_sip_a_leg", default=None)

# Offered to a phone rung for a call that has no SIP caller (a simulated one): no media, but it rings.
NO_MEDIA_SDP = ("v=0\r\no=vpbx 1 1 IN IP4 0.0.0.0\r\ns=vpbx\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                "m=audio 9 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=inactive\r\n")


def _preload() -> None:
    """Import what every call needs now (the modules are imported where used, lazily): the first calls after
    start would otherwise pay for it, tens of milliseconds each."""
    import importlib

    for name in ("sippy.UA", "sippy.CCEvents", "sippy.SipCallId", "sippy.MsgBody", "sippy.UacStateTrying",
                 "sippy.UacStateRinging", "sippy.UacStateCancelling", "sippy.UasStateTrying", "sippy.UasStateRinging",
                 "vpbx.engine", "vpbx.engine.core", "vpbx.store.repositories.carriers", "vpbx.store.repositories.sip",
                 "vpbx.store.repositories.directory"):
        try:
            importlib.import_module(name)
        except ImportError:  # pragma: no cover - a module renamed: only the warm-up is lost
            log.debug("not preloaded", extra={"module": name})


@dataclass
class ALeg:
    """An INVITE from the network, as one UAS."""

    source: tuple[str, int]
    from_host: str
    ua: Any = None
    party: str = ""  # the engine's name for this side: "client" (incoming) or the caller's login
    sdp: Any = None  # the offer
    callid: str = ""
    domain_id: int = 0
    ringing: bool = False
    answered: bool = False
    ended: bool = False
    relay_to: Fork | None = None  # a re-INVITE (hold, resume) the talking party sent us, waiting on the caller
    relay_from: Fork | None = None  # the caller's re-INVITE we passed to this talking party
    media: Any = None  # its rtpengine call (``sip.media.LegMedia``), when media is on
    click_to_call: bool = False  # no INVITE: stands for the client of a click-to-call (no ``ua``)


@dataclass
class Fork:
    """One INVITE the port sent (a party's contact, or the carrier), as one UAC."""

    callid: str
    party: str
    domain_id: int
    ua: Any = None
    state: str = "ringing"  # ringing | talking | ended
    sdp: Any = None  # the answer
    stopping: bool = False  # the engine stopped it: its end is not news
    code: int = 0
    sdp_for_a: Any = None  # rtpengine's answer for the caller, when the call is anchored


@dataclass
class _Carriers:
    """What every INVITE asks the store (the carrier peers, the domain of a dialled number), held until the
    store's change signal (``store.changes``: any process's configuration commit) moves."""

    targets: list[tuple[str, int]] = field(default_factory=list)
    sources: set[tuple[str, int]] = field(default_factory=set)
    numbers: dict[str, Any] = field(default_factory=dict)  # dialled number -> its Domain (detached) or None
    version: int | None = None


class SipTelephony:
    """The SIP side of the ``Telephony`` port (``router.Router`` puts it beside the simulator)."""

    def __init__(self, runtime: Runtime, host: str, port: int) -> None:
        from vpbx.telephony.sip.calls import Inbound

        self.rt = runtime
        self.clock: RealClock | VirtualClock = runtime.clock
        self.stack = SipStack(host, port, self._on_request)
        self.location = Location(runtime.clock)
        s = runtime.settings
        self.guard = auth.FailGuard(runtime.clock, s.sip_auth_fail_limit, s.sip_block_seconds)
        self.registrar = Registrar(runtime, self.stack, self.location, self.guard)
        self.inbound = Inbound(self)
        self.signals: CallSignals | None = None
        self.a_legs: dict[str, ALeg] = {}
        self.forks: dict[tuple[str, str], list[Fork]] = {}
        self.carriers = _Carriers()
        self._tasks: set[Any] = set()
        self.media: SipMedia | None = None
        self._store: RecordingStore | None = None  # recordings' store when there is no media runtime

    # --- life ------------------------------------------------------------------------------------

    async def start(self) -> None:
        from vpbx.telephony.sip.media import SipMedia

        await self.refresh_carriers()
        await self.stack.start()
        _preload()
        try:
            self.media = await SipMedia.start(self)
        except Exception:  # calls still connect end to end without media
            log.exception("media did not start: SIP calls go unanchored")


    async def stop_stack(self) -> None:
        for key in list(self.forks):
            for fork in self.forks.get(key, []):
                self._hang(fork)
        for a in list(self.a_legs.values()):
            self._end_a(a, 503, "Service Unavailable")
        await self.stack.stop()
        if self.media is not None:
            await self.media.stop()

    def _version(self) -> int | None:
        reader = getattr(self.rt, "reader", None)
        return reader.changes.version() if reader is not None else None

    async def refresh_carriers(self, *, force: bool = True) -> None:
        """Read the carrier peers again (``force``), or only when the configuration changed since they were read
        (``vpbx carrier add/remove`` in another process commits a change the signal reports)."""
        from vpbx.store.repositories import carriers

        version = self._version()
        if not force and version is not None and version == self.carriers.version:
            return
        async with self.rt.sessions() as session:
            found = await carriers.list_carriers(session)
        self.carriers.targets = [(c.host, c.port) for c in found]
        self.carriers.sources = {(c.host, c.port) for c in found}
        self.carriers.numbers = {}
        self.carriers.version = version

    async def is_carrier(self, host: str, port: int) -> bool:
        """Whether an INVITE from ``host``:``port`` comes from a trusted carrier peer (cached, see ``_Carriers``)."""
        from vpbx.store.repositories import carriers

        await self.refresh_carriers(force=False)
        try:
            host = carriers.normal_host(host)
        except ValueError:
            return False
        return (host, port) in self.carriers.sources

    async def domain_of_number(self, number: str) -> Any:
        """The domain a carrier's call to ``number`` is for (cached with the carriers)."""
        from vpbx.store.repositories import sip as sip_repo

        await self.refresh_carriers(force=False)
        version = self.carriers.version
        if number in self.carriers.numbers:
            return self.carriers.numbers[number]
        async with self.rt.sessions() as session:
            domain = await sip_repo.domain_of_number(session, number)
        if version is not None and version == self.carriers.version == self._version():  # no change landed meanwhile
            if len(self.carriers.numbers) > 10_000:
                self.carriers.numbers.clear()
            self.carriers.numbers[number] = domain
        return domain

    def spawn(self, coro: Any) -> None:
        import asyncio

        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- requests from the network (reactor thread) -------------------------------------------

    def _on_request(self, req: Any, t: Any) -> Any:
        method = req.getMethod()
        if method == "REGISTER":
            self.stack.to_loop(lambda: self.spawn(self.registrar.handle(req, t)))
            return (None, None, None)
        if method == "INVITE":
            if req.getHFBody("to").getTag() is not None:
                return (req.genResponse(481, "Call Leg/Transaction Does Not Exist"), None, None)
            return self.inbound.invite(req, t)
        if method == "OPTIONS":
            return (req.genResponse(200, "OK"), None, None)
        if method in ("BYE", "CANCEL", "INFO", "NOTIFY", "UPDATE", "REFER"):
            return (req.genResponse(481, "Call Leg/Transaction Does Not Exist"), None, None)
        return (req.genResponse(501, "Not Implemented"), None, None)

    # --- the port ---------------------------------------------------------------------------------

    def attach(self, signals: CallSignals, clock: RealClock | VirtualClock | None = None) -> None:
        self.signals = signals
        if clock is not None:
            self.clock = clock

    def is_registered(self, domain_id: int, login: str) -> bool:
        return self.location.is_registered(domain_id, login)

    def has_leg(self, callid: str) -> bool:
        """Whether the call came from the SIP network (its outside legs go to the carrier too)."""
        return self._a_of(callid) is not None

    def can_dial_out(self, callid: str) -> bool:
        """A call from the SIP network reaches outside numbers through a carrier peer, or through the §15
        registration of its caller ID (a domain may have no carrier at all)."""
        a = self._a_of(callid)
        if a is None:
            return False
        if self.carriers.targets or a.click_to_call:  # (a click-to-call's route is found as it rings out)
            return True
        clid = self._caller_id(callid)
        return bool(clid) and outbound.of(self.rt).live(a.domain_id, clid)

    def _a_of(self, callid: str) -> ALeg | None:
        a = self.a_legs.get(callid)
        if a is not None:
            return a
        pending = current_a_leg.get()
        if pending is not None and not pending.callid and not pending.ended:
            pending.callid = callid  # the engine's call being set up for this INVITE
            self.a_legs[callid] = pending
            return pending
        return None

    def bind(self, a: ALeg, call: Call) -> None:
        """The engine's call for ``a`` (when it rang nobody while it was set up)."""
        if not a.callid:
            a.callid = call.callid
            self.a_legs[call.callid] = a
        a.domain_id = call.domain_id

    def ring(self, domain_id: int, callid: str, party: str, caller: str, caller_name: str | None) -> None:
        a = self._a_of(callid)
        if a is None and not party.startswith("ext:") and self._is_click_to_call(callid):
            a = self._click_to_call(domain_id, callid)
        forks = self.forks.setdefault((callid, party), [])
        if party.startswith("ext:"):
            fork = Fork(callid, party, domain_id)
            forks.append(fork)  # at once: the engine may stop the party before its route is known
            body = self._offer_for(a)
            self.spawn(self._ring_out(fork, party[4:], self._caller_id(callid), caller, body, caller_name))
            return
        made = [(Fork(callid, party, domain_id), b) for b in self.location.contacts(domain_id, party)]
        forks.extend(fork for fork, _ in made)  # at once, even when they start later: the engine may stop them
        if not forks:
            self._report_later(callid, party, None)
            return

        def start(body: Any) -> None:
            for fork, b in made:
                self.stack.run(self._start_fork, fork, (b.host, b.port), b.user, caller, body.getCopy(), caller_name)

        media = self.media
        if a is not None and a.click_to_call and a.media is None and media is not None:
            async def anchored() -> None:  # the employee's phones are offered rtpengine's side once it is anchored
                from sippy.MsgBody import MsgBody

                await media.anchor_click_to_call(a)
                start(MsgBody(a.media.offer_out) if a.media.anchored else self._no_media())
            self.spawn(anchored())
        else:
            start(self._offer_for(a))

    def _is_click_to_call(self, callid: str) -> bool:
        call = getattr(self.signals, "live", {}).get(callid)
        return call is not None and call.kind == "outgoing" and call.phase == "agent"

    def _click_to_call(self, domain_id: int, callid: str) -> ALeg:
        """REST ``makecall`` / legacy ``makeCall``: the employee's phone rings first, then the client through the
        trunk. The client's side has no INVITE of its own: a stand-in A-leg carries the call's media."""
        a = ALeg(source=("", 0), from_host="", party="client", callid=callid, domain_id=domain_id,
                 click_to_call=True)
        self.a_legs[callid] = a
        return a

    async def _ring_out(self, fork: Fork, number: str, clid: str, caller: str, body: Any,
                        caller_name: str | None) -> None:
        """An outside leg: through the caller ID's §15 registration or the carrier peer (``outbound``)."""
        await self.refresh_carriers(force=False)  # the operator may have changed them (vpbx carrier ...)
        try:
            route = await self._outbound_target(fork.domain_id, clid)
        except Exception:  # the store unreachable: the leg fails as with no route, the call goes on
            log.exception("no route for an outside leg", extra={"callid": fork.callid})
            route = None
        if fork.stopping:
            return
        if route is None:
            log.warning("no carrier for an outside leg", extra={"callid": fork.callid})
            fork.state = "ended"
            siblings = self.forks.get((fork.callid, fork.party), [])
            if fork in siblings:
                siblings.remove(fork)
            if not siblings:
                self.forks.pop((fork.callid, fork.party), None)
            await self._rejected(fork.callid, fork.party, "unavailable")
            return
        self.stack.run(self._start_fork, fork, route.address, number, clid or caller, body, caller_name, route)

    async def _outbound_target(self, domain_id: int, clid: str) -> outbound.Route | None:
        """Where an outside leg goes: through the §15 registration of its caller ID ``clid`` when ``outgoing`` is
        on and it is registered, else the first carrier peer (``outbound.Outbound.route``)."""
        return await outbound.of(self.rt).route(domain_id, clid, self.carriers.targets)

    def _caller_id(self, callid: str) -> str:
        """An outgoing call's caller ID (002 §13, chosen by the engine: the call's ``diversion``)."""
        call = getattr(self.signals, "live", {}).get(callid)
        return str(getattr(call, "diversion", "") or "") if call is not None and call.kind == "outgoing" else ""

    def _offer_for(self, a: ALeg | None) -> Any:
        """What a party rung for the caller is offered: rtpengine's side when anchored, else the caller's SDP."""
        from sippy.MsgBody import MsgBody

        if a is not None and a.click_to_call:  # the client is offered rtpengine's client side
            if a.media is not None and a.media.client_offer:
                return MsgBody(a.media.client_offer)
            agent = self.talking_fork(a)
            return agent.sdp.getCopy() if agent is not None and agent.sdp is not None else self._no_media()
        if a is None or a.sdp is None:
            return self._no_media()
        if a.media is not None and a.media.anchored:
            if a.media.early and self.media is not None:
                self.media.ringback(a)
            return MsgBody(a.media.offer_out)
        return a.sdp.getCopy()

    @staticmethod
    def _no_media() -> Any:
        from sippy.MsgBody import MsgBody

        return MsgBody(NO_MEDIA_SDP)

    def _report_later(self, callid: str, party: str, reason: str | None) -> None:
        """Nobody to ring: the party declines, after the engine's current step (it is inside ring())."""
        async def report() -> None:
            await self._rejected(callid, party, reason)
        self.clock_soon(report)

    def clock_soon(self, fn: Any) -> None:
        import asyncio

        asyncio.get_running_loop().call_soon(lambda: self.spawn(fn()))

    def stop(self, domain_id: int, callid: str, party: str) -> None:
        for fork in self.forks.pop((callid, party), []):
            self._hang(fork)

    def _hang(self, fork: Fork) -> None:
        if fork.state == "ended":
            return
        fork.stopping, fork.state = True, "ended"
        self.stack.run(self._disconnect, fork)

    def connected(self, domain_id: int, callid: str, party: str) -> None:
        forks = self.forks.get((callid, party), [])
        talking = next((f for f in forks if f.state == "talking"), None)
        for other in forks:
            if other is not talking:
                self._hang(other)
        self.forks[(callid, party)] = [talking] if talking is not None else []
        a = self.a_legs.get(callid)
        if a is None or a.ended or talking is None:
            return
        if a.click_to_call:  # nobody to answer: the client's leg is a fork too; its talk may be recorded
            a.answered = True
            if party.startswith("ext:"):
                self._talk_started(a, callid)
            return
        self._talk_started(a, callid)
        if talking.sdp_for_a is not None:  # anchored: rtpengine already points the caller's audio at the party
            if not a.answered:
                a.answered = True
                self.stack.run(self._a_event, a, "connect", talking.sdp_for_a)
            return
        body = talking.sdp.getCopy() if talking.sdp is not None else None
        if not a.answered:
            a.answered = True
            self.stack.run(self._a_event, a, "connect", body)
        elif body is not None:  # a transfer: the caller now talks to another party (re-INVITE with its SDP)
            self.stack.run(self._a_event, a, "update", body)

    # --- media (``sip.media``) ------------------------------------------------------------------------

    def _talk_started(self, a: ALeg, callid: str) -> None:
        """Recorded when 12.5 says so (``sip.media``); without media, the link says there is no recording."""
        if self.media is not None and a.media is not None:
            self.spawn(self.media.talking(a, callid))
        else:
            self.spawn(self._unrecorded(a.domain_id, callid))

    async def _unrecorded(self, domain_id: int, callid: str) -> None:
        """No media for this call (``--rtpengine off``, or an INVITE without SDP): a talk 12.5 records has no
        recording, and its link says so (rather than serve the simulator's generated audio)."""
        import asyncio

        from vpbx.engine import engine_of
        from vpbx.telephony.media.recordings import RecordingStore

        if await engine_of(self.rt).records_now(callid):
            if self._store is None:  # one store for the process (an object store's client is not cheap)
                self._store = RecordingStore.for_settings(self.rt.settings)
            await asyncio.to_thread(self._store.record_failure, domain_id, callid, "no media for this call")

    def connected_to_simulator(self, callid: str) -> None:
        """A simulated device answered the SIP caller (the two coexist in a domain): the caller is answered --
        the simulator has no audio, so rtpengine's other side is the sink -- and the talk may be recorded."""
        a = self.a_legs.get(callid)
        if a is None or a.ended or a.click_to_call:
            return
        if self.media is not None and a.media is not None and a.media.anchored:
            self.spawn(self.media.answered_elsewhere(a, callid))
        elif not a.answered:
            a.answered = True
            self.stack.run(self._a_event, a, "connect", self._no_media())

    async def anchor(self, a: ALeg) -> None:
        if self.media is not None:
            await self.media.anchor(a)

    def prompt(self, domain_id: int, callid: str, prompt: str, file: str | None) -> None:
        a = self._a_of(callid)
        if a is not None and self.media is not None and not a.ended:
            self.media.prompt(a, prompt, file)

    def answer_caller(self, a: ALeg, sdp: str) -> None:
        """vpbx answers the caller itself (to play it prompts): the engine's call is not answered by this."""
        from sippy.MsgBody import MsgBody

        if not a.answered and not a.ended:
            a.answered = True
            self.stack.run(self._a_event, a, "connect", MsgBody(sdp))

    def talking_fork(self, a: ALeg) -> Fork | None:
        return next((f for key, forks in self.forks.items() if key[0] == a.callid for f in forks
                     if f.state == "talking"), None)

    async def digit(self, a: ALeg, digit: str) -> None:
        """The caller pressed a key (RFC 4733 through rtpengine, or SIP INFO): the engine's ``dtmf``."""
        from vpbx.engine import engine_of
        from vpbx.engine.core import CallError

        if not a.callid or a.ended:
            return
        try:
            await engine_of(self.rt).dtmf(a.domain_id, a.callid, digit)
            log.info("SIP key press", extra={"callid": a.callid, "digit": digit})
        except CallError:
            pass

    def moved(self, domain_id: int, old_callid: str, new_callid: str, party: str) -> None:
        forks = self.forks.pop((old_callid, party), [])
        for fork in forks:
            fork.callid = new_callid
        if forks:
            self.forks[(new_callid, party)] = forks

    def call_ended(self, call: Call) -> None:
        """The engine ended (or refused) ``call``: its A-leg hears it, unless the caller moved on to
        another call (a blind transfer: ``continued_as``)."""
        a = self.a_legs.pop(call.callid, None)
        if a is None:
            return
        if call.continued_as:
            a.callid = call.continued_as
            self.a_legs[call.continued_as] = a
            if self.media is not None and a.media is not None and a.media.recording:
                why = f"recorded with the call it was transferred to ({call.continued_as})"
                self.spawn(self.media.note_failure(call.domain_id, call.callid, why))
            return
        if self.media is not None and a.media is not None:
            self.spawn(self.media.finish(a, call))
        for key in [k for k in self.forks if k[0] == call.callid]:
            for fork in self.forks.pop(key, []):
                self._hang(fork)
        if a.answered:
            self._end_a(a, 0, "")
        elif call.state == "refused":
            self._end_a(a, *REFUSED.get(call.reason or "", (403, "Forbidden")))
        else:
            self._end_a(a, *FINAL.get(call.status or "", (480, "Temporarily Unavailable")))

    def _end_a(self, a: ALeg, code: int, reason: str) -> None:
        if a.ended:
            return
        a.ended = True
        self.stack.run(self._a_event, a, "end", (code, reason))

    # --- reactor-thread work ------------------------------------------------------------------------

    def _start_fork(self, fork: Fork, nh: tuple[str, int], cld: str, cli: str, body: Any,
                    caller_name: str | None, route: outbound.Route | None = None) -> None:
        from sippy.UA import UA

        if fork.stopping:  # stopped before it started
            return
        username, password = route.credentials() if route is not None else (None, None)
        ua = UA(self.stack.config, event_cb=lambda ev, _ua: self.stack.to_loop(self._on_fork_event, fork, ev),
                nh_address=nh, username=username, password=password)  # a §15 operator's challenge is answered
        ua.lContact = local_contact()
        fork.ua = ua
        ua.recvEvent(outbound.try_event(route, cli, cld, body, caller_name))

    def _disconnect(self, fork: Fork) -> None:
        from sippy.CCEvents import CCEventDisconnect

        if fork.ua is not None and not fork.ua.isDead():
            fork.ua.recvEvent(CCEventDisconnect())

    def _fork_answer(self, fork: Fork, body: Any) -> None:
        """Answer a party's re-INVITE: with the caller's SDP, or (None) refuse it (488)."""
        from sippy.CCEvents import CCEventConnect, CCEventFail

        ua = fork.ua
        if ua is None or ua.isDead():
            return
        refused = CCEventFail((488, "Not Acceptable Here"))
        ua.recvEvent(CCEventConnect((200, "OK", body)) if body is not None else refused)

    def relay_caller_update(self, a: ALeg, body: Any) -> bool:
        """The caller's re-INVITE (hold, resume): to the party it talks with; False when there is none."""
        talking = self.talking_fork(a)
        if talking is None or talking.ua is None:
            return False
        a.relay_from = talking

        def send(sdp: Any) -> None:
            self.stack.run(lambda: talking.ua.recvEvent(self._update(sdp)) if talking.ua.isConnected() else None)
        self._through_media(a, body, from_caller=True, offer=True, then=send)
        return True

    def _through_media(self, a: ALeg, body: Any, *, from_caller: bool, offer: bool, then: Any) -> None:
        """A re-INVITE's SDP (offer or answer) on its way to the other side: rewritten by rtpengine when the call
        is anchored (the media stays anchored through hold and resume), else passed as it is."""
        m = a.media
        if body is None or self.media is None or m is None or not m.anchored:
            then(body)
            return
        media = self.media
        if offer and not from_caller:
            media.party_offer(a, str(body))

        async def rewrite() -> None:
            from sippy.MsgBody import MsgBody

            fn = media.reoffer if offer else media.reanswer
            then(MsgBody(await fn(a, from_caller, str(body))))
        self.spawn(rewrite())

    @staticmethod
    def _update(body: Any) -> Any:
        from sippy.CCEvents import CCEventUpdate

        return CCEventUpdate(body)

    def relay_caller_answer(self, a: ALeg, body: Any) -> None:
        """The caller answered a re-INVITE a party sent (via us): the party gets the caller's SDP."""
        fork, a.relay_to = a.relay_to, None
        if fork is not None:
            self._through_media(a, body, from_caller=False, offer=False,
                                then=lambda sdp: self.stack.run(self._fork_answer, fork, sdp))

    def _a_event(self, a: ALeg, what: str, data: Any) -> None:
        from sippy.CCEvents import CCEventConnect, CCEventDisconnect, CCEventFail, CCEventRing, CCEventUpdate

        ua = a.ua
        if ua is None or ua.isDead():
            return
        if what == "ring":
            ua.recvEvent(CCEventRing((180, "Ringing", None)))
        elif what == "connect":
            ua.recvEvent(CCEventConnect((200, "OK", data)))
        elif what == "update":
            if ua.isConnected():
                ua.recvEvent(CCEventUpdate(data))
        elif what == "end":
            code, reason = data
            if ua.isConnected() or not code:
                ua.recvEvent(CCEventDisconnect())
            else:
                ua.recvEvent(CCEventFail((code, reason)))

    # --- events from forks (asyncio loop) ------------------------------------------------------

    def _on_fork_event(self, fork: Fork, event: Any) -> None:
        from sippy.CCEvents import (
            CCEventConnect,
            CCEventDisconnect,
            CCEventFail,
            CCEventRedirect,
            CCEventRing,
            CCEventUpdate,
        )

        if isinstance(event, CCEventRing):
            a = self.a_legs.get(fork.callid)
            if a is not None and not a.ringing and not a.answered and not a.ended and fork.state == "ringing":
                a.ringing = True
                self.stack.run(self._a_event, a, "ring", None)
        elif isinstance(event, CCEventConnect):
            code, _reason, body = event.getData()
            a = self.a_legs.get(fork.callid)
            if fork.state == "talking" and a is not None and a.relay_from is fork:  # its answer to the caller's
                a.relay_from = None                                                 # re-INVITE
                fork.sdp = body
                self._through_media(a, body, from_caller=True, offer=False,
                                    then=lambda sdp: self.stack.run(self._a_event, a, "connect", sdp))
                return
            if fork.stopping or fork.state != "ringing":
                self._hang(fork)
                return
            fork.state, fork.sdp = "talking", body
            self.spawn(self._answered(fork))
        elif isinstance(event, CCEventUpdate):  # the party's re-INVITE (hold, resume): the caller gets it
            a = self.a_legs.get(fork.callid)
            if a is None or a.ended or not a.answered or fork.state != "talking":
                self.stack.run(self._fork_answer, fork, None)
                return
            a.relay_to = fork
            self._through_media(a, event.getData(), from_caller=False, offer=True,
                                then=lambda sdp: self.stack.run(self._a_event, a, "update", sdp))
        elif isinstance(event, CCEventDisconnect) and event.getData() is not None and fork.state == "talking" \
                and not fork.stopping:
            # REFER from the phone (sippy answered 202 and hangs up its dialog): a transfer (transfers.py).
            fork.state, fork.stopping = "ended", True
            self.spawn(self._refer(fork, event.getData()))
        elif isinstance(event, (CCEventFail, CCEventRedirect, CCEventDisconnect)):
            data = event.getData() if isinstance(event, (CCEventFail, CCEventRedirect)) else None
            code = int(data[0]) if data else 0
            was, fork.state = fork.state, "ended"
            if fork.stopping:
                return
            if was == "talking":
                self.spawn(self._hung_up(fork))
            elif was == "ringing":
                fork.code = code
                siblings = self.forks.get((fork.callid, fork.party), [])
                if all(f.state == "ended" for f in siblings):
                    self.forks.pop((fork.callid, fork.party), None)
                    reason = REASONS.get(code, "unavailable") if fork.party.startswith("ext:") else None
                    self.spawn(self._rejected(fork.callid, fork.party, reason))

    async def _answered(self, fork: Fork) -> None:
        from vpbx.engine.core import CallError

        assert self.signals is not None
        siblings = self.forks.get((fork.callid, fork.party), [])
        if any(f is not fork and f.state == "talking" for f in siblings):
            self._hang(fork)  # another device of the employee picked up first
            return
        a = self.a_legs.get(fork.callid)
        if self.media is not None and a is not None and a.click_to_call and fork.sdp is not None:
            if fork.party.startswith("ext:"):
                await self.media.client_answered(a, str(fork.sdp))
            else:
                await self.media.agent_answered(a, str(fork.sdp))
        elif self.media is not None and a is not None and fork.sdp is not None:
            answer = await self.media.answer_for_caller(a, str(fork.sdp))
            if answer is not None:
                from sippy.MsgBody import MsgBody

                fork.sdp_for_a = MsgBody(answer)
            if fork.stopping or fork.state != "talking":
                return
        try:
            await self.signals.answered(fork.callid, fork.party)
        except CallError as exc:
            log.info("SIP answer came too late", extra={"callid": fork.callid, "reason": exc.message})
            self._hang(fork)
            winner = self.talking_fork(a) if a is not None and fork.sdp_for_a is not None else None
            if winner is not None and winner.sdp is not None and self.media is not None and a is not None:
                await self.media.answer_for_caller(a, str(winner.sdp))  # rtpengine back to the party that won

    async def _refer(self, fork: Fork, refer_to: Any) -> None:
        """The employee's phone transferred the call (REFER): blind to the Refer-To user, or attended when it
        carries ``Replaces`` (``transfers``)."""
        from vpbx.telephony.sip import transfers

        await transfers.refer_from_fork(self, fork, refer_to)

    async def _rejected(self, callid: str, party: str, reason: str | None) -> None:
        from vpbx.engine.core import CallError

        if self.signals is None:
            return
        try:
            await self.signals.rejected(callid, party, reason)
        except CallError:
            pass

    async def _hung_up(self, fork: Fork) -> None:
        from vpbx.engine.core import CallError

        self.forks.pop((fork.callid, fork.party), None)
        if self.signals is None:
            return
        try:
            await self.signals.hung_up(fork.callid, fork.party)
        except CallError:
            pass
