from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpbx.domain.callerid import (
    CallerIdChoice,
    CallerIdConfig,
    CallerIdMode,
    CallerIdRule,
    RegionalCallerId,
    choose_caller_id,
)

MOSCOW = 43
SPB = 59

MAIN = "79262005060"
CLID = "79264010121"
PERSONAL = "74957770001"
SALES = "74957770002"
SUPPORT = "74957770003"
MOSCOW_ALL = "74957770010"
MOSCOW_MOBILE = "79260000011"
MOSCOW_FIXED = "74957770012"
SPB_ALL = "78127770013"

MOSCOW_CLIENT = "74951234567"
SPB_CLIENT = "78121234567"
MOBILE_CLIENT = "79161234567"
FOREIGN_CLIENT = "49301234567"

FULL = CallerIdConfig(
    main=MAIN,
    enabled=frozenset({MAIN, CLID, PERSONAL}),
    users={"admin": PERSONAL},
    groups={"sales": SALES, "support": SUPPORT},
    regions=(
        RegionalCallerId(MOSCOW, CallerIdMode.ALL, MOSCOW_ALL),
        RegionalCallerId(SPB, CallerIdMode.ALL, SPB_ALL),
    ),
)

RANK = {
    CallerIdRule.CLID: 0,
    CallerIdRule.USER: 1,
    CallerIdRule.GROUP: 2,
    CallerIdRule.REGION: 3,
    CallerIdRule.MAIN: 4,
}


def _cfg(**changes: object) -> CallerIdConfig:
    return dataclasses.replace(FULL, **changes)  # type: ignore[arg-type]


# --- each step of the precedence -------------------------------------------------------------------


def test_enabled_clid_wins() -> None:
    choice = choose_caller_id(FULL, client=MOSCOW_CLIENT, login="admin", groups=["sales"], clid=CLID)
    assert choice == CallerIdChoice(CLID, CallerIdRule.CLID)


@pytest.mark.parametrize("spelling", ["+79264010121", "89264010121", "+7 (926) 401-01-21"])
def test_clid_matches_enabled_number_in_any_spelling_and_returns_the_stored_form(spelling: str) -> None:
    choice = choose_caller_id(FULL, client=MOSCOW_CLIENT, login="admin", clid=spelling)
    assert choice == CallerIdChoice(CLID, CallerIdRule.CLID)


@pytest.mark.parametrize("clid", ["79990000000", "not a number", "", SALES])
def test_clid_not_enabled_falls_through_to_personal(clid: str) -> None:
    # SALES is a department's number but not in the enabled list: makecall may not pick it.
    choice = choose_caller_id(FULL, client=MOSCOW_CLIENT, login="admin", groups=["sales"], clid=clid)
    assert choice == CallerIdChoice(PERSONAL, CallerIdRule.USER)


def test_personal_number_of_this_employee_only() -> None:
    choice = choose_caller_id(FULL, client=MOSCOW_CLIENT, login="manager", groups=["sales"])
    assert choice == CallerIdChoice(SALES, CallerIdRule.GROUP)
    assert choose_caller_id(FULL, client=MOSCOW_CLIENT, login=None) == CallerIdChoice(MOSCOW_ALL, CallerIdRule.REGION)


def test_first_department_with_a_number_in_given_order() -> None:
    groups = ["no-number", "support", "sales"]
    choice = choose_caller_id(FULL, client=MOSCOW_CLIENT, login="manager", groups=groups)
    assert choice == CallerIdChoice(SUPPORT, CallerIdRule.GROUP)
    choice = choose_caller_id(FULL, client=MOSCOW_CLIENT, login="manager", groups=["sales", "support"])
    assert choice == CallerIdChoice(SALES, CallerIdRule.GROUP)


