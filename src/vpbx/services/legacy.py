"""The legacy integration (000/001/004): its token, whole-directory views and the CRM user map.

Every rule the legacy commands share with REST v1 (subscriptions, DND, history) stays in
``services.users`` / ``services.history``; this module only adds what the legacy API has and v1
has not: the ``token`` credential, the ``accounts``/``groups`` shapes and ``self_map`` (000 §5.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.notify.payloads import DEFAULT_EDITION, Edition, edition_of
from vpbx.security import key_hash, same
from vpbx.services import users
from vpbx.services.errors import Invalid, NotFound
from vpbx.store.repositories import directory as dir_repo
from vpbx.store.repositories import legacy as repo
from vpbx.store.repositories import tenancy as tenancy_repo
from vpbx.store.tables import Domain, Integration, LegacyUserMap, User


@dataclass(frozen=True)
class Caller:
    """The domain a valid legacy token opens."""

    domain_id: int
    domain_name: str
    timezone: str
    user_map_enabled: bool
    edition: Edition = DEFAULT_EDITION  # 000, or 004 (001/004): what makeCall answers


async def caller(session: AsyncSession, token: str | None) -> Caller | None:
    """The token's domain, or None: unknown token, or the integration is off or switched off
    (the legacy API has one error for all three: 401 ``Invalid token``)."""
    if not token:
        return None
    digest = key_hash(token)
    found = await repo.by_token_hash(session, digest)
    if found is None:
        return None
    integration, domain = found
    if not same(integration.legacy_token_hash or "", digest):
        return None
    if not integration.enabled or integration.switched_off:
        return None
    return Caller(domain.id, domain.name, domain.timezone, integration.user_map_enabled,
                  edition_of(integration.legacy_edition))


def make_call_answer(edition: Edition, callid: str) -> dict[str, str]:
    """000 §5.3 answers the call's id as ``CallID``; the 001/004 edition's clients read ``uuid``. Each edition's
    strict clients refuse the other's field, so the answer carries exactly one."""
    return {"uuid": callid} if edition == "004" else {"CallID": callid}


async def resolve_user(session: AsyncSession, who: Caller, value: str | None, *, direct_number: bool = False) -> User:
    """The employee a legacy ``user`` names: with the user map on, a mapped CRM user id first;
    then a login or an extension (a login wins, as in 002 §6); with ``direct_number``, also the
    employee's direct number in any common spelling (``+7 ...``, ``8 ...``)."""
    value = (value or "").strip()
    if not value:
        raise Invalid("user", "required")
    if who.user_map_enabled:
        mapped = await repo.mapped_user(session, who.domain_id, value)
        if mapped is not None:
            return mapped
    user = await dir_repo.find_user(session, who.domain_id, value)
    if user is None and direct_number:
        try:
            number = normalize_number(value)
        except InvalidNumber:
            number = ""
        if number:
            user = await repo.user_by_telnum(session, who.domain_id, number)
    if user is None:
        raise NotFound("user")
    return user


def account_out(u: User) -> dict[str, str]:
    """000 §5.1: ``name`` (the login), ``realName``, ``ext``, and ``telnum`` when the employee has one."""
    out = {"name": u.login, "realName": u.name, "ext": u.ext}
    if u.telnum:
        out["telnum"] = u.telnum
    return out


async def accounts(session: AsyncSession, domain_id: int) -> list[dict[str, str]]:
    return [account_out(u) for u in await repo.all_users(session, domain_id)]


async def groups(session: AsyncSession, domain_id: int, user: User | None) -> list[dict[str, str]]:
    """000 §5.2: every department, or the employee's ones: ``id``, ``realName``, ``ext``."""
    if user is None:
        found = await repo.all_groups(session, domain_id)
    else:
        found = [g for g, _ in await dir_repo.groups_of_user(session, user.id)]
    return [{"id": g.group_id, "realName": g.name, "ext": g.ext} for g in found]


# --- the CRM user map (operator side: ``vpbx integration map``) -------------------------------

async def set_map_enabled(session: AsyncSession, domain: Domain, on: bool) -> Integration:
    integration = await tenancy_repo.integration(session, domain.id)
    integration.user_map_enabled = on
    await session.flush()
    return integration


async def map_user(session: AsyncSession, domain: Domain, crm_user: str, login: str) -> LegacyUserMap:
    """Map a CRM user id to an employee (login or extension); mapping an id again moves it."""
    crm_user = crm_user.strip()
    if not crm_user or len(crm_user) > 255 or "\x00" in crm_user:
        raise Invalid("crm_user", "a CRM user id is 1-255 characters")
    user = await users.get(session, domain.id, login)
    row = await repo.mapping(session, domain.id, crm_user)
    if row is None:
        row = LegacyUserMap(domain_id=domain.id, crm_user=crm_user, user_id=user.id)
        session.add(row)
    else:
        row.user_id = user.id
    await session.flush()
    return row


async def unmap_user(session: AsyncSession, domain: Domain, crm_user: str) -> None:
    if not await repo.delete_mapping(session, domain.id, crm_user.strip()):
        raise NotFound("mapping")
    await session.flush()


async def user_map(session: AsyncSession, domain: Domain) -> dict[str, Any]:
    integration = await tenancy_repo.integration(session, domain.id)
    return {"enabled": integration.user_map_enabled, "map": await repo.mappings(session, domain.id)}
