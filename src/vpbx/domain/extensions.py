"""The extension plan: short numbers shared by employees and departments of a domain."""

from __future__ import annotations

import re
from collections.abc import Iterable

FIRST_FREE = 700  # the documents' examples number employees and departments from 700
EXT_RE = re.compile(r"^[0-9]{2,6}$")


def is_valid_ext(ext: str) -> bool:
    return bool(EXT_RE.match(ext))


def next_free(used: Iterable[str], first: int = FIRST_FREE) -> str:
    """The lowest free extension at or above ``first``; below it only when all above are taken."""
    taken = {int(e) for e in used if e.isascii() and e.isdigit() and len(e) == len(str(int(e)))}
    n = first
    while n in taken:
        n += 1
    if n <= 999_999:
        return str(n)
    n = 10
    while n in taken:  # pragma: no cover - a million extensions
        n += 1
    return str(n)
