from __future__ import annotations

import phonenumbers
import phonenumbers.geocoder
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from vpbx.domain.directions import CONTINENT_OF_COUNTRY, Direction, classify, is_mobile
from vpbx.domain.regions import (
    REGIONS,
    REGIONS_BY_ID,
    get_region,
    normalize_number,
    parse_number,
    region_for_number,
)

MOSCOW = 43
ALTAI = 2
SPB = 59

# --- regions (002 §13.5) ---------------------------------------------------------------------------


def test_seed_region_ids_are_kept() -> None:
    assert REGIONS_BY_ID[2].name == "Алтай"
    assert REGIONS_BY_ID[43].name == "Москва и Московская обл."


def test_region_ids_are_unique_and_dense() -> None:
    assert [r.id for r in REGIONS] == list(range(1, len(REGIONS) + 1))
    assert len({r.name for r in REGIONS}) == len(REGIONS)


def test_original_regions_are_alphabetical() -> None:
    # Ids 1-85 are the alphabetical list; later additions are appended.
    names = [r.name for r in REGIONS if r.id <= 85]
    assert names == sorted(names)


def test_all_federal_subjects_are_listed() -> None:
    # 89 subjects, Moscow city + oblast as one entry, Baikonur as an extra numbering-plan region.
    assert len(REGIONS) == 89 - 1 + 1
    names = {r.name for r in REGIONS}
    for must in ("Санкт-Петербург", "Ленинградская обл.", "Крым", "Севастополь", "Чукотский АО", "Тыва"):
        assert must in names


def test_prefixes_are_unique_and_numeric() -> None:
    prefixes = [p for r in REGIONS for p in r.prefixes]
    assert len(prefixes) == len(set(prefixes))
    assert all(p.isdigit() and p[0] in "348" for p in prefixes)


def test_geocoder_names_are_unique() -> None:
    names = [n for r in REGIONS for n in r.geocoder_names]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("region", [r for r in REGIONS if r.prefixes], ids=lambda r: r.name)
def test_area_code_table_agrees_with_phonenumbers_geocoder(region: object) -> None:
    assert isinstance(region, type(REGIONS[0]))
    for prefix in region.prefixes:
        if len(prefix) != 3:
            continue  # sub-codes (81853 Nenets AO) are finer than the geocoder's data
        number = "7" + prefix + "2" + "0" * (6 - 0)
        parsed = phonenumbers.parse("+" + number)
        assert phonenumbers.geocoder.description_for_number(parsed, "ru") in region.geocoder_names
        assert region_for_number(number) == region


@pytest.mark.parametrize(
    ("number", "region_id"),
    [
        ("74951234567", MOSCOW),
        ("74991234567", MOSCOW),
        ("74961234567", MOSCOW),
        ("74987654321", MOSCOW),
        ("+7 (812) 123-45-67", SPB),
        ("88121234567", SPB),
        ("78131234567", 38),
        ("73882212345", ALTAI),
        ("73852123456", 3),
        ("78185312345", 45),  # Nenets AO inside Arkhangelsk's 818
        ("78182123456", 5),
        ("73652123456", 35),
        ("78692123456", 64),
        ("73362212345", 7),
        ("78432123456", 69),
        ("78552123456", 69),
        ("78622123456", 33),
        ("74232123456", 54),
    ],
)
def test_region_for_number(number: str, region_id: int) -> None:
    region = region_for_number(number)
    assert region is not None
    assert region.id == region_id


@pytest.mark.parametrize(
    "number",
    [
        "79161234567",  # mobile: region unknown to phonenumbers
        "79261234567",
        "78005553535",  # toll free
        "77011234567",  # Kazakhstan mobile
        "77172123456",  # Astana
        "375291234567",
        "4930123456",
        "12125551234",
        "",
        "not a number",
        "7495",
    ],
)
def test_region_for_number_none(number: str) -> None:
    assert region_for_number(number) is None


def test_get_region() -> None:
    assert get_region(43) is REGIONS_BY_ID[43]
    assert get_region(0) is None
    assert get_region(10_000) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("74951234567", "74951234567"),
        ("+74951234567", "74951234567"),
        ("84951234567", "74951234567"),
        ("8 (495) 123-45-67", "74951234567"),
        ("0049301234567", "49301234567"),
        ("+49 30 1234567", "49301234567"),
        ("81312345678", "81312345678"),  # Japan: no valid Russian reading of the 8
        ("84912345678", "74912345678"),  # ambiguous with Vietnam +84: the Russian reading wins
        ("+84912345678", "84912345678"),  # with '+' it is international, always
        ("390612345678", "390612345678"),  # Italian leading zero kept
    ],
)
def test_normalize_number(raw: str, expected: str) -> None:
    assert normalize_number(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "+", "abc", "7495abc", "++74951234567", "٧٤٩٥١٢٣٤٥٦٧", "+999123456"])
