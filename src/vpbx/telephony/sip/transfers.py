"""Transfers from SIP phones (REFER, RFC 3515), mapped onto the engine's transfer modes.

sippy answers a REFER in a talking dialog itself: 202, then a BYE ending the phone's dialog, and one
``CCEventDisconnect`` carrying the Refer-To. The phone's part of the call is therefore over before the engine
decides; the outcome reaches the phone in the REFER's NOTIFY (``message/sipfrag``: 200, or the refusal), sent
in the same dialog after the BYE (RFC 5057: the REFER's subscription outlives the INVITE usage).

* Refer-To without ``Replaces``: a blind transfer (``engine.transfer(..., "blind")``) to its user (extension,
  login, department or outside number, as ``POST /calls/transfer`` takes them), from either side: the phone
  rung for the call (a fork) or the phone that placed it (its A-leg; the engine transfers outgoing calls, and
  refuses internal ones).
* Refer-To with ``?Replaces=<call-id>;to-tag=..;from-tag=..`` (RFC 3891) naming the employee's other dialog:
  an attended transfer. The phone placed the consultation itself (an internal or outgoing call); it becomes the
  consultation of the client's call and completes at once (``engine.transfer_into``): the target joins the
  client's call, with the history and CRM events of the simulator's attended transfer. Either dialog may carry
  the REFER. The client and the target are then re-offered each other's SDP (media flows end to end).
* Refused (unknown target, an internal call, the dialog named is not the employee's): the NOTIFY carries the
  refusal, and the phone's part ends as a hang-up would (its dialog is closed already): nothing stays
  half-transferred.

An INVITE carrying ``Replaces`` (RFC 3891) is not taken: a phone sends one only as a REFER's transferee (vpbx never
REFERs a phone) or to pick up a call (BLF pickup, not a transfer); sippy does not surface the header on the
INVITE's event, so such an INVITE is a plain call to its Request-URI user.

When the employee who placed an outgoing call transfers it away, the client (an outside leg, one of the port's
forks) becomes the call's caller side for the port (``ForkAsCaller``), so the rest of the call (ringing the
target with the client's SDP, re-offering the answering party's SDP) goes on as for a call from the network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vpbx.engine.base import CallError
from vpbx.telephony.sip.port import ALeg

if TYPE_CHECKING:
    from vpbx.telephony.sip.port import Fork, SipTelephony
    from vpbx.telephony.sip.stack import SipStack

log = logging.getLogger("vpbx.sip.transfers")

# The engine's refusal (CallError status) -> the final response the NOTIFY's sipfrag reports.
REFUSALS = {400: (400, "Bad Request"), 404: (404, "Not Found"), 409: (403, "Forbidden")}


def is_refer(event: Any) -> bool:
    """Whether sippy's ``CCEventDisconnect`` is a REFER (it carries the Refer-To; a BYE's legacy ``Also`` is
    not a transfer we take)."""
    from sippy.SipReferTo import SipReferTo

    return isinstance(event.getData(), SipReferTo)


# --- from the port and the A-leg handler (asyncio loop) ---------------------------------------------------

async def refer_from_fork(port: SipTelephony, fork: Fork, refer_to: Any) -> None:
    """The phone rung for the call (``fork``) sent REFER."""
    port.forks.pop((fork.callid, fork.party), None)
    await _refer(port, fork.domain_id, fork.callid, fork.party, fork.ua, refer_to)


async def refer_from_caller(port: SipTelephony, a: ALeg, refer_to: Any) -> None:
    """The phone that placed the call (its A-leg ``a``) sent REFER."""
    await _refer(port, a.domain_id, a.callid, a.party, a.ua, refer_to)


async def _refer(port: SipTelephony, domain_id: int, callid: str, by: str, ua: Any, refer_to: Any) -> None:
    from sippy.SipReferTo import SipReferTo

    signals = port.signals
    if signals is None:
        return
    notify = isinstance(refer_to, SipReferTo)  # not a BYE's legacy Also: no subscription to report in
    try:
        target, replaces = _parse(refer_to)
        if by == "client" or not callid:
            raise CallError(409, "The client does not transfer")
        if replaces is not None:
            await _attended(port, domain_id, callid, by, replaces)
        else:
            await _blind(port, domain_id, callid, by, target)
        log.info("SIP transfer", extra={"callid": callid, "by": by, "mode": "blind" if replaces is None else
                                        "attended"})
        if notify:
            port.stack.run(_notify, ua, 200, "OK")
    except Exception as exc:  # refused (CallError), or failed: either way the phone's part must end cleanly
        if isinstance(exc, CallError):
            log.info("SIP transfer refused", extra={"callid": callid, "by": by, "reason": exc.message})
        else:
            log.exception("SIP transfer failed", extra={"callid": callid, "by": by})
        status = exc.status if isinstance(exc, CallError) else 500
        if notify:
            port.stack.run(_notify, ua, *REFUSALS.get(status, (500, "Server Internal Error")))
        try:  # the phone's dialog is over (sippy hung it up): its part of the call ends
            await signals.hung_up(callid, by)
        except CallError:
            pass


def _parse(refer_to: Any) -> tuple[str, Any]:
    """(the Refer-To user, its ``Replaces`` header parsed, or None)."""
    from sippy.SipReplaces import SipReplaces

    try:
        url = refer_to.getUrl()
    except Exception:
        raise CallError(400, "no transfer target") from None
    target = str(url.username or "")
    headers = {str(k).lower(): v for k, v in (getattr(url, "headers", None) or {}).items()}
    if "replaces" not in headers:
        if not target:
            raise CallError(400, "no transfer target")
        return target, None
    replaces = SipReplaces(str(headers["replaces"]))
    replaces.parse()
    return target, replaces


def _engine(port: SipTelephony) -> Any:
    return port.signals


async def _blind(port: SipTelephony, domain_id: int, callid: str, by: str, target: str) -> None:
    engine = _engine(port)
    swapped = _client_as_caller(port, callid, by)
    try:
        await engine.transfer(domain_id, callid, by, target, "blind")
    except Exception:
        _restore(port, swapped)
        raise
    _release(port, swapped, engine.live.get(callid) or engine.ended.get(callid))


async def _attended(port: SipTelephony, domain_id: int, callid: str, by: str, replaces: Any) -> None:
    engine = _engine(port)
    other = _named_dialog(port, domain_id, by, replaces)
    if other is None or other == callid:
        raise CallError(404, "The dialog to replace is not one of the caller's")
    client_callid, consult_callid = _roles(engine, domain_id, callid, other, by)
    swapped = _client_as_caller(port, client_callid, by)
    try:
        now = await engine.transfer_into(domain_id, client_callid, by, consult_callid)
    except Exception:
        _restore(port, swapped)
        raise
    if swapped is not None:  # the employee's own dialog on the client's call (when the REFER came on the other)
        port._end_a(swapped[0], 0, "")
    _release(port, swapped, now)
    _rejoin(port, now.callid)


def _named_dialog(port: SipTelephony, domain_id: int, by: str, replaces: Any) -> str | None:
    """The engine call of ``by``'s dialog that ``Replaces`` names (its Call-ID, and the tags it gives)."""
    def named(ua: Any) -> bool:
        if ua is None or str(getattr(ua, "cId", "")) != str(replaces.call_id):
            return False
        tags = {t for t in (ua.lUri.getTag() if ua.lUri else None, ua.rUri.getTag() if ua.rUri else None) if t}
        return all(t in tags for t in (replaces.from_tag, replaces.to_tag) if t)

    for a in port.a_legs.values():
        if a.party == by and a.domain_id == domain_id and not a.ended and named(a.ua):
            return a.callid
    for (callid, party), forks in port.forks.items():
        if party == by and any(f.state == "talking" and f.domain_id == domain_id and named(f.ua) for f in forks):
            return callid
    return None


