"""Property tests: the route a call takes (through ``numbers.route_for`` and the stored configuration),
and the blacklist statistics (through ``record_blocked_call`` and 11.1), against simple oracles."""

from __future__ import annotations

import fnmatch
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.services import blacklist, numbers
from vpbx.store.tables import Domain
from vpbx.testing.server import ServerThread, Tenant, create_tenant

V1 = "/crmapi/v1"
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MSK = ZoneInfo("Europe/Moscow")
PROPS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def span(draw: Any) -> tuple[int, int]:
    """A same-day span in whole minutes, as seconds."""
    start = draw(st.integers(0, 1438))
    end = draw(st.integers(start + 1, 1440))
    return start * 60, end * 60


@st.composite
def configs(draw: Any) -> dict[str, Any]:
    weekly = draw(st.dictionaries(st.sampled_from(WEEKDAYS), span(), max_size=7))
    extra = draw(st.none() | st.tuples(st.sets(st.sampled_from(WEEKDAYS), min_size=1), span()))
    special = draw(st.none() | st.tuples(st.dates(date(2025, 1, 1), date(2025, 12, 31)), st.integers(0, 10)))
    at = draw(st.datetimes(datetime(2025, 1, 1), datetime(2025, 12, 31, 23, 59), timezones=st.just(UTC)))
    return {"weekly": weekly, "extra": extra, "special": special, "at": at}


def oracle(cfg: dict[str, Any]) -> str:
    local = cfg["at"].astimezone(MSK)
    day, minute = WEEKDAYS[local.weekday()], (local.hour * 60 + local.minute) * 60
    if cfg["special"] is not None:
        first, length = cfg["special"]
        if first <= local.date() <= first + timedelta(days=length):
            return "special"
    if cfg["extra"] is not None:
        days, (start, end) = cfg["extra"]
        if day in days and start <= minute < end:
            return "extra"
    if day in cfg["weekly"]:
        start, end = cfg["weekly"][day]
        if start <= minute < end:
            return "work"
    return "other"


EXPECTED_TARGET = {"work": ("user", "ivan"), "other": ("user", "maria"), "extra": ("user", "anna"),
                   "special": ("group", "support")}


@PROPS
@given(cfg=configs())
def test_route_for_follows_special_day_then_interval_then_week(server: ServerThread, tenant: Tenant,
                                                                operator: Any, cfg: dict[str, Any]) -> None:
    routes: list[dict[str, Any]] = []
    if cfg["extra"] is not None:
        days, (start, end) = cfg["extra"]
        routes.append({"name": "extra", "type": "user", "user": "anna",
                       "interval_schedule": [{"days": sorted(days), "start": start, "end": end}]})
    if cfg["special"] is not None:
        first, length = cfg["special"]
        routes.append({"name": "special", "type": "group", "group": "support",
                       "calendar_schedule": [{"start": first.isoformat(),
                                              "end": (first + timedelta(days=length)).isoformat()}]})
    body = {"type": "scheduler", "greeting": False, "work": {"type": "user", "user": "ivan"},
            "other": {"type": "onduty", "subtype": "user", "user": "maria"}, "custom_routes": routes,
            "schedule": {d: {"start": s, "end": e} for d, (s, e) in cfg["weekly"].items()}}
    r = tenant.client.post(f"{V1}/telnums/74951234567", json=body)
    assert r.status_code == 200, r.text

    async def work(session: AsyncSession, domain: Domain) -> numbers.NumberRoute | None:
        return await numbers.route_for(session, domain, "+7 495 123-45-67", cfg["at"])

    route = operator.run(tenant, work)
    assert route is not None
    expected = oracle(cfg)
    kind, name = EXPECTED_TARGET[expected]
    assert route.target.kind == kind
    assert (route.target.user if kind == "user" else route.target.group) == name
    reason = {"work": "work", "other": "other", "extra": "extra_interval", "special": "special_day"}[expected]
    assert route.reason == reason
    if expected in ("extra", "special"):
        assert route.route_name == expected
    assert route.target.onduty == (expected == "other")


