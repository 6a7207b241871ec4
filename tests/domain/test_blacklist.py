from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from vpbx.domain.blacklist import BlacklistEntry, BlockDecision, is_blocked, is_mask, validate_entry
from vpbx.domain.phone import InvalidNumber

# The list from 002 §11.1's example.
DOC_LIST = [
    BlacklistEntry("74951904198", "123"),
    BlacklistEntry("74953808397", "qwe"),
    BlacklistEntry("79267616794", "Спам"),
    BlacklistEntry("749512345*", "Спам"),
]

mobiles = st.from_regex(r"9[0-9]{9}", fullmatch=True)  # Russian mobile, national part
formats = st.sampled_from(["+7{}", "8{}", "7{}", "{}", "+7 {}", "8 ({}"])


def fmt(template: str, national: str) -> str:
    if template == "8 ({}":
        return f"8 ({national[:3]}) {national[3:6]}-{national[6:8]}-{national[8:]}"
    return template.format(national)


# --------------------------------------------------------------------------- examples


def test_exact_number_from_the_documents() -> None:
    decision = is_blocked("79267616794", DOC_LIST, block_anonymous=False)
    assert decision == BlockDecision(True, "number", DOC_LIST[2])


@pytest.mark.parametrize("caller", ["+7 (495) 190-41-98", "84951904198", "74951904198", "4951904198"])
def test_exact_number_whatever_the_caller_format(caller: str) -> None:
    decision = is_blocked(caller, DOC_LIST, block_anonymous=False)
    assert decision.blocked and decision.reason == "number" and decision.entry == DOC_LIST[0]


@pytest.mark.parametrize("caller", ["74951234500", "74951234599", "+7 495 123 45 67", "8 495 123-45-99"])
def test_mask_from_the_documents(caller: str) -> None:
    decision = is_blocked(caller, DOC_LIST, block_anonymous=False)
    assert decision == BlockDecision(True, "mask", DOC_LIST[3])


@pytest.mark.parametrize("caller", ["74951234400", "74951904199", "79267616795", "+1 650 253 0000"])
def test_others_pass(caller: str) -> None:
    assert is_blocked(caller, DOC_LIST, block_anonymous=True) == BlockDecision(False)


def test_star_in_the_middle_and_at_the_start() -> None:
    middle = [BlacklistEntry("7495*67")]
    assert is_blocked("74951234567", middle, False).blocked
    assert not is_blocked("74951234568", middle, False).blocked
    start = [BlacklistEntry("*4567")]
    assert is_blocked("+7 495 123-45-67", start, False).reason == "mask"
    assert not is_blocked("74951234566", start, False).blocked


def test_star_matches_an_empty_run() -> None:
    assert is_blocked("74951234567", [BlacklistEntry("7495123*4567")], False).blocked


def test_mask_is_matched_against_the_normalised_caller() -> None:
    # "8495*" is written in national form; callers are normalised to 7495..., so it never matches.
    assert not is_blocked("84951234567", [BlacklistEntry("8495*")], False).blocked
    assert is_blocked("84951234567", [BlacklistEntry("7495*")], False).blocked


def test_exact_number_wins_over_an_earlier_mask() -> None:
    entries = [BlacklistEntry("7495*", "mask"), BlacklistEntry("74951234567", "exact")]
    decision = is_blocked("84951234567", entries, False)
    assert decision == BlockDecision(True, "number", entries[1])


def test_first_matching_mask_is_reported() -> None:
    entries = [BlacklistEntry("7926*", "a"), BlacklistEntry("7*", "b")]
    assert is_blocked("79260000000", entries, False).entry == entries[0]


def test_unnormalised_stored_entry_still_matches() -> None:
    assert is_blocked("74951904198", [BlacklistEntry("8 (495) 190-41-98")], False).reason == "number"


def test_invalid_caller_is_compared_by_digits() -> None:
    entries = [BlacklistEntry("101"), BlacklistEntry("55*")]
    assert is_blocked("101", entries, False).reason == "number"
    assert is_blocked("5-5-5", entries, False).reason == "mask"
    assert not is_blocked("102", entries, False).blocked


