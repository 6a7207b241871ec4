"""Call directions (002 §14.5) and the classification of a dialled number into one of them.

Every number gets exactly one direction; the directions do not overlap (a Moscow number dialled from a
Moscow domain is ``LOCAL``, not also ``RU``). Continents follow the UN M49 geoscheme, except that the
former Soviet republics are ``CIS`` (Baltic states ``BALT``), "North America" is the whole continent
(Central America and the Caribbean too), ``AUS`` is Australia and Oceania, and Cyprus is Europe.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType

from vpbx.domain.regions import parse_number, region_for_parsed

__all__ = [
    "CONTINENT_OF_COUNTRY",
    "Direction",
    "classify",
    "classify_parsed",
    "is_mobile",
    "is_mobile_parsed",
]


class Direction(StrEnum):
    LOCAL = "LOCAL"  # the domain's home region
    RU = "RU"  # the rest of Russia (fixed lines and non-geographic numbers such as 8-800)
    MOBILE = "179"  # Russian mobiles
    CIS = "CIS"
    BALT = "BALT"
    EURO = "EURO"
    AUS = "AUS"
    ASIA = "ASIA"
    AFR = "AFR"
    NA = "NA"
    SA = "SA"
    OTH = "OTH"  # satellite, international networks and anything unrecognised


def _table(direction: Direction, countries: str) -> dict[str, Direction]:
    return dict.fromkeys(countries.split(), direction)


# Every region phonenumbers supports except RU, which is classified by number (LOCAL / RU / 179).
CONTINENT_OF_COUNTRY: Mapping[str, Direction] = MappingProxyType(
    {
        **_table(Direction.CIS, "AM AZ BY GE KG KZ MD TJ TM UA UZ"),
        **_table(Direction.BALT, "EE LT LV"),
        **_table(
            Direction.EURO,
            "AD AL AT AX BA BE BG CH CY CZ DE DK ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE LI LU MC ME"
            " MK MT NL NO PL PT RO RS SE SI SJ SK SM VA XK",
        ),
        **_table(Direction.AUS, "AS AU CC CK CX FJ FM GU KI MH MP NC NF NR NU NZ PF PG PW SB TK TO TV VU WF WS"),
        **_table(
            Direction.ASIA,
            "AE AF BD BH BN BT CN HK ID IL IN IQ IR JO JP KH KP KR KW LA LB LK MM MN MO MV MY NP OM PH PK"
            " PS QA SA SG SY TH TL TR TW VN YE",
        ),
        **_table(
            Direction.AFR,
            "AC AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG EH ER ET GA GH GM GN GQ GW IO KE KM LR LS LY MA"
            " MG ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TA TD TG TN TZ UG YT ZA ZM ZW",
        ),
        **_table(
            Direction.NA,
            "AG AI AW BB BL BM BQ BS BZ CA CR CU CW DM DO GD GL GP GT HN HT JM KN KY LC MF MQ MS MX NI PA"
            " PM PR SV SX TC TT US VC VG VI",
        ),
        **_table(Direction.SA, "AR BO BR CL CO EC FK GF GY PE PY SR UY VE"),
    }
)


def _country_of(parsed: PhoneNumber) -> str | None:
    region = phonenumbers.region_code_for_number(parsed)
    if region and region != phonenumbers.UNKNOWN_REGION:
        return region
    # Invalid per metadata (metadata lags new allocations): fall back to the country code's main country.
    # That is right for shared codes within one continent; +7 needs its split, and an unknown +1 number
    # goes to the USA even if it might be Guam's (the metadata knows Guam's valid ranges).
    country_code = parsed.country_code or 0
    if country_code == 7:
        national = phonenumbers.national_significant_number(parsed)
        return "KZ" if national[:1] in ("6", "7") else "RU"
    main = phonenumbers.region_code_for_country_code(country_code)
    return None if main == phonenumbers.UNKNOWN_REGION else main


def is_mobile_parsed(parsed: PhoneNumber) -> bool:
    if phonenumbers.number_type(parsed) == PhoneNumberType.MOBILE:
        return True
    # All Russian DEF codes 9xx are mobile, even ranges newer than phonenumbers' metadata.
    national = phonenumbers.national_significant_number(parsed)
    return _country_of(parsed) == "RU" and len(national) == 10 and national.startswith("9")


def is_mobile(number: str) -> bool:
    parsed = parse_number(number)
    return parsed is not None and is_mobile_parsed(parsed)


def classify_parsed(parsed: PhoneNumber, home_region_id: int | None) -> Direction:
    country = _country_of(parsed)
    if country is None:
        return Direction.OTH
    if country != "RU":
        return CONTINENT_OF_COUNTRY.get(country, Direction.OTH)
    # Mobile first: a Russian mobile is "179" wherever it is registered.
    if is_mobile_parsed(parsed):
        return Direction.MOBILE
    if home_region_id is not None:
        region = region_for_parsed(parsed)
        if region is not None and region.id == home_region_id:
            return Direction.LOCAL
    return Direction.RU


def classify(number: str, home_region_id: int | None) -> Direction:
    """Direction of a dialled ``number`` for a domain whose home region is ``home_region_id``.

    ``number``: international digits, optionally with '+', '00' or the Russian '8' trunk prefix.
    Anything that is not a phone number is ``OTH``; never raises.
    """
    parsed = parse_number(number)
    return Direction.OTH if parsed is None else classify_parsed(parsed, home_region_id)