def test_not_a_number(raw: str) -> None:
    assert parse_number(raw) is None
    assert normalize_number(raw) is None


# --- directions (002 §14.5) ------------------------------------------------------------------------


def test_direction_codes_are_the_documented_set() -> None:
    assert {d.value for d in Direction} == {
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
    }
    assert Direction("179") is Direction.MOBILE


@pytest.mark.parametrize(
    ("number", "home", "expected"),
    [
        # Russia
        ("74951234567", MOSCOW, Direction.LOCAL),
        ("74991234567", MOSCOW, Direction.LOCAL),
        ("84951234567", MOSCOW, Direction.LOCAL),
        ("+7 495 123-45-67", MOSCOW, Direction.LOCAL),
        ("74951234567", SPB, Direction.RU),
        ("74951234567", None, Direction.RU),
        ("78121234567", MOSCOW, Direction.RU),
        ("78121234567", SPB, Direction.LOCAL),
        ("78131234567", SPB, Direction.RU),  # Leningrad oblast is not St Petersburg
        ("73882212345", ALTAI, Direction.LOCAL),
        ("73852123456", ALTAI, Direction.RU),  # Altai Krai is not the Altai Republic
        ("78005553535", MOSCOW, Direction.RU),  # toll free: Russia-wide, never local
        ("88005553535", None, Direction.RU),
        ("79161234567", MOSCOW, Direction.MOBILE),
        ("89161234567", MOSCOW, Direction.MOBILE),
        ("79261234567", None, Direction.MOBILE),
        ("79001234567", SPB, Direction.MOBILE),
        ("79491234567", None, Direction.MOBILE),
        # CIS
        ("77011234567", MOSCOW, Direction.CIS),  # Kazakhstan shares +7
        ("77172123456", MOSCOW, Direction.CIS),  # Astana fixed line
        ("375291234567", MOSCOW, Direction.CIS),  # Belarus
        ("380441234567", MOSCOW, Direction.CIS),  # Ukraine
        ("37410123456", MOSCOW, Direction.CIS),  # Armenia
        ("994124981234", MOSCOW, Direction.CIS),  # Azerbaijan
        ("996312123456", MOSCOW, Direction.CIS),  # Kyrgyzstan
        ("37322212345", MOSCOW, Direction.CIS),  # Moldova
        ("992372123456", MOSCOW, Direction.CIS),  # Tajikistan
        ("998712345678", MOSCOW, Direction.CIS),  # Uzbekistan
        ("99312123456", MOSCOW, Direction.CIS),  # Turkmenistan
        ("995322123456", MOSCOW, Direction.CIS),  # Georgia
        # Baltic
        ("3726123456", MOSCOW, Direction.BALT),  # Estonia fixed
        ("37251234567", MOSCOW, Direction.BALT),  # Estonia mobile
        ("37167123456", MOSCOW, Direction.BALT),  # Latvia
        ("37052123456", MOSCOW, Direction.BALT),  # Lithuania
        # Europe
        ("49301234567", MOSCOW, Direction.EURO),
        ("4915123456789", MOSCOW, Direction.EURO),  # German mobile
        ("442071234567", MOSCOW, Direction.EURO),
        ("33123456789", MOSCOW, Direction.EURO),
        ("390612345678", MOSCOW, Direction.EURO),
        ("35722123456", MOSCOW, Direction.EURO),  # Cyprus
        ("441481123456", MOSCOW, Direction.EURO),  # Guernsey (+44)
        # Australia and Oceania
        ("61212345678", MOSCOW, Direction.AUS),
        ("61412345678", MOSCOW, Direction.AUS),
        ("6493123456", MOSCOW, Direction.AUS),  # New Zealand
        ("6793234567", MOSCOW, Direction.AUS),  # Fiji
        # Asia
        ("861012345678", MOSCOW, Direction.ASIA),
        ("8613812345678", MOSCOW, Direction.ASIA),  # China mobile
        ("81312345678", MOSCOW, Direction.ASIA),  # Japan
        ("+84912345678", MOSCOW, Direction.ASIA),  # Vietnam, '+' makes it unambiguous
        ("902123456789", MOSCOW, Direction.ASIA),  # Turkey
        ("97221234567", MOSCOW, Direction.ASIA),  # Israel
        ("919876543210", MOSCOW, Direction.ASIA),  # India
        # Africa
        ("20223456789", MOSCOW, Direction.AFR),  # Egypt
        ("27211234567", MOSCOW, Direction.AFR),
        ("212522123456", MOSCOW, Direction.AFR),  # Morocco
        ("2348012345678", MOSCOW, Direction.AFR),  # Nigeria
        # North America (whole continent)
        ("12125551234", MOSCOW, Direction.NA),
        ("+1 212 555 1234", MOSCOW, Direction.NA),
        ("14165551234", MOSCOW, Direction.NA),  # Canada
        ("525512345678", MOSCOW, Direction.NA),  # Mexico
        ("18765551234", MOSCOW, Direction.NA),  # Jamaica (+1 876)
        ("50622123456", MOSCOW, Direction.NA),  # Costa Rica
        # South America
        ("5511987654321", MOSCOW, Direction.SA),
        ("541143211234", MOSCOW, Direction.SA),
        ("5622123456", MOSCOW, Direction.SA),  # Chile
        # Satellite and the rest
        ("870772112345", MOSCOW, Direction.OTH),  # Inmarsat
        ("881631234567", MOSCOW, Direction.OTH),  # Iridium
        ("88216123456", MOSCOW, Direction.RU),  # 8 + valid Russian 10 digits: the trunk reading wins
        ("+88216123456", MOSCOW, Direction.OTH),  # international networks
        ("80012345678", MOSCOW, Direction.OTH),  # universal freephone +800
        ("9991234567", MOSCOW, Direction.OTH),  # no such country code
        ("", MOSCOW, Direction.OTH),
        ("hello", MOSCOW, Direction.OTH),
    ],
)
def test_classify_examples(number: str, home: int | None, expected: Direction) -> None:
    assert classify(number, home) is expected


