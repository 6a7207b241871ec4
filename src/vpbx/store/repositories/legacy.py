"""Queries of the legacy command API: its token, whole-directory lists and the CRM user map."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.store.repositories.directory import NUL
from vpbx.store.tables import Domain, Group, Integration, LegacyUserMap, User


async def by_token_hash(session: AsyncSession, token_hash: str) -> tuple[Integration, Domain] | None:
    row = (await session.execute(
        select(Integration, Domain).join(Domain, Domain.id == Integration.domain_id)
        .where(Integration.legacy_token_hash == token_hash))).first()
    return (row[0], row[1]) if row is not None else None


async def all_users(session: AsyncSession, domain_id: int) -> list[User]:
    return list((await session.scalars(select(User).where(User.domain_id == domain_id).order_by(User.id))).all())


async def all_groups(session: AsyncSession, domain_id: int) -> list[Group]:
    return list((await session.scalars(select(Group).where(Group.domain_id == domain_id).order_by(Group.id))).all())


async def user_by_telnum(session: AsyncSession, domain_id: int, telnum: str) -> User | None:
    return (await session.scalars(select(User).where(User.domain_id == domain_id, User.telnum == telnum)
                                  .order_by(User.id).limit(1))).first()


async def mapped_user(session: AsyncSession, domain_id: int, crm_user: str) -> User | None:
    if NUL in crm_user:
        return None
    return await session.scalar(
        select(User).join(LegacyUserMap, LegacyUserMap.user_id == User.id)
        .where(LegacyUserMap.domain_id == domain_id, LegacyUserMap.crm_user == crm_user))


async def mapping(session: AsyncSession, domain_id: int, crm_user: str) -> LegacyUserMap | None:
    return await session.scalar(select(LegacyUserMap).where(LegacyUserMap.domain_id == domain_id,
                                                            LegacyUserMap.crm_user == crm_user))


async def mappings(session: AsyncSession, domain_id: int) -> list[tuple[str, str]]:
    """(CRM user id, employee login) pairs, in CRM id order."""
    rows = await session.execute(
        select(LegacyUserMap.crm_user, User.login).join(User, User.id == LegacyUserMap.user_id)
        .where(LegacyUserMap.domain_id == domain_id).order_by(LegacyUserMap.crm_user))
    return [(crm, login) for crm, login in rows.all()]


async def delete_mapping(session: AsyncSession, domain_id: int, crm_user: str) -> int:
    result = await session.execute(delete(LegacyUserMap).where(LegacyUserMap.domain_id == domain_id,
                                                               LegacyUserMap.crm_user == crm_user))
    return int(getattr(result, "rowcount", 0) or 0)
