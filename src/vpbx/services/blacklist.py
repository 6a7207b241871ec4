"""The blacklist (002 §11): numbers and masks, block-anonymous, and the blocked-call statistics.

The call engine asks ``is_caller_blocked`` at admission and, when refused, logs the call with
``record_blocked_call``; 11.1 ``with=statistics`` counts that log per entry.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.domain import blacklist as rules
from vpbx.domain.phone import InvalidNumber, digits_of, is_anonymous, normalize_number
from vpbx.schemas.blacklist import BlacklistIn
from vpbx.services.errors import Invalid
from vpbx.store.repositories import numbers as repo
from vpbx.store.tables import BlacklistNumber, BlacklistSettings, BlockedCall

WEEK = timedelta(days=7)
YEAR = timedelta(days=365)


def entry_form(raw: str, field: str = "telnum") -> str:
    """The stored form of a number or mask; ``Invalid`` (400) when it is neither."""
    try:
        return rules.validate_entry(raw)
    except InvalidNumber as exc:
        raise Invalid(field, str(exc)) from exc


def caller_form(caller: str | None) -> str:
    """How a caller is logged: international digits, bare digits if not a number, "" if anonymous."""
    if caller is None or is_anonymous(caller):
        return ""
    try:
        return normalize_number(caller)
    except InvalidNumber:
        return digits_of(caller)


async def entries(session: AsyncSession, domain_id: int) -> list[rules.BlacklistEntry]:
    return [rules.BlacklistEntry(r.telnum, r.comment) for r in await repo.blacklist(session, domain_id)]


async def listing(session: AsyncSession, domain_id: int, now: datetime, statistics: bool) -> list[dict[str, Any]]:
    """11.1; with statistics each blocked call counts for the entry the matcher names for it
    (an exact number before a mask), over the last 7 and 365 days."""
    listed = await entries(session, domain_id)
    out: list[dict[str, Any]] = [{"telnum": e.telnum, "comment": e.comment} for e in listed]
    if not statistics:
        return out
    counts: dict[str, list[int]] = {e.telnum: [0, 0] for e in listed}
    for caller, week, year in await repo.blocked_counts(session, domain_id, now - WEEK, now - YEAR):
        if not caller:
            continue
        decision = rules.is_blocked(caller, listed, block_anonymous=False)
        if decision.entry is not None:
            counts[decision.entry.telnum][0] += week
            counts[decision.entry.telnum][1] += year
    for item in out:
        item["week"], item["year"] = counts[item["telnum"]]
    return out


async def add(session: AsyncSession, domain_id: int, items: list[BlacklistIn], now: datetime) -> None:
    """11.2: every entry is checked first; a number already listed gets the new comment."""
    if not items:
        raise Invalid("body", "give at least one number")
    forms = [entry_form(item.telnum, f"{i}.telnum") for i, item in enumerate(items)]
    existing = {r.telnum: r for r in await repo.blacklist(session, domain_id)}
    for form, item in zip(forms, items, strict=True):
        row = existing.get(form)
        if row is None:
            row = BlacklistNumber(domain_id=domain_id, telnum=form, comment=item.comment, created_at=now)
            session.add(row)
            existing[form] = row
        else:
            row.comment = item.comment
    await session.flush()


async def remove(session: AsyncSession, domain_id: int, telnums: list[str]) -> None:
    """11.3: numbers not in the list are ignored (deleting is idempotent)."""
    if not telnums:
        raise Invalid("telnum", "give at least one number or mask")
    forms = [entry_form(t, f"telnum.{i}") for i, t in enumerate(telnums)]
    await repo.delete_blacklisted(session, domain_id, forms)
    await session.flush()


async def block_anonymous(session: AsyncSession, domain_id: int) -> bool:
    settings = await repo.blacklist_settings(session, domain_id)
    return settings is not None and settings.block_anonymous


async def set_block_anonymous(session: AsyncSession, domain_id: int, on: bool) -> None:
    settings = await repo.blacklist_settings(session, domain_id)
    if settings is None:
        session.add(BlacklistSettings(domain_id=domain_id, block_anonymous=on))
    else:
        settings.block_anonymous = on
    await session.flush()


async def is_caller_blocked(session: AsyncSession, domain_id: int, caller: str | None) -> rules.BlockDecision:
    """Admission (call-flows step 1): the one matcher over the domain's list and option."""
    return rules.is_blocked(caller, await entries(session, domain_id), await block_anonymous(session, domain_id))


async def record_blocked_call(session: AsyncSession, domain_id: int, caller: str | None, telnum: str,
                              at: datetime) -> None:
    """Log a refused call for the 11.1 statistics (the caller commits)."""
    try:
        number = normalize_number(telnum)
    except InvalidNumber:
        number = digits_of(telnum)
    session.add(BlockedCall(domain_id=domain_id, caller=caller_form(caller), telnum=number, at=at))
    await session.flush()
