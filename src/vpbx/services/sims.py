"""SIM cards (002 §10). An added card is one of the domain's numbers (kind ``sim``): it shows in
9.1 and routes like any number; the pool holds the cards the operator made available (10.3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.schemas.sims import SimAdd
from vpbx.services import numbers
from vpbx.services.errors import Invalid, NotFound
from vpbx.services.users import user_search_text
from vpbx.store.repositories import directory as dir_repo
from vpbx.store.repositories import numbers as repo
from vpbx.store.tables import Domain, SimPoolEntry, Telnum, User


def sim_out(row: Telnum, user_names: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"telnum": row.telnum, "user": row.sim_user or ""}
    if row.sim_user:
        out["user_name"] = user_names.get(row.sim_user, "")
    out.update(company=row.sim_company, autocaller=row.autocaller, disabled=row.disabled,
               calltracking=row.calltracking, abc_telnum=row.abc_telnum or "", abc_location=row.abc_location or "")
    return out


async def render(session: AsyncSession, domain_id: int, rows: list[Telnum]) -> list[dict[str, Any]]:
    names = await repo.user_names(session, domain_id, [r.sim_user for r in rows if r.sim_user])
    return [sim_out(r, names) for r in rows]


async def get(session: AsyncSession, domain_id: int, telnum: str) -> Telnum:
    row = await numbers.get(session, domain_id, telnum)
    if row.kind != "sim":
        raise NotFound("sim")
    return row


async def available(session: AsyncSession, domain_id: int) -> dict[str, Any]:
    pool = await repo.pool(session, domain_id)
    return {"items": [{"telnum": p.telnum} for p in pool], "sms_confirmation": any(p.sms_confirmation for p in pool)}


async def provision(session: AsyncSession, domain: Domain, number: str, *, sms_confirmation: bool = False,
                    example: bool = False) -> None:
    """The operator makes a SIM card available to the domain (CLI ``vpbx sim-card add``)."""
    telnum = numbers.canonical(number)
    if await repo.pool_entry(session, domain.id, telnum) or await repo.find_telnum(session, domain.id, telnum):
        raise Invalid("telnum", f"the domain already has {telnum}")
    session.add(SimPoolEntry(domain_id=domain.id, telnum=telnum, sms_confirmation=sms_confirmation,
                             example=example))
    await session.flush()


async def _employee(session: AsyncSession, domain_id: int, login: str, field: str) -> User:
    found = await dir_repo.users_by_logins(session, domain_id, [login])
    if not found:
        raise Invalid(field, f"no employee '{login}'")
    return found[login]


async def _assign_user(session: AsyncSession, domain_id: int, row: Telnum, user: User) -> None:
    """The card becomes the employee's direct number (6.1 ``telnum``); a card the employee had
    before is unassigned and switched off, and the card's previous holder loses it."""
    await _unassign(session, domain_id, row)
    for old in await repo.sims_of_user(session, domain_id, user.login):
        if old.id != row.id:
            old.sim_user = None
            old.disabled = True
    user.telnum = row.telnum
    user.search_text = user_search_text(user)
    row.sim_user = user.login
    row.sim_company = False
    row.disabled = False
    row.type, row.route_user, row.route_group, row.ivr_menu = "user", user.login, None, None


async def _unassign(session: AsyncSession, domain_id: int, row: Telnum) -> None:
    if row.sim_user:
        holder = await dir_repo.find_user(session, domain_id, row.sim_user)
        if holder is not None and holder.telnum == row.telnum:
            holder.telnum = ""
            holder.search_text = user_search_text(holder)
    row.sim_user = None


async def _make_company(session: AsyncSession, domain_id: int, row: Telnum) -> str:
    """A company number routes to the first employee of the list until the company changes it."""
    await _unassign(session, domain_id, row)
    first = await repo.first_user(session, domain_id)
    login = first.login if first else ""
    if not row.sim_company:
        row.type, row.route_user, row.route_group, row.ivr_menu = "user", login or None, None, None
    row.sim_company = True
    row.disabled = False
    return login


async def add(session: AsyncSession, domain: Domain, data: SimAdd, now: datetime) -> dict[str, str]:
    """10.4: with ``user`` the card is that employee's; else with ``company`` a company number;
    else it is added switched off. ``send sms`` when the card needs an SMS confirmation."""
    try:
        telnum = normalize_number(data.telnum)
    except InvalidNumber as exc:
        raise Invalid("telnum", "not a valid phone number") from exc
    entry = await repo.pool_entry(session, domain.id, telnum)
    if entry is None:
        raise Invalid("telnum", f"{telnum} is not among the SIM cards available to add (10.3)")
    user = await _employee(session, domain.id, data.user, "user") if data.user else None
    row = await numbers.provision(session, domain, telnum, now, kind="sim", example=entry.example)
    status = "send sms" if entry.sms_confirmation else "complete"
    await session.delete(entry)
    if user is not None:
        await _assign_user(session, domain.id, row, user)
        login = user.login
    elif data.company:
        login = await _make_company(session, domain.id, row)
    else:
        row.disabled = True
        row.route_user = None
        login = ""
    row.search_text = numbers.search_text_of(row)
    await session.flush()
    return {"status": status, "user": login}


async def assign_user(session: AsyncSession, domain_id: int, telnum: str, login: str) -> None:
    row = await get(session, domain_id, telnum)
    user = await dir_repo.find_user(session, domain_id, login)
    if user is None:
        raise NotFound("user")
    await _assign_user(session, domain_id, row, user)
    row.search_text = numbers.search_text_of(row)
    await session.flush()


async def assign_company(session: AsyncSession, domain_id: int, telnum: str) -> None:
    row = await get(session, domain_id, telnum)
    await _make_company(session, domain_id, row)
    row.search_text = numbers.search_text_of(row)
    await session.flush()


async def disable(session: AsyncSession, domain_id: int, telnum: str) -> None:
    row = await get(session, domain_id, telnum)
    row.disabled = True
    await session.flush()


async def delete(session: AsyncSession, domain_id: int, telnum: str) -> None:
    """10.8: the card leaves the domain's numbers and goes back to the cards available to add."""
    row = await get(session, domain_id, telnum)
    await _unassign(session, domain_id, row)
    await session.delete(row)
    await session.flush()
    session.add(SimPoolEntry(domain_id=domain_id, telnum=row.telnum, sms_confirmation=False, example=row.example))
    await session.flush()


async def demo_sims(session: AsyncSession, domain: Domain, now: datetime) -> None:
    for number in ("74952005060", "74954010121", "74957616794"):  # 10.3's example
        await provision(session, domain, number, example=True)
