"""INVITEs from the network, handed to the engine.

* From a trusted carrier peer (source address and port, ``vpbx carrier add``): an incoming call to the number
  in the Request-URI (``engine.incoming``); a number no domain has is 404.
* From a phone: digest-authenticated as an employee (401 challenge, 403 on a wrong password, counted by the
  fail2ban-like guard); the Request-URI user is an extension or login of the domain (``engine.internal``)
  or an outside number (``engine.outgoing``: the engine applies call restrictions, a refused number ends
  ``NotAllowed`` and the phone hears 403).
* From anywhere else: 403, and counted as a failure (no calls out without authentication: no toll fraud).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.telephony.sip import auth
from vpbx.telephony.sip.port import ALeg, current_a_leg
from vpbx.telephony.sip.stack import local_contact

if TYPE_CHECKING:
    from vpbx.telephony.sip.port import SipTelephony

log = logging.getLogger("vpbx.sip.calls")


class Inbound:
    def __init__(self, port: SipTelephony) -> None:
        self.port = port

    # reactor thread
    def invite(self, req: Any, t: Any) -> Any:
        from sippy.UA import UA

        host, port = req.getSource()
        a = ALeg(source=(str(host), int(port)), from_host=str(req.getHFBody("from").getUrl().host or ""))
        stack = self.port.stack
        a.ua = UA(stack.config, event_cb=lambda ev, _ua: stack.to_loop(self._on_event, a, ev))
        a.ua.lContact = local_contact()
        return a.ua.recvRequest(req, t)

    # asyncio loop
    def _on_event(self, a: ALeg, event: Any) -> None:
        from sippy.CCEvents import (
            CCEventConnect,
            CCEventDisconnect,
            CCEventFail,
            CCEventInfo,
            CCEventTry,
            CCEventUpdate,
        )

        from vpbx.telephony.sip import transfers

        if isinstance(event, CCEventTry):
            self.port.spawn(self._setup(a, event))
        elif isinstance(event, CCEventInfo):  # a key press sent as SIP INFO (sippy has answered 200)
            self._info(a, event.getData())
        elif isinstance(event, CCEventUpdate):  # the caller's re-INVITE (hold, resume)
            if not self.port.relay_caller_update(a, event.getData()):
                self.port.stack.run(self._refuse_update, a)
        elif isinstance(event, CCEventConnect):  # the caller's answer to a re-INVITE we sent it
            if a.relay_to is not None:
                self.port.relay_caller_answer(a, event.getData()[2])
        elif isinstance(event, CCEventFail) and a.answered and a.ua is not None and a.ua.isConnected():
            if a.relay_to is not None:  # the caller refused a re-INVITE a party sent: so is the party's
                self.port.relay_caller_answer(a, None)
        elif isinstance(event, CCEventDisconnect) and not a.ended and a.answered and transfers.is_refer(event):
            a.ended = True  # REFER from the caller's phone: sippy answered 202 and hangs up its dialog
            if a.callid:
                self.port.spawn(transfers.refer_from_caller(self.port, a, event.getData()))
        elif isinstance(event, (CCEventDisconnect, CCEventFail)):
            if a.ended:
                return
            a.ended = True  # the caller cancelled or hung up
            if a.callid:
                self.port.spawn(self._hang_up(a))

    def _info(self, a: ALeg, body: Any) -> None:
        from vpbx.telephony.sip.media import info_digit

        if body is None:
            return
        try:
            digit = info_digit(str(body.getType()), str(body))
        except Exception:  # an INFO body sippy could not type: not a key press
            digit = None
        if digit is not None:
            self.port.spawn(self.port.digit(a, digit))

    @staticmethod
    def _refuse_update(a: ALeg) -> None:
        from sippy.CCEvents import CCEventFail

        if a.ua is not None and not a.ua.isDead():
            a.ua.recvEvent(CCEventFail((488, "Not Acceptable Here")))

    async def _hang_up(self, a: ALeg) -> None:
        from vpbx.engine.core import CallError

        signals = self.port.signals
        if signals is None:
            return
        try:
            await signals.hung_up(a.callid, a.party)
        except CallError:
            pass

    def _fail(self, a: ALeg, code: int, reason: str, challenge_realm: str | None = None) -> None:
        from sippy.CCEvents import CCEventFail

        a.ended = True
        if a.media is not None and self.port.media is not None:
            self.port.spawn(self.port.media.release(a))

        def send() -> None:
            if a.ua is None or a.ua.isDead():
                return
            event = CCEventFail((code, reason))
            if challenge_realm is not None:
                event.challenges = [auth.challenge_header(challenge_realm)]
            a.ua.recvEvent(event)

        self.port.stack.run(send)

    async def _setup(self, a: ALeg, event: Any) -> None:
        from vpbx.engine import engine_of
        from vpbx.engine.core import CallError
        _cid, cli, cld, body, authz, _name = event.getData()
        a.sdp = body
        host, port = a.source
        guard = self.port.guard
        if guard.blocked(host):
            self._fail(a, 403, "Forbidden")
            return
        rt = self.port.rt
        carrier = await self.port.is_carrier(host, port)
        engine = engine_of(rt)
        token = current_a_leg.set(a)
        try:
            trunk = self._from_trunk(host, port, str(cld or ""))
            if trunk is None and not carrier:  # 002 §16: an INVITE to one of our pbx-<token> addresses
                from vpbx.telephony.sip.sipuri import forwarded
                trunk = await forwarded(rt, str(cld or ""))
            if carrier:
                await self._from_carrier(a, str(cli or ""), str(cld or ""))
            elif trunk is not None:
                await self._from_carrier(a, str(cli or ""), trunk[1], domain_id=trunk[0])
            else:
                if authz is not None and not authz.parsed:
                    authz.parse()
                result = await auth.check(rt, authz, a.from_host, "INVITE")
                if result.verdict is auth.Verdict.CHALLENGE:
                    self._fail(a, 401, "Unauthorized", a.from_host)
                    return
                if result.verdict is not auth.Verdict.OK or result.account is None:
                    guard.failed(host)
                    log.info("SIP INVITE refused", extra={"source": host, "realm": a.from_host})
                    self._fail(a, 403, "Forbidden")
                    return
                guard.succeeded(host)
                await self._from_phone(a, result.account, str(cld or ""))
        except CallError as exc:
            code = {400: 404, 404: 404, 409: 486}.get(exc.status, 500)
            self._fail(a, code, "Not Found" if code == 404 else "Busy Here" if code == 486 else "Server Error")
        finally:
            current_a_leg.reset(token)
        del engine

    async def _domain_of_number(self, number: str) -> Any:
        return await self.port.domain_of_number(number)

    def _from_trunk(self, host: str, port: int, user: str) -> tuple[int, str] | None:
        """An INVITE through a §15 registration: from its registrar's address, to the Contact user we registered
        (the number). ``runtime.extras["sip_registrations"]`` is ``registrations.Registrations`` when running."""
        regs = self.port.rt.extras.get("sip_registrations")
        by_user = getattr(regs, "by_contact_user", None)
        from_registrar = getattr(regs, "from_registrar", None)
        if by_user is None or from_registrar is None or not user:
            return None
        key = by_user(user)
        return key if key is not None and key in from_registrar(host, port) else None

    async def _from_carrier(self, a: ALeg, caller: str, dialled: str, *, domain_id: int | None = None) -> None:
        from vpbx.engine import engine_of
        from vpbx.store.tables import Domain

        try:
            number = normalize_number(dialled)
        except InvalidNumber:
            self._fail(a, 404, "Not Found")
            return
        if domain_id is not None:
            async with self.port.rt.sessions() as session:
                domain = await session.get(Domain, domain_id)
        else:
            domain = await self._domain_of_number(number)
        if domain is None:
            self._fail(a, 404, "Not Found")
            return
        a.party, a.domain_id = "client", domain.id
        await self.port.refresh_carriers(force=False)  # outside legs of this call (a mobile redirect) use them
        await self.port.anchor(a)
        call = await engine_of(self.port.rt).incoming(domain, caller or "anonymous", number)
        self._bound(a, call)

    async def _from_phone(self, a: ALeg, account: Any, dialled: str) -> None:
        from vpbx.engine import engine_of
        from vpbx.store.repositories import directory as repo
        from vpbx.store.tables import Domain

        rt = self.port.rt
        engine = engine_of(rt)
        async with rt.sessions() as session:
            domain = await session.get(Domain, account.domain_id)
            callee = await repo.find_user(session, account.domain_id, dialled) if dialled else None
            group = await repo.find_group(session, account.domain_id, dialled) if dialled and callee is None \
                else None
        if domain is None or not dialled:
            self._fail(a, 404, "Not Found")
            return
        a.party, a.domain_id = account.login, account.domain_id
        await self.port.anchor(a)
        if callee is not None or group is not None:
            call = await engine.internal(domain, account.login, dialled)
        else:
            try:
                number = normalize_number(dialled)
            except InvalidNumber:
                self._fail(a, 404, "Not Found")
                return
            own = await self.port.domain_of_number(number)
            if own is not None and own.id == domain.id:
                # One of the company's own numbers: routed in here as the call from outside would be (greeting,
                # menu, departments), from the caller ID the engine shows outside -- no trip through a carrier.
                a.party = "client"
                clid = await engine.config.caller_id(domain.id, number, account.login)
                call = await engine.incoming(domain, clid or "anonymous", number, from_employee=account.login)
                self._bound(a, call)
                return
            await self.port.refresh_carriers(force=False)  # the operator may have changed them (vpbx carrier ...)
            call = await engine.outgoing(domain, account.login, dialled)
        self._bound(a, call)

    def _bound(self, a: ALeg, call: Any) -> None:
        """The engine's call for ``a``: already over (refused, not allowed, nobody to ring) or going on."""
        if a.ended and not a.callid:  # the caller gave up while the call was set up
            a.callid = call.callid
            self.port.spawn(self._hang_up(a))
            return
        self.port.bind(a, call)
        log.debug("SIP call placed", extra={"callid": call.callid, "kind": call.kind, "state": call.state,
                                           "status": call.status, "reason": call.reason})
        if call.state in ("ended", "refused"):
            self.port.call_ended(call)