@pytest.mark.parametrize("caller", [None, "", "anonymous", "Private", "UNKNOWN", "restricted"])
def test_anonymous_blocked_only_with_the_option(caller: str | None) -> None:
    assert is_blocked(caller, DOC_LIST, block_anonymous=True) == BlockDecision(True, "anonymous")
    assert is_blocked(caller, DOC_LIST, block_anonymous=False) == BlockDecision(False)


def test_anonymous_is_not_caught_by_a_catch_all_mask() -> None:
    assert not is_blocked(None, [BlacklistEntry("*")], block_anonymous=False).blocked


def test_empty_list_blocks_nobody() -> None:
    assert is_blocked("74951234567", [], block_anonymous=True) == BlockDecision(False)


# --------------------------------------------------------------------------- validate_entry


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("79267616794", "79267616794"),
        ("+7 (926) 761-67-94", "79267616794"),
        ("8 926 761 67 94", "79267616794"),
        ("749512345*", "749512345*"),
        ("+7 (495) 123-45*", "749512345*"),
        ("7495**67", "7495*67"),
        ("*4567", "*4567"),
    ],
)
def test_validate_entry(raw: str, stored: str) -> None:
    assert validate_entry(raw) == stored


@pytest.mark.parametrize("raw", ["", "*", "***", "7495?*", "abc*", "7495*x", "101", "hello"])
def test_validate_entry_rejects(raw: str) -> None:
    with pytest.raises(InvalidNumber):
        validate_entry(raw)


def test_is_mask() -> None:
    assert is_mask("7495*") and not is_mask("7495")


# --------------------------------------------------------------------------- properties


@given(mobiles, formats, formats)
def test_number_always_matches_itself_whatever_the_format(national: str, stored: str, caller: str) -> None:
    entry = BlacklistEntry(validate_entry(fmt(stored, national)))
    decision = is_blocked(fmt(caller, national), [entry], block_anonymous=False)
    assert decision == BlockDecision(True, "number", entry)


@given(mobiles, st.integers(1, 5))
def test_all_star_mask_matches_every_number(national: str, stars: int) -> None:
    assert is_blocked("8" + national, [BlacklistEntry("*" * stars)], False).reason == "mask"


@given(mobiles, formats, st.data())
def test_mask_decision_is_independent_of_caller_format(
    national: str, template: str, data: st.DataObject
) -> None:
    full = "7" + national
    # Build a mask from the number: replace a random slice with '*', maybe perturb a digit.
    i = data.draw(st.integers(0, len(full)))
    j = data.draw(st.integers(i, len(full)))
    mask = full[:i] + "*" + full[j:]
    if data.draw(st.booleans()) and mask.replace("*", ""):
        k = data.draw(st.integers(0, len(mask) - 1))
        assume(mask[k] != "*")
        mask = mask[:k] + str((int(mask[k]) + 1) % 10) + mask[k + 1 :]
    entries = [BlacklistEntry(mask)]
    oracle = re.fullmatch(mask.replace("*", r"\d*"), full) is not None
    assert is_blocked(fmt(template, national), entries, False).blocked is oracle
    assert is_blocked(full, entries, False).blocked is oracle


@given(mobiles, mobiles)
def test_a_number_does_not_block_another(a: str, b: str) -> None:
    assume(a != b)
    assert not is_blocked("8" + a, [BlacklistEntry("7" + b)], block_anonymous=True).blocked


@given(st.sampled_from([None, "", "anonymous", "Unknown", "PRIVATE", "restricted"]), st.booleans())
def test_anonymous_blocked_iff_option(caller: str | None, option: bool) -> None:
    decision = is_blocked(caller, [BlacklistEntry("*"), *DOC_LIST], block_anonymous=option)
    assert decision.blocked is option
    assert decision.reason == ("anonymous" if option else None)


@given(mobiles, st.booleans())
def test_block_anonymous_does_not_affect_real_numbers(national: str, option: bool) -> None:
    assert not is_blocked("7" + national, [BlacklistEntry("74951904198")], block_anonymous=option).blocked