def test_invalid_but_plausible_russian_mobile_is_still_mobile() -> None:
    # Metadata lags new DEF allocations; every Russian 9xx range is mobile.
    assert classify("79400000000", None) in (Direction.MOBILE,)
    assert is_mobile("79161234567")
    assert not is_mobile("74951234567")
    assert not is_mobile("garbage")


def test_unknown_home_region_id_never_gives_local() -> None:
    assert classify("74951234567", 10_000) is Direction.RU


def test_continent_table_covers_every_supported_region() -> None:
    assert set(CONTINENT_OF_COUNTRY) == set(phonenumbers.SUPPORTED_REGIONS) - {"RU"}
    assert Direction.LOCAL not in CONTINENT_OF_COUNTRY.values()
    assert Direction.MOBILE not in CONTINENT_OF_COUNTRY.values()
    assert Direction.RU not in CONTINENT_OF_COUNTRY.values()


@pytest.mark.parametrize(
    ("country", "expected"),
    [
        ("KZ", Direction.CIS),
        ("BY", Direction.CIS),
        ("AM", Direction.CIS),
        ("UA", Direction.CIS),
        ("EE", Direction.BALT),
        ("LV", Direction.BALT),
        ("LT", Direction.BALT),
        ("DE", Direction.EURO),
        ("FI", Direction.EURO),
        ("AU", Direction.AUS),
        ("NZ", Direction.AUS),
        ("CN", Direction.ASIA),
        ("JP", Direction.ASIA),
        ("EG", Direction.AFR),
        ("US", Direction.NA),
        ("CA", Direction.NA),
        ("MX", Direction.NA),
        ("GL", Direction.NA),
        ("BR", Direction.SA),
        ("AR", Direction.SA),
    ],
)
def test_continent_table_spot_checks(country: str, expected: Direction) -> None:
    assert CONTINENT_OF_COUNTRY[country] is expected


# --- properties over real numbering plans ----------------------------------------------------------

_TYPES = [
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER,
    PhoneNumberType.UAN,
    PhoneNumberType.VOICEMAIL,
]
_GEOGRAPHIC = (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
_HOMES = st.one_of(st.none(), st.sampled_from([r.id for r in REGIONS]), st.integers())


def _reads_as_russian_trunk(text: str) -> bool:
    digits = "".join(c for c in text if c.isdigit())
    if text.startswith("+") or len(digits) != 11 or not digits.startswith("8"):
        return False
    return phonenumbers.is_valid_number(phonenumbers.parse("+7" + digits[1:]))


def _expected_for(region_code: str) -> set[Direction]:
    if region_code == "RU":
        return {Direction.LOCAL, Direction.RU, Direction.MOBILE}
    return {CONTINENT_OF_COUNTRY[region_code]}


@settings(max_examples=600)
@given(
    region_code=st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)),
    number_type=st.sampled_from(_TYPES),
    home=_HOMES,
    fmt=st.sampled_from([PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL]),
    strip_plus=st.booleans(),
)
@example(region_code="KZ", number_type=PhoneNumberType.MOBILE, home=MOSCOW, fmt=0, strip_plus=True)
@example(region_code="RU", number_type=PhoneNumberType.FIXED_LINE, home=None, fmt=0, strip_plus=True)
def test_example_numbers_classify_by_their_country(
    region_code: str, number_type: int, home: int | None, fmt: int, strip_plus: bool
) -> None:
    example_number = phonenumbers.example_number_for_type(region_code, number_type)
    assume(example_number is not None)
    assert example_number is not None
    # Some territories' example numbers belong to their main country (e.g. +44 for GG/JE): expect the
    # direction of the country phonenumbers assigns the number to.
    owner = phonenumbers.region_code_for_number(example_number)
    assume(owner is not None and owner != "ZZ")
    assert owner is not None
    text = phonenumbers.format_number(example_number, fmt)
    if strip_plus:
        text = text.removeprefix("+")
    direction = classify(text, home)
    if strip_plus and _reads_as_russian_trunk(text):
        # Documented ambiguity: without '+', "8" + 10 digits that form a valid Russian number is Russian.
        assert direction in _expected_for("RU")
        assert classify("+" + text, home) in _expected_for(owner)
    else:
        assert direction in _expected_for(owner)
    if number_type in _GEOGRAPHIC:
        # A territory's own lines are on its continent even when it shares a country code. (Non-geographic
        # ranges on a shared code, e.g. +1 800 for Guam or +7 800 for Kazakhstan, belong to the main country.)
        assert _expected_for(owner) == _expected_for(region_code)


