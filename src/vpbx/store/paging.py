"""A page request of a v1 list (002 §3.2), independent of HTTP."""

from __future__ import annotations

from dataclasses import dataclass

# The store's integers are 64-bit (SQLite INTEGER, PostgreSQL BIGINT): a larger offset, limit or id cannot reach
# a query, so the API refuses it as input instead.
MAX_INT = 2**63 - 1
# Row ids are INTEGER columns: 32 bits on PostgreSQL, so no id beyond this exists on either backend.
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class Page:
    search: str = ""
    start: int = 0
    limit: int | None = None

    @property
    def needle(self) -> str:
        return self.search.strip().casefold()
