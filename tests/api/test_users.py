"""002 §6 Сотрудники and §7 (mobile redirect): every operation, the documented examples, defaults and errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.services import tenancy
from vpbx.store.tables import Domain
from vpbx.testing.server import ServerThread, Tenant

T = TypeVar("T")
USERS = "/crmapi/v1/users"
DEMO_LOGINS = ["admin", "user1", "director", "manager", "ivan", "maria", "sergey", "anna", "elena", "dmitry"]
# The demo company uses 700..712 except nothing: 700, 705, 706 are departments, the rest employees.
FIRST_FREE_EXT = "713"


def in_domain(server: ServerThread, tenant: Tenant, work: Callable[[AsyncSession, Domain], Awaitable[T]]) -> T:
    async def run() -> T:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
            result = await work(session, domain)
            await session.commit()
            return result

    return server.call(run())


def domain_id(server: ServerThread, tenant: Tenant) -> int:
    async def work(_: AsyncSession, d: Domain) -> int:
        return d.id

    return in_domain(server, tenant, work)


def validation(field: str, message: str) -> dict[str, Any]:
    return {"message": "Validation error", "errors": [{"field": field, "message": message}]}


def assert_invalid(r: Any, field: str, message: str | None = None) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["message"] == "Validation error"
    assert [e["field"] for e in body["errors"]] == [field], body
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    if message is not None:
        assert body == validation(field, message)


def no_password(obj: Any) -> None:
    assert "password" not in repr(obj)
    assert "password_hash" not in repr(obj)


# --- 6.1 -------------------------------------------------------------------------------------------


def test_list_documented_example_items_and_status(server: ServerThread, tenant: Tenant) -> None:
    did = domain_id(server, tenant)
    server.runtime.telephony.set_registered(did, "admin", True)
    server.runtime.telephony.set_registered(did, "director", True)
    try:
        r = tenant.client.get(USERS, params={"with": "status"})
    finally:
        server.runtime.telephony.set_registered(did, "admin", False)
        server.runtime.telephony.set_registered(did, "director", False)
    assert r.status_code == 200
    body = r.json()
    assert [u["login"] for u in body["items"]] == DEMO_LOGINS
    by_login = {u["login"]: u for u in body["items"]}
    # 002 §6.1 example, field for field.
    assert by_login["admin"] == {
        "login": "admin", "name": "Администратор", "position": "Администратор", "ext": "701", "telnum": "",
        "email": "", "role": "admin", "mobile": "", "mobile_redirect": {"enabled": False}, "status": "online",
    }
    assert by_login["director"] == {
        "login": "director", "name": "Директор", "position": "Директор", "ext": "703", "telnum": "",
        "email": "", "role": "admin", "mobile": "", "mobile_redirect": {"enabled": False}, "status": "online",
    }
    assert by_login["user1"] == {
        "login": "user1", "name": "Пользователь", "position": "Менеджер", "telnum": "", "ext": "702",
        "email": "", "role": "user", "mobile": "79261904198",
        "mobile_redirect": {"enabled": True, "forward": False, "delay": 15}, "status": "offline",
    }
    assert {u["status"] for u in body["items"] if u["login"] not in ("admin", "director")} == {"offline"}
    assert body["info"] == {"search": "", "start": 0, "limit": 10, "total": 10, "next": None}
    no_password(body)


def test_list_without_with_has_no_status(tenant: Tenant) -> None:
    r = tenant.client.get(USERS)
    assert r.status_code == 200
    assert all("status" not in u for u in r.json()["items"])


def test_list_with_unknown_value_is_400(tenant: Tenant) -> None:
    assert_invalid(tenant.client.get(USERS, params={"with": "everything"}), "with")


def test_list_paging_and_search(tenant: Tenant) -> None:
    r = tenant.client.get(USERS, params={"start": 0, "limit": 3})
    assert [u["login"] for u in r.json()["items"]] == DEMO_LOGINS[:3]
    assert r.json()["info"] == {"search": "", "start": 0, "limit": 3, "total": 10, "next": 3}
    r = tenant.client.get(USERS, params={"start": 9, "limit": 3})
    assert [u["login"] for u in r.json()["items"]] == ["dmitry"]
    assert r.json()["info"] == {"search": "", "start": 9, "limit": 3, "total": 10, "next": None}
    # search: substring of several fields, case-insensitive (also for Cyrillic)
    r = tenant.client.get(USERS, params={"search": "ОЛЬГА"})
    assert [u["login"] for u in r.json()["items"]] == ["manager"]
    assert r.json()["info"]["search"] == "ОЛЬГА"
    assert r.json()["info"]["total"] == 1
    assert [u["login"] for u in tenant.client.get(USERS, params={"search": "709"}).json()["items"]] == ["sergey"]
    r = tenant.client.get(USERS, params={"search": "инженер"})
    assert [u["login"] for u in r.json()["items"]] == ["sergey", "anna"]
    r = tenant.client.get(USERS, params={"search": "79161234567"})
    assert [u["login"] for u in r.json()["items"]] == ["ivan"]
    r = tenant.client.get(USERS, params={"search": "no such thing"})
    assert r.json() == {"items": [], "info": {"search": "no such thing", "start": 0, "limit": 0, "total": 0,
                                              "next": None}}
    # a literal % or _ is not a wildcard
    assert tenant.client.get(USERS, params={"search": "%"}).json()["info"]["total"] == 0


def test_list_bad_paging_params(tenant: Tenant) -> None:
    assert_invalid(tenant.client.get(USERS, params={"start": -1}), "start")
    assert_invalid(tenant.client.get(USERS, params={"limit": "many"}), "limit")


# --- 6.2 -------------------------------------------------------------------------------------------


def test_get_by_login_and_by_ext(tenant: Tenant) -> None:
    by_login = tenant.client.get(f"{USERS}/ivan")
    assert by_login.status_code == 200
    assert by_login.json() == {
        "login": "ivan", "name": "Иван Петров", "position": "Менеджер", "email": "", "ext": "707", "telnum": "",
        "role": "user", "mobile": "79161234567",
        "mobile_redirect": {"enabled": True, "forward": False, "delay": 15},
    }
    assert tenant.client.get(f"{USERS}/707").json() == by_login.json()


def test_get_documented_example(server: ServerThread, tenant: Tenant) -> None:
    r = tenant.client.put(f"{USERS}/admin", json={
        "email": "admin@example.com", "mobile": "79263808397", "mobile_redirect": {"enabled": True, "delay": 15}})
    assert r.status_code == 200, r.text
    did = domain_id(server, tenant)
    server.runtime.telephony.set_registered(did, "admin", True)
    try:
        r = tenant.client.get(f"{USERS}/admin", params={"with": "status"})
    finally:
        server.runtime.telephony.set_registered(did, "admin", False)
    # 002 §6.2 example; telnum (listed among 6.2's response fields, absent from its example) is "".
    assert r.json() == {
        "login": "admin", "name": "Администратор", "position": "Администратор", "email": "admin@example.com",
        "ext": "701", "telnum": "", "role": "admin", "mobile": "79263808397",
        "mobile_redirect": {"enabled": True, "forward": False, "delay": 15}, "status": "online",
    }
    assert tenant.client.get(f"{USERS}/admin", params={"with": "status"}).json()["status"] == "offline"


def test_get_unknown_is_404(tenant: Tenant) -> None:
    for path in ("nobody", "799", "nobody/groups", "nobody/subscription", "nobody/dnd"):
        r = tenant.client.get(f"{USERS}/{path}")
        assert r.status_code == 404, path
        assert r.json() == {"message": "Not found"}


# --- 6.3 -------------------------------------------------------------------------------------------


def test_create_documented_example(tenant: Tenant) -> None:
    r = tenant.client.post(USERS, json={"name": "Пользователь", "mobile": "79267616794",
                                        "mobile_redirect": {"enabled": True, "delay": 15}})
    assert r.status_code == 200, r.text
    # 002 §6.3 example; the extension is the lowest free one and the login 'u' + ext.
    assert r.json() == {
        "login": f"u{FIRST_FREE_EXT}", "name": "Пользователь", "position": "Менеджер", "email": "",
        "ext": FIRST_FREE_EXT, "telnum": "", "mobile": "79267616794", "role": "user",
        "mobile_redirect": {"enabled": True, "forward": False, "delay": 15},
    }
    no_password(r.json())
    assert tenant.client.get(f"{USERS}/u{FIRST_FREE_EXT}").json() == r.json()
    assert tenant.client.get(USERS).json()["info"]["total"] == 11


def test_create_with_every_field(tenant: Tenant) -> None:
    body = {"login": "p.sidorov", "name": "Пётр Сидоров", "password": "s3cret-pass", "position": "Логист",
            "email": "p@example.com", "ext": "7777", "role": "group_head", "mobile": "+7 (926) 111-22-33",
            "mobile_redirect": {"enabled": True, "delay": 5, "forward": True}}
    r = tenant.client.post(USERS, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "login": "p.sidorov", "name": "Пётр Сидоров", "position": "Логист", "email": "p@example.com",
        "ext": "7777", "telnum": "", "role": "group_head", "mobile": "79261112233",
        "mobile_redirect": {"enabled": True, "forward": True, "delay": 5},
    }
    no_password(r.json())
    no_password(tenant.client.get(USERS).json())


def test_create_defaults_take_successive_free_extensions(tenant: Tenant) -> None:
    first = tenant.client.post(USERS, json={"name": "A"}).json()
    second = tenant.client.post(USERS, json={"name": "B"}).json()
    assert (first["ext"], first["login"]) == ("713", "u713")
    assert (second["ext"], second["login"]) == ("714", "u714")
    assert first["role"] == "user" and first["position"] == "Менеджер"
    assert first["mobile_redirect"] == {"enabled": False}
    # delay defaults to 0 and forward to false (002 §7)
    r = tenant.client.post(USERS, json={"name": "C", "mobile": "79260000001", "mobile_redirect": {"enabled": True}})
    assert r.json()["mobile_redirect"] == {"enabled": True, "forward": False, "delay": 0}


def test_create_with_custom_role(server: ServerThread, tenant: Tenant) -> None:
    async def work(session: AsyncSession, d: Domain) -> str:
        return (await tenancy.create_role(session, d, "Бухгалтерия", ["users.get"])).role_id

    role = in_domain(server, tenant, work)
    r = tenant.client.post(USERS, json={"name": "Бух", "role": role})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == role


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "x", "ext": "7a"}, "ext", "an extension is 2 to 6 digits"),
        ({"name": "x", "ext": "7"}, "ext", "an extension is 2 to 6 digits"),
        ({"name": "x", "ext": "1234567"}, "ext", "an extension is 2 to 6 digits"),
        ({"name": "x", "ext": "701"}, "ext", "extension 701 is taken"),
        ({"name": "x", "ext": "700"}, "ext", "extension 700 is taken"),  # a department's
        ({"name": "x", "login": "admin"}, "login", "login 'admin' is taken"),
        ({"name": "x", "login": "bad login"}, "login", None),
        ({"name": "x", "login": "12345"}, "login", None),
        ({"name": "x", "role": "superuser"}, "role", "unknown role 'superuser'"),
        ({"name": "x", "mobile_redirect": {"enabled": True}}, "mobile_redirect",
         "mobile redirect needs a mobile number"),
        ({"name": "x", "mobile": "79261112233", "mobile_redirect": {"enabled": True, "delay": 16}},
         "mobile_redirect.delay", None),
        ({"name": "x", "mobile": "79261112233", "mobile_redirect": {"enabled": True, "delay": -1}},
         "mobile_redirect.delay", None),
        ({"name": "x", "mobile": "79261112233", "mobile_redirect": {"delay": 1}}, "mobile_redirect.enabled", None),
        ({"name": "x", "mobile": "not a phone"}, "mobile", "not a valid phone number"),
        ({"name": "x", "email": "nowhere"}, "email", "not a valid email address"),
        ({"name": "x", "password": "123"}, "password", None),
        ({}, "name", "Field required"),
        ({"name": ""}, "name", None),
        ({"name": 123}, "name", "Input should be a valid string"),
        ({"name": "x", "ext": 704}, "ext", "Input should be a valid string"),
        ({"name": "x", "mobile_redirect": "yes"}, "mobile_redirect", None),
        ([{"name": "x"}], "body", None),
    ],
)
def test_create_validation_errors(tenant: Tenant, body: Any, field: str, message: str | None) -> None:
    assert_invalid(tenant.client.post(USERS, json=body), field, message)
    assert tenant.client.get(USERS).json()["info"]["total"] == 10


def test_create_malformed_json(tenant: Tenant) -> None:
    r = tenant.client.post(USERS, content=b'{"name": "x"', headers={"content-type": "application/json"})
    assert r.json() == validation("body", "JSON decode error")
    assert r.status_code == 400


def test_create_skips_an_extension_whose_default_login_is_taken(tenant: Tenant) -> None:
    """Issue 13 rule 7: a login given as 'u713' makes the next employee created from a name alone skip 713 (its
    default login is taken), not fail."""
    assert tenant.client.post(USERS, json={"name": "x", "login": "u713", "ext": "720"}).status_code == 200
    r = tenant.client.post(USERS, json={"name": "y"})
    assert r.status_code == 200, r.text
    assert (r.json()["ext"], r.json()["login"]) == ("714", "u714")


def test_user_limit_enforced(server: ServerThread, tenant: Tenant) -> None:
    async def work(session: AsyncSession, d: Domain) -> None:
        await tenancy.set_limits(session, d, users=11)

    in_domain(server, tenant, work)
    assert tenant.client.post(USERS, json={"name": "eleventh"}).status_code == 200
    r = tenant.client.post(USERS, json={"name": "twelfth"})
    assert r.status_code == 400
    assert r.json()["message"] == "Validation error"
    assert [e["field"] for e in r.json()["errors"]] == ["limits.users"]
    assert tenant.client.get(USERS).json()["info"]["total"] == 11
    assert tenant.client.get("/crmapi/v1/domain").json()["limits"]["users"] == {"used": 11, "total": 11}
    # freeing a seat lets the next one in
    assert tenant.client.delete(f"{USERS}/dmitry").status_code == 204
    assert tenant.client.post(USERS, json={"name": "twelfth"}).status_code == 200


# --- 6.4 -------------------------------------------------------------------------------------------


def test_update_documented_example(tenant: Tenant) -> None:
    created = tenant.client.post(USERS, json={"name": "Пользователь", "mobile": "79267616794",
                                              "mobile_redirect": {"enabled": True, "delay": 15}}).json()
    login = created["login"]
    # 708 is Мария's in the demo company: free it so the example's extension can be taken.
    assert tenant.client.delete(f"{USERS}/maria").status_code == 204
    r = tenant.client.put(f"{USERS}/{login}", json={"name": "Иванов Иван", "role": "admin", "ext": "708"})
    assert r.status_code == 200, r.text
    # 002 §6.4 example (its response keeps the old name, against its own "only given fields change":
    # the name given is the name kept).
    assert r.json() == {
        "login": login, "name": "Иванов Иван", "position": "Менеджер", "email": "", "ext": "708", "telnum": "",
        "mobile": "79267616794", "role": "admin", "mobile_redirect": {"enabled": True, "forward": False, "delay": 15},
    }
    assert tenant.client.get(f"{USERS}/708").json()["login"] == login
    # the old extension is free again (the login u713 stays with its employee)
    r = tenant.client.post(USERS, json={"name": "z", "login": "zed", "ext": created["ext"]})
    assert r.status_code == 200, r.text
    assert tenant.client.get(f"{USERS}/{created['ext']}").json()["login"] == "zed"


def test_update_changes_only_given_fields(tenant: Tenant) -> None:
    before = tenant.client.get(f"{USERS}/ivan").json()
    r = tenant.client.put(f"{USERS}/ivan", json={"position": "Старший менеджер"})
    assert r.status_code == 200
    assert r.json() == {**before, "position": "Старший менеджер"}
    assert tenant.client.get(f"{USERS}/ivan").json() == r.json()
    r = tenant.client.put(f"{USERS}/707", json={})
    assert r.json() == {**before, "position": "Старший менеджер"}
    r = tenant.client.put(f"{USERS}/ivan", json={"mobile_redirect": {"enabled": False}})
    assert r.json()["mobile_redirect"] == {"enabled": False}
    assert r.json()["mobile"] == "79161234567"
    # password changes are accepted and never echoed
    r = tenant.client.put(f"{USERS}/ivan", json={"password": "new-password-1"})
    assert r.status_code == 200
    no_password(r.json())


def test_update_same_ext_is_fine_and_search_follows(tenant: Tenant) -> None:
    assert tenant.client.put(f"{USERS}/ivan", json={"ext": "707"}).status_code == 200
    assert tenant.client.put(f"{USERS}/ivan", json={"name": "Иван Грозный"}).status_code == 200
    r = tenant.client.get(USERS, params={"search": "грозный"})
    assert [u["login"] for u in r.json()["items"]] == ["ivan"]
    assert tenant.client.get(USERS, params={"search": "петров"}).json()["info"]["total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ext": "701"}, "ext"),
        ({"ext": "706"}, "ext"),
        ({"ext": "x1"}, "ext"),
        ({"role": "nope"}, "role"),
        ({"mobile_redirect": {"enabled": True, "delay": 99}}, "mobile_redirect.delay"),
        ({"name": ""}, "name"),
        ({"name": ["list"]}, "name"),
        ({"email": "@"}, "email"),
    ],
)
def test_update_validation_errors(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    before = tenant.client.get(f"{USERS}/ivan").json()
    assert_invalid(tenant.client.put(f"{USERS}/ivan", json=body), field)
    assert tenant.client.get(f"{USERS}/ivan").json() == before


def test_update_redirect_needs_mobile(tenant: Tenant) -> None:
    assert_invalid(tenant.client.put(f"{USERS}/admin", json={"mobile_redirect": {"enabled": True}}),
                   "mobile_redirect", "mobile redirect needs a mobile number")
    # removing the mobile while the redirect is on is refused too
    assert_invalid(tenant.client.put(f"{USERS}/ivan", json={"mobile": ""}), "mobile")
    r = tenant.client.put(f"{USERS}/ivan", json={"mobile": "", "mobile_redirect": {"enabled": False}})
    assert r.status_code == 200
    assert (r.json()["mobile"], r.json()["mobile_redirect"]) == ("", {"enabled": False})
    # giving both at once works
    r = tenant.client.put(f"{USERS}/admin", json={"mobile": "79260000000", "mobile_redirect": {"enabled": True}})
    assert r.status_code == 200
    assert r.json()["mobile_redirect"] == {"enabled": True, "forward": False, "delay": 0}


def test_update_unknown_is_404(tenant: Tenant) -> None:
    r = tenant.client.put(f"{USERS}/nobody", json={"name": "x"})
    assert (r.status_code, r.json()) == (404, {"message": "Not found"})


# --- 6.5 -------------------------------------------------------------------------------------------


def test_delete_removes_from_departments_and_frees_ext(tenant: Tenant) -> None:
    c = tenant.client
    assert c.put("/crmapi/v1/groups/support", json={"timeout": {"target": "user", "user": "ivan"}}).status_code == 200
    r = c.delete(f"{USERS}/ivan")
    assert r.status_code == 204
    assert r.content == b""
    assert c.get(f"{USERS}/ivan").status_code == 404
    assert c.delete(f"{USERS}/ivan").status_code == 404
    assert "ivan" not in [m["login"] for m in c.get("/crmapi/v1/groups/sales").json()["users"]]
    assert [m["login"] for m in c.get("/crmapi/v1/groups/sales").json()["users"]] == ["admin", "manager", "maria"]
    # a department that sent unanswered calls to the employee falls back to voicemail
    assert c.get("/crmapi/v1/groups/support").json()["timeout"] == {"time": 120, "target": "voicemail"}
    # the extension is free: the next automatic extension is ivan's 707
    r = c.post(USERS, json={"name": "new"})
    assert (r.json()["ext"], r.json()["login"]) == ("707", "u707")
    assert c.get(USERS).json()["info"]["total"] == 10


def test_delete_by_ext(tenant: Tenant) -> None:
    assert tenant.client.delete(f"{USERS}/712").status_code == 204
    assert tenant.client.get(f"{USERS}/dmitry").status_code == 404


# --- 6.6 -------------------------------------------------------------------------------------------


def test_groups_of_user(tenant: Tenant) -> None:
    c = tenant.client
    assert c.get(f"{USERS}/admin/groups").json() == [{"id": "sales", "name": "Отдел продаж", "ext": "700"}]
    assert c.get(f"{USERS}/dmitry/groups").json() == []
    created = c.post("/crmapi/v1/groups", json={"name": "Отдел кадров 2", "users": [
        {"login": "admin", "calls_enable": True}]}).json()
    r = c.get(f"{USERS}/701/groups")
    assert r.status_code == 200
    assert r.json() == [{"id": "sales", "name": "Отдел продаж", "ext": "700"},
                        {"id": created["id"], "name": "Отдел кадров 2", "ext": created["ext"]}]
    assert created["id"].startswith("g_")


# --- 6.7 / 6.8 -------------------------------------------------------------------------------------


def sub(tenant: Tenant, login: str, group: str | None = None) -> Any:
    params = {"group_id": group} if group else {}
    r = tenant.client.get(f"{USERS}/{login}/subscription", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_subscription_in_one_department(tenant: Tenant) -> None:
    c = tenant.client
    c.post("/crmapi/v1/groups/support/users", json={"add": ["ivan"]})
    assert sub(tenant, "ivan", "sales") == {"state": True}
    r = c.delete(f"{USERS}/ivan/subscription", params={"group_id": "sales"})
    assert (r.status_code, r.content) == (204, b"")
    assert sub(tenant, "ivan", "sales") == {"state": False}
    assert sub(tenant, "ivan", "support") == {"state": True}  # the other department is untouched
    member = next(m for m in c.get("/crmapi/v1/groups/sales").json()["users"] if m["login"] == "ivan")
    assert member["calls_enable"] is False
    assert sub(tenant, "ivan") == {"state": False}  # not in every department
    assert c.post(f"{USERS}/707/subscription", params={"group_id": "700"}).status_code == 204
    assert sub(tenant, "ivan", "sales") == {"state": True}
    assert sub(tenant, "ivan") == {"state": True}


def test_subscription_in_all_departments(tenant: Tenant) -> None:
    c = tenant.client
    c.post("/crmapi/v1/groups/support/users", json={"add": ["ivan"]})
    assert c.delete(f"{USERS}/ivan/subscription").status_code == 204
    assert sub(tenant, "ivan", "sales") == sub(tenant, "ivan", "support") == sub(tenant, "ivan") == {"state": False}
    # other employees keep theirs
    assert sub(tenant, "admin", "sales") == {"state": True}
    assert c.post(f"{USERS}/ivan/subscription").status_code == 204
    assert sub(tenant, "ivan", "sales") == sub(tenant, "ivan", "support") == sub(tenant, "ivan") == {"state": True}
    # an employee in no department takes no department calls
    assert sub(tenant, "dmitry") == {"state": False}


def test_subscription_errors(tenant: Tenant) -> None:
    c = tenant.client
    for method in ("GET", "POST", "DELETE"):
        for login, group in (("nobody", "sales"), ("ivan", "nowhere"), ("ivan", "hr"), ("nobody", None)):
            params = {"group_id": group} if group else {}
            r = c.request(method, f"{USERS}/{login}/subscription", params=params)
            assert (r.status_code, r.json()) == (404, {"message": "Not found"}), (method, login, group)
    assert sub(tenant, "ivan", "sales") == {"state": True}


# --- 6.9 -------------------------------------------------------------------------------------------


def test_dnd(tenant: Tenant) -> None:
    c = tenant.client
    assert c.get(f"{USERS}/ivan/dnd").json() == {"state": False}
    r = c.post(f"{USERS}/ivan/dnd")
    assert (r.status_code, r.content) == (204, b"")
    assert c.get(f"{USERS}/ivan/dnd").json() == {"state": True}
    assert c.get(f"{USERS}/707/dnd").json() == {"state": True}
    assert c.get(f"{USERS}/maria/dnd").json() == {"state": False}
    assert c.post(f"{USERS}/ivan/dnd").status_code == 204  # idempotent
    assert c.get(f"{USERS}/ivan/dnd").json() == {"state": True}
    assert c.delete(f"{USERS}/707/dnd").status_code == 204
    assert c.get(f"{USERS}/ivan/dnd").json() == {"state": False}
    for method in ("GET", "POST", "DELETE"):
        assert c.request(method, f"{USERS}/nobody/dnd").status_code == 404


def test_nul_characters(tenant: Tenant) -> None:
    """PostgreSQL text cannot hold NUL: refused in bodies, found nowhere in lookups and searches (both stores)."""
    c = tenant.client
    assert_invalid(c.post(USERS, json={"name": "a\x00b"}), "name", "must not contain NUL characters")
    assert_invalid(c.put(f"{USERS}/ivan", json={"position": "\x00"}), "position")
    assert_invalid(c.post("/crmapi/v1/groups/sales/users", json={"add": ["ivan\x00"]}), "add")
    assert c.get(f"{USERS}/iv%00an").status_code == 404
    assert c.get(f"{USERS}/ivan/subscription", params={"group_id": "sales\x00"}).status_code == 404
    assert c.get("/crmapi/v1/groups/sales%00").status_code == 404
    r = c.get(USERS, params={"search": "\x00"})
    assert r.status_code == 200
    assert (r.json()["items"], r.json()["info"]["total"]) == ([], 0)


def test_status_is_live_while_the_employees_are_kept(server: ServerThread, tenant: Tenant,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``with=status`` is answered from the kept employees (no store read while nothing is configured) with each
    registration as it is at that request, the same bytes as FastAPI's endpoint (an extra query parameter, which
    the endpoint ignores, sends the request there)."""
    did = domain_id(server, tenant)

    def status_of(login: str, path: str = USERS, extra: dict[str, str] | None = None) -> str:
        fast = tenant.client.get(path, params={"with": "status"})
        slow = tenant.client.get(path, params={"with": "status", "x": "1", **(extra or {})})
        assert fast.status_code == slow.status_code == 200, (fast.text, slow.text)
        assert fast.content == slow.content
        body = fast.json()
        return str(next(u for u in body["items"] if u["login"] == login)["status"] if "items" in body
                   else body["status"])

    from vpbx.api import reads

    assert status_of("admin") == status_of("admin", f"{USERS}/admin") == "offline"
    loads: list[str] = []
    for name in ("list_users", "read_user"):
        def counted(*args: Any, _real: Any = getattr(reads.directory, name), _name: str = name) -> Any:
            loads.append(_name)
            return _real(*args)

        monkeypatch.setattr(reads.directory, name, counted)
    server.runtime.telephony.set_registered(did, "admin", True)
    try:
        assert status_of("admin") == status_of("admin", f"{USERS}/admin") == "online"
        assert loads == []  # the kept rows served it: nothing read from the store
    finally:
        server.runtime.telephony.set_registered(did, "admin", False)
    assert status_of("admin") == "offline"
    r = tenant.client.get(USERS, params={"with": "nope"})
    assert r.status_code == 400, r.text
