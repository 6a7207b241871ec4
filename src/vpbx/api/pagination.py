"""The one paging helper for v1 lists (002 §3.2): ``search``, ``start``, ``limit`` and ``info``."""

from __future__ import annotations

from typing import Any

from fastapi import Query

from vpbx.store.paging import Page

__all__ = ["Page", "envelope", "info", "page_params"]


async def page_params(
    search: str = Query("", description="Substring searched in the list's documented fields"),
    start: int = Query(0, ge=0, description="Position to start from"),
    limit: int | None = Query(None, ge=0, le=100000, description="How many items; all when omitted"),
) -> Page:
    return Page(search=search, start=start, limit=limit)


def info(page: Page, total: int, returned: int) -> dict[str, Any]:
    limit = page.limit if page.limit is not None else returned
    nxt = page.start + returned
    return {
        "search": page.search,
        "start": page.start,
        "limit": limit,
        "total": total,
        "next": nxt if nxt < total and returned > 0 else None,
    }


def envelope(items: list[Any], page: Page, total: int) -> dict[str, Any]:
    return {"items": items, "info": info(page, total, len(items))}
