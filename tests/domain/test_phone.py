from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpbx.domain.phone import InvalidNumber, _normalize, digits_of, is_anonymous, normalize_number, region_of


@pytest.mark.parametrize(
    "raw",
    [
        "+7 (495) 123-45-67",
        "84951234567",
        "74951234567",
        "8 (495) 123 45 67",
        "4951234567",
        "  +74951234567  ",
        "8-495-123-45-67",
    ],
)
def test_russian_forms_normalise_to_international_digits(raw: str) -> None:
    assert normalize_number(raw) == "74951234567"


def test_toll_free_8_800() -> None:
    assert normalize_number("8 800 555-35-35") == "78005553535"
    assert normalize_number("88005553535") == "78005553535"


def test_mobile_numbers_from_the_documents() -> None:
    assert normalize_number("79262005060") == "79262005060"
    assert normalize_number("8 (926) 200-50-60") == "79262005060"


def test_foreign_numbers() -> None:
    assert normalize_number("+1 650 253 0000") == "16502530000"
    # The API sends international numbers without '+': a number that is not Russian is retried so.
    assert normalize_number("380441234567") == "380441234567"
    # Leading zero of Italian numbers survives (national_number alone would drop it).
    assert normalize_number("+39 06 1234 5678") == "390612345678"


def test_default_region_is_used_for_national_forms() -> None:
    assert normalize_number("020 7946 0018", default_region="GB") == "442079460018"


@pytest.mark.parametrize("raw", ["", "   ", "abc", "+", "101", "12", "+7 495", "anonymous", "7" * 25])
def test_invalid_input_raises(raw: str) -> None:
    with pytest.raises(InvalidNumber):
        normalize_number(raw)


def test_invalid_number_is_a_value_error() -> None:
    assert issubclass(InvalidNumber, ValueError)


@given(st.from_regex(r"9[0-9]{9}", fullmatch=True), st.sampled_from(["+7{}", "8{}", "7{}", "{}"]))
def test_formatting_does_not_change_result(national: str, template: str) -> None:
    expected = "7" + national
    assert normalize_number(template.format(national)) == expected
    spaced = f"+7 ({national[:3]}) {national[3:6]}-{national[6:8]}-{national[8:]}"
    assert normalize_number(spaced) == expected


@given(st.from_regex(r"9[0-9]{9}", fullmatch=True))
def test_normalise_is_idempotent(national: str) -> None:
    once = normalize_number("8" + national)
    assert normalize_number(once) == once


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "  ",
        "anonymous",
        "Anonymous",
        "UNKNOWN",
        "private",
        "Restricted",
        "sip:anonymous@anonymous.invalid",
    ],
)
def test_anonymous(raw: str | None) -> None:
    assert is_anonymous(raw)


@pytest.mark.parametrize("raw", ["74951234567", "+7 495 123-45-67", "101", "anonymous1"])
def test_not_anonymous(raw: str) -> None:
    assert not is_anonymous(raw)


@pytest.mark.parametrize(
    ("number", "region"),
    [
        ("74951234567", "RU"),
        ("79262005060", "RU"),
        ("+74951234567", "RU"),
        ("77172123456", "KZ"),
        ("380441234567", "UA"),
        ("16502530000", "US"),
        ("442079460018", "GB"),
    ],
)
def test_region_of(number: str, region: str) -> None:
    assert region_of(number) == region


@pytest.mark.parametrize("number", ["", "abc", "999", "0"])
def test_region_of_unknown(number: str) -> None:
    assert region_of(number) is None


def test_digits_of() -> None:
    assert digits_of("+7 (495) 123-45-67") == "74951234567"
    assert digits_of("abc") == ""


@given(st.from_regex(r"7[0-9]{10}", fullmatch=True))
def test_the_international_fast_path_agrees_with_phonenumbers(number: str) -> None:
    """``normalize_number`` returns 11 digits starting with 7 as they are; phonenumbers says the same."""
    assert normalize_number(number) == _normalize(number, "RU") == number
