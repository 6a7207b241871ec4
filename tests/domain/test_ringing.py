"""Ring strategies and the availability rule (call-flows steps 6-7), with property tests."""

from __future__ import annotations

from itertools import combinations

from hypothesis import given
from hypothesis import strategies as st

from vpbx.domain.ringing import ORDERS, Member, Ring, can_take_calls, plan

members_st = st.lists(st.booleans(), min_size=0, max_size=8).map(
    lambda flags: [Member(f"u{i}", a) for i, a in enumerate(flags)]
)


@given(order=st.sampled_from(ORDERS), members=members_st, duration=st.integers(0, 40),
       timeout=st.integers(0, 300), last=st.one_of(st.none(), st.integers(0, 9).map(lambda i: f"u{i}")))
def test_plan_invariants(order: str, members: list[Member], duration: int, timeout: int, last: str | None) -> None:
    rings = plan(order, members, call_duration=duration, timeout=timeout, last_answered=last)
    available = {m.key for m in members if m.available}
    for r in rings:
        assert r.key in available  # nobody unavailable is rung
        assert 0 <= r.at < r.until <= timeout  # the timeout is respected
    for a, b in combinations(rings, 2):  # nobody is rung twice at once
        if a.key == b.key:
            assert a.until <= b.at or b.until <= a.at
    if available and timeout > 0:
        assert rings and min(r.at for r in rings) == 0  # ringing starts at once
    else:
        assert rings == []


@given(members=members_st, duration=st.integers(1, 30), timeout=st.integers(1, 300))
def test_sequential_orders_ring_one_at_a_time(members: list[Member], duration: int, timeout: int) -> None:
    for order in ("BYORDER", "EVENLY"):
        rings = plan(order, members, call_duration=duration, timeout=timeout)
        for a, b in combinations(rings, 2):
            assert a.until <= b.at or b.until <= a.at


@given(flags=st.lists(st.booleans(), min_size=1, max_size=8), data=st.data())
def test_evenly_starts_after_the_previous_answerer(flags: list[bool], data: st.DataObject) -> None:
    members = [Member(f"u{i}", a) for i, a in enumerate(flags)]
    last = data.draw(st.integers(0, len(members) - 1))
    rings = plan("EVENLY", members, call_duration=10, timeout=1000, last_answered=f"u{last}")
    if not any(flags):
        assert rings == []
        return
    # the first rung is the first available member after `last`, going round the list
    n = len(members)
    expected = next(members[(last + k) % n].key for k in range(1, n + 1) if members[(last + k) % n].available)
    assert rings[0].key == expected and rings[0].at == 0


def test_examples() -> None:
    ms = [Member("a"), Member("b", False), Member("c")]
    assert plan("ALL", ms, call_duration=10, timeout=30) == [Ring("a", 0, 30), Ring("c", 0, 30)]
    assert plan("BYORDER", ms, call_duration=10, timeout=35) == [
        Ring("a", 0, 10), Ring("c", 10, 20), Ring("a", 20, 30), Ring("c", 30, 35)]
    assert plan("EVENLY", ms, call_duration=10, timeout=20, last_answered="a") == [Ring("c", 0, 10), Ring("a", 10, 20)]
    assert plan("WATERFALL", ms, call_duration=10, timeout=30) == [Ring("a", 0, 30), Ring("c", 10, 30)]
    assert plan("BYORDER", [Member("a")], call_duration=10, timeout=30) == [Ring("a", 0, 30)]


def test_availability_rule() -> None:
    ok = dict(dnd=False, absent=False, registered=True, mobile_redirect=False)
    assert can_take_calls(**ok)
    assert not can_take_calls(**{**ok, "dnd": True})
    assert not can_take_calls(**{**ok, "absent": True})
    assert not can_take_calls(**{**ok, "registered": False})
    assert can_take_calls(**{**ok, "registered": False, "mobile_redirect": True})
    assert not can_take_calls(**ok, calls_enable=False)
    assert not can_take_calls(**ok, busy=True)
