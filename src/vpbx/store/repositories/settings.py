"""Queries over company settings, media files, caller IDs and call restrictions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.store.tables import (
    DomainSettings,
    Group,
    GroupCallerId,
    GroupMember,
    GroupRestriction,
    MediaFile,
    OutgoingTelnum,
    RegionCallerId,
    SettingsGroupEntry,
    SettingsUserEntry,
    Telnum,
    User,
    UserCallerId,
    UserRestriction,
)


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


async def _insert(session: AsyncSession, model: Any, values: dict[str, Any], keys: Sequence[str],
                  update: Sequence[str] = ()) -> None:
    """INSERT, or on a conflict over ``keys`` update ``update`` (nothing when empty); atomic on both stores."""
    dialect = session.get_bind().dialect.name
    stmt: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_table(model)).values(**values)
    if update:
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={k: values[k] for k in update})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    await session.execute(stmt)


# --- the domain's settings row ---------------------------------------------------------------

async def domain_settings(session: AsyncSession, domain_id: int) -> DomainSettings | None:
    return await session.get(DomainSettings, domain_id)


async def domain_settings_for_update(session: AsyncSession, domain_id: int,
                                     defaults: dict[str, Any]) -> DomainSettings:
    """The row, created with ``defaults`` if missing, locked (PostgreSQL) for a read-modify-write."""
    await _insert(session, DomainSettings, {**defaults, "domain_id": domain_id}, ["domain_id"])
    row = (await session.scalars(
        select(DomainSettings).where(DomainSettings.domain_id == domain_id).with_for_update()
        .execution_options(populate_existing=True)
    )).one()
    return row


# --- media files -----------------------------------------------------------------------------

async def list_media(session: AsyncSession, domain_id: int, type_: str | None = None) -> list[MediaFile]:
    stmt = select(MediaFile).where(MediaFile.domain_id == domain_id)
    if type_ is not None:
        stmt = stmt.where(MediaFile.type == type_)
    return list((await session.scalars(stmt.order_by(MediaFile.id))).all())


async def find_media(session: AsyncSession, domain_id: int, file_id: str) -> MediaFile | None:
    return await session.scalar(select(MediaFile).where(MediaFile.domain_id == domain_id,
                                                        MediaFile.file_id == file_id))


async def media_by_name(session: AsyncSession, domain_id: int, name: str) -> list[MediaFile]:
    stmt = select(MediaFile).where(MediaFile.domain_id == domain_id, MediaFile.name == name).order_by(MediaFile.id)
    return list((await session.scalars(stmt)).all())


async def media_by_pk(session: AsyncSession, pk: int | None) -> MediaFile | None:
    return None if pk is None else await session.get(MediaFile, pk)


# --- employee and department lists (record exceptions, BLF, answering machine) ---------------

async def list_users(session: AsyncSession, domain_id: int, kind: str) -> list[User]:
    stmt = (select(User).join(SettingsUserEntry, SettingsUserEntry.user_id == User.id)
            .where(SettingsUserEntry.domain_id == domain_id, SettingsUserEntry.kind == kind)
            .order_by(SettingsUserEntry.id))
    return list((await session.scalars(stmt)).all())


async def add_users(session: AsyncSession, domain_id: int, kind: str, user_ids: Iterable[int]) -> None:
    for user_id in dict.fromkeys(user_ids):
        await _insert(session, SettingsUserEntry, {"domain_id": domain_id, "kind": kind, "user_id": user_id},
                      ["kind", "user_id"])


async def remove_users(session: AsyncSession, domain_id: int, kind: str, user_ids: Sequence[int]) -> None:
    if user_ids:
        await session.execute(delete(SettingsUserEntry).where(
            SettingsUserEntry.domain_id == domain_id, SettingsUserEntry.kind == kind,
            SettingsUserEntry.user_id.in_(user_ids)))


async def list_groups(session: AsyncSession, domain_id: int, kind: str) -> list[Group]:
    stmt = (select(Group).join(SettingsGroupEntry, SettingsGroupEntry.group_id == Group.id)
            .where(SettingsGroupEntry.domain_id == domain_id, SettingsGroupEntry.kind == kind)
            .order_by(SettingsGroupEntry.id))
    return list((await session.scalars(stmt)).all())


async def add_groups(session: AsyncSession, domain_id: int, kind: str, group_ids: Iterable[int]) -> None:
    for group_id in dict.fromkeys(group_ids):
        await _insert(session, SettingsGroupEntry, {"domain_id": domain_id, "kind": kind, "group_id": group_id},
                      ["kind", "group_id"])


async def remove_groups(session: AsyncSession, domain_id: int, kind: str, group_ids: Sequence[int]) -> None:
    if group_ids:
        await session.execute(delete(SettingsGroupEntry).where(
            SettingsGroupEntry.domain_id == domain_id, SettingsGroupEntry.kind == kind,
            SettingsGroupEntry.group_id.in_(group_ids)))


# --- outgoing numbers and caller IDs ----------------------------------------------------------

async def domain_numbers(session: AsyncSession, domain_id: int) -> list[str]:
    """The domain's external numbers (the numbers feature's ``telnums``, SIM cards included)."""
    stmt = select(Telnum.telnum).where(Telnum.domain_id == domain_id).order_by(Telnum.id)
    return list((await session.scalars(stmt)).all())


async def outgoing_telnums(session: AsyncSession, domain_id: int) -> list[OutgoingTelnum]:
    stmt = select(OutgoingTelnum).where(OutgoingTelnum.domain_id == domain_id).order_by(OutgoingTelnum.telnum)
    return list((await session.scalars(stmt)).all())


async def set_outgoing_telnum(session: AsyncSession, domain_id: int, telnum: str, enabled: bool) -> None:
    await _insert(session, OutgoingTelnum, {"domain_id": domain_id, "telnum": telnum, "enabled": enabled},
                  ["domain_id", "telnum"], ["enabled"])


async def remove_outgoing_telnum(session: AsyncSession, domain_id: int, telnum: str) -> None:
    await session.execute(delete(OutgoingTelnum).where(OutgoingTelnum.domain_id == domain_id,
                                                       OutgoingTelnum.telnum == telnum))


async def user_callerids(session: AsyncSession, domain_id: int) -> list[tuple[UserCallerId, User]]:
    rows = await session.execute(select(UserCallerId, User).join(User, User.id == UserCallerId.user_id)
                                 .where(UserCallerId.domain_id == domain_id).order_by(UserCallerId.id))
    return [(c, u) for c, u in rows.all()]


async def set_user_callerid(session: AsyncSession, domain_id: int, user_id: int, telnum: str) -> None:
    await _insert(session, UserCallerId, {"domain_id": domain_id, "user_id": user_id, "telnum": telnum},
                  ["user_id"], ["telnum"])


async def remove_user_callerid(session: AsyncSession, domain_id: int, user_id: int) -> None:
    await session.execute(delete(UserCallerId).where(UserCallerId.domain_id == domain_id,
                                                     UserCallerId.user_id == user_id))


async def group_callerids(session: AsyncSession, domain_id: int) -> list[tuple[GroupCallerId, Group]]:
    rows = await session.execute(select(GroupCallerId, Group).join(Group, Group.id == GroupCallerId.group_id)
                                 .where(GroupCallerId.domain_id == domain_id).order_by(GroupCallerId.id))
    return [(c, g) for c, g in rows.all()]


async def set_group_callerid(session: AsyncSession, domain_id: int, group_id: int, telnum: str) -> None:
    await _insert(session, GroupCallerId, {"domain_id": domain_id, "group_id": group_id, "telnum": telnum},
                  ["group_id"], ["telnum"])


async def remove_group_callerid(session: AsyncSession, domain_id: int, group_id: int) -> None:
    await session.execute(delete(GroupCallerId).where(GroupCallerId.domain_id == domain_id,
                                                      GroupCallerId.group_id == group_id))


async def region_callerids(session: AsyncSession, domain_id: int) -> list[RegionCallerId]:
    stmt = select(RegionCallerId).where(RegionCallerId.domain_id == domain_id).order_by(RegionCallerId.id)
    return list((await session.scalars(stmt)).all())


async def set_region_callerid(session: AsyncSession, domain_id: int, region_id: int, mode: str,
                              telnum: str) -> None:
    await _insert(session, RegionCallerId,
                  {"domain_id": domain_id, "region_id": region_id, "mode": mode, "telnum": telnum},
                  ["domain_id", "region_id", "mode"], ["telnum"])


async def remove_region_callerid(session: AsyncSession, domain_id: int, region_id: int, mode: str) -> None:
    await session.execute(delete(RegionCallerId).where(
        RegionCallerId.domain_id == domain_id, RegionCallerId.region_id == region_id, RegionCallerId.mode == mode))


# --- call restrictions -----------------------------------------------------------------------

async def user_restrictions(session: AsyncSession, domain_id: int) -> list[tuple[UserRestriction, User]]:
    rows = await session.execute(select(UserRestriction, User).join(User, User.id == UserRestriction.user_id)
                                 .where(UserRestriction.domain_id == domain_id).order_by(UserRestriction.id))
    return [(r, u) for r, u in rows.all()]


async def group_restrictions(session: AsyncSession, domain_id: int) -> list[tuple[GroupRestriction, Group]]:
    rows = await session.execute(select(GroupRestriction, Group).join(Group, Group.id == GroupRestriction.group_id)
                                 .where(GroupRestriction.domain_id == domain_id).order_by(GroupRestriction.id))
    return [(r, g) for r, g in rows.all()]


async def user_restriction(session: AsyncSession, user_id: int, *, create: bool = False,
                           domain_id: int | None = None) -> UserRestriction | None:
    """The employee's rules (locked on PostgreSQL); with ``create``, made empty when missing."""
    if create:
        await _insert(session, UserRestriction, {"domain_id": domain_id, "user_id": user_id, "allowed": []},
                      ["user_id"])
    return await session.scalar(select(UserRestriction).where(UserRestriction.user_id == user_id)
                                .with_for_update().execution_options(populate_existing=True))


async def group_restriction(session: AsyncSession, group_id: int, *, create: bool = False,
                            domain_id: int | None = None) -> GroupRestriction | None:
    if create:
        await _insert(session, GroupRestriction, {"domain_id": domain_id, "group_id": group_id, "allowed": []},
                      ["group_id"])
    return await session.scalar(select(GroupRestriction).where(GroupRestriction.group_id == group_id)
                                .with_for_update().execution_options(populate_existing=True))


async def rules_for_user(session: AsyncSession, user_id: int) -> tuple[list[str], list[list[str]]]:
    """The employee's own codes and each of their departments' codes (for the dial check)."""
    own = await session.scalar(select(UserRestriction.allowed).where(UserRestriction.user_id == user_id))
    rows = await session.scalars(
        select(GroupRestriction.allowed).join(GroupMember, GroupMember.group_id == GroupRestriction.group_id)
        .where(GroupMember.user_id == user_id))
    return list(own or []), [list(r or []) for r in rows.all()]
