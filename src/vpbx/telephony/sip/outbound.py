"""Where an outside leg's INVITE goes (issue 16 "Calls out").

An employee's outgoing call carries the caller ID the engine chose (002 §13, the call's ``diversion``). When
that number is another operator's number of 002 §15 ("Номера других операторов") with ``outgoing`` on, and
vpbx's registration for it is live (status ``success``), the leg goes out through that operator: the INVITE is
sent to its ``proxy`` (else its ``domain``), From and Request-URI name the operator's domain (From =
``login@domain``, as registered), and the operator's digest challenge (401/407) is answered as ``auth_name``
(else ``login``) with the registration's password (sealed at rest; opened here, never logged). Otherwise
the leg goes to the first carrier peer (``vpbx carrier add``), as before.

The registration rows are read once per configuration change (the store's change signal, as the carrier
peers are) and the registrar's address is resolved per call (the OS resolver caches names).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vpbx.telephony.sip.stack import parse_hostport

if TYPE_CHECKING:
    from vpbx.runtime import Runtime

log = logging.getLogger("vpbx.sip.outbound")

RUNTIME_KEY = "sip_outbound"  # runtime.extras: the process's Outbound (made on first use)
_REGISTRATIONS_KEY = "sip_registrations"  # registrations.RUNTIME_KEY (not imported: that module is heavier)


@dataclass(frozen=True, slots=True)
class Route:
    """An outside leg's next hop, and how to present and authenticate the INVITE there."""

    address: tuple[str, int]  # where the INVITE is sent
    telnum: str = ""  # the §15 number it goes out through; "" for the carrier peer
    domain: str = ""  # the operator's domain (host[:port]): From's and the Request-URI's host
    login: str = ""  # From's user
    auth_name: str = ""
    password: str = field(default="", repr=False)

    @property
    def via_registration(self) -> bool:
        return bool(self.telnum)

    def credentials(self) -> tuple[str | None, str | None]:
        """sippy's UA answers a 401/407 to the INVITE with these (None, None: it does not)."""
        if not self.via_registration:
            return None, None
        return self.auth_name or self.login, self.password


@dataclass(frozen=True, slots=True)
class _Registration:
    """What an outside leg needs of a §15 row (detached from the session)."""

    host: str
    proxy: str
    login: str
    auth_name: str
    password_sealed: str = field(repr=False)
    active: bool
    outgoing: bool


class Outbound:
    """Chooses the route of outside legs for one process (``of(runtime)``)."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._rows: dict[tuple[int, str], _Registration | None] = {}
        self._version: int | None = None

    def _changes_version(self) -> int | None:
        reader = getattr(self.rt, "reader", None)
        return reader.changes.version() if reader is not None else None

    async def _registration(self, domain_id: int, telnum: str) -> _Registration | None:
        from vpbx.store.repositories import trunks

        version = self._changes_version()
        if version is None or version != self._version:
            self._rows.clear()
            self._version = version
        key = (domain_id, telnum)
        if key in self._rows:
            return self._rows[key]
        async with self.rt.sessions() as session:
            row = await trunks.find_sipreg(session, domain_id, telnum)
            found = None if row is None else _Registration(
                host=row.host, proxy=row.proxy, login=row.login, auth_name=row.auth_name,
                password_sealed=row.password_sealed, active=row.active, outgoing=row.outgoing)
        if version is not None and version == self._version == self._changes_version():  # nothing changed meanwhile
            if len(self._rows) > 10_000:
                self._rows.clear()
            self._rows[key] = found
        return found

    def live(self, domain_id: int, telnum: str) -> bool:
        """vpbx's registration for the number is up (``registrations.Registrations`` reports ``success``)."""
        regs = self.rt.extras.get(_REGISTRATIONS_KEY)
        status = getattr(regs, "status", None)
        return status is not None and status(domain_id, telnum) == "success"

    async def route(self, domain_id: int, caller_id: str, carriers: list[tuple[str, int]]) -> Route | None:
        """The route for an outside leg whose caller ID is ``caller_id`` ("" when the engine chose none, as for
        a call from outside redirected to a mobile); None when there is nowhere to send it."""
        carrier = Route(address=carriers[0]) if carriers else None
        if not caller_id or not self.live(domain_id, caller_id):
            return carrier
        reg = await self._registration(domain_id, caller_id)
        if reg is None or not reg.active or not reg.outgoing:
            return carrier
        try:
            password = self._open(reg.password_sealed)
            address = await _resolve(reg.proxy or reg.host)
        except (OSError, ValueError, IndexError) as exc:  # unreadable password, a name that no longer resolves
            log.warning("outgoing through the SIP registration not possible, via the carrier",
                        extra={"domain_id": domain_id, "telnum": caller_id, "error": type(exc).__name__})
            return carrier
        return Route(address=address, telnum=caller_id, domain=reg.host, login=reg.login, auth_name=reg.auth_name,
                     password=password)

    def _open(self, sealed: str) -> str:
        from vpbx.secrets_store import box_for

        try:
            return str(box_for(self.rt.settings).open(sealed))
        except Exception as exc:  # sealed under another secret
            raise ValueError("password unreadable") from exc


async def _resolve(hostport: str) -> tuple[str, int]:
    host, port = parse_hostport(hostport)
    infos = await asyncio.get_running_loop().getaddrinfo(host.strip("[]"), port, type=socket.SOCK_DGRAM)
    first = sorted(infos, key=lambda i: i[0] != socket.AF_INET)[0]  # IPv4 first, as the registrations do
    return str(first[4][0]), int(first[4][1])


def of(runtime: Runtime) -> Outbound:
    found = runtime.extras.get(RUNTIME_KEY)
    if not isinstance(found, Outbound):
        found = runtime.extras[RUNTIME_KEY] = Outbound(runtime)
    return found


# --- reactor thread: the INVITE itself --------------------------------------------------------------------


def _sip_url(user: str, hostport: str) -> Any:
    from sippy.SipURL import SipURL

    host, port = parse_hostport(hostport)
    given = (hostport.startswith("[") and "]:" in hostport) or (not hostport.startswith("[")
                                                               and hostport.count(":") == 1)
    return SipURL(username=user, host=f"[{host.strip('[]')}]" if ":" in host else host,
                  port=port if given else None)


def try_event(route: Route | None, cli: str, cld: str, body: Any, caller_name: str | None) -> Any:
    """sippy's CCEventTry for the leg. Through a registration, the UA is adjusted once it is set up (sippy names
    the next hop's address in the Request-URI and our own in From): Request-URI and To at the operator's domain,
    From ``login@domain``, as the operator knows us."""
    from sippy.CCEvents import CCEventTry
    from sippy.SipAddress import SipAddress
    from sippy.SipCallId import SipCallId
    from sippy.SipFrom import SipFrom
    from sippy.SipTo import SipTo

    data = (SipCallId(), cli, cld, body, None, caller_name or None)
    if route is None or not route.via_registration:
        return CCEventTry(data)

    def adjust(uac: Any) -> None:
        assert route is not None
        uac.rTarget = _sip_url(cld, route.domain)
        uac.rUri = SipTo(address=SipAddress(url=_sip_url(cld, route.domain), hadbrace=True))
        uac.lUri = SipFrom(address=SipAddress(url=_sip_url(route.login, route.domain), hadbrace=True,
                                              name=caller_name or None))
        uac.lUri.setTag(uac.lTag)

    event = CCEventTry(data)
    event.onUacSetupComplete = adjust  # sippy's hook, called between the UA's setup and its INVITE
    return event
