"""Which numbers and departments ask callers for a quality score (002 §2.4, a vpbx extension)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.store.tables import Group, RatingTelnum, Telnum
from vpbx.store.tables.settings import SettingsGroupEntry

KIND = "rating"  # SettingsGroupEntry.kind of the departments that ask


async def telnums(session: AsyncSession, domain_id: int) -> list[str]:
    rows = await session.scalars(select(Telnum.telnum).join(RatingTelnum, RatingTelnum.telnum_id == Telnum.id)
                                 .where(RatingTelnum.domain_id == domain_id).order_by(Telnum.telnum))
    return list(rows.all())


async def groups(session: AsyncSession, domain_id: int) -> list[str]:
    entry = SettingsGroupEntry
    rows = await session.scalars(select(Group.group_id).join(entry, entry.group_id == Group.id)
                                 .where(entry.domain_id == domain_id, entry.kind == KIND).order_by(Group.group_id))
    return list(rows.all())


async def replace_telnums(session: AsyncSession, domain_id: int, telnum_ids: Sequence[int]) -> None:
    await session.execute(delete(RatingTelnum).where(RatingTelnum.domain_id == domain_id))
    session.add_all(RatingTelnum(domain_id=domain_id, telnum_id=i) for i in dict.fromkeys(telnum_ids))
    await session.flush()


async def replace_groups(session: AsyncSession, domain_id: int, group_ids: Sequence[int]) -> None:
    await session.execute(delete(SettingsGroupEntry).where(SettingsGroupEntry.domain_id == domain_id,
                                                           SettingsGroupEntry.kind == KIND))
    session.add_all(SettingsGroupEntry(domain_id=domain_id, kind=KIND, group_id=i) for i in dict.fromkeys(group_ids))
    await session.flush()
