"""002 §9 Номера: list, get, route editing and its validation, enable/disable, extra intervals and
special days, rights, tenant isolation, and what deleting employees/departments does to routes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from vpbx.schemas.groups import GroupCreate
from vpbx.schemas.users import UserCreate
from vpbx.services import groups, users
from vpbx.testing.server import ServerThread, Tenant, create_tenant

V1 = "/crmapi/v1"
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
NEW_YEAR = {"route_name": "Новый год", "start": "2023-12-31T00:00:00", "end": "2024-01-07T23:59:00"}
THIRD_SHIFT = {"route_name": "Третья смена", "start": 68400, "end": 82800, "days": ["monday", "tuesday", "wednesday"]}
SCHEDULER = {"type": "scheduler", "greeting": False, "work": {"type": "group", "group": "sales"},
             "other": {"type": "onduty", "subtype": "user", "user": "ivan"}}


def subset(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    for key, value in expected.items():
        assert key in actual, key
        assert actual[key] == value, (key, actual[key], value)


def scheduler(c: httpx.Client, telnum: str = "74951234567", **extra: Any) -> dict[str, Any]:
    r = c.post(f"{V1}/telnums/{telnum}", json=SCHEDULER | extra)
    assert r.status_code == 200, r.text
    return r.json()


# --- 9.1 / 9.2: the seed's examples ----------------------------------------------------------

@pytest.fixture
def bare(server: ServerThread) -> Iterator[Tenant]:
    """A domain with only the seed's employee ``admin`` and department ``sales``."""
    t = create_tenant(server, demo_data=False)

    async def work() -> None:
        async with server.runtime.sessions() as session:
            from vpbx.services import tenancy

            domain = await tenancy.get_domain(session, t.name)
            now = server.runtime.clock.now()
            await users.create(session, domain, UserCreate(login="admin", name="Администратор", ext="701",
                                                           role="admin"), now)
            await groups.create(session, domain, GroupCreate(name="Отдел продаж", ext="700"), now, group_id="sales")
            await session.commit()

    server.call(work())
    yield t
    t.client.close()


def test_list_reproduces_the_seed_example(bare: Tenant, operator: Any) -> None:
    operator.number(bare, "79262005060")
    operator.number(bare, "79264010121", main=True)
    c = bare.client
    for telnum, route in (("79262005060", {"type": "user", "user": "admin", "greeting": True}),
                          ("79264010121", {"type": "group", "group": "sales", "greeting": False})):
        assert c.post(f"{V1}/telnums/{telnum}", json=route).status_code == 200
    body = c.get(f"{V1}/telnums", params={"limit": 2}).json()
    assert body["info"] == {"search": "", "start": 0, "limit": 2, "total": 2, "next": None}
    first, second = body["items"]
    subset({"type": "user", "user": "admin", "user_name": "Администратор", "greeting": True, "is_main_phone": False,
            "location": "", "disabled": False, "telnum": "79262005060", "name": "", "crm": "", "calltracking": "",
            "route_group_id": "", "route_group_name": "", "abc_telnum": None, "abc_location": None,
            "greeting_file": None, "greeting_custom": False}, first)
    subset({"type": "group", "group": "sales", "group_name": "Отдел продаж", "greeting": False, "is_main_phone": True,
            "location": "", "disabled": False, "telnum": "79264010121", "crm": "", "calltracking": "",
            "route_group_id": "", "route_group_name": ""}, second)
    # the type's own fields only
    assert "group" not in first and "user" not in second and "work" not in first and "ivr" not in second


SEED_9_2 = {"type": "group", "group": "sales", "group_name": "Отдел продаж", "greeting": False, "is_main_phone": True,
            "location": "", "disabled": False, "telnum": "79267616794", "name": "", "crm": "", "calltracking": "",
            "route_group_id": "", "route_group_name": ""}


def test_get_and_route_edit_reproduce_the_seed_examples(bare: Tenant, operator: Any) -> None:
    operator.number(bare, "79267616794")
    r = bare.client.post(f"{V1}/telnums/79267616794", json={"type": "group", "group": "sales", "greeting": False})
    assert r.status_code == 200
    subset(SEED_9_2, r.json())
    got = bare.client.get(f"{V1}/telnums/79267616794")
    assert got.status_code == 200
    subset(SEED_9_2, got.json())
    assert got.json() == r.json()


