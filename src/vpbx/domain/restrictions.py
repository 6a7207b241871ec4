"""Outgoing call restrictions (002 §14): which directions an employee may dial."""

from __future__ import annotations

from collections.abc import Iterable, Set

from vpbx.domain.directions import Direction

__all__ = ["ALL", "VALID_CODES", "UnknownDirectionCode", "may_dial", "validate_codes"]

# Not a direction of its own: a rule holding it allows every direction (002 §14.1 example "director").
ALL = "ALL"

VALID_CODES: frozenset[str] = frozenset({d.value for d in Direction} | {ALL})


class UnknownDirectionCode(ValueError):
    """A restriction rule names a direction that 002 §14.5 does not list."""

    def __init__(self, code: object) -> None:
        self.code = code
        super().__init__(f"unknown direction code: {code!r}")


def validate_codes(codes: Iterable[str]) -> list[str]:
    """Canonical codes (upper case, first occurrence order, no duplicates); raises on an unknown one."""
    result: list[str] = []
    seen: set[str] = set()
    for code in codes:
        if not isinstance(code, str):
            raise UnknownDirectionCode(code)
        canonical = code.strip().upper()
        if canonical not in VALID_CODES:
            raise UnknownDirectionCode(code)
        if canonical not in seen:
            seen.add(canonical)
            result.append(canonical)
    return result


def _allows(rules: Set[str], direction: Direction) -> bool:
    return ALL in rules or direction.value in rules


def may_dial(
    direction: Direction,
    company_rules: Set[str],
    user_rules: Set[str],
    group_rules: Iterable[Set[str]],
) -> bool:
    """Allowed if the company, the employee or any of the employee's departments allows ``direction``.

    Rules only ever grant: there is no deny rule, so adding a code can never forbid a call.
    """
    if _allows(company_rules, direction) or _allows(user_rules, direction):
        return True
    return any(_allows(rules, direction) for rules in group_rules)
