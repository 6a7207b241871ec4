"""002 §8 Отделы: every operation, the documented examples, defaults, 8.6 bulk changes, 8.7 fields, errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.services import tenancy
from vpbx.store.tables import Domain, User
from vpbx.testing.server import ServerThread, Tenant

T = TypeVar("T")
GROUPS = "/crmapi/v1/groups"
NAMES = {"admin": "Администратор", "manager": "Ольга Смирнова", "ivan": "Иван Петров", "maria": "Мария Кузнецова",
         "sergey": "Сергей Волков", "anna": "Анна Соколова", "user1": "Пользователь", "elena": "Елена Попова",
         "director": "Директор", "dmitry": "Дмитрий Лебедев"}
MEMBER_FIELDS = {"login", "name", "calls_enable", "group_head", "is_absence_active", "is_forwarding_disabled"}
GROUP_FIELDS = {"id", "name", "ext", "call_order", "call_duration", "users", "timeout", "advanced", "queue_position"}


def in_domain(server: ServerThread, tenant: Tenant, work: Callable[[AsyncSession, Domain], Awaitable[T]]) -> T:
    async def run() -> T:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
            result = await work(session, domain)
            await session.commit()
            return result

    return server.call(run())


def set_absent(server: ServerThread, tenant: Tenant, login: str) -> None:
    async def work(session: AsyncSession, d: Domain) -> None:
        await session.execute(update(User).where(User.domain_id == d.id, User.login == login).values(absent=True))

    in_domain(server, tenant, work)


def member(login: str, calls_enable: bool = True, absent: bool = False) -> dict[str, Any]:
    """An 8.7 member as documented, with the employee's name (8.7 lists it; the examples leave it out)."""
    return {"login": login, "name": NAMES[login], "calls_enable": calls_enable, "group_head": False,
            "is_absence_active": absent, "is_forwarding_disabled": False}


def logins(tenant: Tenant, group: str) -> list[str]:
    return [m["login"] for m in tenant.client.get(f"{GROUPS}/{group}").json()["users"]]


def calls(tenant: Tenant, group: str) -> dict[str, bool]:
    return {m["login"]: m["calls_enable"] for m in tenant.client.get(f"{GROUPS}/{group}").json()["users"]}


def assert_invalid(r: Any, field: str, message: str | None = None) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["message"] == "Validation error"
    assert [e["field"] for e in body["errors"]] == [field], body
    if message is not None:
        assert body == {"message": "Validation error", "errors": [{"field": field, "message": message}]}


# --- 8.1 / 8.2 -------------------------------------------------------------------------------------


def test_list_demo_departments(tenant: Tenant) -> None:
    r = tenant.client.get(GROUPS)
    assert r.status_code == 200
    body = r.json()
    assert [g["id"] for g in body["items"]] == ["sales", "support", "hr"]
    assert body["info"] == {"search": "", "start": 0, "limit": 3, "total": 3, "next": None}
    for g in body["items"]:
        assert set(g) == GROUP_FIELDS
        assert all(set(m) == MEMBER_FIELDS for m in g["users"])
    by_id = {g["id"]: g for g in body["items"]}
    assert by_id["sales"] == {
        "id": "sales", "name": "Отдел продаж", "ext": "700", "call_order": "BYORDER", "call_duration": 10,
        "users": [member("admin"), member("manager"), member("ivan"), member("maria")],
        "timeout": {"time": 120, "target": "voicemail"}, "advanced": "off", "queue_position": False,
    }
    assert by_id["support"]["call_order"] == "EVENLY"
    assert [m["login"] for m in by_id["support"]["users"]] == ["sergey", "anna", "user1"]
    # 8.1: call_duration is 0 with ALL
    assert (by_id["hr"]["call_order"], by_id["hr"]["call_duration"]) == ("ALL", 0)


def test_list_search_and_paging(tenant: Tenant) -> None:
    c = tenant.client
    assert [g["id"] for g in c.get(GROUPS, params={"search": "ОТДЕЛ"}).json()["items"]] == ["sales", "hr"]
    assert [g["id"] for g in c.get(GROUPS, params={"search": "705"}).json()["items"]] == ["support"]
    assert [g["id"] for g in c.get(GROUPS, params={"search": "support"}).json()["items"]] == ["support"]
    r = c.get(GROUPS, params={"start": 1, "limit": 1})
    assert [g["id"] for g in r.json()["items"]] == ["support"]
    assert r.json()["info"] == {"search": "", "start": 1, "limit": 1, "total": 3, "next": 2}