def test_regional_number_for_client_region() -> None:
    cfg = _cfg(groups={})
    assert choose_caller_id(cfg, client=MOSCOW_CLIENT, login="manager") == CallerIdChoice(
        MOSCOW_ALL, CallerIdRule.REGION
    )
    assert choose_caller_id(cfg, client="8 (812) 123-45-67", login="manager") == CallerIdChoice(
        SPB_ALL, CallerIdRule.REGION
    )


def test_no_regional_number_for_other_regions_or_abroad() -> None:
    cfg = _cfg(groups={})
    for client in ("73432123456", FOREIGN_CLIENT, "78005553535", "garbage"):
        assert choose_caller_id(cfg, client=client, login="manager") == CallerIdChoice(MAIN, CallerIdRule.MAIN)


def test_mobile_client_region_unknown_without_override() -> None:
    # phonenumbers knows no region for Russian mobiles: the regional step cannot apply.
    cfg = _cfg(groups={})
    assert choose_caller_id(cfg, client=MOBILE_CLIENT, login="manager") == CallerIdChoice(MAIN, CallerIdRule.MAIN)
    assert choose_caller_id(cfg, client=MOBILE_CLIENT, login="manager", client_region_id=MOSCOW) == (
        CallerIdChoice(MOSCOW_ALL, CallerIdRule.REGION)
    )


def test_client_region_override_beats_lookup() -> None:
    cfg = _cfg(groups={})
    choice = choose_caller_id(cfg, client=MOSCOW_CLIENT, login="manager", client_region_id=SPB)
    assert choice == CallerIdChoice(SPB_ALL, CallerIdRule.REGION)


MODES_CFG = CallerIdConfig(
    main=MAIN,
    regions=(
        RegionalCallerId(MOSCOW, CallerIdMode.MOBILE, MOSCOW_MOBILE),
        RegionalCallerId(MOSCOW, CallerIdMode.FIXED, MOSCOW_FIXED),
    ),
)


def test_mode_mobile_only_for_mobile_clients_and_fixed_only_for_fixed() -> None:
    mobile = choose_caller_id(MODES_CFG, client=MOBILE_CLIENT, client_region_id=MOSCOW)
    fixed = choose_caller_id(MODES_CFG, client=MOSCOW_CLIENT)
    assert mobile == CallerIdChoice(MOSCOW_MOBILE, CallerIdRule.REGION)
    assert fixed == CallerIdChoice(MOSCOW_FIXED, CallerIdRule.REGION)


def test_mode_mismatch_falls_to_main() -> None:
    only_mobile = CallerIdConfig(main=MAIN, regions=(RegionalCallerId(MOSCOW, CallerIdMode.MOBILE, MOSCOW_MOBILE),))
    only_fixed = CallerIdConfig(main=MAIN, regions=(RegionalCallerId(MOSCOW, CallerIdMode.FIXED, MOSCOW_FIXED),))
    assert choose_caller_id(only_mobile, client=MOSCOW_CLIENT) == CallerIdChoice(MAIN, CallerIdRule.MAIN)
    assert choose_caller_id(only_fixed, client=MOBILE_CLIENT, client_region_id=MOSCOW) == CallerIdChoice(
        MAIN, CallerIdRule.MAIN
    )


@pytest.mark.parametrize("all_first", [True, False])
def test_specific_mode_beats_all_whatever_the_order(all_first: bool) -> None:
    entries = [
        RegionalCallerId(MOSCOW, CallerIdMode.ALL, MOSCOW_ALL),
        RegionalCallerId(MOSCOW, CallerIdMode.FIXED, MOSCOW_FIXED),
        RegionalCallerId(MOSCOW, CallerIdMode.MOBILE, MOSCOW_MOBILE),
    ]
    if not all_first:
        entries.reverse()
    cfg = CallerIdConfig(regions=tuple(entries))
    assert choose_caller_id(cfg, client=MOSCOW_CLIENT) == CallerIdChoice(MOSCOW_FIXED, CallerIdRule.REGION)
    assert choose_caller_id(cfg, client=MOBILE_CLIENT, client_region_id=MOSCOW) == CallerIdChoice(
        MOSCOW_MOBILE, CallerIdRule.REGION
    )
    # "all" serves both kinds once the specific entry is gone.
    cfg_all = CallerIdConfig(regions=(entries[0] if all_first else entries[2],))
    assert choose_caller_id(cfg_all, client=MOSCOW_CLIENT) == CallerIdChoice(MOSCOW_ALL, CallerIdRule.REGION)
    assert choose_caller_id(cfg_all, client=MOBILE_CLIENT, client_region_id=MOSCOW) == CallerIdChoice(
        MOSCOW_ALL, CallerIdRule.REGION
    )


