"""002 §10 SIM-карты: the pool, adding with the user/company/disabled rules, assignment, disable, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from vpbx.testing.server import Tenant

V1 = "/crmapi/v1"


def sim(c: httpx.Client, telnum: str) -> dict[str, Any]:
    r = c.get(f"{V1}/sims/{telnum}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_available_reproduces_the_seed_example(tenant: Tenant) -> None:
    assert tenant.client.get(f"{V1}/sims-available").json() == {
        "items": [{"telnum": "74952005060"}, {"telnum": "74954010121"}, {"telnum": "74957616794"}],
        "sms_confirmation": False}


def test_list_and_get_reproduce_the_seed_examples(tenant: Tenant, operator: Any) -> None:
    operator.sim(tenant, "79262005060")
    operator.sim(tenant, "79264010121")
    c = tenant.client
    assert c.post(f"{V1}/sims", json={"telnum": "79262005060", "user": "admin"}).json() == {"status": "complete",
                                                                                          "user": "admin"}
    assert c.post(f"{V1}/sims", json={"telnum": "79264010121", "company": True}).json() == {"status": "complete",
                                                                                          "user": "admin"}
    operator.edit_number(tenant, "79264010121", calltracking="roistat", abc_telnum="74951904198",
                         abc_location="Город")
    assert c.get(f"{V1}/sims").json() == {
        "items": [
            {"telnum": "79262005060", "user": "admin", "user_name": "Администратор", "company": False,
             "autocaller": False, "disabled": False, "calltracking": "", "abc_telnum": "", "abc_location": ""},
            {"telnum": "79264010121", "user": "", "company": True, "autocaller": False, "disabled": False,
             "calltracking": "roistat", "abc_telnum": "74951904198", "abc_location": "Город"},
        ],
        "info": {"search": "", "start": 0, "limit": 2, "total": 2, "next": None},
    }
    assert sim(c, "79262005060") == {"telnum": "79262005060", "user": "admin", "user_name": "Администратор",
                                     "company": False, "autocaller": False, "disabled": False, "calltracking": "",
                                     "abc_telnum": "", "abc_location": ""}
    # an added card is one of the domain's numbers, routed as 10.4 says
    assert c.get(f"{V1}/telnums/79262005060").json()["user"] == "admin"
    assert c.get(f"{V1}/telnums/79264010121").json()["user"] == "admin"
    assert c.get(f"{V1}/users/admin").json()["telnum"] == "79262005060"
    assert c.get(f"{V1}/sims-available").json()["items"] == [{"telnum": t} for t in
                                                              ("74952005060", "74954010121", "74957616794")]
    assert c.get(f"{V1}/sims", params={"search": "7926401"}).json()["info"]["total"] == 1


def test_add_reproduces_the_seed_example(tenant: Tenant, operator: Any) -> None:
    operator.sim(tenant, "79267616794")
    r = tenant.client.post(f"{V1}/sims", json={"telnum": "79267616794", "user": "admin"})
    assert r.status_code == 200 and r.json() == {"status": "complete", "user": "admin"}


def test_add_without_user_or_company_is_switched_off(tenant: Tenant) -> None:
    c = tenant.client
    bodies: list[dict[str, Any]] = [{"telnum": "74952005060"}, {"telnum": "74954010121", "company": False}]
    for body in bodies:
        assert c.post(f"{V1}/sims", json=body).json() == {"status": "complete", "user": ""}
        got = sim(c, body["telnum"])
        assert (got["disabled"], got["user"], got["company"]) == (True, "", False)
        assert "user_name" not in got
        assert c.get(f"{V1}/telnums/{body['telnum']}").json()["disabled"] is True


def test_add_with_user_ignores_company(tenant: Tenant) -> None:
    c = tenant.client
    r = c.post(f"{V1}/sims", json={"telnum": "74952005060", "user": "707", "company": True})
    assert r.json() == {"status": "complete", "user": "ivan"}
    got = sim(c, "74952005060")
    assert (got["user"], got["user_name"], got["company"], got["disabled"]) == ("ivan", "Иван Петров", False, False)
    assert c.get(f"{V1}/users/ivan").json()["telnum"] == "74952005060"


def test_add_with_sms_confirmation(tenant: Tenant, operator: Any) -> None:
    operator.sim(tenant, "79031234567", sms=True)
    assert tenant.client.get(f"{V1}/sims-available").json()["sms_confirmation"] is True
    r = tenant.client.post(f"{V1}/sims", json={"telnum": "79031234567", "company": True})
    assert r.json() == {"status": "send sms", "user": "admin"}
    assert tenant.client.get(f"{V1}/sims-available").json()["sms_confirmation"] is False


@pytest.mark.parametrize("body,field", [
    ({}, "telnum"),
    ({"telnum": ""}, "telnum"),
    ({"telnum": "abc"}, "telnum"),
    ({"telnum": "79990000000"}, "telnum"),  # not among the cards available
    ({"telnum": "74951234567"}, "telnum"),  # already one of the domain's numbers
    ({"telnum": "74952005060", "user": "ghost"}, "user"),
])
def test_add_validation(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    r = tenant.client.post(f"{V1}/sims", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == field
    assert len(tenant.client.get(f"{V1}/sims-available").json()["items"]) == 3
    assert tenant.client.get(f"{V1}/sims").json()["info"]["total"] == 0


def test_add_twice(tenant: Tenant) -> None:
    assert tenant.client.post(f"{V1}/sims", json={"telnum": "74952005060"}).status_code == 200
    assert tenant.client.post(f"{V1}/sims", json={"telnum": "74952005060"}).status_code == 400


def test_assign_to_employee_company_disable_delete(tenant: Tenant) -> None:
    c = tenant.client
    c.post(f"{V1}/sims", json={"telnum": "74952005060"})
    assert c.post(f"{V1}/sims/74952005060/user/ivan").status_code == 204
    got = sim(c, "74952005060")
    assert (got["user"], got["disabled"], got["company"]) == ("ivan", False, False)
    assert c.get(f"{V1}/users/ivan").json()["telnum"] == "74952005060"
    assert c.get(f"{V1}/users", params={"search": "74952005060"}).json()["info"]["total"] == 1
    # to another employee: the first one loses the number
    assert c.post(f"{V1}/sims/74952005060/user/maria").status_code == 204
    assert c.get(f"{V1}/users/ivan").json()["telnum"] == ""
    assert c.get(f"{V1}/users/maria").json()["telnum"] == "74952005060"
    # an employee getting a second card: the first card is unassigned and switched off
    c.post(f"{V1}/sims", json={"telnum": "74954010121", "user": "maria"})
    assert c.get(f"{V1}/users/maria").json()["telnum"] == "74954010121"
    old = sim(c, "74952005060")
    assert (old["user"], old["disabled"]) == ("", True)
    # company number: routed to the first employee
    assert c.post(f"{V1}/sims/74954010121/company").status_code == 204
    got = sim(c, "74954010121")
    assert (got["user"], got["company"], got["disabled"]) == ("", True, False)
    assert c.get(f"{V1}/users/maria").json()["telnum"] == ""
    assert c.get(f"{V1}/telnums/74954010121").json()["user"] == "admin"
    # the company reroutes it; assigning as company again keeps that route
    c.post(f"{V1}/telnums/74954010121", json={"type": "group", "group": "support", "greeting": False})
    assert c.post(f"{V1}/sims/74954010121/company").status_code == 204
    assert c.get(f"{V1}/telnums/74954010121").json()["group"] == "support"
    # disable
    assert c.post(f"{V1}/sims/74954010121/disable").status_code == 204
    assert sim(c, "74954010121")["disabled"] is True
    assert c.get(f"{V1}/telnums/74954010121").json()["disabled"] is True
    # delete: back among the cards available to add
    c.post(f"{V1}/sims/74952005060/user/ivan")
    assert c.delete(f"{V1}/sims/74952005060").status_code == 204
    assert c.get(f"{V1}/sims/74952005060").status_code == 404
    assert c.get(f"{V1}/telnums/74952005060").status_code == 404
    assert c.get(f"{V1}/users/ivan").json()["telnum"] == ""
    assert {"telnum": "74952005060"} in c.get(f"{V1}/sims-available").json()["items"]


def test_deleting_the_employee_switches_their_card_off(tenant: Tenant) -> None:
    c = tenant.client
    c.post(f"{V1}/sims", json={"telnum": "74952005060", "user": "ivan"})
    assert c.delete(f"{V1}/users/ivan").status_code == 204
    got = sim(c, "74952005060")
    assert (got["user"], got["disabled"]) == ("", True)
    assert c.get(f"{V1}/telnums/74952005060").json()["user"] == "admin"


@pytest.mark.parametrize("method,path", [
    ("GET", "/sims/74952005060"), ("POST", "/sims/74952005060/user/admin"), ("POST", "/sims/74952005060/company"),
    ("POST", "/sims/74952005060/disable"), ("DELETE", "/sims/74952005060"),
    ("GET", "/sims/74951234567"),  # a number, not a SIM card
    ("DELETE", "/sims/74951234567"),
])
def test_unknown_cards_are_404(tenant: Tenant, method: str, path: str) -> None:
    r = tenant.client.request(method, V1 + path)
    assert r.status_code == 404 and r.json() == {"message": "Not found"}


def test_assign_to_unknown_employee_is_404(tenant: Tenant) -> None:
    tenant.client.post(f"{V1}/sims", json={"telnum": "74952005060"})
    assert tenant.client.post(f"{V1}/sims/74952005060/user/ghost").status_code == 404
    assert sim(tenant.client, "74952005060")["disabled"] is True


def test_rights(tenant: Tenant, role_client: Callable[[str], httpx.Client],
                custom_role: Callable[[list[str]], str]) -> None:
    tenant.client.post(f"{V1}/sims", json={"telnum": "74952005060"})
    ops: dict[str, list[tuple[str, str, Any]]] = {
        "sims.get": [("GET", "/sims", None), ("GET", "/sims/74952005060", None), ("GET", "/sims-available", None)],
        "sims.create": [("POST", "/sims", {"telnum": "74954010121"})],
        "sims.edit": [("POST", "/sims/74952005060/user/admin", None), ("POST", "/sims/74952005060/company", None),
                      ("POST", "/sims/74952005060/disable", None)],
        "sims.delete": [("DELETE", "/sims/74952005060", None)],
    }
    nobody = role_client("user")
    for calls in ops.values():
        for method, path, body in calls:
            assert nobody.request(method, V1 + path, json=body).status_code == 403, path
    for right, calls in ops.items():
        client = role_client(custom_role([right]))
        for method, path, body in calls:
            assert client.request(method, V1 + path, json=body).status_code in (200, 204), (right, path)
        other = next(r for r in ops if r != right)
        method, path, body = ops[other][0]
        assert client.request(method, V1 + path, json=body).status_code == 403


def test_tenant_isolation(tenant: Tenant, other_tenant: Tenant, operator: Any) -> None:
    operator.sim(tenant, "79031112233")
    tenant.client.post(f"{V1}/sims", json={"telnum": "74952005060", "user": "ivan"})
    o = other_tenant.client
    assert o.get(f"{V1}/sims").json()["info"]["total"] == 0
    assert {"telnum": "79031112233"} not in o.get(f"{V1}/sims-available").json()["items"]
    assert o.post(f"{V1}/sims", json={"telnum": "79031112233"}).status_code == 400
    for method, path in (("GET", "/sims/74952005060"), ("POST", "/sims/74952005060/user/ivan"),
                         ("POST", "/sims/74952005060/company"), ("POST", "/sims/74952005060/disable"),
                         ("DELETE", "/sims/74952005060")):
        assert o.request(method, V1 + path).status_code == 404, path
    got = sim(tenant.client, "74952005060")
    assert (got["user"], got["disabled"]) == ("ivan", False)
    assert o.get(f"{V1}/users/ivan").json()["telnum"] == ""
