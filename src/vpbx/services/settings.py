"""Company settings: call recording (002 §12.5), secretary console (§12.7), answering machine (§12.8).

A domain has no settings row until the first change; until then the defaults below apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.services.errors import Invalid
from vpbx.store.repositories import directory as dir_repo
from vpbx.store.repositories import settings as repo
from vpbx.store.tables import DomainSettings, Group, User

# Lists of employees / departments kept per domain (SettingsUserEntry.kind / SettingsGroupEntry.kind).
RECORD_EXCEPTIONS = "record_exception"
BLF = "blf"
AM = "am"

# A new domain records external calls, not internal ones; the answering machine forwards to nobody extra;
# every employee may call the home region, the rest of Russia and Russian mobiles (abroad needs a rule).
DEFAULT_RESTRICTIONS = ["LOCAL", "RU", "179"]
DEFAULTS: dict[str, Any] = {
    "ringback_standard": None,
    "ringback_media_id": None,
    "holdmusic_standard": None,
    "holdmusic_media_id": None,
    "record_external": True,
    "record_inner": False,
    "am_all": False,
    "am_email": "",
    "callerid_main": None,
    "restrictions_main": DEFAULT_RESTRICTIONS,
}


def setting(row: DomainSettings | None, name: str) -> Any:
    return DEFAULTS[name] if row is None else getattr(row, name)


async def for_update(session: AsyncSession, domain_id: int) -> DomainSettings:
    return await repo.domain_settings_for_update(session, domain_id, {**DEFAULTS,
                                                                      "restrictions_main": list(DEFAULT_RESTRICTIONS)})


def user_ref(u: User) -> dict[str, str]:
    return {"login": u.login, "name": u.name}


def group_ref(g: Group) -> dict[str, str]:
    return {"id": g.group_id, "name": g.name}


async def resolve_users(session: AsyncSession, domain_id: int, names: Sequence[str], field: str) -> list[User]:
    """The employees named by login (or extension), in the given order; any unknown name is a 400."""
    names = [n.strip() for n in names if isinstance(n, str)]
    if any(not n for n in names):
        raise Invalid(field, "an employee login is empty")
    found = await dir_repo.users_by_logins(session, domain_id, names)
    missing = [n for n in names if n not in found]
    if missing:
        raise Invalid(field, f"no employees {', '.join(missing)}")
    return list({found[n].id: found[n] for n in names}.values())


async def resolve_groups(session: AsyncSession, domain_id: int, ids: Sequence[str], field: str) -> list[Group]:
    """The departments named by id (or extension); any unknown one is a 400."""
    out: dict[int, Group] = {}
    missing: list[str] = []
    for group_id in ids:
        group = await dir_repo.find_group(session, domain_id, group_id.strip()) if group_id.strip() else None
        if group is None:
            missing.append(group_id)
        else:
            out[group.id] = group
    if missing:
        raise Invalid(field, f"no departments {', '.join(missing)}")
    return list(out.values())


def split_names(values: Sequence[str] | None) -> list[str]:
    """Query lists as ``?user=a&user=b`` or ``?user=a,b``."""
    return [part.strip() for v in values or () for part in v.split(",") if part.strip()]


# --- §12.5 call recording ----------------------------------------------------------------------

@dataclass(frozen=True)
class RecordConfig:
    """What the engine needs: record external / internal calls unless an excepted employee takes part."""

    external: bool
    inner: bool
    exceptions: frozenset[str]  # logins

    def records(self, *, external: bool, logins: Sequence[str]) -> bool:
        if not (self.external if external else self.inner):
            return False
        return not any(login in self.exceptions for login in logins)


async def record_config(session: AsyncSession, domain_id: int) -> RecordConfig:
    row = await repo.domain_settings(session, domain_id)
    users = await repo.list_users(session, domain_id, RECORD_EXCEPTIONS)
    return RecordConfig(setting(row, "record_external"), setting(row, "record_inner"),
                        frozenset(u.login for u in users))


async def record(session: AsyncSession, domain_id: int) -> dict[str, Any]:
    row = await repo.domain_settings(session, domain_id)
    users = await repo.list_users(session, domain_id, RECORD_EXCEPTIONS)
    return {"external": setting(row, "record_external"), "inner": setting(row, "record_inner"),
            "users_exception": [user_ref(u) for u in users]}


async def set_record(session: AsyncSession, domain_id: int, *, external: bool | None = None,
                     inner: bool | None = None) -> None:
    row = await for_update(session, domain_id)
    if external is not None:
        row.record_external = external
    if inner is not None:
        row.record_inner = inner
    await session.flush()


async def add_to_list(session: AsyncSession, domain_id: int, kind: str, logins: Sequence[str],
                      field: str = "users") -> None:
    users = await resolve_users(session, domain_id, logins, field)
    await repo.add_users(session, domain_id, kind, [u.id for u in users])


async def remove_from_list(session: AsyncSession, domain_id: int, kind: str, logins: Sequence[str],
                           field: str = "user") -> None:
    users = await resolve_users(session, domain_id, logins, field)
    await repo.remove_users(session, domain_id, kind, [u.id for u in users])


# --- §12.7 secretary console -------------------------------------------------------------------

async def blf_users(session: AsyncSession, domain_id: int) -> list[dict[str, str]]:
    return [user_ref(u) for u in await repo.list_users(session, domain_id, BLF)]


# --- §12.8 answering machine -------------------------------------------------------------------

async def am(session: AsyncSession, domain_id: int) -> dict[str, Any]:
    row = await repo.domain_settings(session, domain_id)
    users = await repo.list_users(session, domain_id, AM)
    groups = await repo.list_groups(session, domain_id, AM)
    return {"all": setting(row, "am_all"), "users": [user_ref(u) for u in users],
            "groups": [group_ref(g) for g in groups], "email": setting(row, "am_email")}


async def set_am(session: AsyncSession, domain_id: int, *, all_: bool | None = None,
                 email: str | None = None) -> None:
    row = await for_update(session, domain_id)
    if all_ is not None:
        row.am_all = all_
    if email is not None:
        row.am_email = email
    await session.flush()


async def add_am_groups(session: AsyncSession, domain_id: int, ids: Sequence[str], field: str = "groups") -> None:
    groups = await resolve_groups(session, domain_id, ids, field)
    await repo.add_groups(session, domain_id, AM, [g.id for g in groups])


async def remove_am_groups(session: AsyncSession, domain_id: int, ids: Sequence[str],
                           field: str = "group") -> None:
    groups = await resolve_groups(session, domain_id, ids, field)
    await repo.remove_groups(session, domain_id, AM, [g.id for g in groups])