def test_demo_numbers(tenant: Tenant) -> None:
    items = {i["telnum"]: i for i in tenant.client.get(f"{V1}/telnums").json()["items"]}
    assert set(items) == {"74951234567", "74957654321", "78121234567"}
    subset({"type": "group", "group": "sales", "is_main_phone": True}, items["74951234567"])
    subset({"type": "user", "user": "admin", "user_name": "Администратор", "is_main_phone": False},
           items["74957654321"])
    ivr = items["78121234567"]["ivr"]
    assert ivr["name"] == "Главное меню"
    assert {b["button"]: b for b in ivr["items"]}["1"] == {"button": "1", "type": "group", "group": "sales",
                                                           "group_name": "Отдел продаж"}  # issue 13: named


def test_list_paging_and_search(tenant: Tenant) -> None:
    c = tenant.client
    page = c.get(f"{V1}/telnums", params={"start": 1, "limit": 1}).json()
    assert [i["telnum"] for i in page["items"]] == ["74957654321"]
    assert page["info"] == {"search": "", "start": 1, "limit": 1, "total": 3, "next": 2}
    found = c.get(f"{V1}/telnums", params={"search": "7812"}).json()
    assert [i["telnum"] for i in found["items"]] == ["78121234567"]
    assert c.get(f"{V1}/telnums", params={"search": "санкт"}).json()["info"]["total"] == 1


@pytest.mark.parametrize("path", ["+7 (495) 123-45-67", "84951234567", "74951234567"])
def test_get_accepts_any_form_of_the_number(tenant: Tenant, path: str) -> None:
    r = tenant.client.get(f"{V1}/telnums/{path}")
    assert r.status_code == 200 and r.json()["telnum"] == "74951234567"


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/telnums/74990000000", None),
    ("GET", "/telnums/garbage", None),
    ("POST", "/telnums/74990000000", {"type": "fax", "greeting": False}),
    ("POST", "/telnums/74990000000/enabled", None),
    ("DELETE", "/telnums/74990000000/enabled", None),
    ("POST", "/telnums/74990000000/interval-schedule", THIRD_SHIFT),
    ("POST", "/telnums/74990000000/calendar-schedule", NEW_YEAR),
    ("PUT", "/telnums/74951234567/interval-schedule/nope", THIRD_SHIFT),
    ("DELETE", "/telnums/74951234567/interval-schedule/nope", None),
    ("PUT", "/telnums/74951234567/calendar-schedule/nope", NEW_YEAR),
    ("DELETE", "/telnums/74951234567/calendar-schedule/nope", None),
])
def test_unknown_numbers_and_ids_are_404(tenant: Tenant, method: str, path: str, body: Any) -> None:
    scheduler(tenant.client)
    r = tenant.client.request(method, V1 + path, json=body)
    assert r.status_code == 404
    assert r.json() == {"message": "Not found"}


# --- 9.3: route types ------------------------------------------------------------------------

def test_route_user_by_login_or_extension(tenant: Tenant) -> None:
    c = tenant.client
    r = c.post(f"{V1}/telnums/74951234567", json={"type": "user", "user": "707", "greeting": True, "name": "Иван"})
    assert r.status_code == 200
    subset({"type": "user", "user": "ivan", "user_name": "Иван Петров", "greeting": True, "name": "Иван"}, r.json())
    assert "group" not in r.json()


def test_route_fax_and_greeting_file(tenant: Tenant) -> None:
    r = tenant.client.post(f"{V1}/telnums/74951234567", json={"type": "fax", "greeting": True, "greeting_file": "f1"})
    assert r.status_code == 200
    subset({"type": "fax", "greeting": True, "greeting_custom": True, "greeting_file": "f1"}, r.json())
    for key in ("user", "group", "ivr", "work"):
        assert key not in r.json()


