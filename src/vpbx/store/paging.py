"""A page request of a v1 list (002 §3.2), independent of HTTP."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    search: str = ""
    start: int = 0
    limit: int | None = None

    @property
    def needle(self) -> str:
        return self.search.strip().casefold()