def test_list_documented_example_item(server: ServerThread, tenant: Tenant) -> None:
    """8.1's sales item: ivan without calls, maria gone."""
    r = tenant.client.post(f"{GROUPS}/sales/users", json={"calls_disable": ["ivan"], "remove": ["maria"]})
    assert r.status_code == 204
    item = next(g for g in tenant.client.get(GROUPS).json()["items"] if g["id"] == "sales")
    assert item == {
        "id": "sales", "name": "Отдел продаж", "ext": "700", "call_order": "BYORDER", "call_duration": 10,
        "users": [member("admin"), member("manager"), member("ivan", calls_enable=False)],
        "timeout": {"time": 120, "target": "voicemail"}, "advanced": "off", "queue_position": False,
    }


def test_get_by_id_and_ext(tenant: Tenant) -> None:
    r = tenant.client.get(f"{GROUPS}/sales")
    assert r.status_code == 200
    assert tenant.client.get(f"{GROUPS}/700").json() == r.json()


def test_update_and_get_documented_examples(server: ServerThread, tenant: Tenant) -> None:
    set_absent(server, tenant, "ivan")
    body = {
        "name": "Отдел продаж", "call_order": "BYORDER", "call_duration": 10,
        "users": [{"login": "admin", "calls_enable": True}, {"login": "manager", "calls_enable": True},
                  {"login": "ivan", "calls_enable": False}],
        "timeout": {"time": 120, "target": "user", "user": "admin"}, "advanced": "off",
    }
    r = tenant.client.put(f"{GROUPS}/sales", json=body)
    assert r.status_code == 200, r.text
    expected = {  # 002 §8.2 example (8.4's response is the same with fewer member fields)
        "id": "sales", "name": "Отдел продаж", "ext": "700", "call_order": "BYORDER", "call_duration": 10,
        "users": [member("admin"), member("manager"), member("ivan", calls_enable=False, absent=True)],
        "timeout": {"time": 120, "target": "user", "user": "admin"}, "advanced": "off", "queue_position": False,
    }
    assert r.json() == expected
    assert tenant.client.get(f"{GROUPS}/sales").json() == expected


def test_get_unknown_is_404(tenant: Tenant) -> None:
    for method, path, body in (("GET", "nowhere", None), ("PUT", "nowhere", {"name": "x"}),
                               ("DELETE", "nowhere", None), ("POST", "nowhere/users", {"add": ["admin"]}),
                               ("GET", "799", None)):
        r = tenant.client.request(method, f"{GROUPS}/{path}", json=body)
        assert (r.status_code, r.json()) == (404, {"message": "Not found"}), (method, path)


# --- 8.3 -------------------------------------------------------------------------------------------


