"""INVITEs to the SIP addresses of 002 §16 ("Переадресация номера на SIP-адрес").

``POST /crmapi/v1/sipuri-transfers`` gives another operator's number an unguessable SIP address of this PBX,
``pbx-<token>@<domain>`` (``services.sipuri``); that operator forwards the number's calls there. An INVITE whose
Request-URI user is the address's user is an incoming call to the number, in the address's domain, as if a
carrier peer had delivered it: from any source, since the token (95 random bits) is the credential, as the
document intends. An address switched off (``active`` false) or unknown is no such call: the INVITE is then
treated as any other (a phone's, challenged).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vpbx.runtime import Runtime

# The user part ``services.sipuri.new_uri`` generates (its alphabet: letters and digits), with room to spare.
_USER = re.compile(r"^pbx-[A-Za-z0-9]{8,64}$")


async def forwarded(runtime: Runtime, user: str) -> tuple[int, str] | None:
    """The (domain id, number) an INVITE to ``user`` (the Request-URI's user) is for; None when it is not an
    active §16 address."""
    if not _USER.match(user):
        return None
    from vpbx.store.repositories import trunks

    async with runtime.sessions() as session:
        row = await trunks.sipuri_by_user(session, user)
    if row is None or not row.active:
        return None
    return int(row.domain_id), str(row.telnum)