def _roles(engine: Any, domain_id: int, one: str, other: str, by: str) -> tuple[str, str]:
    """(the client's call, the consultation): the consultation is the call ``by`` placed (internal or
    outgoing); when both are (an outgoing call, then a consultation), the later one."""
    first, second = engine.current(domain_id, one), engine.current(domain_id, other)

    def placed(c: Any) -> bool:
        return c.kind in ("internal", "outgoing") and c.caller == by

    candidates = sorted((c for c in (first, second) if placed(c)), key=lambda c: c.started)
    if not candidates:
        raise CallError(409, f"{by} placed neither call")
    consult = candidates[-1]
    client = second if consult is first else first
    return client.callid, consult.callid


# --- the client as the caller side ---------------------------------------------------------------------

def _client_as_caller(port: SipTelephony, callid: str, by: str) -> tuple[ALeg, ALeg] | None:
    """The employee ``by`` placed ``callid`` (its A-leg) and transfers it away: the client's outside leg takes
    the A-leg's place for the port. Returns (the employee's A-leg, the stand-in), or None when not so."""
    a = port.a_legs.get(callid)
    if a is None or a.party != by:
        return None
    client = next((f for (cid, party), forks in port.forks.items() if cid == callid and party.startswith("ext:")
                   for f in forks if f.state == "talking"), None)
    if client is None:
        return None
    stand_in = ALeg(source=a.source, from_host=a.from_host, party="client", sdp=client.sdp, callid=callid,
                    domain_id=a.domain_id, ringing=True, answered=True)
    stand_in.ua = ForkAsCaller(port, stand_in, client)
    port.a_legs[callid] = stand_in
    return a, stand_in


