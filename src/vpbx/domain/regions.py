"""Russian regions for regional caller IDs (002 §13.5) and number-to-region lookup.

Ids are stable: the seed fixes ``2`` = "Алтай" and ``43`` = "Москва и Московская обл.". Ids 1–85 are the
regions in Russian alphabetical order (Moscow with its oblast as one entry, since 495/499 and 496/498 mix
city and oblast exchanges; Baikonur listed as the numbering plan does), which puts both seed ids exactly
where the seed has them. Regions added to the numbering plan later are appended (86+) so no id ever moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType

__all__ = [
    "REGIONS",
    "REGIONS_BY_ID",
    "Region",
    "get_region",
    "normalize_number",
    "parse_number",
    "region_for_number",
    "region_for_parsed",
]


@dataclass(frozen=True, slots=True)
class Region:
    id: int
    name: str
    # National-number prefixes after +7: 3-digit ABC codes, plus longer prefixes where a smaller region
    # sits inside another's code (81853 Nenets AO inside 818 Arkhangelsk). No DEF (9xx) ranges: their
    # regions come from the operators' registry, which phonenumbers does not carry.
    prefixes: tuple[str, ...]
    # What phonenumbers.geocoder says (lang "ru") for this region's numbers; used when no prefix matches.
    geocoder_names: tuple[str, ...] = ()


REGIONS: tuple[Region, ...] = (
    Region(1, "Адыгея", ("877",), ("Республика Адыгея",)),
    Region(2, "Алтай", ("388",), ("Республика Алтай",)),
    Region(3, "Алтайский край", ("385",), ("Алтайский край",)),
    Region(4, "Амурская обл.", ("416",), ("Амурская обл.",)),
    Region(5, "Архангельская обл.", ("818",), ("Архангельская обл.",)),
    Region(6, "Астраханская обл.", ("851",), ("Астраханская обл.",)),
    Region(7, "Байконур", ("336",), ("Байконыр",)),
    Region(8, "Башкортостан", ("347",), ("Республика Башкортостан",)),
    Region(9, "Белгородская обл.", ("472",), ("Белгородская обл.",)),
    Region(10, "Брянская обл.", ("483",), ("Брянская обл.",)),
    Region(11, "Бурятия", ("301",), ("Республика Бурятия",)),
    Region(12, "Владимирская обл.", ("492",), ("Владимирская обл.",)),
    Region(13, "Волгоградская обл.", ("844",), ("Волгоградская обл.",)),
    Region(14, "Вологодская обл.", ("817", "820"), ("Вологодская обл.",)),
    Region(15, "Воронежская обл.", ("473",), ("Воронежская обл.",)),
    Region(16, "Дагестан", ("872",), ("Республика Дагестан",)),
    Region(17, "Еврейская АО", ("426",), ("Еврейская автономная обл.",)),
    Region(18, "Забайкальский край", ("302",), ("Забайкальский край",)),
    Region(19, "Ивановская обл.", ("493",), ("Ивановская обл.",)),
    Region(20, "Ингушетия", ("873",), ("Республика Ингушетия",)),
    Region(21, "Иркутская обл.", ("395",), ("Иркутская обл.",)),
    Region(22, "Кабардино-Балкария", ("866",), ("Республика Кабардино-Балкарская",)),
    Region(23, "Калининградская обл.", ("401",), ("Калининградская обл.",)),
    Region(24, "Калмыкия", ("847",), ("Республика Калмыкия",)),
    Region(25, "Калужская обл.", ("484",), ("Калужская обл.",)),
    Region(26, "Камчатский край", ("415",), ("Камчатский край",)),
    Region(27, "Карачаево-Черкесия", ("878",), ("Республика Карачаево-Черкесская",)),
    Region(28, "Карелия", ("814",), ("Республика Карелия",)),
    Region(29, "Кемеровская обл.", ("384",), ("Кемеровская обл.",)),
    Region(30, "Кировская обл.", ("833",), ("Кировская обл.",)),
    Region(31, "Коми", ("821",), ("Республика Коми",)),
    Region(32, "Костромская обл.", ("494",), ("Костромская обл.",)),
    Region(33, "Краснодарский край", ("861", "862"), ("Краснодарский край",)),
    Region(34, "Красноярский край", ("391",), ("Красноярский край",)),
    Region(35, "Крым", ("365",), ("Республика Крым",)),
    Region(36, "Курганская обл.", ("352",), ("Курганская обл.",)),
    Region(37, "Курская обл.", ("471",), ("Курская обл.",)),
    Region(38, "Ленинградская обл.", ("813",), ("Ленинградская обл.",)),
    Region(39, "Липецкая обл.", ("474",), ("Липецкая обл.",)),
    Region(40, "Магаданская обл.", ("413",), ("Магаданская обл.",)),
    Region(41, "Марий Эл", ("836",), ("Республика Марий Эл",)),
    Region(42, "Мордовия", ("834",), ("Республика Мордовия",)),
    Region(43, "Москва и Московская обл.", ("495", "496", "498", "499"), ("г. Москва", "Московская обл.")),
    Region(44, "Мурманская обл.", ("815",), ("Мурманская обл.",)),
    Region(45, "Ненецкий АО", ("81853",)),
    Region(46, "Нижегородская обл.", ("831",), ("Нижегородская обл.",)),
    Region(47, "Новгородская обл.", ("816",), ("Новгородская обл.",)),
    Region(48, "Новосибирская обл.", ("383",), ("Новосибирская обл.",)),
    Region(49, "Омская обл.", ("381",), ("Омская обл.",)),
    Region(50, "Оренбургская обл.", ("353",), ("Оренбургская обл.",)),
    Region(51, "Орловская обл.", ("486",), ("Орловская обл.",)),
    Region(52, "Пензенская обл.", ("841",), ("Пензенская обл.",)),
    Region(53, "Пермский край", ("342",), ("Пермский край",)),
    Region(54, "Приморский край", ("423",), ("Приморский край",)),
    Region(55, "Псковская обл.", ("811",), ("Псковская обл.",)),
    Region(56, "Ростовская обл.", ("863",), ("Ростовская обл.",)),
    Region(57, "Рязанская обл.", ("491",), ("Рязанская обл.",)),
    Region(58, "Самарская обл.", ("846", "848"), ("Самарская обл.",)),
    Region(59, "Санкт-Петербург", ("812",), ("г. Санкт-Петербург",)),
    Region(60, "Саратовская обл.", ("845",), ("Саратовская обл.",)),
    Region(61, "Саха (Якутия)", ("411",), ("Республика Саха /Якутия/",)),
    Region(62, "Сахалинская обл.", ("424",), ("Сахалинская обл.",)),
    Region(63, "Свердловская обл.", ("343",), ("Свердловская обл",)),
    Region(64, "Севастополь", ("869",), ("г. Севастополь",)),
    Region(65, "Северная Осетия", ("867",), ("Республика Северная Осетия - Алания",)),
    Region(66, "Смоленская обл.", ("481",), ("Смоленская обл.",)),
    Region(67, "Ставропольский край", ("865", "879"), ("Ставропольский край",)),
    Region(68, "Тамбовская обл.", ("475",), ("Тамбовская обл.",)),
    Region(69, "Татарстан", ("843", "855"), ("Республика Татарстан",)),
    Region(70, "Тверская обл.", ("482",), ("Тверская обл.",)),
    Region(71, "Томская обл.", ("382",), ("Томская обл.",)),
    Region(72, "Тульская обл.", ("487",), ("Тульская обл.",)),
    Region(73, "Тыва", ("394",), ("Республика Тыва",)),
    Region(74, "Тюменская обл.", ("345",), ("Тюменская обл.",)),
    Region(75, "Удмуртия", ("341",), ("Республика Удмуртская",)),
    Region(76, "Ульяновская обл.", ("842",), ("Ульяновская обл.",)),
    Region(77, "Хабаровский край", ("421",), ("Хабаровский край",)),
    Region(78, "Хакасия", ("390",), ("Республика Хакасия",)),
    Region(79, "Ханты-Мансийский АО", ("346",), ("Ханты - Мансийский - Югра АО",)),
    Region(80, "Челябинская обл.", ("351",), ("Челябинская обл.",)),
    Region(81, "Чечня", ("871",), ("Республика Чеченская",)),
    Region(82, "Чувашия", ("835",), ("Чувашская Республика - Чувашия",)),
    Region(83, "Чукотский АО", ("427",), ("Чукотский АО",)),
    Region(84, "Ямало-Ненецкий АО", ("349",), ("Ямало-Ненецкий АО",)),
    Region(85, "Ярославская обл.", ("485",), ("Ярославская обл.",)),
    # Added to the numbering plan later: appended so the ids above never move.
    Region(86, "Донецкая Народная Республика", ("856",), ("Донецкая Народная Республика",)),
    Region(87, "Луганская Народная Республика", ("857",), ("Луга́нская Наро́дная Респу́блика",)),
    # No fixed-line ABC code of its own in phonenumbers' data yet: listed for caller-ID settings only.
    Region(88, "Запорожская обл.", ()),
    Region(89, "Херсонская обл.", ("860",), ("Херсонская область",)),
)

REGIONS_BY_ID: Mapping[int, Region] = MappingProxyType({r.id: r for r in REGIONS})

_BY_PREFIX: Mapping[str, Region] = MappingProxyType({p: r for r in REGIONS for p in r.prefixes})
_PREFIX_LENGTHS: tuple[int, ...] = tuple(sorted({len(p) for p in _BY_PREFIX}, reverse=True))
_BY_GEOCODER_NAME: Mapping[str, Region] = MappingProxyType({name: r for r in REGIONS for name in r.geocoder_names})

_SEPARATORS = str.maketrans("", "", " \t-().")


def get_region(region_id: int) -> Region | None:
    return REGIONS_BY_ID.get(region_id)


def _parse_international(digits: str) -> PhoneNumber | None:
    try:
        return phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None


def parse_number(number: str) -> PhoneNumber | None:
    """Parse international digits (optionally '+'/'00'-prefixed) or a Russian '8XXXXXXXXXX' number.

    Returns None for anything that is not a phone number. Never raises.
    """
    text = number.strip().translate(_SEPARATORS)
    if text.startswith("+"):
        digits = text[1:]
        trunk_allowed = False
    else:
        digits = text
        trunk_allowed = True
    if not digits or not (digits.isascii() and digits.isdigit()):
        return None
    if trunk_allowed and digits.startswith("00"):
        return _parse_international(digits[2:])
    if trunk_allowed and len(digits) == 11 and digits[0] == "8":
        # "8 495 ..." is how Russians dial; it also looks like some +8x numbers (Vietnam +84, Japan +81).
        # A valid Russian reading wins, then a valid international one; else the Russian reading.
        russian = _parse_international("7" + digits[1:])
        if russian is not None and phonenumbers.is_valid_number(russian):
            return russian
        international = _parse_international(digits)
        if international is not None and phonenumbers.is_valid_number(international):
            return international
        return russian or international
    return _parse_international(digits)


def normalize_number(number: str) -> str | None:
    """International digits without '+' (the API's form), or None if ``number`` is not a phone number."""
    parsed = parse_number(number)
    if parsed is None:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]


def region_for_parsed(parsed: PhoneNumber) -> Region | None:
    if parsed.country_code != 7 or phonenumbers.region_code_for_number(parsed) == "KZ":
        return None
    national = phonenumbers.national_significant_number(parsed)
    # Russian national numbers are exactly 10 digits; Kazakhstan's ranges (+7 6xx/7xx) are not Russia's.
    if len(national) != 10 or national[0] in "67":
        return None
    for length in _PREFIX_LENGTHS:
        region = _BY_PREFIX.get(national[:length])
        if region is not None:
            return region
    if phonenumbers.number_type(parsed) not in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
        return None
    # Mobiles land here: the geocoder only says "Россия" for DEF codes, so their region stays unknown.
    # Imported here: the geocoder's data costs ~1 s and ~100 MB, and most numbers never need it.
    from phonenumbers import geocoder

    return _BY_GEOCODER_NAME.get(geocoder.description_for_number(parsed, "ru"))


def region_for_number(number: str) -> Region | None:
    """The Russian region of ``number``, or None (foreign, non-geographic, or a mobile of unknown region)."""
    parsed = parse_number(number)
    return None if parsed is None else region_for_parsed(parsed)