def test_route_for_direct_routes_and_unknown_numbers(server: ServerThread, tenant: Tenant, operator: Any) -> None:
    at = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

    async def work(session: AsyncSession, domain: Domain) -> list[numbers.NumberRoute | None]:
        return [await numbers.route_for(session, domain, n, at)
                for n in ("74951234567", "74957654321", "78121234567", "74990000000", "garbage")]

    tenant.client.delete(f"{V1}/telnums/74957654321/enabled")
    group, user, ivr, unknown, garbage = operator.run(tenant, work)
    assert group.target.kind == "group" and group.target.group == "sales" and group.reason is None
    assert user.target.kind == "user" and user.target.user == "admin" and user.disabled and user.greeting
    assert ivr.target.kind == "ivr" and ivr.target.ivr["name"] == "Главное меню"
    assert unknown is None and garbage is None


def test_route_without_target_uses_work_and_production_calendar(server: ServerThread, tenant: Tenant,
                                                                 operator: Any) -> None:
    c = tenant.client
    c.post(f"{V1}/telnums/74951234567", json={"type": "scheduler", "greeting": False,
                                              "work": {"type": "group", "group": "hr"}})
    c.post(f"{V1}/telnums/74951234567/calendar-schedule", json={"route_name": "Праздники", "calendar_predefined": True})

    def at(when: datetime) -> Any:
        async def work(session: AsyncSession, domain: Domain) -> numbers.NumberRoute | None:
            return await numbers.route_for(session, domain, "74951234567", when)

        return operator.run(tenant, work)

    new_year = at(datetime(2025, 1, 3, 9, 0, tzinfo=UTC))  # a Friday off in Russia's production calendar
    assert (new_year.reason, new_year.route_name, new_year.target.group) == ("special_day", "Праздники", "hr")
    ordinary_friday = at(datetime(2025, 1, 17, 9, 0, tzinfo=UTC))
    assert (ordinary_friday.reason, ordinary_friday.target.group) == ("work", "hr")
    evening = at(datetime(2025, 1, 17, 20, 0, tzinfo=UTC))
    assert (evening.reason, evening.target.kind) == ("other", "offtime")


# --- blacklist statistics ------------------------------------------------------------------

CALLERS = ["74951000001", "74951000002", "74951000013", "79161234567", "74952000000"]
ENTRIES = ["74951000001", "74951000002", "7495100000*", "7495*", "*567", "7916*4567", "74951000013"]
WEEK_H, YEAR_H = 7 * 24, 365 * 24


def matches(entry: str, caller: str) -> bool:
    return fnmatch.fnmatchcase(caller, entry) if "*" in entry else caller == entry


def expected_counts(entries: list[str], calls: list[tuple[str, int]]) -> list[dict[str, Any]]:
    out = {e: [0, 0] for e in entries}
    for caller, age_h in calls:
        exact = [e for e in entries if "*" not in e and e == caller]
        masks = [e for e in entries if "*" in e and matches(e, caller)]
        hits = exact or masks
        if not hits:
            continue
        hit = hits[0]
        out[hit][0] += age_h < WEEK_H
        out[hit][1] += age_h < YEAR_H
    return [{"telnum": e, "comment": "", "week": w, "year": y} for e, (w, y) in out.items()]


ages = st.integers(0, 9000).filter(lambda h: abs(h - WEEK_H) > 1 and abs(h - YEAR_H) > 1)


@PROPS
@given(entries=st.lists(st.sampled_from(ENTRIES), min_size=1, max_size=5, unique=True),
       calls=st.lists(st.tuples(st.sampled_from(CALLERS), ages), max_size=12))
def test_blacklist_statistics_count_each_blocked_call_once(server: ServerThread, operator: Any,
                                                           entries: list[str], calls: list[tuple[str, int]]) -> None:
    t = create_tenant(server, demo_data=False)
    try:
        assert t.client.post(f"{V1}/blacklist/telnums", json=[{"telnum": e} for e in entries]).status_code == 204
        now = server.runtime.clock.now()

        async def work(session: AsyncSession, domain: Domain) -> None:
            for caller, age_h in calls:
                await blacklist.record_blocked_call(session, domain.id, caller, "74951234567",
                                                    now - timedelta(hours=age_h))

        operator.run(t, work)
        got = t.client.get(f"{V1}/blacklist/telnums", params={"with": "statistics"}).json()
        assert got == expected_counts(entries, calls)
        assert sum(i["year"] for i in got) <= len(calls)
    finally:
        t.client.close()