def _restore(port: SipTelephony, swapped: tuple[ALeg, ALeg] | None) -> None:
    if swapped is None:
        return
    own, stand_in = swapped
    for callid, a in list(port.a_legs.items()):
        if a is stand_in:
            port.a_legs[callid] = own


class ForkAsCaller:
    """The ``ua`` of a stand-in A-leg (``_client_as_caller``): what the port sends the caller goes to the
    client's outside leg. A re-offer (``update``: the party now talking, or a party's re-INVITE relayed) is a
    re-INVITE to the client; the rest (ring, answer, end) is not the client's news: its leg is a fork, which
    the port ends with the call."""

    def __init__(self, port: SipTelephony, a: ALeg, fork: Fork) -> None:
        self.port, self.a, self.fork = port, a, fork

    def isDead(self) -> bool:  # sippy's UA interface
        ua = self.fork.ua
        return ua is None or bool(ua.isDead())

    def isConnected(self) -> bool:  # sippy's UA interface
        ua = self.fork.ua
        return ua is not None and bool(ua.isConnected())

    # reactor thread
    def recvEvent(self, event: Any) -> None:  # sippy's UA interface
        from sippy.CCEvents import CCEventFail, CCEventUpdate

        if not isinstance(event, CCEventUpdate) or self.fork.ua is None:
            return
        relayed = self.a.relay_to
        if relayed is self.fork:  # the client's own re-INVITE, come back: there is no caller to relay it to
            self.port.stack.to_loop(self._clear_relay)
            self.fork.ua.recvEvent(CCEventFail((488, "Not Acceptable Here")))
            return
        port, a = self.port, self.a

        def answered(body: Any) -> None:
            if relayed is not None:  # a party's re-INVITE: the client's answer is its answer
                port.relay_caller_answer(a, body)

        reoffer(port.stack, self.fork.ua, event.getData(), answered)

    def _clear_relay(self) -> None:
        if self.a.relay_to is self.fork:
            self.a.relay_to = None


# --- media and NOTIFY (the SDP re-offers run on the reactor thread) ----------------------------------------