def test_main_then_none() -> None:
    assert choose_caller_id(CallerIdConfig(main=MAIN), client=FOREIGN_CLIENT) == CallerIdChoice(MAIN, CallerIdRule.MAIN)
    assert choose_caller_id(CallerIdConfig(), client=FOREIGN_CLIENT, login="admin", clid=CLID) is None
    assert choose_caller_id(CallerIdConfig(main=""), client=FOREIGN_CLIENT) is None


def test_config_is_frozen_and_copies_its_inputs() -> None:
    users = {"admin": PERSONAL}
    groups = {"sales": SALES}
    enabled = {MAIN}
    cfg = CallerIdConfig(main=MAIN, enabled=enabled, users=users, groups=groups)  # type: ignore[arg-type]
    users["admin"] = "70000000000"
    groups.clear()
    enabled.add(CLID)
    assert cfg.users == {"admin": PERSONAL}
    assert cfg.groups == {"sales": SALES}
    assert cfg.enabled == frozenset({MAIN})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.main = "7"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.users["x"] = "1"  # type: ignore[index]


# --- precedence properties -------------------------------------------------------------------------

NUMBERS = [MAIN, CLID, PERSONAL, SALES, SUPPORT, MOSCOW_ALL, MOSCOW_MOBILE, MOSCOW_FIXED, SPB_ALL]
LOGINS = ["admin", "manager", "director"]
GROUPS = ["sales", "support", "hr"]
CLIENTS = [MOSCOW_CLIENT, SPB_CLIENT, MOBILE_CLIENT, FOREIGN_CLIENT, "73882212345", "garbage"]

numbers = st.sampled_from(NUMBERS)
configs = st.builds(
    CallerIdConfig,
    main=st.one_of(st.none(), numbers),
    enabled=st.frozensets(numbers),
    users=st.dictionaries(st.sampled_from(LOGINS), numbers),
    groups=st.dictionaries(st.sampled_from(GROUPS), numbers),
    regions=st.lists(
        st.builds(
            RegionalCallerId,
            region_id=st.sampled_from([2, MOSCOW, SPB]),
            mode=st.sampled_from(list(CallerIdMode)),
            telnum=numbers,
        ),
        max_size=4,
    ).map(tuple),
)
calls = st.fixed_dictionaries(
    {
        "client": st.sampled_from(CLIENTS),
        "login": st.one_of(st.none(), st.sampled_from(LOGINS)),
        "groups": st.lists(st.sampled_from(GROUPS), unique=True, max_size=3),
        "clid": st.one_of(st.none(), numbers, numbers.map(lambda n: "+" + n), st.just("junk")),
        "client_region_id": st.one_of(st.none(), st.sampled_from([2, MOSCOW, SPB])),
    }
)


def _choose(cfg: CallerIdConfig, call: dict[str, object]) -> CallerIdChoice | None:
    return choose_caller_id(cfg, **call)  # type: ignore[arg-type]


def _all_numbers(cfg: CallerIdConfig) -> set[str]:
    found = set(cfg.enabled) | set(cfg.users.values()) | set(cfg.groups.values())
    found |= {r.telnum for r in cfg.regions}
    return found | ({cfg.main} if cfg.main else set())


