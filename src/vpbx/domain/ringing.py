"""Who can take a call, and department ring strategies (002 §8.3/8.7, call-flows steps 6-7). Pure.

A plan is a list of ``Ring`` intervals: member ``key`` rings from ``at`` to ``until`` seconds after
the department started ringing. A member's intervals never overlap (nobody is rung twice at once),
only available members appear, and nothing rings at or after ``timeout``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

ORDERS = ("ALL", "BYORDER", "EVENLY", "WATERFALL")


def can_take_calls(*, dnd: bool, absent: bool, registered: bool, mobile_redirect: bool, busy: bool = False,
                   calls_enable: bool = True) -> bool:
    """Call-flows step 6: not in DND, not absent, a device registered or the mobile redirect on; in a
    department also ``calls_enable``. An employee already on a call is not rung (no call waiting)."""
    return not dnd and not absent and (registered or mobile_redirect) and calls_enable and not busy


@dataclass(frozen=True)
class Member:
    key: Hashable
    available: bool = True


@dataclass(frozen=True)
class Ring:
    key: Hashable
    at: float
    until: float


def rotation(members: Sequence[Member], last_answered: Hashable | None) -> list[Member]:
    """EVENLY: the list order, starting from the member after the previous answerer."""
    keys = [m.key for m in members]
    if last_answered is None or last_answered not in keys:
        return list(members)
    i = keys.index(last_answered) + 1
    return [*members[i:], *members[:i]]


def _merge(rings: list[Ring]) -> list[Ring]:
    """Back-to-back intervals of one member are one continuous ringing."""
    out: list[Ring] = []
    open_by_key: dict[Hashable, int] = {}
    for r in sorted(rings, key=lambda r: r.at):
        i = open_by_key.get(r.key)
        if i is not None and out[i].until >= r.at:
            out[i] = Ring(r.key, out[i].at, max(out[i].until, r.until))
            continue
        open_by_key[r.key] = len(out)
        out.append(r)
    return sorted(out, key=lambda r: (r.at, str(r.key)))


def plan(order: str, members: Sequence[Member], *, call_duration: int, timeout: int,
         last_answered: Hashable | None = None) -> list[Ring]:
    """The ringing plan of a department call; empty when nobody can take it or ``timeout`` is 0."""
    order = order.upper()
    if order not in ORDERS:
        raise ValueError(f"unknown call_order {order!r}")
    if order == "EVENLY":
        members = rotation(members, last_answered)
    ready = [m.key for m in members if m.available]
    if not ready or timeout <= 0:
        return []
    step = max(1, call_duration)
    if order == "ALL":
        return [Ring(k, 0, timeout) for k in ready]
    rings: list[Ring] = []
    if order == "WATERFALL":
        for i, k in enumerate(ready):
            if i * step >= timeout:
                break
            rings.append(Ring(k, i * step, timeout))
        return rings
    # BYORDER and EVENLY: one at a time, cycling through the list until the timeout.
    t, i = 0, 0
    while t < timeout:
        rings.append(Ring(ready[i % len(ready)], t, min(t + step, timeout)))
        t += step
        i += 1
    return _merge(rings)