def _rejoin(port: SipTelephony, callid: str) -> None:
    """After an attended transfer the party who joined was talking to the transferring phone. Anchored (the
    client's call in rtpengine, ``sip.media``): the party is re-offered the rtpengine side the client's audio
    goes to, and its answer re-points rtpengine at it; the client is not re-INVITEd. End to end (no media):
    the client's side and the party get each other's SDP."""
    a = port.a_legs.get(callid)
    if a is None or a.ended or a.ua is None:
        return
    stand_in = a.ua.fork if isinstance(a.ua, ForkAsCaller) else None
    joined = [f for (cid, _party), forks in port.forks.items() if cid == callid for f in forks
              if f.state == "talking" and f is not stand_in]
    if len(joined) != 1 or joined[0].sdp is None:
        return
    party = joined[0]
    media, m = port.media, a.media
    if media is not None and m is not None and m.anchored and m.offer_out:
        from sippy.MsgBody import MsgBody

        def answered(sdp: Any) -> None:
            if sdp is not None and media is not None:
                party.sdp = sdp
                port.spawn(media.answer_for_caller(a, str(sdp)))

        port.stack.run(reoffer, port.stack, party.ua, MsgBody(m.offer_out), answered)
        return
    if a.sdp is None:
        return
    client_ua = stand_in.ua if stand_in is not None else a.ua
    port.stack.run(reoffer, port.stack, client_ua, party.sdp.getCopy(), None)
    port.stack.run(reoffer, port.stack, party.ua, a.sdp.getCopy(), None)


def _release(port: SipTelephony, swapped: tuple[ALeg, ALeg] | None, call: Any) -> None:
    """The transferring employee's A-leg is out of the call: its rtpengine call (the client's audio, anchored
    towards that phone) ends, its recording stored under ``call`` as when a call ends; the client talks end to
    end with whoever answers next (re-offered to it)."""
    if swapped is None or port.media is None or swapped[0].media is None or call is None:
        return
    port.spawn(port.media.finish(swapped[0], call))


def reoffer(stack: SipStack, ua: Any, body: Any, answered: Callable[[Any], None] | None) -> None:
    """Re-INVITE ``ua``'s peer with ``body`` (reactor thread); its answer (the SDP, or None when refused) goes
    to ``answered`` on the asyncio loop instead of the dialog's owner, which did not ask."""
    from sippy.CCEvents import CCEventConnect, CCEventFail, CCEventUpdate

    def done(sdp: Any) -> None:
        if answered is not None:
            stack.to_loop(answered, sdp)

    if ua is None or ua.isDead() or getattr(ua.state, "sname", "") != "Connected":
        done(None)  # gone, or a re-INVITE of its own in progress: not offered
        return
    owner = ua.event_cb

    def swallow(event: Any, this: Any) -> None:
        if isinstance(event, (CCEventConnect, CCEventFail)):
            ua.event_cb = owner
            done(event.getData()[2] if isinstance(event, CCEventConnect) else None)
            return
        owner(event, this)

    ua.event_cb = swallow
    ua.recvEvent(CCEventUpdate(body))


def _notify(ua: Any, code: int, reason: str) -> None:
    """The REFER's outcome, in its implicit subscription's final NOTIFY (reactor thread)."""
    from sippy.MsgBody import MsgBody
    from sippy.SipContentType import SipContentType
    from sippy.SipHeader import SipHeader

    if ua is None or ua.rTarget is None:
        return
    ctype = SipContentType("message/sipfrag;version=2.0")
    ctype.parse()
    body = MsgBody(f"SIP/2.0 {code} {reason}\r\n", mtype=ctype)
    req = ua.genRequest("NOTIFY", body, extra_headers=(
        SipHeader(name="event", bodys="refer"),
        SipHeader(name="subscription-state", bodys="terminated;reason=noresource")))
    ua.newTransaction(req)