@given(cfg=configs, call=calls)
def test_choice_always_comes_from_the_configuration(cfg: CallerIdConfig, call: dict[str, object]) -> None:
    choice = _choose(cfg, call)
    if choice is None:
        assert not cfg.main
    else:
        assert choice.telnum in _all_numbers(cfg)


@given(cfg=configs, call=calls)
def test_clid_rule_iff_clid_is_enabled(cfg: CallerIdConfig, call: dict[str, object]) -> None:
    choice = _choose(cfg, call)
    clid = call["clid"]
    enabled = isinstance(clid, str) and clid.removeprefix("+") in cfg.enabled
    assert (choice is not None and choice.rule is CallerIdRule.CLID) == enabled
    if enabled:
        assert choice is not None and choice.telnum == str(clid).removeprefix("+")


@given(cfg=configs, call=calls)
def test_each_rule_returns_its_own_setting(cfg: CallerIdConfig, call: dict[str, object]) -> None:
    choice = _choose(cfg, call)
    if choice is None:
        return
    if choice.rule is CallerIdRule.USER:
        assert choice.telnum == cfg.users[str(call["login"])]
    elif choice.rule is CallerIdRule.GROUP:
        groups = [g for g in call["groups"] if g in cfg.groups]  # type: ignore[attr-defined]
        assert groups and choice.telnum == cfg.groups[groups[0]]
    elif choice.rule is CallerIdRule.REGION:
        assert choice.telnum in {r.telnum for r in cfg.regions}
    elif choice.rule is CallerIdRule.MAIN:
        assert choice.telnum == cfg.main


@given(cfg=configs, call=calls)
def test_lower_settings_never_change_a_higher_choice(cfg: CallerIdConfig, call: dict[str, object]) -> None:
    choice = _choose(cfg, call)
    assert choice is not None or not cfg.main
    stripped = {
        CallerIdRule.USER: {"groups": {}, "regions": (), "main": None},
        CallerIdRule.GROUP: {"regions": (), "main": None},
        CallerIdRule.REGION: {"main": None},
    }
    if choice is not None and choice.rule in stripped:
        lean = dataclasses.replace(cfg, **stripped[choice.rule])  # type: ignore[arg-type]
        assert _choose(lean, call) == choice


@given(cfg=configs, call=calls, telnum=numbers, step=st.sampled_from([CallerIdRule.USER, CallerIdRule.MAIN]))
def test_adding_a_setting_wins_only_if_it_ranks_higher(
    cfg: CallerIdConfig, call: dict[str, object], telnum: str, step: CallerIdRule
) -> None:
    before = _choose(cfg, call)
    if step is CallerIdRule.USER:
        if call["login"] is None or call["login"] in cfg.users:
            return
        cfg2 = dataclasses.replace(cfg, users={**cfg.users, str(call["login"]): telnum})
    else:
        if cfg.main:
            return
        cfg2 = dataclasses.replace(cfg, main=telnum)
    after = _choose(cfg2, call)
    assert after is not None
    if before is None or RANK[step] < RANK[before.rule]:
        assert after == CallerIdChoice(telnum, step)
    else:
        assert after == before


@given(cfg=configs, call=calls)
def test_department_numbers_follow_group_order(cfg: CallerIdConfig, call: dict[str, object]) -> None:
    call = {**call, "clid": None, "login": None}
    groups = list(call["groups"])  # type: ignore[call-overload]
    choice = _choose(cfg, call)
    with_number = [g for g in groups if g in cfg.groups]
    if with_number:
        assert choice == CallerIdChoice(cfg.groups[with_number[0]], CallerIdRule.GROUP)
        reordered = _choose(cfg, {**call, "groups": list(reversed(groups))})
        assert reordered == CallerIdChoice(cfg.groups[with_number[-1]], CallerIdRule.GROUP)
    else:
        assert choice is None or choice.rule in (CallerIdRule.REGION, CallerIdRule.MAIN)
