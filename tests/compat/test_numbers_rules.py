"""Issue 13 rules 4, 9 and 10 (002 §9, §13): IVR menu items name their targets as routes do; extra intervals and
special days on any number, whatever its route type, and its calls follow them; ``is_main_phone`` and the caller
IDs' ``main`` are one setting."""

from __future__ import annotations

from typing import Any

import httpx
from tests.compat.conftest import IVR_NUMBER, SALES_NUMBER, Env

from vpbx.services import numbers, tenancy

V1 = "/crmapi/v1"
ADMIN_NUMBER = "74957654321"


# --- rule 4: IVR menu items carry group_name / user_name ----------------------------------------------------------

def _name(c: httpx.Client, kind: str, key: str) -> str:
    return str(c.get(f"{V1}/{kind}/{key}").json()["name"])


def test_ivr_menu_items_carry_the_targets_names(env: Env) -> None:
    c = env.http
    menu = c.get(f"{V1}/telnums/{IVR_NUMBER}").json()["ivr"]
    items = {i["button"]: i for i in menu["items"]}
    assert items["1"]["group_name"] == _name(c, "groups", "sales") != ""
    assert items["2"]["group_name"] == _name(c, "groups", "support") != ""
    assert items["0"]["user_name"] == _name(c, "users", "admin") == "Администратор"
    assert "user_name" not in items["1"] and "group_name" not in items["0"]
    # The list (9.1) and a scheduler's targets (9.9) show the same menu the same way.
    listed = {t["telnum"]: t for t in c.get(f"{V1}/telnums", params={"limit": 100}).json()["items"]}
    assert listed[IVR_NUMBER]["ivr"] == menu
    r = c.post(f"{V1}/telnums/{ADMIN_NUMBER}", json={
        "type": "scheduler", "greeting": False, "work": {"type": "ivr", "greeting": False, "ivr": {
            "name": "Вечер", "items": [{"button": "1", "type": "user", "user": "ivan"},
                                       {"button": "2", "type": "group", "group": "sales"}]}}})
    assert r.status_code == 200, r.text
    work_items = {i["button"]: i for i in r.json()["work"]["ivr"]["items"]}
    assert work_items["1"]["user_name"] == _name(c, "users", "ivan")
    assert work_items["2"]["group_name"] == _name(c, "groups", "sales")


# --- rule 9: extra intervals and special days on any number -------------------------------------------------------

ALL_DAY = {"days": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
           "start": 0, "end": 86400}


def _ringing(env: Env, callid: str) -> list[str]:
    return [leg["party"] for leg in env.call(callid)["legs"] if leg["state"] == "ringing"]


def _ring_once(env: Env, to: str) -> list[str]:
    callid = env.dial(to=to)
    ringing = _ringing(env, callid)
    env.act(callid, "hangup", by="client")
    return ringing


def test_extra_interval_on_a_department_number(env: Env) -> None:
    c = env.http
    assert c.get(f"{V1}/telnums/{SALES_NUMBER}").json()["type"] == "group"
    before = _ring_once(env, SALES_NUMBER)
    assert before and "director" not in before
    # The route the interval uses, with its target (9.3's custom_routes), then the interval itself (9.7).
    r = c.post(f"{V1}/telnums/{SALES_NUMBER}", json={
        "type": "group", "group": "sales", "greeting": False,
        "custom_routes": [{"id": "night", "name": "Ночь", "type": "user", "user": "director"}]})
    assert r.status_code == 200, r.text
    assert _ring_once(env, SALES_NUMBER) == before  # a route without a rule changes nothing
    r = c.post(f"{V1}/telnums/{SALES_NUMBER}/interval-schedule", json={"route_id": "night", **ALL_DAY})
    assert r.status_code in (200, 201), r.text
    rule = r.json()
    assert rule["route_id"] == "night"
    number = c.get(f"{V1}/telnums/{SALES_NUMBER}").json()
    assert number["type"] == "group" and number["group"] == "sales"
    assert [x["id"] for x in number["custom_routes"]] == ["night"]
    assert _ring_once(env, SALES_NUMBER) == ["director"]  # during the interval: its route
    assert c.delete(f"{V1}/telnums/{SALES_NUMBER}/interval-schedule/{rule['id']}").status_code == 204
    assert _ring_once(env, SALES_NUMBER) == before


