"""The one paging helper for v1 lists (002 §3.2): ``search``, ``start``, ``limit`` and ``info``."""

from __future__ import annotations

from typing import Any

from fastapi import Path, Query

from vpbx.store.paging import MAX_ID, MAX_INT, Page

__all__ = ["MAX_ID", "MAX_INT", "Page", "envelope", "id_path", "info", "page_params", "start_query"]


def start_query() -> Any:
    """``start``: an offset the store can take (64-bit); beyond it is a 400 naming ``start``, never a 500."""
    return Query(0, ge=0, le=MAX_INT, description="Position to start from")


def id_path(description: str = "The object's id") -> Any:
    """A numeric id in the path, within the range of the store's ids (else 400 naming the field)."""
    return Path(ge=0, le=MAX_ID, description=description)


async def page_params(
    search: str = Query("", description="Substring searched in the list's documented fields"),
    start: int = start_query(),
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
