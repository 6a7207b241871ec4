"""002 §4: history exports (CSV and JSON, external and internal), filters and the §4.5 period rules.

Rows are written straight into the store here; test_incoming.py checks the rows calls leave behind.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from vpbx.services import tenancy
from vpbx.store.tables import CallRecord, Domain, InnerCallRecord
from vpbx.testing.server import ServerThread, Tenant

MSK = ZoneInfo("Europe/Moscow")


def local_midnight(server: ServerThread, days: int = 0) -> datetime:
    today = server.runtime.clock.now().astimezone(MSK).date() + timedelta(days=days)
    return datetime(today.year, today.month, today.day, tzinfo=MSK).astimezone(UTC)


def add(server: ServerThread, tenant: Tenant, *rows: dict[str, Any], inner: bool = False) -> None:
    async def work() -> None:
        async with server.runtime.sessions() as s:
            domain_id = await s.scalar(select(Domain.id).where(Domain.name == tenant.name))
            for row in rows:
                s.add((InnerCallRecord if inner else CallRecord)(domain_id=domain_id, **row))
            await s.commit()

    server.call(work())


def ext(callid: str, start: datetime, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict(callid=callid, type="in", status="Success", destination="user", client="79101234567",
                               user_login="admin", user_name="Администратор", user_ext="701", user_telnum="",
                               first_login="admin", first_name="Администратор", group_id="", group_name="",
                               diversion="74951234567", telnum_name="Main", start=start, wait=5, duration=23,
                               link="", rating=None, missed_status=None, note="")
    row.update(kw)
    return row


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def compact(t: datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%SZ")


@pytest.fixture
def calls(vserver: ServerThread, vtenant: Tenant) -> dict[str, datetime]:
    """Three calls today (local time), one yesterday, one last week, one just before local midnight."""
    today = local_midnight(vserver)
    times = {
        "a": today + timedelta(minutes=1),  # 00:01 MSK = 21:01 UTC the day before
        "b": today + timedelta(hours=2),
        "c": today + timedelta(hours=3),
        "y": today - timedelta(hours=5),
        "w": today - timedelta(days=7, hours=-1),
    }
    add(vserver, vtenant,
        ext("a", times["a"]),
        ext("b", times["b"], status="Missed", destination="group", user_login="", user_name="", user_ext="",
            first_login="", first_name="", group_id="sales", group_name="Отдел продаж", wait=13, duration=0,
            missed_status=3, client="79990000001"),
        ext("c", times["c"], type="out", destination="", user_login="manager", user_name="Ольга Смирнова",
            first_login="manager", first_name="Ольга Смирнова", rating=5, link="https://x/rec.mp3",
            diversion="74950000000"),
        ext("y", times["y"], user_login="ivan", user_name="Иван Петров", first_login="admin",
            first_name="Администратор", group_id="sales", group_name="Отдел продаж"),
        ext("w", times["w"], status="Cancel", destination="group", user_login="", user_name="", first_login="",
            first_name="", group_id="support", group_name="Техподдержка", missed_status=1, duration=0))
    return times


def test_csv_today_in_domain_timezone(vtenant: Tenant, calls: dict[str, datetime]) -> None:
    r = vtenant.client.get("/crmapi/v1/history/csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    d = vtenant.name
    assert r.text == (
        f"c,out,79101234567,manager@{d},74950000000,{iso(calls['c'])},5,23,https://x/rec.mp3,5\r\n"
        f"b,missed,79990000001,sales@{d},74951234567,{iso(calls['b'])},13,0,\r\n"
        f"a,in,79101234567,admin@{d},74951234567,{iso(calls['a'])},5,23,\r\n"
    )


def test_json_bare_array_fields(vtenant: Tenant, calls: dict[str, datetime]) -> None:
    r = vtenant.client.get("/crmapi/v1/history/json", params={"period": "today"})
    assert r.status_code == 200
    body = r.json()
    assert [c["uid"] for c in body] == ["c", "b", "a"]
    assert body[1] == {
        "uid": "b", "type": "in", "status": "missed", "client": "79990000001", "diversion": "74951234567",
        "telnum_name": "Main", "destination": "group", "user": "", "user_name": "", "group_name": "Отдел продаж",
        "start": iso(calls["b"]), "wait": 13, "duration": 0, "record": "",
    }
    assert body[0]["rating"] == 5 and body[0]["status"] == "success" and body[0]["type"] == "out"


def test_periods(vtenant: Tenant, calls: dict[str, datetime]) -> None:
    def uids(**params: str) -> list[str]:
        r = vtenant.client.get("/crmapi/v1/history/json", params=params)
        assert r.status_code == 200, r.text
        return [c["uid"] for c in r.json()]

    assert uids(period="yesterday") == ["y"]
    week, last_week = uids(period="this_week"), uids(period="last_week")
    assert {"a", "b", "c"} <= set(week) and "w" in last_week  # w: a week before today, 01:00 local
    assert ("y" in week) != ("y" in last_week)
    month, last_month = uids(period="this_month"), uids(period="last_month")
    assert {"a", "b", "c"} <= set(month) and set(month).isdisjoint(last_month)
    assert set(month) | set(last_month) == {"a", "b", "c", "y", "w"}
    # period wins over start/end
    assert uids(period="yesterday", start=compact(calls["a"]), end=compact(calls["c"])) == ["y"]


def test_start_end_rules(vtenant: Tenant, calls: dict[str, datetime]) -> None:
    def uids(**params: str) -> list[str]:
        r = vtenant.client.get("/crmapi/v1/history/json", params=params)
        assert r.status_code == 200, r.text
        return [c["uid"] for c in r.json()]

    # both formats, end inclusive
    assert uids(start=compact(calls["a"]), end=compact(calls["b"])) == ["b", "a"]
    assert uids(start=iso(calls["a"]), end=iso(calls["b"])) == ["b", "a"]
    # no end: up to the end of today
    assert uids(start=iso(calls["y"])) == ["c", "b", "a", "y"]
    # no start: the (local) day of end
    assert uids(end=iso(calls["b"])) == ["b", "a"]
    assert uids(end=iso(calls["y"])) == ["y"]


def test_bad_parameters(vtenant: Tenant, calls: dict[str, datetime]) -> None:
    for params in ({"start": "yesterday"}, {"period": "decade"}, {"type": "odd"}, {"missedStatus": "7"},
                   {"start": iso(calls["c"]), "end": iso(calls["a"])}):
        r = vtenant.client.get("/crmapi/v1/history/json", params=params)
        assert r.status_code == 400, params
        assert r.json()["message"] == "Validation error"


def test_filters(vtenant: Tenant, calls: dict[str, datetime]) -> None:
    week = {"start": iso(calls["w"] - timedelta(days=1))}

    def uids(**params: Any) -> list[str]:
        r = vtenant.client.get("/crmapi/v1/history/json", params={**week, **params})
        assert r.status_code == 200, r.text
        return [c["uid"] for c in r.json()]

    assert uids() == ["c", "b", "a", "y", "w"]
    assert uids(type="in") == ["b", "a", "y", "w"]
    assert uids(type="out") == ["c"]
    assert uids(type="missed") == ["b", "w"]
    assert uids(limit=2) == ["c", "b"]
    assert uids(user="manager") == ["c"]
    assert uids(user="admin") == ["a", "y"]  # y: admin answered first, then transferred to ivan
    assert uids(diversion="74950000000") == ["c"]
    assert uids(client="+7 999 000-00-01") == ["b"]
    assert uids(groups=["sales"]) == ["b", "y"]
    assert uids(groups="sales,support") == ["b", "y", "w"]
    assert uids(missedStatus="3") == ["b"]
    assert uids(missedStatus=["1", "3"]) == ["b", "w"]


def test_first_answered_and_process_missed(vtenant: Tenant, calls: dict[str, datetime]) -> None:
    params = {"period": "yesterday"}
    y = vtenant.client.get("/crmapi/v1/history/json", params=params).json()[0]
    assert (y["user"], y["user_name"]) == ("ivan", "Иван Петров")
    y = vtenant.client.get("/crmapi/v1/history/json", params={**params, "first_answered": "true"}).json()[0]
    assert (y["user"], y["user_name"]) == ("admin", "Администратор")
    today = vtenant.client.get("/crmapi/v1/history/json").json()
    assert all("missedStatus" not in c for c in today)
    today = vtenant.client.get("/crmapi/v1/history/json", params={"processMissed": "true"}).json()
    assert {c["uid"]: c.get("missedStatus") for c in today} == {"a": None, "b": 3, "c": None}


def test_inner_history(vserver: ServerThread, vtenant: Tenant) -> None:
    t0 = local_midnight(vserver) + timedelta(hours=1)
    base = dict(from_name="Администратор", to_name="Ольга Смирнова", link="")
    add(vserver, vtenant,
        dict(callid="i1", status="success", from_login="admin", to_login="manager", start=t0, wait=5, duration=40,
             **base),
        dict(callid="i2", status="noanswer", from_login="manager", to_login="admin", start=t0 + timedelta(minutes=5),
             wait=11, duration=0, from_name="Ольга Смирнова", to_name="Администратор", link=""),
        inner=True)
    d = vtenant.name
    r = vtenant.client.get("/crmapi/v1/history/inner/csv")
    assert r.status_code == 200
    assert r.text == (
        f"i2,noanswer,manager@{d},admin@{d},{iso(t0 + timedelta(minutes=5))},11,0,\r\n"
        f"i1,success,admin@{d},manager@{d},{iso(t0)},5,40,\r\n"
    )
    r = vtenant.client.get("/crmapi/v1/history/inner/json", params={"type": "success"})
    assert r.json() == [{"uid": "i1", "status": "success", "from": "admin", "to": "manager",
                         "from_name": "Администратор", "to_name": "Ольга Смирнова", "start": iso(t0),
                         "wait": 5, "duration": 40, "record": ""}]
    assert [c["uid"] for c in vtenant.client.get("/crmapi/v1/history/inner/json",
                                                 params={"type": "noanswer"}).json()] == ["i2"]
    assert [c["uid"] for c in vtenant.client.get("/crmapi/v1/history/inner/json",
                                                 params={"user": "admin", "limit": 1}).json()] == ["i2"]


def test_rights(vserver: ServerThread, vtenant: Tenant) -> None:
    async def work() -> str:
        async with vserver.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, vtenant.name)
            key = await tenancy.create_key(s, domain, vserver.runtime.clock.now(), role="restricted_user")
            await s.commit()
            return key

    key = vserver.call(work())
    for path in ("/history/csv", "/history/json", "/history/inner/csv", "/history/inner/json"):
        r = httpx.get(f"{vserver.url}/crmapi/v1{path}", headers={"X-API-KEY": key})
        assert r.status_code == 403, path
        r = httpx.get(f"{vserver.url}/crmapi/v1{path}")
        assert r.status_code == 401, path