def test_create_documented_example(tenant: Tenant) -> None:
    body = {
        "name": "Отдел поставок", "call_order": "EVENLY", "call_duration": 10, "advanced": "callback",
        "timeout": {"time": 30, "target": "user", "user": "admin"},
        "users": [{"login": "admin", "calls_enable": True}, {"login": "ivan", "calls_enable": False}],
    }
    r = tenant.client.post(GROUPS, json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"].startswith("g_") and len(out["id"]) == len("g_0a922987-97ac-4f45-9e47-59a27d23c2cb")
    # 002 §8.3 example with the free extension; 8.7's member fields in full
    assert out == {
        "id": out["id"], "name": "Отдел поставок", "ext": "713", "call_order": "EVENLY", "call_duration": 10,
        "users": [member("admin"), member("ivan", calls_enable=False)],
        "timeout": {"time": 30, "target": "user", "user": "admin"}, "advanced": "callback", "queue_position": False,
    }
    assert tenant.client.get(f"{GROUPS}/{out['id']}").json() == out
    assert tenant.client.get(f"{GROUPS}/713").json() == out
    assert [g["id"] for g in tenant.client.get("/crmapi/v1/users/ivan/groups").json()] == ["sales", out["id"]]
    # its extension is taken for employees now
    assert tenant.client.post("/crmapi/v1/users", json={"name": "x", "ext": "713"}).status_code == 400
    assert tenant.client.post("/crmapi/v1/users", json={"name": "x"}).json()["ext"] == "714"


def test_create_defaults(tenant: Tenant) -> None:
    r = tenant.client.post(GROUPS, json={"name": "Склад"})
    assert r.status_code == 200, r.text
    g = r.json()
    assert g == {"id": g["id"], "name": "Склад", "ext": "713", "call_order": "ALL", "call_duration": 0,
                 "users": [], "timeout": {"time": 120, "target": "voicemail"}, "advanced": "off",
                 "queue_position": False}
    # the stored interval is the default 15, shown once the order is not ALL
    r = tenant.client.put(f"{GROUPS}/{g['id']}", json={"call_order": "WATERFALL"})
    assert (r.json()["call_order"], r.json()["call_duration"]) == ("WATERFALL", 15)


def test_create_with_every_option(tenant: Tenant) -> None:
    r = tenant.client.post(GROUPS, json={"name": "Колл-центр", "ext": "7100", "call_order": "WATERFALL",
                                         "call_duration": 30, "advanced": "msg_busy", "queue_position": True,
                                         "timeout": {"time": 600, "target": "telnum", "telnum": "+7 495 123-45-67"}})
    assert r.status_code == 200, r.text
    g = r.json()
    assert (g["ext"], g["call_order"], g["call_duration"], g["advanced"], g["queue_position"]) == (
        "7100", "WATERFALL", 30, "msg_busy", True)
    assert g["timeout"] == {"time": 600, "target": "telnum", "telnum": "74951234567"}
    r = tenant.client.put(f"{GROUPS}/{g['id']}", json={"timeout": {"target": "group", "group": "700"}})
    assert r.json()["timeout"] == {"time": 120, "target": "group", "group": "sales"}
    r = tenant.client.put(f"{GROUPS}/{g['id']}", json={"timeout": {"target": "msg_busy", "time": 1}})
    assert r.json()["timeout"] == {"time": 1, "target": "msg_busy"}


def test_group_limit_enforced(server: ServerThread, tenant: Tenant) -> None:
    async def work(session: AsyncSession, d: Domain) -> None:
        await tenancy.set_limits(session, d, groups=4)

    in_domain(server, tenant, work)
    assert tenant.client.post(GROUPS, json={"name": "four"}).status_code == 200
    assert_invalid(tenant.client.post(GROUPS, json={"name": "five"}), "limits.groups")
    assert tenant.client.get(GROUPS).json()["info"]["total"] == 4
    assert tenant.client.get("/crmapi/v1/domain").json()["limits"]["groups"] == {"used": 4, "total": 4}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "name", "Field required"),
        ({"name": ""}, "name", None),
        ({"name": "x", "ext": "7b"}, "ext", "an extension is 2 to 6 digits"),
        ({"name": "x", "ext": "700"}, "ext", "extension 700 is taken"),
        ({"name": "x", "ext": "701"}, "ext", "extension 701 is taken"),  # an employee's
        ({"name": "x", "call_order": "RANDOM"}, "call_order", None),
        ({"name": "x", "call_duration": 0}, "call_duration", "Input should be greater than or equal to 1"),
        ({"name": "x", "call_duration": 31}, "call_duration", "Input should be less than or equal to 30"),
        ({"name": "x", "call_duration": "long"}, "call_duration", None),
        ({"name": "x", "advanced": "shout"}, "advanced", None),
        ({"name": "x", "timeout": {"target": "user"}}, "timeout", "target user needs the field 'user'"),
        ({"name": "x", "timeout": {"target": "group"}}, "timeout", "target group needs the field 'group'"),
        ({"name": "x", "timeout": {"target": "telnum"}}, "timeout", "target telnum needs the field 'telnum'"),
        ({"name": "x", "timeout": {"target": "telnum", "telnum": "abc"}}, "timeout", None),
        ({"name": "x", "timeout": {"target": "user", "user": "nobody"}}, "timeout.user", "no employee 'nobody'"),
        ({"name": "x", "timeout": {"target": "group", "group": "nowhere"}}, "timeout.group",
         "no department 'nowhere'"),
        ({"name": "x", "timeout": {"time": 0}}, "timeout.time", None),
        ({"name": "x", "timeout": {"time": 601}}, "timeout.time", None),
        ({"name": "x", "timeout": {"target": "mars"}}, "timeout.target", None),
        ({"name": "x", "users": [{"login": "nobody", "calls_enable": True}]}, "users", "no employees nobody"),
        ({"name": "x", "users": [{"login": "admin"}]}, "users.0.calls_enable", None),
        ({"name": "x", "users": [{"login": "admin", "calls_enable": True}, {"login": "admin", "calls_enable": False}]},
         "users", None),
        ({"name": "x", "users": "admin"}, "users", None),
    ],
)
def test_create_validation_errors(tenant: Tenant, body: dict[str, Any], field: str, message: str | None) -> None:
    assert_invalid(tenant.client.post(GROUPS, json=body), field, message)
    assert tenant.client.get(GROUPS).json()["info"]["total"] == 3