def test_route_ivr_menu_with_every_button(tenant: Tenant) -> None:
    c = tenant.client
    items = [{"button": b, "type": "user", "user": "ivan"} for b in "0123456789*#"]
    items.append({"button": "timeout", "type": "group", "group": "support"})
    sub = {"name": "Подменю", "items": [{"button": "1", "type": "telnum", "telnum": "+7 916 123-45-67"},
                                        {"button": "2", "type": "ivr", "ivr": "Главное меню"}]}
    assert c.post(f"{V1}/telnums/74957654321", json={"type": "ivr", "greeting": False, "ivr": sub}).status_code == 200
    items[3] = {"button": "3", "type": "ivr", "ivr": "Подменю"}
    menu = {"name": "Главное меню", "greeting": True, "greeting_custom": False, "items": items}
    r = c.post(f"{V1}/telnums/78121234567", json={"type": "ivr", "greeting": True, "ivr": menu})
    assert r.status_code == 200, r.text
    names = {"user": ("user_name", "Иван Петров"), "group": ("group_name", "Техподдержка")}
    assert r.json()["ivr"] == menu | {"items": [i | dict([names[i["type"]]]) if i["type"] in names else i
                                                for i in items]}
    got = c.get(f"{V1}/telnums/74957654321").json()["ivr"]
    assert got["items"][0] == {"button": "1", "type": "telnum", "telnum": "79161234567"}
    # the same menu on another number: one menu, saved by name
    r = c.post(f"{V1}/telnums/74951234567", json={"type": "ivr", "greeting": False, "ivr": sub | {"items": []}})
    assert r.status_code == 200 and r.json()["ivr"]["items"] == []
    assert c.get(f"{V1}/telnums/74957654321").json()["ivr"]["items"] == []


def test_route_scheduler_with_defaults(tenant: Tenant) -> None:
    body = scheduler(tenant.client)
    assert body["work"] == {"type": "group", "greeting": False, "group": "sales", "group_name": "Отдел продаж"}
    assert body["other"] == {"type": "onduty", "subtype": "user", "greeting": False, "user": "ivan",
                             "user_name": "Иван Петров"}
    assert body["custom_routes"] == []
    assert body["schedule"] == {
        **{d: {"start": 32400, "end": 64800, "holiday": False} for d in WEEKDAYS[:5]},
        "saturday": {"start": 0, "end": 0, "holiday": True}, "sunday": {"start": 0, "end": 0, "holiday": True}}
    r = tenant.client.post(f"{V1}/telnums/74957654321", json={"type": "scheduler", "greeting": False,
                                                               "work": {"type": "user", "user": "admin"}})
    assert r.json()["other"] == {"type": "offtime", "greeting": False}


def test_schedule_missing_days_are_holidays_and_times_round_to_minutes(tenant: Tenant) -> None:
    schedule = {"monday": {"start": 32400, "end": 64800}, "tuesday": {"start": 32429, "end": 64830},
                "friday": {"start": 0, "end": 86400}}
    body = scheduler(tenant.client, schedule=schedule)["schedule"]
    assert body["monday"] == {"start": 32400, "end": 64800, "holiday": False}
    assert body["tuesday"] == {"start": 32400, "end": 64860, "holiday": False}
    assert body["friday"] == {"start": 0, "end": 86400, "holiday": False}
    for day in ("wednesday", "thursday", "saturday", "sunday"):
        assert body[day] == {"start": 0, "end": 0, "holiday": True}
    # the seed's 9.9 example reads back as the seed's "getting" example
    seed = {d: {"start": 32400, "end": 64800} for d in WEEKDAYS[:5]}
    assert scheduler(tenant.client, schedule=seed)["schedule"] == {
        **{d: {"start": 32400, "end": 64800, "holiday": False} for d in WEEKDAYS[:5]},
        "saturday": {"start": 0, "end": 0, "holiday": True}, "sunday": {"start": 0, "end": 0, "holiday": True}}


def test_scheduler_keeps_work_other_and_custom_routes_when_not_sent(tenant: Tenant) -> None:
    c = tenant.client
    scheduler(c)
    c.post(f"{V1}/telnums/74951234567/interval-schedule", json=THIRD_SHIFT)
    r = c.post(f"{V1}/telnums/74951234567", json={"type": "scheduler", "greeting": True})
    assert r.status_code == 200
    assert r.json()["work"]["group"] == "sales" and r.json()["other"]["user"] == "ivan"
    assert [x["name"] for x in r.json()["custom_routes"]] == ["Третья смена"]


def test_custom_routes_through_route_editing(tenant: Tenant) -> None:
    routes = [{"name": "Ночь", "type": "telnum", "telnum": "8 916 123 45 67",
               "interval_schedule": [{"days": ["saturday"], "start": 0, "end": 21600}],
               "calendar_schedule": [{"start": "2025-05-01", "end": "2025-05-02"}]},
              {"id": "keep-me", "name": "Праздники", "calendar_schedule": [{"calendar_predefined": True}]}]
    body = scheduler(tenant.client, custom_routes=routes)
    night, holidays_ = body["custom_routes"]
    assert night["type"] == "telnum" and night["telnum"] == "79161234567" and night["id"]
    assert night["interval_schedule"][0] | {"id": "x"} == {"id": "x", "days": ["saturday"], "start": 0, "end": 21600}
    assert night["calendar_schedule"][0]["start"] == "2025-05-01"
    assert holidays_["id"] == "keep-me" and "type" not in holidays_
    assert holidays_["calendar_schedule"][0] | {"id": "x"} == {"id": "x", "start": None, "end": None,
                                                              "calendar_predefined": True}


