"""002 §12.5 call recording, §12.7 secretary console (BLF), §12.8 company answering machine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.services import settings
from vpbx.testing.server import Tenant


def errors(r: httpx.Response) -> list[str]:
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "Validation error"
    return [e["field"] for e in r.json()["errors"]]


def add_user(client: httpx.Client, login: str, name: str) -> None:
    r = client.post("/crmapi/v1/users", json={"login": login, "name": name})
    assert r.status_code == 200, r.text


# --- §12.5 -------------------------------------------------------------------------------------

def test_record_defaults(tenant: Tenant) -> None:
    r = tenant.client.get("/crmapi/v1/record")
    assert r.status_code == 200
    assert r.json() == {"external": True, "inner": False, "users_exception": []}


def test_record_seed_example(tenant: Tenant, run: Callable[..., Any]) -> None:
    assert tenant.client.put("/crmapi/v1/record", json={"inner": True}).status_code == 204
    r = tenant.client.post("/crmapi/v1/record/users-exception", json=["admin", "director"])
    assert r.status_code == 204
    assert tenant.client.get("/crmapi/v1/record").json() == {
        "external": True,
        "inner": True,
        "users_exception": [{"login": "admin", "name": "Администратор"}, {"login": "director", "name": "Директор"}],
    }

    async def config(session: AsyncSession, domain_id: int) -> settings.RecordConfig:
        return await settings.record_config(session, domain_id)

    cfg = run(config)
    assert cfg.records(external=True, logins=["ivan"])
    assert not cfg.records(external=True, logins=["ivan", "admin"])
    assert cfg.records(external=False, logins=["ivan", "maria"])
    tenant.client.put("/crmapi/v1/record", json={"external": False, "inner": False})
    cfg = run(config)
    assert not cfg.records(external=True, logins=["ivan"]) and not cfg.records(external=False, logins=["ivan"])
    assert tenant.client.get("/crmapi/v1/record").json()["external"] is False

    # The 12.5 example query removes both; admin twice and by extension are fine.
    r = tenant.client.delete("/crmapi/v1/record/users-exception?user=admin&user=director")
    assert r.status_code == 204
    assert tenant.client.get("/crmapi/v1/record").json()["users_exception"] == []


def test_record_exceptions_validation(tenant: Tenant, other_tenant: Tenant) -> None:
    add_user(other_tenant.client, "stranger", "Чужой")
    assert errors(tenant.client.post("/crmapi/v1/record/users-exception", json=["admin", "nobody"])) == ["users"]
    assert errors(tenant.client.post("/crmapi/v1/record/users-exception", json=["stranger"])) == ["users"]
    assert errors(tenant.client.post("/crmapi/v1/record/users-exception", json={"login": "admin"})) == ["body"]
    assert errors(tenant.client.post("/crmapi/v1/record/users-exception", json=[""])) == ["users"]
    assert tenant.client.get("/crmapi/v1/record").json()["users_exception"] == []  # all or nothing
    # By extension, twice: one entry.
    assert tenant.client.post("/crmapi/v1/record/users-exception", json=["701", "admin"]).status_code == 204
    assert tenant.client.post("/crmapi/v1/record/users-exception", json=["admin"]).status_code == 204
    assert [u["login"] for u in tenant.client.get("/crmapi/v1/record").json()["users_exception"]] == ["admin"]
    assert errors(tenant.client.delete("/crmapi/v1/record/users-exception?user=nobody")) == ["user"]
    assert errors(tenant.client.put("/crmapi/v1/record", json={"inner": "maybe"})) == ["inner"]
    # Without users nothing is removed.
    assert tenant.client.delete("/crmapi/v1/record/users-exception").status_code == 204
    assert len(tenant.client.get("/crmapi/v1/record").json()["users_exception"]) == 1
    assert other_tenant.client.get("/crmapi/v1/record").json()["users_exception"] == []


# --- §12.7 -------------------------------------------------------------------------------------

def test_blf_seed_examples(tenant: Tenant) -> None:
    assert tenant.client.get("/crmapi/v1/blf/users").json() == []
    add_user(tenant.client, "user2", "Секретарь")
    assert tenant.client.post("/crmapi/v1/blf/users", json=["admin", "user2"]).status_code == 204
    assert tenant.client.get("/crmapi/v1/blf/users").json() == [
        {"login": "admin", "name": "Администратор"}, {"login": "user2", "name": "Секретарь"}]
    add_user(tenant.client, "user3", "Третий")
    add_user(tenant.client, "user4", "Четвёртый")
    assert tenant.client.post("/crmapi/v1/blf/users", json=["user3", "user4"]).status_code == 204
    assert [u["login"] for u in tenant.client.get("/crmapi/v1/blf/users").json()] == [
        "admin", "user2", "user3", "user4"]
    # 12.7 example query shape; comma-separated works too.
    assert tenant.client.delete("/crmapi/v1/blf/users?user=admin&user=user2").status_code == 204
    assert tenant.client.delete("/crmapi/v1/blf/users?user=user3,user4").status_code == 204
    assert tenant.client.get("/crmapi/v1/blf/users").json() == []


def test_blf_validation_and_deleted_employee(tenant: Tenant) -> None:
    assert errors(tenant.client.post("/crmapi/v1/blf/users", json=["ivan", "ghost", "phantom"])) == ["users"]
    r = tenant.client.post("/crmapi/v1/blf/users", json=["ghost"])
    assert "ghost" in r.json()["errors"][0]["message"]
    assert errors(tenant.client.post("/crmapi/v1/blf/users", json="ivan")) == ["body"]
    assert errors(tenant.client.delete("/crmapi/v1/blf/users?user=ghost")) == ["user"]
    tenant.client.post("/crmapi/v1/blf/users", json=["ivan", "maria"])
    tenant.client.post("/crmapi/v1/record/users-exception", json=["ivan"])
    tenant.client.post("/crmapi/v1/am/users", json=["ivan"])
    assert tenant.client.delete("/crmapi/v1/users/ivan").status_code == 204
    assert [u["login"] for u in tenant.client.get("/crmapi/v1/blf/users").json()] == ["maria"]
    assert tenant.client.get("/crmapi/v1/record").json()["users_exception"] == []
    assert tenant.client.get("/crmapi/v1/am").json()["users"] == []
    # A new employee under the old login is not on the lists.
    add_user(tenant.client, "ivan", "Другой Иван")
    assert [u["login"] for u in tenant.client.get("/crmapi/v1/blf/users").json()] == ["maria"]


def test_blf_rights(tenant: Tenant, client_with: Callable[..., httpx.Client]) -> None:
    reader = client_with("more.get")
    assert reader.get("/crmapi/v1/blf/users").status_code == 200
    assert reader.post("/crmapi/v1/blf/users", json=["admin"]).status_code == 403
    assert reader.delete("/crmapi/v1/blf/users?user=admin").status_code == 403
    editor = client_with("more.edit")
    assert editor.post("/crmapi/v1/blf/users", json=["admin"]).status_code == 204
    assert editor.put("/crmapi/v1/record", json={"inner": True}).status_code == 204
    assert editor.post("/crmapi/v1/record/users-exception", json=["admin"]).status_code == 204
    assert editor.delete("/crmapi/v1/blf/users?user=admin").status_code == 403
    assert editor.get("/crmapi/v1/record").status_code == 403
    deleter = client_with("more.delete")
    assert deleter.delete("/crmapi/v1/blf/users?user=admin").status_code == 204
    assert deleter.delete("/crmapi/v1/record/users-exception?user=admin").status_code == 204
    assert tenant.client.get("/crmapi/v1/blf/users").json() == []


def test_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.client.post("/crmapi/v1/blf/users", json=["admin"])
    tenant.client.post("/crmapi/v1/am/groups", json=["sales"])
    tenant.client.put("/crmapi/v1/am", json={"all": True})
    assert other_tenant.client.get("/crmapi/v1/blf/users").json() == []
    assert other_tenant.client.get("/crmapi/v1/am").json() == {"all": False, "users": [], "groups": [], "email": ""}
    # The other tenant's removal of its own "admin" does not touch ours.
    assert other_tenant.client.delete("/crmapi/v1/blf/users?user=admin").status_code == 204
    assert tenant.client.get("/crmapi/v1/blf/users").json() == [{"login": "admin", "name": "Администратор"}]


# --- §12.8 -------------------------------------------------------------------------------------

def test_am_seed_example(tenant: Tenant) -> None:
    assert tenant.client.get("/crmapi/v1/am").json() == {"all": False, "users": [], "groups": [], "email": ""}
    assert tenant.client.post("/crmapi/v1/am/users", json=["admin", "director"]).status_code == 204
    # 002 spells these paths /crmpapi/: both are served.
    assert tenant.client.post("/crmpapi/v1/am/groups", json=["sales"]).status_code == 204
    assert tenant.client.get("/crmapi/v1/am").json() == {
        "all": False,
        "users": [{"login": "admin", "name": "Администратор"}, {"login": "director", "name": "Директор"}],
        "groups": [{"id": "sales", "name": "Отдел продаж"}],
        "email": "",
    }
    assert tenant.client.post("/crmapi/v1/am/groups", json=["support", "706"]).status_code == 204
    assert [g["id"] for g in tenant.client.get("/crmapi/v1/am").json()["groups"]] == ["sales", "support", "hr"]
    assert tenant.client.delete("/crmpapi/v1/am/users?user=admin&user=director").status_code == 204
    assert tenant.client.delete("/crmpapi/v1/am/groups?group=sales&group=support").status_code == 204
    body = tenant.client.get("/crmapi/v1/am").json()
    assert body["users"] == [] and body["groups"] == [{"id": "hr", "name": "Отдел кадров"}]


def test_am_switches(tenant: Tenant) -> None:
    assert tenant.client.put("/crmapi/v1/am", json={"all": True, "email": "boss@example.com"}).status_code == 204
    body = tenant.client.get("/crmapi/v1/am").json()
    assert body["all"] is True and body["email"] == "boss@example.com"
    assert tenant.client.put("/crmapi/v1/am", json={"email": ""}).status_code == 204
    assert tenant.client.get("/crmapi/v1/am").json()["email"] == "" and tenant.client.get(
        "/crmapi/v1/am").json()["all"] is True
    assert errors(tenant.client.put("/crmapi/v1/am", json={"email": "not-an-email"})) == ["email"]


def test_am_validation_and_deleted_department(tenant: Tenant) -> None:
    assert errors(tenant.client.post("/crmapi/v1/am/groups", json=["sales", "nope"])) == ["groups"]
    assert errors(tenant.client.post("/crmapi/v1/am/users", json=["nobody"])) == ["users"]
    assert errors(tenant.client.delete("/crmapi/v1/am/groups?group=nope")) == ["group"]
    assert errors(tenant.client.delete("/crmapi/v1/am/users?user=nobody")) == ["user"]
    assert tenant.client.get("/crmapi/v1/am").json()["groups"] == []
    tenant.client.post("/crmapi/v1/am/groups", json=["sales", "hr"])
    assert tenant.client.delete("/crmapi/v1/groups/sales").status_code == 204
    assert tenant.client.get("/crmapi/v1/am").json()["groups"] == [{"id": "hr", "name": "Отдел кадров"}]