def test_create_malformed_json(tenant: Tenant) -> None:
    r = tenant.client.post(GROUPS, content=b"{name: x}", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"message": "Validation error", "errors": [{"field": "body", "message": "JSON decode error"}]}


# --- 8.4 -------------------------------------------------------------------------------------------


def test_update_changes_only_given_fields(tenant: Tenant) -> None:
    before = tenant.client.get(f"{GROUPS}/support").json()
    r = tenant.client.put(f"{GROUPS}/support", json={"name": "Поддержка"})
    assert r.status_code == 200
    assert r.json() == {**before, "name": "Поддержка"}
    r = tenant.client.put(f"{GROUPS}/705", json={"queue_position": True, "call_duration": 25})
    assert r.json() == {**before, "name": "Поддержка", "queue_position": True, "call_duration": 25}
    assert tenant.client.get(f"{GROUPS}/support").json() == r.json()
    assert tenant.client.put(f"{GROUPS}/support", json={}).json() == r.json()


def test_update_members_replaces_the_list_in_order(tenant: Tenant) -> None:
    r = tenant.client.put(f"{GROUPS}/support", json={"users": [
        {"login": "ivan", "calls_enable": False}, {"login": "user1", "calls_enable": True},
        {"login": "sergey", "calls_enable": True}]})
    assert r.status_code == 200, r.text
    assert [(m["login"], m["calls_enable"]) for m in r.json()["users"]] == [
        ("ivan", False), ("user1", True), ("sergey", True)]
    assert logins(tenant, "support") == ["ivan", "user1", "sergey"]
    assert tenant.client.get("/crmapi/v1/users/anna/groups").json() == []
    # members named by extension
    r = tenant.client.put(f"{GROUPS}/support", json={"users": [{"login": "710", "calls_enable": True}]})
    assert [m["login"] for m in r.json()["users"]] == ["anna"]
    assert tenant.client.put(f"{GROUPS}/support", json={"users": []}).json()["users"] == []


