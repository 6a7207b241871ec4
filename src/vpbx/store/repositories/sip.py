"""Employees' SIP credentials (issue 16): digest HA1 per realm, looked up by the registrar and by phones' INVITEs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.store.tables.directory import User
from vpbx.store.tables.sip import SipCredential
from vpbx.store.tables.tenancy import Domain

__all__ = ["SipAccount", "find_account", "ha1", "set_password"]


@dataclass(frozen=True, slots=True)
class SipAccount:
    domain_id: int
    domain: str  # the realm
    login: str
    ext: str
    ha1: str  # for the user name the phone gave (login or extension)


def ha1(username: str, realm: str, password: str) -> str:
    """RFC 2617 HA1 = MD5(username:realm:password): what a digest check needs, and not the password."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()


async def set_password(session: AsyncSession, user: User | Row[Any], password: str) -> None:
    """Keep the HA1s of ``user``'s new password for their domain's realm (the domain's name)."""
    realm = await session.scalar(select(Domain.name).where(Domain.id == user.domain_id))
    if realm is None:
        return
    row = await session.get(SipCredential, user.id)
    if row is None:
        row = SipCredential(user_id=user.id, domain_id=user.domain_id)
        session.add(row)
    row.realm = realm
    row.ha1_login = ha1(user.login, realm, password)
    row.ext = user.ext
    row.ha1_ext = ha1(user.ext, realm, password)


async def find_account(session: AsyncSession, realm: str, username: str) -> SipAccount | None:
    """The employee of domain ``realm`` whose login or extension is ``username``, with the HA1 for that name;
    None when there is no such employee or they have no SIP password."""
    row = (await session.execute(
        select(User.login, User.ext, SipCredential.domain_id, SipCredential.realm, SipCredential.ha1_login,
               SipCredential.ext, SipCredential.ha1_ext)
        .join(SipCredential, SipCredential.user_id == User.id)
        .join(Domain, Domain.id == User.domain_id)
        .where(Domain.name == realm, or_(User.login == username, User.ext == username))
        .limit(2))).all()
    if not row:
        return None
    # A login equal to another employee's extension: the login wins (it is the documented user name).
    best = next((r for r in row if r[0] == username), row[0])
    login, ext, domain_id, stored_realm, ha1_login, cred_ext, ha1_ext = best
    if login == username:
        secret = ha1_login
    elif cred_ext == username == ext:
        secret = ha1_ext
    else:  # the extension changed since the password was set: its HA1 is stale
        return None
    return SipAccount(domain_id=domain_id, domain=stored_realm, login=login, ext=ext, ha1=secret)


async def domain_of_number(session: AsyncSession, telnum: str) -> Domain | None:
    """The domain a carrier's call to ``telnum`` is for: its one holder (an example number every demo company
    has counts only when exactly one domain has it, as on ``make run``'s store)."""
    from vpbx.store.tables.numbers import Telnum

    rows = (await session.execute(select(Telnum.domain_id, Telnum.example).where(Telnum.telnum == telnum)
                                  .order_by(Telnum.example).limit(2))).all()
    if not rows or (rows[0][1] and len(rows) > 1):
        return None
    return await session.get(Domain, rows[0][0])
