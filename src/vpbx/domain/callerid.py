"""Caller ID of an outgoing external call (call-flows.md "Outgoing external call" step 2; 002 §13)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from vpbx.domain.directions import is_mobile_parsed
from vpbx.domain.regions import normalize_number, parse_number, region_for_parsed

__all__ = [
    "CallerIdChoice",
    "CallerIdConfig",
    "CallerIdMode",
    "CallerIdRule",
    "RegionalCallerId",
    "choose_caller_id",
]


class CallerIdMode(StrEnum):
    """Which client numbers a regional caller ID is used for (002 §13.5 ``mode``)."""

    ALL = "all"
    MOBILE = "mobile"
    FIXED = "fixed"


class CallerIdRule(StrEnum):
    """Which step of the precedence chose the caller ID."""

    CLID = "clid"
    USER = "user"
    GROUP = "group"
    REGION = "region"
    MAIN = "main"


@dataclass(frozen=True, slots=True)
class RegionalCallerId:
    region_id: int
    mode: CallerIdMode
    telnum: str


@dataclass(frozen=True, slots=True)
class CallerIdChoice:
    telnum: str
    rule: CallerIdRule


def _frozen_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class CallerIdConfig:
    """A domain's caller-ID settings (002 §13.1, §13.2), as the store loads them.

    ``enabled``: the outgoing numbers whose ``enabled`` is true (§13.2); ``users``: login -> number;
    ``groups``: department id -> number; ``regions``: the §13.5 entries.
    """

    main: str | None = None
    enabled: frozenset[str] = frozenset()
    users: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)
    regions: tuple[RegionalCallerId, ...] = ()

    def __post_init__(self) -> None:
        # Copies, so a caller mutating its dicts cannot change a config already handed out.
        object.__setattr__(self, "enabled", frozenset(self.enabled))
        object.__setattr__(self, "users", _frozen_mapping(self.users))
        object.__setattr__(self, "groups", _frozen_mapping(self.groups))
        object.__setattr__(self, "regions", tuple(self.regions))


def _enabled_match(clid: str, enabled: Iterable[str]) -> str | None:
    """The enabled number equal to ``clid``, compared in canonical form ("+7 926..." == "7926...")."""
    wanted = normalize_number(clid)
    if wanted is None:
        return None
    for telnum in sorted(enabled):  # sorted: deterministic if two spellings of one number are stored
        if telnum == clid or normalize_number(telnum) == wanted:
            return telnum
    return None


def _regional(regions: Sequence[RegionalCallerId], client_region_id: int, client_is_mobile: bool) -> str | None:
    specific = CallerIdMode.MOBILE if client_is_mobile else CallerIdMode.FIXED
    # A number set for exactly this kind of client beats one set for all clients of the region.
    for mode in (specific, CallerIdMode.ALL):
        for entry in regions:
            if entry.region_id == client_region_id and entry.mode == mode:
                return entry.telnum
    return None


def choose_caller_id(
    config: CallerIdConfig,
    *,
    client: str,
    login: str | None = None,
    groups: Sequence[str] = (),
    clid: str | None = None,
    client_region_id: int | None = None,
) -> CallerIdChoice | None:
    """The caller ID for employee ``login`` (in ``groups``, stable list order) calling ``client``.

    Precedence: ``clid`` (makecall's) if it is an enabled number; the employee's personal number; the first
    of ``groups`` that has a number; the regional number for the client's region and kind (mobile/fixed);
    the company's main number; else None. ``client_region_id`` overrides the lookup of the client's region
    (phonenumbers knows no region for Russian mobiles).
    """
    if clid:
        match = _enabled_match(clid, config.enabled)
        if match is not None:
            return CallerIdChoice(match, CallerIdRule.CLID)
    if login is not None and (personal := config.users.get(login)):
        return CallerIdChoice(personal, CallerIdRule.USER)
    for group in groups:
        if group_number := config.groups.get(group):
            return CallerIdChoice(group_number, CallerIdRule.GROUP)
    if config.regions:
        parsed = parse_number(client)
        if parsed is not None:
            region_id = client_region_id
            if region_id is None:
                region = region_for_parsed(parsed)
                region_id = None if region is None else region.id
            if region_id is not None:
                regional = _regional(config.regions, region_id, is_mobile_parsed(parsed))
                if regional is not None:
                    return CallerIdChoice(regional, CallerIdRule.REGION)
    if config.main:
        return CallerIdChoice(config.main, CallerIdRule.MAIN)
    return None
