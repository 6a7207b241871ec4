"""Is this caller blocked? (002 §11, call-flows "Incoming" step 1).

An entry is a number or a mask ("749512345*"), where each ``*`` stands for any run of digits
(including none) at any position. Callers and entry numbers are compared in normalised form
(international digits, see ``phone.normalize_number``), so "+7 495...", "8 495..." and "7495..."
are the same caller. Masks are matched against that same normalised form, so write them
international ("7495*", not "8495*").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from vpbx.domain.phone import InvalidNumber, digits_of, is_anonymous, normalize_number

__all__ = ["BlacklistEntry", "BlockDecision", "BlockReason", "is_blocked", "is_mask", "validate_entry"]

BlockReason = Literal["number", "mask", "anonymous"]

_MASK_FORMATTING = re.compile(r"[\s+\-().]")
_MASK_CHARS = re.compile(r"^[0-9*]+$")
_STARS = re.compile(r"\*+")


@dataclass(frozen=True)
class BlacklistEntry:
    telnum: str  # a number or a mask, as in the API's "telnum" field
    comment: str = ""


@dataclass(frozen=True)
class BlockDecision:
    blocked: bool
    reason: BlockReason | None = None
    entry: BlacklistEntry | None = None


def is_mask(value: str) -> bool:
    return "*" in value


def validate_entry(raw: str) -> str:
    """The stored form of an API ``telnum``: a normalised number, or a cleaned mask.

    Raises ``InvalidNumber`` for a number phonenumbers rejects, or a mask with anything but
    digits and ``*`` (after dropping spaces, '+', '-', '(', ')', '.') or with no digit at all.
    """
    if not is_mask(raw):
        return normalize_number(raw)
    mask = _MASK_FORMATTING.sub("", raw)
    if not _MASK_CHARS.match(mask):
        raise InvalidNumber(f"a mask may contain only digits and '*': {raw!r}")
    if not any(ch.isdigit() for ch in mask):
        raise InvalidNumber(f"a mask needs at least one digit: {raw!r}")
    return _STARS.sub("*", mask)  # "**" means the same as "*"


def _caller_key(caller: str) -> str:
    try:
        return normalize_number(caller)
    except InvalidNumber:
        # Short or odd caller IDs still deserve a verdict: compare their bare digits.
        return digits_of(caller)


@functools.lru_cache(maxsize=4096)
def _compiled(telnum: str) -> str | re.Pattern[str]:
    # Entries are normally stored validated; tolerate unnormalised ones ("8495...") anyway.
    if not is_mask(telnum):
        return _caller_key(telnum)
    pattern = "[0-9]*".join(re.escape(digits_of(part)) for part in telnum.split("*"))
    return re.compile(pattern)


def is_blocked(caller: str | None, entries: Iterable[BlacklistEntry], block_anonymous: bool) -> BlockDecision:
    """Whether ``caller`` is refused; an exact number wins over a mask for the reported entry."""
    if caller is None or is_anonymous(caller):
        # A withheld number has nothing to compare with entries, even with a "*" mask.
        return BlockDecision(True, "anonymous") if block_anonymous else BlockDecision(False)
    if not entries:
        return BlockDecision(False)
    key = _caller_key(caller)
    mask_hit: BlacklistEntry | None = None
    for entry in entries:
        rule = _compiled(entry.telnum)
        if isinstance(rule, str):
            if rule and rule == key:
                return BlockDecision(True, "number", entry)
        elif mask_hit is None and rule.fullmatch(key):
            mask_hit = entry
    if mask_hit is not None:
        return BlockDecision(True, "mask", mask_hit)
    return BlockDecision(False)
