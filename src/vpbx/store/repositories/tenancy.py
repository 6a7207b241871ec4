"""Queries over domains, API keys, custom roles and integrations."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.store.tables import ApiKey, CustomRole, Domain, Integration

DOMAIN_BY_NAME = select(Domain).where(Domain.name == bindparam("name"))  # every write's first read: built once


async def domain_by_name(session: AsyncSession, name: str) -> Domain | None:
    return await session.scalar(DOMAIN_BY_NAME, {"name": name})


async def domains(session: AsyncSession) -> list[Domain]:
    return list((await session.scalars(select(Domain).order_by(Domain.id))).all())


async def integration(session: AsyncSession, domain_id: int) -> Integration:
    row = await session.get(Integration, domain_id)
    assert row is not None, "every domain has an integration row"
    return row


async def keys(session: AsyncSession, domain_id: int) -> list[ApiKey]:
    return list((await session.scalars(select(ApiKey).where(ApiKey.domain_id == domain_id)
                                       .order_by(ApiKey.id))).all())


async def custom_roles(session: AsyncSession, domain_id: int) -> list[CustomRole]:
    return list((await session.scalars(select(CustomRole).where(CustomRole.domain_id == domain_id)
                                       .order_by(CustomRole.id))).all())


async def integration_by_legacy_token(session: AsyncSession, token_hash: str) -> Integration | None:
    return await session.scalar(select(Integration).where(Integration.legacy_token_hash == token_hash))
