"""REGISTER: digest-authenticated bindings of employees' phones, kept in memory with their expiry.

The address of record is ``<login>@<domain>`` (the extension is accepted as the user part too); the realm
is the domain's name. Bindings live per (domain id, login): several devices per employee ring together.
Expiry is measured on the one clock, so ``is_registered`` turns false when the last binding lapses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from vpbx.telephony.sip import auth

if TYPE_CHECKING:
    from vpbx.clock import RealClock, VirtualClock
    from vpbx.runtime import Runtime
    from vpbx.telephony.sip.stack import SipStack

log = logging.getLogger("vpbx.sip.registrar")

DEFAULT_EXPIRES = 3600
MIN_EXPIRES = 60
MAX_EXPIRES = 3600


@dataclass
class Binding:
    contact: str  # the Contact URI as the phone gave it
    user: str  # its user part (the Request-URI user of INVITEs to it)
    host: str  # where INVITEs go: the address the REGISTER came from (phones behind NAT)
    port: int
    expires: datetime
    call_id: str
    # udp, tcp or tls: the REGISTER's transport. Over TCP/TLS, host:port is the connection's far end: INVITEs
    # to it take that connection (the stack's stream transport), or one opened to the Contact once it closed.
    transport: str = "udp"


class Location:
    """Contacts per (domain id, login)."""

    def __init__(self, clock: RealClock | VirtualClock) -> None:
        self.clock = clock
        self._bindings: dict[tuple[int, str], dict[str, Binding]] = {}

    def contacts(self, domain_id: int, login: str) -> list[Binding]:
        found = self._bindings.get((domain_id, login))
        if not found:
            return []
        now = self.clock.now()
        for key in [k for k, b in found.items() if b.expires <= now]:
            del found[key]
        if not found:
            del self._bindings[(domain_id, login)]
            return []
        return list(found.values())

    def is_registered(self, domain_id: int, login: str) -> bool:
        # Asked for every member of a department on every call: no list, no pruning (contacts() prunes).
        found = self._bindings.get((domain_id, login))
        if not found:
            return False
        now = self.clock.now()
        return any(b.expires > now for b in found.values())

    def registered_of(self, domain_id: int, logins: list[str]) -> set[str]:
        now = self.clock.now()
        out: set[str] = set()
        for login in logins:
            found = self._bindings.get((domain_id, login))
            if found and any(b.expires > now for b in found.values()):
                out.add(login)
        return out

    def bind(self, domain_id: int, login: str, binding: Binding) -> None:
        self._bindings.setdefault((domain_id, login), {})[binding.contact] = binding

    def unbind(self, domain_id: int, login: str, contact: str | None = None) -> None:
        found = self._bindings.get((domain_id, login))
        if found is None:
            return
        if contact is None:
            found.clear()
        else:
            found.pop(contact, None)
        if not found:
            del self._bindings[(domain_id, login)]


def _expires_of(req: Any, contact: Any) -> int:
    value: int | None = None
    try:
        raw = contact.getParam("expires")
        if raw is not None:
            value = int(raw)
    except (ValueError, TypeError, AttributeError):
        value = None
    if value is None and req.countHFs("expires") > 0:
        try:
            value = int(req.getHFBody("expires").getNum())
        except (ValueError, TypeError):
            value = None
    if value is None:
        value = DEFAULT_EXPIRES
    if value <= 0:
        return 0
    return max(MIN_EXPIRES, min(MAX_EXPIRES, value))


class Registrar:
    def __init__(self, runtime: Runtime, stack: SipStack, location: Location, guard: auth.FailGuard) -> None:
        self.rt, self.stack, self.location, self.guard = runtime, stack, location, guard

    def respond(self, t: Any, req: Any, code: int, reason: str, headers: list[Any] | None = None) -> None:
        resp = req.genResponse(code, reason)
        for h in headers or ():
            resp.appendHeader(h)
        self.stack.send_response(t, resp)

    async def handle(self, req: Any, t: Any) -> None:
        """One REGISTER (runs on the asyncio loop; the transaction waits open for the answer)."""
        (host, port), transport = req.getSource(ver=2)
        transport = str(transport).lower()
        if self.guard.blocked(host):
            self.respond(t, req, 403, "Forbidden")
            return
        to_url = req.getHFBody("to").getUrl()
        realm, aor_user = str(to_url.host or ""), str(to_url.username or "")
        result = await auth.check(self.rt, auth.authorization_of(req), realm, "REGISTER")
        if result.verdict is auth.Verdict.CHALLENGE:
            self.respond(t, req, 401, "Unauthorized", [auth.challenge_header(realm)])
            return
        account = result.account
        if result.verdict is auth.Verdict.FORBIDDEN or account is None or aor_user not in (account.login, account.ext):
            self.guard.failed(host)
            log.info("SIP registration refused", extra={"realm": realm, "source": host})
            self.respond(t, req, 403, "Forbidden")
            return
        self.guard.succeeded(host)
        from sippy.SipContact import SipContact
        from sippy.SipHeader import SipHeader

        call_id = str(req.getHFBody("call-id"))
        before = self.location.is_registered(account.domain_id, account.login)
        contacts = req.getHFBodys("contact") if req.countHFs("contact") > 0 else []
        if any(getattr(c, "asterisk", False) for c in contacts):
            self.location.unbind(account.domain_id, account.login)
        else:
            now = self.rt.clock.now()
            for contact in contacts:
                url = contact.getUrl()
                seconds = _expires_of(req, contact)
                uri = str(url)
                if seconds == 0:
                    self.location.unbind(account.domain_id, account.login, uri)
                    continue
                self.location.bind(account.domain_id, account.login, Binding(
                    contact=uri, user=str(url.username or account.login), host=host, port=int(port),
                    expires=now + timedelta(seconds=seconds), call_id=call_id, transport=transport))
                self.stack.remember_flow(transport, (host, int(port)),
                                         (str(url.host), int(url.port or (5061 if transport == "tls" else 5060))))
        headers = []
        now = self.rt.clock.now()
        for b in self.location.contacts(account.domain_id, account.login):
            left = max(0, int((b.expires - now).total_seconds()))
            headers.append(SipHeader(name="contact", body=SipContact(body=f"<{b.contact}>;expires={left}")))
        after = bool(headers)
        if before != after:
            log.info("SIP phone %s", "online" if after else "offline",
                     extra={"domain": account.domain, "login": account.login, "source": host, "transport": transport})
        self.respond(t, req, 200, "OK", headers)