def test_update_ext(tenant: Tenant) -> None:
    assert_invalid(tenant.client.put(f"{GROUPS}/support", json={"ext": "700"}), "ext", "extension 700 is taken")
    assert tenant.client.put(f"{GROUPS}/support", json={"ext": "705"}).status_code == 200
    r = tenant.client.put(f"{GROUPS}/support", json={"ext": "7500"})
    assert r.json()["ext"] == "7500"
    assert tenant.client.get(f"{GROUPS}/7500").json()["id"] == "support"
    assert tenant.client.post("/crmapi/v1/users", json={"name": "x", "login": "x1", "ext": "705"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"call_duration": 31}, "call_duration"),
        ({"call_order": "all"}, "call_order"),
        ({"timeout": {"target": "user"}}, "timeout"),
        ({"timeout": {"target": "user", "user": "nobody"}}, "timeout.user"),
        ({"users": [{"login": "ivan", "calls_enable": True}, {"login": "nobody", "calls_enable": True}]}, "users"),
        ({"ext": "1"}, "ext"),
    ],
)
def test_update_validation_errors_change_nothing(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    before = tenant.client.get(f"{GROUPS}/support").json()
    assert_invalid(tenant.client.put(f"{GROUPS}/support", json=body), field)
    assert tenant.client.get(f"{GROUPS}/support").json() == before


# --- 8.5 -------------------------------------------------------------------------------------------


def test_delete(tenant: Tenant) -> None:
    c = tenant.client
    assert c.put(f"{GROUPS}/hr", json={"timeout": {"target": "group", "group": "support"}}).status_code == 200
    r = c.delete(f"{GROUPS}/support")
    assert (r.status_code, r.content) == (204, b"")
    assert c.get(f"{GROUPS}/support").status_code == 404
    assert c.delete(f"{GROUPS}/support").status_code == 404
    assert [g["id"] for g in c.get(GROUPS).json()["items"]] == ["sales", "hr"]
    assert c.get("/crmapi/v1/users/sergey/groups").json() == []
    assert c.get("/crmapi/v1/users/sergey").status_code == 200  # the employees stay
    # a department whose unanswered calls went there falls back to voicemail
    assert c.get(f"{GROUPS}/hr").json()["timeout"] == {"time": 120, "target": "voicemail"}
    # its extension is free again
    assert c.post("/crmapi/v1/users", json={"name": "x", "login": "x", "ext": "705"}).status_code == 200


# --- 8.6 -------------------------------------------------------------------------------------------


def change(tenant: Tenant, group: str, body: dict[str, Any]) -> None:
    r = tenant.client.post(f"{GROUPS}/{group}/users", json=body)
    assert (r.status_code, r.content) == (204, b""), r.text


def test_bulk_change_in_documented_order(tenant: Tenant) -> None:
    # sales: admin, manager, ivan, maria. add at 2 → admin, manager, sergey, anna, ivan, maria;
    # then calls off for anna (just added) and ivan; then admin removed.
    change(tenant, "sales", {"add": ["sergey", "anna"], "position": 2, "calls_disable": ["ivan", "anna"],
                             "remove": ["admin"]})
    assert logins(tenant, "sales") == ["manager", "sergey", "anna", "ivan", "maria"]
    assert calls(tenant, "sales") == {"manager": True, "sergey": True, "anna": False, "ivan": False, "maria": True}


def test_bulk_change_positions(tenant: Tenant) -> None:
    change(tenant, "sales", {"add": ["sergey"], "position": 0})
    assert logins(tenant, "sales") == ["sergey", "admin", "manager", "ivan", "maria"]
    change(tenant, "sales", {"add": ["anna"]})  # -1 by default: the end
    assert logins(tenant, "sales") == ["sergey", "admin", "manager", "ivan", "maria", "anna"]
    change(tenant, "sales", {"add": ["elena", "709"], "position": 1})  # sergey named again by ext: kept in place
    assert logins(tenant, "sales") == ["sergey", "elena", "admin", "manager", "ivan", "maria", "anna"]
    change(tenant, "sales", {"add": ["dmitry"], "position": 99})
    assert logins(tenant, "sales")[-1] == "dmitry"
    change(tenant, "sales", {"add": ["user1"], "position": -1})
    assert logins(tenant, "sales")[-1] == "user1"
    assert all(calls(tenant, "sales").values())


def test_bulk_add_turns_calls_back_on(tenant: Tenant) -> None:
    change(tenant, "sales", {"calls_disable": ["ivan"]})
    assert calls(tenant, "sales")["ivan"] is False
    change(tenant, "sales", {"add": ["ivan"], "position": 0})
    assert calls(tenant, "sales")["ivan"] is True
    assert logins(tenant, "sales") == ["admin", "manager", "ivan", "maria"]  # an existing member keeps its place


def test_bulk_add_then_remove_the_same(tenant: Tenant) -> None:
    change(tenant, "sales", {"add": ["sergey"], "remove": ["sergey", "elena"]})  # elena is not a member: no-op
    assert logins(tenant, "sales") == ["admin", "manager", "ivan", "maria"]
    change(tenant, "sales", {"add": ["sergey"], "calls_disable": ["sergey"]})
    assert calls(tenant, "sales")["sergey"] is False
    change(tenant, "sales", {})
    assert logins(tenant, "sales") == ["admin", "manager", "ivan", "maria", "sergey"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"add": ["sergey", "nobody"]}, "add"),
        ({"add": ["sergey"], "calls_disable": ["nobody"]}, "calls_disable"),
        ({"add": ["sergey"], "remove": ["nobody"]}, "remove"),
        ({"add": ["sergey"], "calls_disable": ["elena"]}, "calls_disable"),  # not a member
        ({"add": "sergey"}, "add"),
        ({"add": ["sergey"], "position": -2}, "position"),
        ({"add": ["sergey"], "position": "first"}, "position"),
    ],
)
def test_bulk_change_errors_change_nothing(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    before = tenant.client.get(f"{GROUPS}/sales").json()
    assert_invalid(tenant.client.post(f"{GROUPS}/sales/users", json=body), field)
    assert tenant.client.get(f"{GROUPS}/sales").json() == before


def test_bulk_change_unknown_login_message(tenant: Tenant) -> None:
    r = tenant.client.post(f"{GROUPS}/sales/users", json={"add": ["nobody", "ghost"]})
    assert r.json() == {"message": "Validation error",
                        "errors": [{"field": "add", "message": "no employees nobody, ghost"}]}