def test_every_example_number_of_every_region_exhaustively() -> None:
    # The deterministic sweep behind the property above: every region, type and input form.
    checked = 0
    for region_code in sorted(phonenumbers.SUPPORTED_REGIONS):
        for number_type in _TYPES:
            example_number = phonenumbers.example_number_for_type(region_code, number_type)
            if example_number is None:
                continue
            owner = phonenumbers.region_code_for_number(example_number)
            assert owner is not None
            assert owner != "ZZ"
            for fmt in (PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL):
                text = phonenumbers.format_number(example_number, fmt)
                for form in (text, text.removeprefix("+")):
                    expected = "RU" if _reads_as_russian_trunk(form) else owner
                    assert classify(form, MOSCOW) in _expected_for(expected), (region_code, form)
                    checked += 1
    assert checked > 2000


@settings(max_examples=300)
@given(number_type=st.sampled_from(_TYPES), home=_HOMES)
def test_russian_example_numbers(number_type: int, home: int | None) -> None:
    example_number = phonenumbers.example_number_for_type("RU", number_type)
    assume(example_number is not None)
    assert example_number is not None
    e164 = phonenumbers.format_number(example_number, PhoneNumberFormat.E164)[1:]
    trunk = "8" + e164[1:]
    direction = classify(e164, home)
    assert classify(trunk, home) is direction
    if number_type == PhoneNumberType.MOBILE:
        assert direction is Direction.MOBILE
    elif direction is Direction.LOCAL:
        region = region_for_number(e164)
        assert region is not None and region.id == home
    else:
        assert direction is Direction.RU


@settings(max_examples=300)
@given(region=st.sampled_from([r for r in REGIONS if r.prefixes]), data=st.data())
def test_fixed_line_in_home_region_is_local_elsewhere_ru(region: object, data: st.DataObject) -> None:
    assert isinstance(region, type(REGIONS[0]))
    prefix = data.draw(st.sampled_from(region.prefixes))
    subscriber = data.draw(st.from_regex(rf"[2-8][0-9]{{{9 - len(prefix)}}}", fullmatch=True))
    number = "7" + prefix + subscriber
    assume(phonenumbers.is_valid_number(phonenumbers.parse("+" + number)))
    other = data.draw(st.sampled_from([r.id for r in REGIONS if r.id != region.id]))
    assert classify(number, region.id) is Direction.LOCAL
    assert classify(number, other) is Direction.RU
    assert classify(number, None) is Direction.RU


@settings(max_examples=300)
@given(subscriber=st.from_regex(r"9[0-9]{9}", fullmatch=True), home=_HOMES)
def test_every_russian_def_number_is_mobile(subscriber: str, home: int | None) -> None:
    assert classify("7" + subscriber, home) is Direction.MOBILE
    assert classify("8" + subscriber, home) is Direction.MOBILE
    assert classify("+7" + subscriber, home) is Direction.MOBILE


@settings(max_examples=500)
@given(text=st.text(max_size=40), home=_HOMES)
def test_classify_never_raises_on_arbitrary_text(text: str, home: int | None) -> None:
    assert isinstance(classify(text, home), Direction)
    region_for_number(text)  # must not raise either


@settings(max_examples=500)
@given(digits=st.from_regex(r"\+?[0-9]{1,20}", fullmatch=True), home=_HOMES)
def test_classify_never_raises_on_digit_strings(digits: str, home: int | None) -> None:
    direction = classify(digits, home)
    assert isinstance(direction, Direction)
    if direction is Direction.LOCAL:
        assert home is not None and home in REGIONS_BY_ID