@pytest.mark.parametrize("body,field", [
    ({"greeting": False}, "type"),
    ({"type": "user"}, "greeting"),
    ({"type": "voicemail", "greeting": False}, "type"),
    ({"type": "user", "greeting": False}, "body"),
    ({"type": "user", "greeting": False, "user": "nobody"}, "user"),
    ({"type": "group", "greeting": False}, "body"),
    ({"type": "group", "greeting": False, "group": "nope"}, "group"),
    ({"type": "ivr", "greeting": False}, "body"),
    ({"type": "ivr", "greeting": False, "ivr": "Нет такого меню"}, "ivr"),
    ({"type": "ivr", "greeting": False, "ivr": {"items": []}}, "ivr.name"),
    ({"type": "ivr", "greeting": False, "ivr": {"name": "M", "items": [{"button": "A", "type": "user",
                                                                       "user": "ivan"}]}}, "ivr.items.0.button"),
    ({"type": "ivr", "greeting": False, "ivr": {"name": "M", "items": [{"button": "1", "type": "user",
                                                                       "user": "ivan"},
                                                                      {"button": "1", "type": "group",
                                                                       "group": "sales"}]}}, "ivr.items"),
    ({"type": "ivr", "greeting": False, "ivr": {"name": "M", "items": [{"button": "1", "type": "user",
                                                                       "user": "ghost"}]}}, "ivr.items.0.user"),
    ({"type": "ivr", "greeting": False, "ivr": {"name": "M", "items": [{"button": "1", "type": "group",
                                                                       "group": "ghost"}]}}, "ivr.items.0.group"),
    ({"type": "ivr", "greeting": False, "ivr": {"name": "M", "items": [{"button": "1", "type": "ivr",
                                                                       "ivr": "ghost"}]}}, "ivr.items.0.ivr"),
    ({"type": "ivr", "greeting": False, "ivr": {"name": "M", "items": [{"button": "1", "type": "user"}]}},
     "ivr.items.0"),
    ({"type": "ivr", "greeting": False, "ivr": {"name": "M", "items": [{"button": "1", "type": "telnum",
                                                                       "telnum": "abc"}]}}, "ivr.items.0"),
    ({"type": "ivr", "greeting": False, "ivr": {"name": "", "items": []}}, "ivr.name"),
    ({"type": "scheduler", "greeting": False}, "work"),
    ({"type": "scheduler", "greeting": False, "work": {"type": "offtime"}}, "body"),
    ({"type": "scheduler", "greeting": False, "work": {"type": "user", "user": "ghost"}}, "work.user"),
    ({"type": "scheduler", "greeting": False, "work": {"type": "user", "user": "ivan"},
      "other": {"type": "onduty"}}, "other"),
    ({"type": "scheduler", "greeting": False, "work": {"type": "user", "user": "ivan"},
      "other": {"type": "onduty", "subtype": "group", "group": "ghost"}}, "other.group"),
    ({"type": "scheduler", "greeting": False, "work": {"type": "user", "user": "ivan"},
      "other": {"type": "onduty", "subtype": "telnum", "telnum": "12"}}, "other"),
    ({"type": "scheduler", "greeting": False, "work": {"type": "user", "user": "ivan"},
      "schedule": {"funday": {"start": 0, "end": 60}}}, "schedule.funday"),
    ({"type": "scheduler", "greeting": False, "work": {"type": "user", "user": "ivan"},
      "schedule": {"monday": {"start": -1, "end": 60}}}, "schedule.monday.start"),
    ({"type": "scheduler", "greeting": False, "work": {"type": "user", "user": "ivan"},
      "schedule": {"monday": {"start": 0, "end": 90000}}}, "schedule.monday.end"),
    ({"type": "scheduler", "greeting": False, "work": {"type": "user", "user": "ivan"},
      "schedule": {"monday": {"start": "nine", "end": 60}}}, "schedule.monday.start"),
    ({"type": "scheduler", "greeting": False, "work": {"type": "user", "user": "ivan"},
      "custom_routes": [{"name": "x", "interval_schedule": [{"days": [], "start": 0, "end": 60}]}]},
     "custom_routes.0.interval_schedule.0.days"),
    ({"type": "scheduler", "greeting": False, "work": {"type": "user", "user": "ivan"},
      "custom_routes": [{"name": "x", "calendar_schedule": [{"start": "2024-13-01", "end": "2024-01-02"}]}]},
     "custom_routes.0.calendar_schedule.0.start"),
    ({"type": "scheduler", "greeting": False, "work": {"type": "user", "user": "ivan"},
      "custom_routes": [{"name": "x", "id": "a"}, {"name": "y", "id": "a"}]}, "custom_routes.1.id"),
    ({"type": "scheduler", "greeting": False, "work": {"type": "user", "user": "ivan"},
      "custom_routes": [{"name": "x", "type": "group", "group": "ghost"}]}, "custom_routes.0.group"),
])
def test_route_validation(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    before = tenant.client.get(f"{V1}/telnums/74951234567").json()
    r = tenant.client.post(f"{V1}/telnums/74951234567", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "Validation error"
    fields = [e["field"] for e in r.json()["errors"]]
    assert any(f == field or f.startswith(field) for f in fields), fields
    assert tenant.client.get(f"{V1}/telnums/74951234567").json() == before  # all or nothing


# --- 9.4 / 9.5 ------------------------------------------------------------------------------

def test_disable_and_enable_receiving_calls(tenant: Tenant) -> None:
    c = tenant.client
    r = c.delete(f"{V1}/telnums/74951234567/enabled")
    assert r.status_code == 204 and r.content == b""
    assert c.get(f"{V1}/telnums/74951234567").json()["disabled"] is True
    assert c.get(f"{V1}/telnums/74957654321").json()["disabled"] is False
    assert c.post(f"{V1}/telnums/74951234567/enabled").status_code == 204
    assert c.get(f"{V1}/telnums/74951234567").json()["disabled"] is False


# --- 9.7 extra intervals --------------------------------------------------------------------

def test_extra_interval_add_edit_delete(tenant: Tenant) -> None:
    c = tenant.client
    scheduler(c)
    r = c.post(f"{V1}/telnums/74951234567/interval-schedule", json=THIRD_SHIFT)
    assert r.status_code == 200, r.text
    added = r.json()
    assert added["route_name"] == "Третья смена" and added["days"] == THIRD_SHIFT["days"]
    assert (added["start"], added["end"]) == (68400, 82800)
    route = c.get(f"{V1}/telnums/74951234567").json()["custom_routes"][0]
    assert route == {"id": added["route_id"], "name": "Третья смена", "calendar_schedule": [],
                     "interval_schedule": [{"id": added["id"], "days": THIRD_SHIFT["days"], "start": 68400,
                                            "end": 82800}]}
    # a second interval on the existing route, by route_id
    second = c.post(f"{V1}/telnums/74951234567/interval-schedule",
                    json={"route_id": added["route_id"], "days": ["sunday", "friday"], "start": 0, "end": 3600}).json()
    assert second["route_id"] == added["route_id"] and second["days"] == ["friday", "sunday"]
    # edit: new times, moved to a new route by name
    r = c.put(f"{V1}/telnums/74951234567/interval-schedule/{added['id']}",
              json={"route_name": "Ночь", "days": ["thursday"], "start": 3629, "end": 7200})
    assert r.status_code == 200
    assert r.json() | {"route_id": "-"} == {"id": added["id"], "route_id": "-", "route_name": "Ночь",
                                            "days": ["thursday"], "start": 3600, "end": 7200}
    routes = {x["name"]: x for x in c.get(f"{V1}/telnums/74951234567").json()["custom_routes"]}
    assert [i["id"] for i in routes["Третья смена"]["interval_schedule"]] == [second["id"]]
    assert [i["id"] for i in routes["Ночь"]["interval_schedule"]] == [added["id"]]
    # edit without a route keeps the route
    r = c.put(f"{V1}/telnums/74951234567/interval-schedule/{added['id']}",
              json={"days": ["monday"], "start": 0, "end": 60})
    assert r.json()["route_name"] == "Ночь"
    assert c.delete(f"{V1}/telnums/74951234567/interval-schedule/{added['id']}").status_code == 204
    assert c.delete(f"{V1}/telnums/74951234567/interval-schedule/{added['id']}").status_code == 404
    routes = {x["name"]: x for x in c.get(f"{V1}/telnums/74951234567").json()["custom_routes"]}
    assert routes["Ночь"]["interval_schedule"] == []


def test_route_name_reuses_a_route_of_the_same_name(tenant: Tenant) -> None:
    c = tenant.client
    scheduler(c)
    a = c.post(f"{V1}/telnums/74951234567/interval-schedule", json=THIRD_SHIFT).json()
    b = c.post(f"{V1}/telnums/74951234567/calendar-schedule", json=NEW_YEAR | {"route_name": "Третья смена"}).json()
    assert a["route_id"] == b["route_id"]
    assert len(c.get(f"{V1}/telnums/74951234567").json()["custom_routes"]) == 1


@pytest.mark.parametrize("body,field", [
    ({"days": ["monday"], "start": 0, "end": 60}, "route_id"),
    ({"route_id": "nope", "days": ["monday"], "start": 0, "end": 60}, "route_id"),
    ({"route_id": "x", "route_name": "y", "days": ["monday"], "start": 0, "end": 60}, "route_id"),
    ({"route_name": "n", "days": [], "start": 0, "end": 60}, "days"),
    ({"route_name": "n", "days": ["someday"], "start": 0, "end": 60}, "days"),
    ({"route_name": "n", "start": 0, "end": 60}, "days"),
    ({"route_name": "n", "days": ["monday"], "end": 60}, "start"),
    ({"route_name": "n", "days": ["monday"], "start": 86400, "end": 60}, "start"),
    ({"route_name": "n", "days": ["monday"], "start": 0, "end": 86401}, "end"),
    ({"route_name": "n", "days": ["monday"], "start": -5, "end": 60}, "start"),
])
def test_extra_interval_validation(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    scheduler(tenant.client)
    r = tenant.client.post(f"{V1}/telnums/74951234567/interval-schedule", json=body)
    assert r.status_code == 400, r.text
    assert any(e["field"].startswith(field) for e in r.json()["errors"]), r.json()
    assert tenant.client.get(f"{V1}/telnums/74951234567").json()["custom_routes"] == []


def test_time_rules_on_any_route_type(tenant: Tenant) -> None:
    """Issue 13 rule 9: 9.7/9.8 state no precondition (calls following them: tests/compat/test_numbers_rules.py)."""
    for path, body in (("interval-schedule", THIRD_SHIFT), ("calendar-schedule", NEW_YEAR)):
        r = tenant.client.post(f"{V1}/telnums/74951234567/{path}", json=body)
        assert r.status_code == 200, r.text
    number = tenant.client.get(f"{V1}/telnums/74951234567").json()
    assert number["type"] == "group"
    assert [r["name"] for r in number["custom_routes"]] == [THIRD_SHIFT["route_name"], NEW_YEAR["route_name"]]


# --- 9.8 special days ----------------------------------------------------------------------

def test_special_day_add_edit_delete(tenant: Tenant) -> None:
    c = tenant.client
    scheduler(c)
    r = c.post(f"{V1}/telnums/74951234567/calendar-schedule", json=NEW_YEAR)
    assert r.status_code == 200, r.text
    day = r.json()
    assert day | {"id": "-", "route_id": "-"} == {"id": "-", "route_id": "-", "route_name": "Новый год",
                                                  "start": "2023-12-31T00:00:00", "end": "2024-01-07T23:59:00",
                                                  "calendar_predefined": False}
    route = c.get(f"{V1}/telnums/74951234567").json()["custom_routes"][0]
    assert route["calendar_schedule"] == [{"id": day["id"], "start": "2023-12-31T00:00:00",
                                           "end": "2024-01-07T23:59:00", "calendar_predefined": False}]
    # the production calendar: start and end optional
    r = c.put(f"{V1}/telnums/74951234567/calendar-schedule/{day['id']}",
              json={"route_id": day["route_id"], "calendar_predefined": True})
    assert r.status_code == 200
    assert (r.json()["start"], r.json()["end"], r.json()["calendar_predefined"]) == (None, None, True)
    r = c.put(f"{V1}/telnums/74951234567/calendar-schedule/{day['id']}",
              json={"start": "2025-01-01", "end": "2025-01-08", "calendar_predefined": True})
    assert (r.json()["start"], r.json()["end"]) == ("2025-01-01", "2025-01-08")
    assert c.delete(f"{V1}/telnums/74951234567/calendar-schedule/{day['id']}").status_code == 204
    assert c.get(f"{V1}/telnums/74951234567").json()["custom_routes"][0]["calendar_schedule"] == []
    assert c.delete(f"{V1}/telnums/74951234567/calendar-schedule/{day['id']}").status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"route_name": "x", "start": "2024-01-01"}, "end"),
    ({"route_name": "x", "end": "2024-01-01"}, "start"),
    ({"route_name": "x", "start": "yesterday", "end": "2024-01-01"}, "start"),
    ({"route_name": "x", "start": "2024-01-01", "end": "2024-02-30"}, "end"),
    ({"route_name": "x", "start": "2024-01-08", "end": "2024-01-01"}, "end"),
    ({"start": "2024-01-01", "end": "2024-01-02"}, "route_id"),
    ({"route_name": "x", "start": 20240101, "end": "2024-01-02"}, "start"),
])
def test_special_day_validation(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    scheduler(tenant.client)
    r = tenant.client.post(f"{V1}/telnums/74951234567/calendar-schedule", json=body)
    assert r.status_code == 400, r.text
    assert any(e["field"].startswith(field) for e in r.json()["errors"]), r.json()


# --- rights and isolation ------------------------------------------------------------------

def test_rights(tenant: Tenant, role_client: Callable[[str], httpx.Client],
                custom_role: Callable[[list[str]], str]) -> None:
    reader = role_client("user")  # the built-in "user" role may view numbers only
    assert reader.get(f"{V1}/telnums").status_code == 200
    assert reader.get(f"{V1}/telnums/74951234567").status_code == 200
    forbidden = [("POST", "/telnums/74951234567", {"type": "fax", "greeting": False}),
                 ("POST", "/telnums/74951234567/enabled", None), ("DELETE", "/telnums/74951234567/enabled", None),
                 ("POST", "/telnums/74951234567/interval-schedule", THIRD_SHIFT),
                 ("PUT", "/telnums/74951234567/interval-schedule/x", THIRD_SHIFT),
                 ("DELETE", "/telnums/74951234567/interval-schedule/x", None),
                 ("POST", "/telnums/74951234567/calendar-schedule", NEW_YEAR),
                 ("PUT", "/telnums/74951234567/calendar-schedule/x", NEW_YEAR),
                 ("DELETE", "/telnums/74951234567/calendar-schedule/x", None)]
    for method, path, body in forbidden:
        r = reader.request(method, V1 + path, json=body)
        assert r.status_code == 403, (method, path)
        assert r.json() == {"message": "Don't have permission to access"}
    nobody = role_client(custom_role(["users.get"]))
    assert nobody.get(f"{V1}/telnums").status_code == 403
    assert nobody.get(f"{V1}/telnums/74951234567").status_code == 403
    editor = role_client(custom_role(["telnums.edit"]))
    assert editor.post(f"{V1}/telnums/74951234567", json={"type": "fax", "greeting": False}).status_code == 200


def test_tenant_isolation(tenant: Tenant, other_tenant: Tenant, operator: Any) -> None:
    operator.number(tenant, "79001112233")
    scheduler(tenant.client)
    rule = tenant.client.post(f"{V1}/telnums/74951234567/interval-schedule", json=THIRD_SHIFT).json()
    day = tenant.client.post(f"{V1}/telnums/74951234567/calendar-schedule", json=NEW_YEAR).json()
    o = other_tenant.client
    assert "79001112233" not in [i["telnum"] for i in o.get(f"{V1}/telnums").json()["items"]]
    assert o.get(f"{V1}/telnums", params={"search": "7900111"}).json()["info"]["total"] == 0
    assert o.get(f"{V1}/telnums/79001112233").status_code == 404
    assert o.post(f"{V1}/telnums/79001112233", json={"type": "fax", "greeting": False}).status_code == 404
    assert o.delete(f"{V1}/telnums/79001112233/enabled").status_code == 404
    assert o.post(f"{V1}/telnums/79001112233/enabled").status_code == 404
    # the same demo number exists in both: the other domain's copy has none of this one's rules
    assert o.get(f"{V1}/telnums/74951234567").json()["type"] == "group"
    assert o.put(f"{V1}/telnums/74951234567/interval-schedule/{rule['id']}", json=THIRD_SHIFT).status_code == 404
    scheduler(o)
    assert o.put(f"{V1}/telnums/74951234567/interval-schedule/{rule['id']}", json=THIRD_SHIFT).status_code == 404
    assert o.delete(f"{V1}/telnums/74951234567/interval-schedule/{rule['id']}").status_code == 404
    assert o.put(f"{V1}/telnums/74951234567/calendar-schedule/{day['id']}", json=NEW_YEAR).status_code == 404
    assert o.delete(f"{V1}/telnums/74951234567/calendar-schedule/{day['id']}").status_code == 404
    assert o.post(f"{V1}/telnums/74951234567/interval-schedule",
                  json={"route_id": rule["route_id"], "days": ["monday"], "start": 0, "end": 60}).status_code == 400
    # a route in one domain cannot name the other domain's employees
    other_user = o.post(f"{V1}/users", json={"name": "Чужой", "login": "stranger"})
    assert other_user.status_code == 200
    r = tenant.client.post(f"{V1}/telnums/74957654321", json={"type": "user", "user": "stranger", "greeting": False})
    assert r.status_code == 400
    assert len(tenant.client.get(f"{V1}/telnums/74951234567").json()["custom_routes"]) == 2


# --- deleting what routes point at ---------------------------------------------------------

def test_deleting_an_employee_redirects_routes_to_the_first_employee(tenant: Tenant) -> None:
    c = tenant.client
    c.post(f"{V1}/telnums/74951234567", json={
        "type": "scheduler", "greeting": False, "work": {"type": "user", "user": "ivan"},
        "other": {"type": "onduty", "subtype": "user", "user": "ivan"},
        "custom_routes": [{"name": "Ночь", "type": "user", "user": "ivan"}]})
    c.post(f"{V1}/telnums/78121234567", json={"type": "ivr", "greeting": False, "ivr": {
        "name": "Главное меню", "items": [{"button": "1", "type": "user", "user": "ivan"},
                                          {"button": "2", "type": "group", "group": "sales"}]}})
    c.post(f"{V1}/telnums/74957654321", json={"type": "user", "user": "ivan", "greeting": False})
    assert c.delete(f"{V1}/users/ivan").status_code == 204
    sched = c.get(f"{V1}/telnums/74951234567").json()
    assert sched["work"]["user"] == "admin" and sched["work"]["type"] == "user"
    assert sched["other"] == {"type": "onduty", "subtype": "user", "greeting": False, "user": "admin",
                              "user_name": "Администратор"}
    assert sched["custom_routes"][0]["user"] == "admin" and sched["custom_routes"][0]["name"] == "Ночь"
    assert c.get(f"{V1}/telnums/74957654321").json()["user"] == "admin"
    items = c.get(f"{V1}/telnums/78121234567").json()["ivr"]["items"]
    assert items[0] == {"button": "1", "type": "user", "user": "admin", "user_name": "Администратор"}
    assert items[1] == {"button": "2", "type": "group", "group": "sales", "group_name": "Отдел продаж"}
    # the first employee themself goes: the next one takes over
    assert c.delete(f"{V1}/users/admin").status_code == 204
    assert c.get(f"{V1}/telnums/74957654321").json()["user"] == "user1"


def test_deleting_a_department_redirects_routes_to_the_first_employee(tenant: Tenant) -> None:
    c = tenant.client
    scheduler(c)  # work: department sales
    assert c.delete(f"{V1}/groups/sales").status_code == 204
    assert c.get(f"{V1}/telnums/74951234567").json()["work"]["user"] == "admin"
    items = {i["button"]: i for i in c.get(f"{V1}/telnums/78121234567").json()["ivr"]["items"]}
    assert items["1"] == {"button": "1", "type": "user", "user": "admin", "user_name": "Администратор"}
    assert items["2"] == {"button": "2", "type": "group", "group": "support", "group_name": "Техподдержка"}
    assert c.delete(f"{V1}/groups/support").status_code == 204
    c2 = c.get(f"{V1}/telnums").json()["items"]
    assert all("group" not in i for i in c2)


def test_a_group_route_becomes_a_user_route_when_its_department_goes(tenant: Tenant) -> None:
    c = tenant.client
    assert c.get(f"{V1}/telnums/74951234567").json()["type"] == "group"
    assert c.delete(f"{V1}/groups/sales").status_code == 204
    got = c.get(f"{V1}/telnums/74951234567").json()
    assert (got["type"], got["user"], got["user_name"]) == ("user", "admin", "Администратор")

