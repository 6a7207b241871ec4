"""Phone number normalisation shared by every part of vpbx.

Numbers are stored and compared as international digits without '+', the form the API uses
("79262005060").
"""

from __future__ import annotations

import functools
import re

import phonenumbers

__all__ = ["InvalidNumber", "digits_of", "is_anonymous", "normalize_number", "region_of"]

_ANONYMOUS = frozenset({"anonymous", "unknown", "private", "restricted"})
_NON_DIGITS = re.compile(r"[^0-9]")
_HAS_DIGIT = re.compile(r"[0-9]")


class InvalidNumber(ValueError):
    """The input is not a phone number (or not a valid mask, for the blacklist)."""


def digits_of(raw: str) -> str:
    return _NON_DIGITS.sub("", raw)


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    # Possible (right length) rather than valid: newly allocated ranges must not be refused
    # just because the metadata is older than the operator's numbering plan.
    return number if phonenumbers.is_possible_number(number) else None


def normalize_number(raw: str, default_region: str = "RU") -> str:
    """Return ``raw`` as international digits without '+', e.g. "74951234567".

    National forms ("8 495 ...", "495 ...") use ``default_region``; bare digits that do not
    fit that region are retried as international ("380441234567"), since the API sends
    international numbers without '+'.
    """
    if len(raw) == 11 and raw[0] == "7" and raw.isascii() and raw.isdigit() and default_region == "RU":
        return raw  # the API's and the engine's usual form: already international (tests pin the equivalence)
    return _normalize(raw, default_region)


@functools.lru_cache(maxsize=16384)  # pure, and the engine sees the same callers and numbers again and again
def _normalize(raw: str, default_region: str) -> str:
    text = raw.strip()
    if not _HAS_DIGIT.search(text):
        raise InvalidNumber(f"not a phone number: {raw!r}")
    number = _parse(text, default_region)
    if number is None and not text.startswith("+"):
        number = _parse("+" + digits_of(text), None)
    if number is None:
        raise InvalidNumber(f"not a phone number: {raw!r}")
    # E.164 keeps the Italian-style leading zero that national_number drops.
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def is_anonymous(raw: str | None) -> bool:
    """True for a withheld caller ID: empty, a known keyword, or a value with no digits at all."""
    if raw is None:
        return True
    text = raw.strip()
    if text.lower() in _ANONYMOUS:
        return True
    # SIP gives things like "Anonymous <sip:anonymous@anonymous.invalid>": no digits, no caller.
    return _HAS_DIGIT.search(text) is None


def region_of(number: str) -> str | None:
    """ISO 3166 country code of an international-digits number, or None when unknown."""
    digits = digits_of(number)
    if not digits:
        return None
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    return region if region and region != "ZZ" else None
