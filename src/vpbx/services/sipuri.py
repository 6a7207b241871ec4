"""SIP URI transfers (002 §16): another operator forwards one of its numbers to an unguessable SIP
address of this PBX, ``pbx-<random>@<domain>``. Counts towards the ``local_gw`` limit."""

from __future__ import annotations

import secrets
import string
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.schemas.sipuri import SipUriCreate, SipUriUpdate
from vpbx.services.errors import NotFound
from vpbx.services.sipregs import check_local_gw
from vpbx.services.users import search_text
from vpbx.store.repositories import trunks as repo
from vpbx.store.tables import Domain
from vpbx.store.tables.trunks import SipUriTransfer

_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 16  # ~95 bits: not guessable; 002's example shows 12 characters


def new_uri(domain_name: str) -> str:
    return f"pbx-{''.join(secrets.choice(_ALPHABET) for _ in range(TOKEN_LENGTH))}@{domain_name}"


def sipuri_out(t: SipUriTransfer) -> dict[str, Any]:
    return {"telnum": t.telnum, "active": t.active, "uri": t.uri}


async def get(session: AsyncSession, domain_id: int, telnum: str) -> SipUriTransfer:
    t = await repo.find_sipuri(session, domain_id, telnum)
    if t is None:
        raise NotFound("sip uri transfer")
    return t


async def create(session: AsyncSession, domain: Domain, data: SipUriCreate, now: datetime) -> SipUriTransfer:
    await check_local_gw(session, domain, data.telnum)
    uri = new_uri(domain.name)
    while await repo.uri_taken(session, uri):  # pragma: no cover - 95 random bits
        uri = new_uri(domain.name)
    t = SipUriTransfer(domain_id=domain.id, telnum=data.telnum, uri=uri, active=data.active, created_at=now,
                       search_text=search_text(data.telnum, uri))
    session.add(t)
    await session.flush()
    return t


async def update(session: AsyncSession, domain_id: int, telnum: str, data: SipUriUpdate) -> SipUriTransfer:
    t = await get(session, domain_id, telnum)
    if data.active is not None:
        t.active = data.active
    await session.flush()
    return t


async def delete(session: AsyncSession, domain_id: int, telnum: str) -> None:
    await session.delete(await get(session, domain_id, telnum))
    await session.flush()
