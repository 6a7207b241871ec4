"""SIP registrations (002 §15): trunks to other operators. The password is write-only and stored
sealed under the server secret; ``status`` comes from the telephony port, and a change to a
failure state raises a ``sipregs_error`` webhook event (§15.6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.schemas.sipregs import FAILURE_STATUSES, SipRegCreate, SipRegUpdate
from vpbx.secrets_store import SecretBox
from vpbx.services import tenancy, webhooks
from vpbx.services.errors import Forbidden, Invalid, NotFound
from vpbx.services.users import search_text
from vpbx.store.repositories import trunks as repo
from vpbx.store.tables import Domain
from vpbx.store.tables.trunks import SipRegistration
from vpbx.telephony.ports import Telephony


async def count_local_gw(session: AsyncSession, domain_id: int) -> int:
    """12.1 ``limits.local_gw.used``: other operators' numbers, registered (§15) or forwarded (§16)."""
    return await repo.count_sipregs(session, domain_id) + await repo.count_sipuris(session, domain_id)


tenancy.DOMAIN_COUNTERS["local_gw"] = count_local_gw


def status_of(reg: SipRegistration, telephony: Telephony) -> str:
    return telephony.trunk_status(reg.domain_id, reg.telnum) if reg.active else "disabled"


def sipreg_out(reg: SipRegistration, telephony: Telephony) -> dict[str, Any]:
    return {
        "telnum": reg.telnum,
        "name": reg.name,
        "active": reg.active,
        "domain": reg.host,
        "expires": reg.expires,
        "auth_name": reg.auth_name,
        "proxy": reg.proxy,
        "status": status_of(reg, telephony),
        "outgoing": reg.outgoing,
    }


def _search(reg: SipRegistration) -> str:
    return search_text(reg.telnum, reg.name, reg.host)


async def lock_domain(session: AsyncSession, domain: Domain) -> None:
    """Serialise writers counting against the domain's limits (a row lock on PostgreSQL)."""
    await session.execute(select(Domain.id).where(Domain.id == domain.id).with_for_update())


async def check_local_gw(session: AsyncSession, domain: Domain, telnum: str) -> None:
    """Another operator's number may be added: the service is on, the limit not reached, the number new."""
    if not domain.service_local_gw:
        raise Forbidden()
    await lock_domain(session, domain)
    if await repo.find_sipreg(session, domain.id, telnum) is not None:
        raise Invalid("telnum", f"{telnum} already has a SIP registration")
    if await repo.find_sipuri(session, domain.id, telnum) is not None:
        raise Invalid("telnum", f"{telnum} already has a SIP URI transfer")
    limit = domain.limit_local_gw
    if limit >= 0 and await count_local_gw(session, domain.id) >= limit:
        raise Invalid("limits.local_gw", f"the domain's limit of {limit} other operators' numbers is reached")


async def get(session: AsyncSession, domain_id: int, telnum: str) -> SipRegistration:
    reg = await repo.find_sipreg(session, domain_id, telnum)
    if reg is None:
        raise NotFound("sip registration")
    return reg


async def create(session: AsyncSession, domain: Domain, data: SipRegCreate, box: SecretBox,
                 now: datetime) -> SipRegistration:
    await check_local_gw(session, domain, data.telnum)
    reg = SipRegistration(
        domain_id=domain.id,
        telnum=data.telnum,
        name=data.name,
        host=data.domain,
        login=data.login,
        password_sealed=box.seal(data.password.get_secret_value()),
        active=data.active,
        auth_name=data.auth_name,
        expires=data.expires,
        proxy=data.proxy,
        outgoing=data.outgoing,
        created_at=now,
    )
    reg.search_text = _search(reg)
    session.add(reg)
    await session.flush()
    return reg


async def update(session: AsyncSession, domain_id: int, telnum: str, data: SipRegUpdate,
                 box: SecretBox) -> SipRegistration:
    reg = await get(session, domain_id, telnum)
    if data.domain is not None:
        reg.host = data.domain
    for field in ("name", "login", "active", "auth_name", "expires", "proxy", "outgoing"):
        value = getattr(data, field)
        if value is not None:
            setattr(reg, field, value)
    if data.password is not None:
        reg.password_sealed = box.seal(data.password.get_secret_value())
    reg.search_text = _search(reg)
    await session.flush()
    return reg


async def delete(session: AsyncSession, domain_id: int, telnum: str, telephony: Telephony) -> None:
    reg = await get(session, domain_id, telnum)
    await session.delete(reg)
    await session.flush()
    telephony.set_trunk_status(domain_id, reg.telnum, "success")  # a new registration starts afresh


def password(reg: SipRegistration, box: SecretBox) -> str:
    """The plain password, for the telephony side that registers the trunk."""
    return box.open(reg.password_sealed)


async def set_status(session: AsyncSession, domain_id: int, telnum: str, status: str, telephony: Telephony,
                     now: datetime) -> SipRegistration:
    """The telephony side reports a trunk's status; entering a failure state emits ``sipregs_error``."""
    reg = await get(session, domain_id, telnum)
    previous = telephony.set_trunk_status(domain_id, reg.telnum, status)
    if reg.active and status in FAILURE_STATUSES and previous != status:
        await webhooks.emit(session, domain_id, "sipregs_error",
                            {"telnum": reg.telnum, "name": reg.name, "domain": reg.host}, now)
    return reg
