"""002 §14: call restrictions, and the engine's dial check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.services import restrictions
from vpbx.testing.server import Tenant

BASE = "/crmapi/v1/calls-restrictions"
MOSCOW_FIXED, MOBILE, GERMANY, KAZAKHSTAN = "74951234567", "79161234567", "493012345678", "77172123456"


def errors(r: httpx.Response) -> list[str]:
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "Validation error"
    return [e["field"] for e in r.json()["errors"]]


def may_dial(run: Callable[..., Any], login: str | None, number: str) -> bool:
    async def work(session: AsyncSession, domain_id: int) -> bool:
        return await restrictions.may_dial(session, domain_id, login, number)

    result: bool = run(work)
    return result


def test_defaults(tenant: Tenant) -> None:
    r = tenant.client.get(BASE)
    assert r.status_code == 200
    assert r.json() == {"main": ["LOCAL", "RU", "179"], "users": [], "groups": []}


def test_seed_example(tenant: Tenant) -> None:
    c = tenant.client
    assert c.delete(f"{BASE}/main?allowed=RU&allowed=179").status_code == 204
    # 14.3 example request
    r = c.post(f"{BASE}/users", json=[{"login": "admin", "allowed": ["CIS"]}, {"login": "director", "allowed": ["RU"]}])
    assert r.status_code == 204
    assert c.delete(f"{BASE}/users/admin?allowed=CIS").status_code == 204
    assert c.delete(f"{BASE}/users/director?allowed=RU").status_code == 204
    assert c.post(f"{BASE}/users", json=[{"login": "director", "allowed": ["ALL"]}]).status_code == 204
    # 14.4 example request names the department as "login"; "id" works too.
    assert c.post(f"{BASE}/groups", json=[{"login": "sales", "allowed": ["LOCAL"]}]).status_code == 204
    assert c.post(f"{BASE}/groups", json=[{"id": "sales", "allowed": ["RU", "LOCAL"]}]).status_code == 204
    assert c.get(BASE).json() == {
        "main": ["LOCAL"],
        "users": [
            {"login": "admin", "name": "Администратор", "allowed": []},
            {"login": "director", "name": "Директор", "allowed": ["ALL"]},
        ],
        "groups": [{"id": "sales", "name": "Отдел продаж", "allowed": ["LOCAL", "RU"]}],
    }
    # 14.2 example body
    assert c.post(f"{BASE}/main", json={"allowed": ["CIS"]}).status_code == 204
    assert c.get(BASE).json()["main"] == ["LOCAL", "CIS"]


def test_delete_forms(tenant: Tenant) -> None:
    c = tenant.client
    assert c.request("DELETE", f"{BASE}/main", json={"allowed": ["RU"]}).status_code == 204
    assert c.delete(f"{BASE}/main?allowed=local,179").status_code == 204
    assert c.get(BASE).json()["main"] == []
    assert errors(c.delete(f"{BASE}/main")) == ["allowed"]
    assert errors(c.delete(f"{BASE}/main?allowed=MARS")) == ["allowed"]
    c.post(f"{BASE}/users", json={"login": "ivan", "allowed": ["EURO", "ASIA"]})  # a single object is accepted
    assert c.request("DELETE", f"{BASE}/users/ivan", json=["EURO"]).status_code == 204
    assert c.get(BASE).json()["users"] == [{"login": "ivan", "name": "Иван Петров", "allowed": ["ASIA"]}]
    assert c.delete(f"{BASE}/users/maria?allowed=EURO").status_code == 204  # no rules: nothing to do
    assert c.delete(f"{BASE}/users/nobody?allowed=EURO").status_code == 404
    assert c.delete(f"{BASE}/groups/nope?allowed=EURO").status_code == 404
    assert errors(c.delete(f"{BASE}/users/ivan")) == ["allowed"]


def test_validation(tenant: Tenant, other_tenant: Tenant) -> None:
    c = tenant.client
    # Only §14.5 codes and ALL: the "OUT" of 002's 14.1 example is not one of them.
    assert errors(c.post(f"{BASE}/main", json={"allowed": ["LOCAL", "OUT"]})) == ["allowed"]
    assert errors(c.post(f"{BASE}/main", json={"allowed": "RU"})) == ["allowed"]
    assert errors(c.post(f"{BASE}/main", json={})) == ["allowed"]
    assert errors(c.post(f"{BASE}/users", json=[{"login": "admin", "allowed": ["CIS"]},
                                                {"login": "ghost", "allowed": ["RU"]}])) == ["1.login"]
    assert errors(c.post(f"{BASE}/users", json=[{"login": "admin", "allowed": ["CIS"]},
                                                {"login": "ivan", "allowed": ["XX"]}])) == ["1.allowed"]
    assert errors(c.post(f"{BASE}/users", json=[{"login": "admin"}]))
    assert errors(c.post(f"{BASE}/groups", json=[{"id": "nope", "allowed": ["RU"]}])) == ["0.id"]
    assert errors(c.post(f"{BASE}/groups", json=[{"allowed": ["RU"]}]))
    assert c.get(BASE).json() == {"main": ["LOCAL", "RU", "179"], "users": [], "groups": []}  # all or nothing
    # Codes are case-insensitive and kept once.
    assert c.post(f"{BASE}/main", json={"allowed": ["cis", "CIS", "euro", "all"]}).status_code == 204
    assert c.get(BASE).json()["main"] == ["LOCAL", "RU", "179", "CIS", "EURO", "ALL"]
    assert other_tenant.client.get(BASE).json()["main"] == ["LOCAL", "RU", "179"]
    r = other_tenant.client.post("/crmapi/v1/users", json={"login": "stranger", "name": "Чужой"})
    assert r.status_code == 200
    assert errors(c.post(f"{BASE}/users", json=[{"login": "stranger", "allowed": ["RU"]}])) == ["0.login"]
    assert c.delete(f"{BASE}/users/stranger?allowed=RU").status_code == 404


def test_may_dial(tenant: Tenant, run: Callable[..., Any]) -> None:
    c = tenant.client
    # Default: at home, in Russia and to mobiles; not abroad.
    assert may_dial(run, "ivan", MOSCOW_FIXED) and may_dial(run, "ivan", MOBILE)
    assert not may_dial(run, "ivan", GERMANY) and not may_dial(run, "ivan", KAZAKHSTAN)
    c.post(f"{BASE}/users", json=[{"login": "ivan", "allowed": ["EURO"]}])
    assert may_dial(run, "ivan", GERMANY) and not may_dial(run, "maria", GERMANY)
    c.post(f"{BASE}/groups", json=[{"id": "support", "allowed": ["CIS"]}])
    assert may_dial(run, "sergey", KAZAKHSTAN) and may_dial(run, "user1", KAZAKHSTAN)
    assert not may_dial(run, "ivan", KAZAKHSTAN)
    c.delete(f"{BASE}/main?allowed=RU&allowed=179&allowed=LOCAL")
    assert not may_dial(run, "maria", MOBILE) and not may_dial(run, None, MOSCOW_FIXED)
    c.post(f"{BASE}/users", json=[{"login": "director", "allowed": ["ALL"]}])
    assert may_dial(run, "director", GERMANY) and may_dial(run, "director", "8816123456")
    c.post(f"{BASE}/main", json={"allowed": ["179"]})
    assert may_dial(run, "maria", MOBILE) and may_dial(run, "nobody", MOBILE)
    assert not may_dial(run, "maria", MOSCOW_FIXED)


def test_local_is_the_main_numbers_region(tenant: Tenant, run: Callable[..., Any],
                                          add_numbers: Callable[..., None]) -> None:
    c = tenant.client
    c.delete(f"{BASE}/main?allowed=RU&allowed=179")  # LOCAL only
    add_numbers("78127654321", "74959876543")
    assert c.post("/crmapi/v1/caller-ids/main", json={"telnum": "78127654321"}).status_code == 204
    assert may_dial(run, "ivan", "78121112233") and not may_dial(run, "ivan", MOSCOW_FIXED)
    assert c.post("/crmapi/v1/caller-ids/main", json={"telnum": "74959876543"}).status_code == 204
    assert may_dial(run, "ivan", MOSCOW_FIXED) and not may_dial(run, "ivan", "78121112233")
    assert not may_dial(run, "ivan", "73882123456")  # Altai: RU, not LOCAL


def test_deleted_employee_and_department(tenant: Tenant) -> None:
    c = tenant.client
    c.post(f"{BASE}/users", json=[{"login": "anna", "allowed": ["ASIA"]}, {"login": "admin", "allowed": []}])
    c.post(f"{BASE}/groups", json=[{"id": "hr", "allowed": ["AFR"]}, {"id": "sales", "allowed": ["NA"]}])
    assert c.delete("/crmapi/v1/users/anna").status_code == 204
    assert c.delete("/crmapi/v1/groups/hr").status_code == 204
    body = c.get(BASE).json()
    assert [u["login"] for u in body["users"]] == ["admin"]
    assert [g["id"] for g in body["groups"]] == ["sales"]


def test_rights(tenant: Tenant, client_with: Callable[..., httpx.Client]) -> None:
    reader = client_with("restrictions.get")
    assert reader.get(BASE).status_code == 200
    assert reader.post(f"{BASE}/main", json={"allowed": ["CIS"]}).status_code == 403
    assert client_with("callerids.get", "more.get").get(BASE).status_code == 403
    editor = client_with("restrictions.edit")
    assert editor.post(f"{BASE}/main", json={"allowed": ["CIS"]}).status_code == 204
    assert editor.post(f"{BASE}/users", json=[{"login": "admin", "allowed": ["CIS"]}]).status_code == 204
    assert editor.post(f"{BASE}/groups", json=[{"id": "hr", "allowed": ["CIS"]}]).status_code == 204
    assert editor.delete(f"{BASE}/main?allowed=CIS").status_code == 403
    deleter = client_with("restrictions.delete")
    assert deleter.delete(f"{BASE}/main?allowed=CIS").status_code == 204
    assert deleter.delete(f"{BASE}/users/admin?allowed=CIS").status_code == 204
    assert deleter.delete(f"{BASE}/groups/hr?allowed=CIS").status_code == 204
    assert deleter.get(BASE).status_code == 403
