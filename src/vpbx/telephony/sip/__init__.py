"""SIP telephony (issue 16): phones register, carriers send calls, the engine drives both through the port.

``install`` puts SIP beside the simulator (``vpbx.telephony.router.Router``) when ``settings.sip`` is set;
``start``/``stop`` are the server's hooks that open and close the listening stack.
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

    host, port = parse_hostport(runtime.settings.sip)
    runtime.telephony = Router(SipTelephony(runtime, host, port))


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
