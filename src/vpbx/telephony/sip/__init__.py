"""SIP telephony (issue 16): phones register, carriers send calls, the engine drives both through the port.

SIP listens on UDP and TCP at ``settings.sip``, and on TLS (``stream.py``) with a certificate. ``install`` puts
SIP beside the simulator (``vpbx.telephony.router.Router``) when ``settings.sip`` is set; ``start``/``stop`` are
the server's hooks that open and close the listening stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vpbx.runtime import Runtime
    from vpbx.telephony.sip.port import SipTelephony


def install(runtime: Runtime) -> None:
    """With ``settings.sip`` (HOST:PORT), the runtime's telephony becomes the router over SIP and the simulator."""
    if not runtime.settings.sip:
        return
    from vpbx.telephony.router import Router
    from vpbx.telephony.sip.port import SipTelephony
    from vpbx.telephony.sip.stack import parse_hostport

    settings = runtime.settings
    host, port = parse_hostport(settings.sip)
    sip = SipTelephony(runtime, host, port)
    if settings.sip_tls_cert is not None and settings.sip_tls_key is not None:
        # TLS beside UDP and TCP: at ``sip_tls`` (HOST:PORT), by default the next port (5061 beside 5060).
        sip.stack.tls_cert, sip.stack.tls_key = str(settings.sip_tls_cert), str(settings.sip_tls_key)
        sip.stack.tls_address = parse_hostport(settings.sip_tls, port + 1) if settings.sip_tls else (host, port + 1)
    runtime.telephony = Router(sip)


def sip_of(runtime: Runtime) -> SipTelephony | None:
    from vpbx.telephony.router import Router

    telephony = runtime.telephony
    return telephony.sip if isinstance(telephony, Router) else None


async def start(runtime: Runtime) -> None:
    sip = sip_of(runtime)
    if sip is not None:
        await sip.start()


async def stop(runtime: Runtime) -> None:
    sip = sip_of(runtime)
    if sip is not None:
        await sip.stop_stack()
