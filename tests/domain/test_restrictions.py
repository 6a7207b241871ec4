from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpbx.domain.directions import Direction, classify
from vpbx.domain.restrictions import ALL, VALID_CODES, UnknownDirectionCode, may_dial, validate_codes

CODES = sorted(VALID_CODES)
DIRECTIONS = list(Direction)
rule_sets = st.sets(st.sampled_from(CODES))
group_lists = st.lists(rule_sets, max_size=4)


def test_valid_codes_are_the_documented_directions_plus_all() -> None:
    assert VALID_CODES == {
        "LOCAL",
        "RU",
        "179",
        "CIS",
        "BALT",
        "EURO",
        "AUS",
        "ASIA",
        "AFR",
        "NA",
        "SA",
        "OTH",
        "ALL",
    }


def test_validate_codes_canonicalises_and_deduplicates() -> None:
    assert validate_codes(["ru", " CIS ", "RU", "179", "all"]) == ["RU", "CIS", "179", "ALL"]
    assert validate_codes([]) == []
    assert validate_codes(c for c in ("LOCAL",)) == ["LOCAL"]


@pytest.mark.parametrize("bad", ["OUT", "MOBILE", "", "ru-local", "180", "EU"])
def test_validate_codes_rejects_unknown_code_and_names_it(bad: str) -> None:
    with pytest.raises(UnknownDirectionCode) as info:
        validate_codes(["RU", bad])
    assert info.value.code == bad
    assert repr(bad) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_validate_codes_rejects_non_strings() -> None:
    with pytest.raises(UnknownDirectionCode) as info:
        validate_codes(["RU", 179])  # type: ignore[list-item]
    assert info.value.code == 179


def test_company_rule_allows() -> None:
    assert may_dial(Direction.LOCAL, {"LOCAL"}, set(), [])
    assert not may_dial(Direction.RU, {"LOCAL"}, set(), [])


def test_user_rule_allows() -> None:
    assert may_dial(Direction.CIS, set(), {"CIS"}, [])
    assert not may_dial(Direction.EURO, set(), {"CIS"}, [])


def test_any_department_rule_allows() -> None:
    assert may_dial(Direction.EURO, set(), set(), [{"RU"}, {"EURO"}])
    assert not may_dial(Direction.ASIA, set(), set(), [{"RU"}, {"EURO"}])


def test_nothing_allowed_by_default() -> None:
    for direction in DIRECTIONS:
        assert not may_dial(direction, set(), set(), [])
        assert not may_dial(direction, set(), set(), [set(), set()])


def test_directions_are_disjoint_rules() -> None:
    # RU does not cover the home region nor mobiles: each is its own rule.
    assert not may_dial(Direction.LOCAL, {"RU"}, set(), [])
    assert not may_dial(Direction.MOBILE, {"RU"}, set(), [])
    assert may_dial(Direction.MOBILE, {"179"}, set(), [])


def test_seed_example_rules() -> None:
    # 002 §14.1: company LOCAL, admin nothing personal, director ALL.
    company = {"LOCAL"}
    assert may_dial(classify("74951234567", 43), company, set(), [])
    assert not may_dial(classify("79161234567", 43), company, set(), [])
    assert may_dial(classify("79161234567", 43), company, {"ALL"}, [])
    assert may_dial(classify("870772112345", 43), company, {"ALL"}, [])


def test_group_rules_may_be_a_generator() -> None:
    assert may_dial(Direction.SA, set(), set(), (s for s in [{"NA"}, {"SA"}]))


@given(direction=st.sampled_from(DIRECTIONS), user=rule_sets, groups=group_lists)
def test_all_allows_everything_wherever_it_is(direction: Direction, user: set[str], groups: list[set[str]]) -> None:
    assert may_dial(direction, {ALL}, user, groups)
    assert may_dial(direction, set(), user | {ALL}, groups)
    assert may_dial(direction, set(), user, [*groups, {ALL}])


@given(
    direction=st.sampled_from(DIRECTIONS),
    company=rule_sets,
    user=rule_sets,
    groups=group_lists,
    extra=st.sampled_from(CODES),
    where=st.sampled_from(["company", "user", "group", "new_group"]),
)
def test_adding_a_rule_never_forbids(
    direction: Direction,
    company: set[str],
    user: set[str],
    groups: list[set[str]],
    extra: str,
    where: str,
) -> None:
    before = may_dial(direction, company, user, groups)
    if where == "company":
        company = company | {extra}
    elif where == "user":
        user = user | {extra}
    elif where == "group" and groups:
        groups = [groups[0] | {extra}, *groups[1:]]
    else:
        groups = [*groups, {extra}]
    after = may_dial(direction, company, user, groups)
    assert after or not before
    if extra in (direction.value, ALL):
        assert after


@given(direction=st.sampled_from(DIRECTIONS), company=rule_sets, user=rule_sets, groups=group_lists)
def test_may_dial_is_exactly_the_union_of_rules(
    direction: Direction, company: set[str], user: set[str], groups: list[set[str]]
) -> None:
    union = company | user
    for g in groups:
        union |= g
    assert may_dial(direction, company, user, groups) == (ALL in union or direction.value in union)
    # Where a rule sits (company, user or department) does not matter.
    assert may_dial(direction, set(), set(), [union]) == may_dial(direction, company, user, groups)
    assert may_dial(direction, union, set(), []) == may_dial(direction, company, user, groups)


@given(codes=st.lists(st.sampled_from(CODES)))
def test_validate_codes_round_trips(codes: list[str]) -> None:
    result = validate_codes(codes)
    assert set(result) == set(codes)
    assert len(result) == len(set(result))
    assert validate_codes(result) == result
    assert validate_codes([c.lower() for c in codes]) == result
