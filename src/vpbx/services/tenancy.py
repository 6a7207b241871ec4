"""Domains (tenants), their API keys, roles and CRM integration: the operator's side."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.domain.rights import BUILTIN_ROLE_RIGHTS, is_valid_right
from vpbx.notify.payloads import DEFAULT_EDITION, DIALECTS
from vpbx.secrets_store import SEALED, box_of, seal_value
from vpbx.security import key_hash, new_key
from vpbx.services.errors import Invalid, NotFound
from vpbx.store.repositories import directory as dir_repo
from vpbx.store.repositories import tenancy as repo
from vpbx.store.repositories.outbox import resend_pending
from vpbx.store.tables import ApiKey, CustomRole, Domain, Integration

DOMAIN_COUNTERS: dict[str, Any] = {}  # name -> async fn(session, domain_id) -> int, for 12.1 limits


@dataclass
class CreatedDomain:
    domain: Domain
    api_key: str
    legacy_token: str


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid("timezone", f"unknown timezone '{name}'") from exc
    return name


async def create_domain(session: AsyncSession, name: str, now: datetime, *, timezone: str = "Europe/Moscow",
                        api_key: str | None = None, legacy_token: str | None = None) -> CreatedDomain:
    name = name.strip().lower()
    if not name or " " in name:
        raise Invalid("name", "a domain name is one word such as example.vpbx.local")
    if await repo.domain_by_name(session, name) is not None:
        raise Invalid("name", f"domain '{name}' exists")
    domain = Domain(name=name, timezone=check_timezone(timezone), created_at=now, limit_users=-1, limit_groups=-1,
                    limit_local_gw=-1, service_record=True, service_local_gw=True, service_branch=True, version=0)
    session.add(domain)
    await session.flush()
    legacy = legacy_token or str(uuid.uuid4())
    session.add(Integration(domain_id=domain.id, enabled=True, switched_off=False, crm_url="", crm_token="",
                            legacy_token_hash=key_hash(legacy), dialect="form", legacy_edition=DEFAULT_EDITION,
                            lookup_timeout=2.0, user_map_enabled=False))
    key = await create_key(session, domain, now, api_key=api_key, label="initial")
    return CreatedDomain(domain, key, legacy)


async def get_domain(session: AsyncSession, name: str) -> Domain:
    domain = await repo.domain_by_name(session, name.strip().lower())
    if domain is None:
        raise NotFound("domain")
    return domain


async def delete_domain(session: AsyncSession, name: str) -> None:
    await session.delete(await get_domain(session, name))
    await session.flush()


async def check_role(session: AsyncSession, domain_id: int, role: str | None) -> None:
    if role is None or role in BUILTIN_ROLE_RIGHTS:
        return
    if role not in {r.role_id for r in await repo.custom_roles(session, domain_id)}:
        raise Invalid("role", f"unknown role '{role}'")


async def create_key(session: AsyncSession, domain: Domain, now: datetime, *, api_key: str | None = None,
                     role: str | None = None, label: str = "") -> str:
    """A new key, returned once; only its hash is stored."""
    key = api_key or new_key()
    if len(key) < 16:
        raise Invalid("api_key", "an API key has at least 16 characters")
    await check_role(session, domain.id, role)
    session.add(ApiKey(domain_id=domain.id, key_hash=key_hash(key), prefix=key[:6], role=role, label=label,
                       created_at=now))
    await session.flush()
    return key


async def revoke_key(session: AsyncSession, domain: Domain, key_id_or_prefix: str, now: datetime) -> int:
    revoked = 0
    for key in await repo.keys(session, domain.id):
        if key.revoked_at is None and (str(key.id) == key_id_or_prefix or key.prefix == key_id_or_prefix):
            key.revoked_at = now
            revoked += 1
    if not revoked:
        raise NotFound("key")
    await session.flush()
    return revoked


ROLE_NAME_LENGTH = 255  # custom_roles.name


async def create_role(session: AsyncSession, domain: Domain, name: str, rights: list[str]) -> CustomRole:
    name = name.strip()
    if not name:
        raise Invalid("name", "the role needs a name")
    if len(name) > ROLE_NAME_LENGTH:
        raise Invalid("name", f"at most {ROLE_NAME_LENGTH} characters")
    bad = [r for r in rights if not is_valid_right(r)]
    if bad:
        raise Invalid("rights", f"unknown rights {', '.join(bad)}")
    role = CustomRole(domain_id=domain.id, role_id=f"custom_{uuid.uuid4()}", name=name, rights=sorted(set(rights)))
    session.add(role)
    await session.flush()
    return role


async def set_integration(session: AsyncSession, domain: Domain, *, crm_url: str | None = None,
                          crm_token: str | None = None, legacy_token: str | None = None,
                          dialect: str | None = None, enabled: bool | None = None,
                          lookup_timeout: float | None = None, signing_secret: str | None = None,
                          legacy_edition: str | None = None) -> Integration:
    integration = await repo.integration(session, domain.id)
    if crm_url is not None:
        if crm_url and not crm_url.startswith(("http://", "https://")):
            raise Invalid("crm_url", "the CRM URL must be http(s)")
        integration.crm_url = crm_url
    if crm_token is not None:
        _not_sealed("crm_token", crm_token)
        integration.crm_token = seal_value(box_of(session), crm_token) or ""  # rests encrypted
    if legacy_token is not None:
        integration.legacy_token_hash = key_hash(legacy_token)
    if dialect is not None:
        if dialect not in DIALECTS:
            raise Invalid("dialect", "form, json or legacy")
        integration.dialect = dialect
    if legacy_edition is not None:
        integration.legacy_edition = check_edition(legacy_edition)
    if enabled is not None:
        integration.enabled = enabled
        if enabled and integration.switched_off:
            integration.switched_off = False  # the operator turned it back on: what waited goes now, in order
            await resend_pending(session, domain.id)
    if lookup_timeout is not None:
        integration.lookup_timeout = lookup_timeout
    if signing_secret is not None:
        _not_sealed("signing_secret", signing_secret)
        integration.signing_secret = seal_value(box_of(session), signing_secret or None)
    await session.flush()
    return integration


def _not_sealed(field: str, value: str) -> None:
    # seal_value keeps a ``sealed:`` value as it is (a stored one posted back); typed by a caller it would be
    # stored as a sealed secret that opens to nothing, so every path (API, CLI, cabinet) refuses it here.
    if value.startswith(SEALED):
        raise Invalid(field, "give the value itself, not a sealed one")


LEGACY_EDITIONS = ("000", "001", "004")


def check_edition(value: str) -> str:
    """The legacy edition as stored: ``000`` or ``004`` (001 is 004's shorter edition, served alike)."""
    text = value.strip()
    if text not in LEGACY_EDITIONS:
        raise Invalid("legacy_edition", "000, 001 or 004")
    return "004" if text == "001" else text


def integration_out(integration: Integration) -> dict[str, Any]:
    """The integration as the operator and the API extension show it: never its secrets."""
    return {"enabled": integration.enabled and not integration.switched_off, "crm_url": integration.crm_url,
            "dialect": integration.dialect, "legacy_edition": integration.legacy_edition or DEFAULT_EDITION}


async def domain_params(session: AsyncSession, domain: Domain, now: datetime) -> dict[str, Any]:
    """002 §12.1."""
    offset = now.astimezone(ZoneInfo(domain.timezone)).utcoffset()
    counters = {
        "users": await dir_repo.count_users(session, domain.id),
        "groups": await dir_repo.count_groups(session, domain.id),
        "local_gw": 0,
    }
    for name, counter in DOMAIN_COUNTERS.items():
        counters[name] = await counter(session, domain.id)
    return {
        "timezone": {"name": domain.timezone, "offset": int(offset.total_seconds() // 60) if offset else 0},
        "limits": {
            "users": {"used": counters["users"], "total": domain.limit_users},
            "groups": {"used": counters["groups"], "total": domain.limit_groups},
            "local_gw": {"used": counters["local_gw"], "total": domain.limit_local_gw},
        },
        "services": {"record": domain.service_record, "local_gw": domain.service_local_gw,
                     "branch": domain.service_branch},
    }


async def set_limits(session: AsyncSession, domain: Domain, *, users: int | None = None, groups: int | None = None,
                     local_gw: int | None = None) -> None:
    for field, value in (("limit_users", users), ("limit_groups", groups), ("limit_local_gw", local_gw)):
        if value is not None:
            if value < -1:
                raise Invalid(field, "-1 (unlimited) or more")
            setattr(domain, field, value)
    await session.flush()