def test_special_day_on_an_employee_number_and_a_new_route(env: Env) -> None:
    c = env.http
    assert c.get(f"{V1}/telnums/{ADMIN_NUMBER}").json()["type"] == "user"
    # A new route by name (no target yet): the number keeps its own route on that day.
    r = c.post(f"{V1}/telnums/{ADMIN_NUMBER}/calendar-schedule",
               json={"route_name": "Праздник", "start": "2000-01-01", "end": "2100-01-01"})
    assert r.status_code in (200, 201), r.text
    day: dict[str, Any] = r.json()
    assert day["route_name"] == "Праздник"
    r = c.post(f"{V1}/telnums/{ADMIN_NUMBER}/interval-schedule", json={"route_name": "Смена", **ALL_DAY})
    assert r.status_code in (200, 201), r.text
    assert _ring_after_greeting(env) == ["admin"]
    # The day's route given a target: the number's calls follow it on that day.
    r = c.post(f"{V1}/telnums/{ADMIN_NUMBER}", json={
        "type": "user", "user": "admin", "greeting": True,
        "custom_routes": [{"id": "holiday", "name": "Праздник", "type": "user", "user": "director"}]})
    assert r.status_code == 200, r.text
    assert _ring_after_greeting(env) == ["admin"]
    r = c.post(f"{V1}/telnums/{ADMIN_NUMBER}/calendar-schedule",
               json={"route_id": "holiday", "start": "2000-01-01", "end": "2100-01-01"})
    assert r.status_code in (200, 201), r.text
    assert _ring_after_greeting(env) == ["director"]


def _ring_after_greeting(env: Env) -> list[str]:
    callid = env.dial(to=ADMIN_NUMBER)
    env.advance(6)  # admin's number greets first
    ringing = _ringing(env, callid)
    env.act(callid, "hangup", by="client")
    return ringing


# --- rule 10: one main number ------------------------------------------------------------------------------------

def _mains(c: httpx.Client) -> list[str]:
    return [t["telnum"] for t in c.get(f"{V1}/telnums", params={"limit": 100}).json()["items"] if t["is_main_phone"]]


def test_main_number_is_one_setting(env: Env) -> None:
    c = env.http
    assert _mains(c) == [SALES_NUMBER]  # the demo company's first number
    assert c.get(f"{V1}/caller-ids").json()["main"] == SALES_NUMBER
    assert c.post(f"{V1}/caller-ids/main", json={"telnum": IVR_NUMBER}).status_code == 204
    assert _mains(c) == [IVR_NUMBER]
    assert c.get(f"{V1}/telnums/{IVR_NUMBER}").json()["is_main_phone"] is True
    assert c.get(f"{V1}/telnums/{SALES_NUMBER}").json()["is_main_phone"] is False
    assert c.get(f"{V1}/caller-ids").json()["main"] == IVR_NUMBER

    async def provision_main() -> None:  # the operator gives the company a new main number
        async with env.server.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, env.t.name)
            await numbers.provision(s, domain, "74990001122", env.server.runtime.clock.now(), main=True)
            await s.commit()

    env.server.call(provision_main())
    assert _mains(c) == ["74990001122"]
    assert c.get(f"{V1}/caller-ids").json()["main"] == "74990001122"


def test_outgoing_calls_show_the_main_number(env: Env) -> None:
    c = env.http
    assert c.post(f"{V1}/caller-ids/main", json={"telnum": IVR_NUMBER}).status_code == 204
    callid = env.dial(frm="user:manager", to="79161112233")
    assert env.call(callid)["diversion"] == IVR_NUMBER
