"""Call history exports (002 §4): filters, and rows streamed from the store as CSV or JSON.

The exports never hold the result in memory: rows are read with a server-side cursor
(``stream`` + ``yield_per``) and encoded chunk by chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vpbx.domain import history as rules
from vpbx.domain.phone import digits_of
from vpbx.services.errors import Invalid
from vpbx.store.repositories.calls import ExternalFilter, InnerFilter, external_query, inner_query

CHUNK_ROWS = 2000
EXTERNAL_TYPES = ("all", "in", "out", "missed")
INNER_TYPES = ("all", "success", "noanswer")


def _split(values: Sequence[str] | None) -> list[str]:
    """``groups=a&groups=b``, ``groups=a,b`` and ``groups[]=a`` all name a list."""
    out: list[str] = []
    for value in values or ():
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


def _window(period: str | None, start: str | None, end: str | None, now: datetime, tz: str) -> rules.Window:
    try:
        return rules.export_window(period or None, start or None, end or None, now, tz)
    except rules.BadParameter as exc:
        raise Invalid(exc.field, exc.message) from None


def _limit(limit: int | None) -> int | None:
    if limit is not None and limit < 0:
        raise Invalid("limit", "must not be negative")
    return limit


def external_filter(*, now: datetime, timezone: str, period: str | None = None, start: str | None = None,
                    end: str | None = None, type: str | None = None, limit: int | None = None,
                    user: str | None = None, diversion: str | None = None, client: str | None = None,
                    groups: Sequence[str] | None = None, missed_status: Sequence[str] | None = None) -> ExternalFilter:
    window = _window(period, start, end, now, timezone)
    kind = (type or "all").lower()
    if kind not in EXTERNAL_TYPES:
        raise Invalid("type", f"expected one of {', '.join(EXTERNAL_TYPES)}")
    statuses: list[int] = []
    for value in _split(missed_status):
        if value not in ("1", "2", "3", "4"):
            raise Invalid("missedStatus", "expected 1, 2, 3 or 4")
        statuses.append(int(value))
    return ExternalFilter(
        lo=window.lo, hi=window.hi, type=kind, limit=_limit(limit), user=user or None,
        diversion=digits_of(diversion) if diversion else None, client=digits_of(client) if client else None,
        groups=tuple(_split(groups)), missed_statuses=tuple(statuses),
    )


def inner_filter(*, now: datetime, timezone: str, period: str | None = None, start: str | None = None,
                 end: str | None = None, type: str | None = None, limit: int | None = None,
                 user: str | None = None) -> InnerFilter:
    window = _window(period, start, end, now, timezone)
    kind = (type or "all").lower()
    if kind == "missed":  # 4.3's own example asks for "missed": the unanswered ones are meant
        kind = "noanswer"
    if kind not in INNER_TYPES:
        raise Invalid("type", f"expected one of {', '.join(INNER_TYPES)}")
    return InnerFilter(lo=window.lo, hi=window.hi, type=kind, limit=_limit(limit), user=user or None)


# --- row encoders ------------------------------------------------------------------------------

def external_csv(row: Sequence[Any], domain: str) -> str:
    (callid, type_, status, destination, client, login, _name, _first, _first_name, group_id, _group_name,
     diversion, _telnum_name, start, wait, duration, link, rating, _missed, _note) = row
    fields = [
        callid, rules.csv_type(type_, status), client, rules.account(login, group_id, destination, domain),
        diversion, rules.iso(start), str(wait), str(duration), rules.csv_field(link),
    ]
    if rating is not None:
        fields.append(str(rating))
    return ",".join(fields) + "\r\n"


def external_json(row: Sequence[Any], first_answered: bool, process_missed: bool) -> dict[str, Any]:
    (callid, type_, status, destination, client, login, name, first, first_name, _group_id, group_name,
     diversion, telnum_name, start, wait, duration, link, rating, missed, note) = row
    if first_answered and first:
        login, name = first, first_name
    out: dict[str, Any] = {
        "uid": callid,
        "type": type_,
        "status": rules.json_status(type_, status),
        "client": client,
        "diversion": diversion,
        "telnum_name": telnum_name,
        "destination": destination,
        "user": login,
        "user_name": name,
        "group_name": group_name,
        "start": rules.iso(start),
        "wait": wait,
        "duration": duration,
        "record": link,
    }
    if rating is not None:
        out["rating"] = rating
    if note:
        out["note"] = note
    if process_missed and missed is not None:
        out["missedStatus"] = missed
    return out


def inner_csv(row: Sequence[Any], domain: str) -> str:
    callid, status, from_login, _fn, to_login, _tn, start, wait, duration, link = row
    return ",".join([callid, status, f"{from_login}@{domain}", f"{to_login}@{domain}", rules.iso(start),
                     str(wait), str(duration), rules.csv_field(link)]) + "\r\n"


def inner_json(row: Sequence[Any]) -> dict[str, Any]:
    callid, status, from_login, from_name, to_login, to_name, start, wait, duration, link = row
    return {"uid": callid, "status": status, "from": from_login, "to": to_login, "from_name": from_name,
            "to_name": to_name, "start": rules.iso(start), "wait": wait, "duration": duration, "record": link}


# --- streaming ---------------------------------------------------------------------------------

async def _rows(sessions: async_sessionmaker[AsyncSession], stmt: Select[Any]) -> AsyncIterator[Sequence[Any]]:
    """Row chunks straight from a server-side cursor."""
    async with sessions() as session:
        result = await session.stream(stmt.execution_options(yield_per=CHUNK_ROWS))
        async for chunk in result.partitions(CHUNK_ROWS):
            yield chunk


async def stream_external_csv(sessions: async_sessionmaker[AsyncSession], domain_id: int, domain: str,
                              f: ExternalFilter) -> AsyncIterator[bytes]:
    async for chunk in _rows(sessions, external_query(domain_id, f)):
        yield "".join(external_csv(r, domain) for r in chunk).encode("utf-8")


async def stream_external_json(sessions: async_sessionmaker[AsyncSession], domain_id: int, f: ExternalFilter,
                               first_answered: bool, process_missed: bool) -> AsyncIterator[bytes]:
    yield b"["
    sep = b""
    async for chunk in _rows(sessions, external_query(domain_id, f)):
        parts = [orjson.dumps(external_json(r, first_answered, process_missed)) for r in chunk]
        yield sep + b",".join(parts)
        sep = b","
    yield b"]"


async def stream_inner_csv(sessions: async_sessionmaker[AsyncSession], domain_id: int, domain: str,
                           f: InnerFilter) -> AsyncIterator[bytes]:
    async for chunk in _rows(sessions, inner_query(domain_id, f)):
        yield "".join(inner_csv(r, domain) for r in chunk).encode("utf-8")


async def stream_inner_json(sessions: async_sessionmaker[AsyncSession], domain_id: int,
                            f: InnerFilter) -> AsyncIterator[bytes]:
    yield b"["
    sep = b""
    async for chunk in _rows(sessions, inner_query(domain_id, f)):
        yield sep + b",".join(orjson.dumps(inner_json(r)) for r in chunk)
        sep = b","
    yield b"]"
