"""002 §17 connections to other PBXs, with a real sync between two tenants over loopback HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.trunks.trunk_helpers import set_domain

from vpbx.secrets_store import SecretBox
from vpbx.services import branches as branch_service
from vpbx.services import tenancy
from vpbx.store.tables.trunks import Branch
from vpbx.testing.server import ServerThread, Tenant

BASE = "/crmapi/v1/branches"
SEED = {"domain": "example1.com", "name": "Дочерний филиал", "key": "161aeb17-be58-43e8-be9f-5eceabfe2e5c"}
SEED_OUT = {"name": "Дочерний филиал", "domain": "example1.com", "status": "waiting", "users_count": 0,
            "groups_count": 0, "exts_count": 0, "collisions_count": 0, "url": None, "error": None}


def key_for(server: ServerThread, domain_name: str, role: str | None = None) -> str:
    async def work() -> str:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, domain_name)
            key = await tenancy.create_key(session, domain, server.runtime.clock.now(), role=role)
            await session.commit()
            return key

    return server.call(work())


def connect(tenant: Tenant, other: Tenant, server: ServerThread, key: str | None = None) -> httpx.Response:
    return tenant.client.post(BASE, json={"domain": other.name, "name": "Филиал", "key": key or other.api_key,
                                          "url": server.url})


def test_create_get_list_seed_examples(tenant: Tenant) -> None:
    r = tenant.client.post(BASE, json=SEED)
    assert r.status_code == 200, r.text
    assert r.json() == SEED_OUT
    assert tenant.client.get(f"{BASE}/example1.com").json() == SEED_OUT
    assert tenant.client.get(f"{BASE}/EXAMPLE1.com").json() == SEED_OUT
    assert tenant.client.get(BASE).json() == {"items": [SEED_OUT], "info": {"search": "", "start": 0, "limit": 1,
                                                                            "total": 1, "next": None}}
    # The misspelt prefix of 002 §17.2-17.3 works too.
    assert tenant.client.get(f"/crmpapi/v1/branches/{SEED['domain']}").json() == SEED_OUT


def test_search(tenant: Tenant) -> None:
    tenant.client.post(BASE, json=SEED)
    tenant.client.post(BASE, json={**SEED, "domain": "example2.com", "name": "Склад"})
    assert [i["domain"] for i in tenant.client.get(BASE, params={"search": "склад"}).json()["items"]] == \
        ["example2.com"]
    assert tenant.client.get(BASE, params={"search": "example"}).json()["info"]["total"] == 2


def test_real_sync_between_two_tenants(server: ServerThread, tenant: Tenant, other_tenant: Tenant,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(branch_service, "PAGE_SIZE", 3)  # make the sync follow several pages
    assert other_tenant.client.post("/crmapi/v1/users", json={"name": "Новый", "ext": "850"}).status_code == 200
    assert tenant.client.delete("/crmapi/v1/users/dmitry").status_code == 204  # frees 712 here
    r = connect(tenant, other_tenant, server)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "waiting" and r.json()["url"] == server.url
    r = tenant.client.post(f"{BASE}/{other_tenant.name}/sync")
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "Филиал", "domain": other_tenant.name, "status": "success", "users_count": 11,
                        "groups_count": 3, "exts_count": 14, "collisions_count": 12, "url": server.url,
                        "error": None}
    assert tenant.client.get(f"{BASE}/{other_tenant.name}").json() == r.json()

    async def directory() -> dict[str, Any]:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
            return (await branch_service.get(session, domain.id, other_tenant.name)).directory

    stored = server.call(directory())
    assert {u["login"] for u in stored["users"]} >= {"admin", "u850"}
    assert {g["id"] for g in stored["groups"]} == {"sales", "support", "hr"}

    # The other side changes; a new sync sees it.
    other_tenant.client.delete("/crmapi/v1/users/u850")
    r = tenant.client.post(f"{BASE}/{other_tenant.name}/sync").json()
    assert (r["users_count"], r["exts_count"], r["collisions_count"]) == (10, 13, 12)


def test_wrong_key_fails_with_a_reason(server: ServerThread, tenant: Tenant, other_tenant: Tenant) -> None:
    connect(tenant, other_tenant, server, key="not-the-right-key-0123456789")
    r = tenant.client.post(f"{BASE}/{other_tenant.name}/sync")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "invalid_key"
    assert "401" in body["error"] and "Invalid token" in body["error"]
    assert (body["users_count"], body["groups_count"], body["exts_count"], body["collisions_count"]) == (0, 0, 0, 0)
    # Fixing the key resets to waiting; the next sync succeeds.
    r = tenant.client.put(f"{BASE}/{other_tenant.name}", json={"key": other_tenant.api_key})
    assert r.json()["status"] == "waiting" and r.json()["error"] is None
    assert tenant.client.post(f"{BASE}/{other_tenant.name}/sync").json()["status"] == "success"
    # A revoked key fails again, keeping the last counts.
    tenant.client.put(f"{BASE}/{other_tenant.name}", json={"key": "still-not-the-key-0123456789"})
    failed = tenant.client.post(f"{BASE}/{other_tenant.name}/sync").json()
    assert failed["status"] == "invalid_key" and failed["users_count"] == 0


def test_key_lacking_rights_is_forbidden(server: ServerThread, tenant: Tenant, other_tenant: Tenant) -> None:
    connect(tenant, other_tenant, server, key=key_for(server, other_tenant.name, role="restricted_user"))
    body = tenant.client.post(f"{BASE}/{other_tenant.name}/sync").json()
    assert body["status"] == "forbidden"
    assert "403" in body["error"]


def test_unreachable_and_not_a_pbx(server: ServerThread, tenant: Tenant) -> None:
    tenant.client.post(BASE, json={**SEED, "url": "http://127.0.0.1:1"})
    body = tenant.client.post(f"{BASE}/example1.com/sync").json()
    assert body["status"] == "unreachable" and body["error"]
    tenant.client.put(f"{BASE}/example1.com", json={"url": f"{server.url}/nothing-here"})
    body = tenant.client.post(f"{BASE}/example1.com/sync").json()
    assert body["status"] == "error" and "404" in body["error"]


async def test_default_url_host_header_and_paging() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        start = int(request.url.params["start"])
        if request.url.path.endswith("/users"):
            items = [{"login": f"u{i}", "name": "n", "ext": str(800 + i)} for i in range(start, min(start + 2, 3))]
            nxt = start + 2 if start + 2 < 3 else None
            return httpx.Response(200, json={"items": items, "info": {"next": nxt}})
        return httpx.Response(200, json={"items": [{"id": "g", "name": "G", "ext": "800"}], "info": {"next": None}})

    box = SecretBox("test-secret")
    b = Branch(remote_domain="example1.com", url=None, key_sealed=box.seal("k-123"))
    target = branch_service.target(b, box)
    assert target.base_url == "https://example1.com"
    assert "k-123" not in repr(target)
    old = branch_service.PAGE_SIZE
    branch_service.PAGE_SIZE = 2
    try:
        result = await branch_service.fetch_directory(target, private_ok=False, transport=httpx.MockTransport(handler))
    finally:
        branch_service.PAGE_SIZE = old
    assert result.status == "success"
    assert [u["login"] for u in result.users] == ["u0", "u1", "u2"]
    assert [g["ext"] for g in result.groups] == ["800"]
    assert all(str(r.url).startswith("https://example1.com/crmapi/v1/") for r in seen)
    assert all(r.headers["host"] == "example1.com" and r.headers["x-api-key"] == "k-123" for r in seen)
    assert len(seen) == 3


async def test_private_addresses_refused_unless_allowed() -> None:
    target = branch_service.SyncTarget("example1.com", "http://127.0.0.1:9", "k")
    result = await branch_service.fetch_directory(target, private_ok=False)
    assert result.status == "error" and "private" in (result.error or "")
    target = branch_service.SyncTarget("example1.com", "http://localhost:9", "k")
    assert (await branch_service.fetch_directory(target, private_ok=False)).status == "error"
    # A key sealed under another secret reads as no key.
    b = Branch(remote_domain="example1.com", url=None, key_sealed=SecretBox("one").seal("k"))
    assert (await branch_service.fetch_directory(branch_service.target(b, SecretBox("two")),
                                                 private_ok=True)).status == "invalid_key"


def test_key_is_never_returned(server: ServerThread, tenant: Tenant, other_tenant: Tenant) -> None:
    texts = [connect(tenant, other_tenant, server).text, tenant.client.get(BASE).text,
             tenant.client.get(f"{BASE}/{other_tenant.name}").text,
             tenant.client.post(f"{BASE}/{other_tenant.name}/sync").text,
             tenant.client.put(f"{BASE}/{other_tenant.name}", json={"name": "x"}).text]
    for text in texts:
        assert other_tenant.api_key not in text


@pytest.mark.parametrize(("body", "field"), [
    ({"domain": None}, "domain"),
    ({"domain": "bad host"}, "domain"),
    ({"domain": "example1.com:8080"}, "domain"),
    ({"name": None}, "name"),
    ({"name": ""}, "name"),
    ({"key": None}, "key"),
    ({"key": "  "}, "key"),
    ({"url": "ftp://example1.com"}, "url"),
    ({"url": "example1.com"}, "url"),
])
def test_create_validation(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    data = {k: v for k, v in {**SEED, **body}.items() if v is not None}
    r = tenant.client.post(BASE, json=data)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == field
    assert SEED["key"] not in r.text


def test_own_domain_and_duplicates(tenant: Tenant) -> None:
    r = tenant.client.post(BASE, json={**SEED, "domain": tenant.name})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "domain"
    assert tenant.client.post(BASE, json=SEED).status_code == 200
    assert tenant.client.post(BASE, json={**SEED, "domain": "Example1.COM"}).status_code == 400
    tenant.client.post(BASE, json={**SEED, "domain": "example2.com"})
    r = tenant.client.put(f"{BASE}/example2.com", json={"domain": "example1.com"})
    assert r.status_code == 400


def test_update(tenant: Tenant, server: ServerThread, other_tenant: Tenant) -> None:
    connect(tenant, other_tenant, server)
    assert tenant.client.post(f"{BASE}/{other_tenant.name}/sync").json()["status"] == "success"
    # Renaming keeps the sync; the seed's PUT body (same domain and key) changes only the name.
    r = tenant.client.put(f"{BASE}/{other_tenant.name}", json={"domain": other_tenant.name, "name": "Дочерний филиал",
                                                               "key": other_tenant.api_key})
    assert r.status_code == 200
    assert r.json()["name"] == "Дочерний филиал" and r.json()["status"] == "success"
    # Another domain: waiting again, under its new path.
    r = tenant.client.put(f"{BASE}/{other_tenant.name}", json={"domain": "example3.com"})
    assert r.json()["domain"] == "example3.com" and r.json()["status"] == "waiting"
    assert r.json()["users_count"] == 0
    assert tenant.client.get(f"{BASE}/{other_tenant.name}").status_code == 404
    r = tenant.client.put(f"{BASE}/example3.com", json={"url": ""})
    assert r.json()["url"] is None
    assert tenant.client.put(f"{BASE}/example3.com", json={"name": ""}).status_code == 400
    assert tenant.client.put(f"{BASE}/nowhere.com", json={"name": "x"}).status_code == 404
    assert tenant.client.post(f"{BASE}/nowhere.com/sync").status_code == 404


def test_delete(tenant: Tenant) -> None:
    tenant.client.post(BASE, json=SEED)
    r = tenant.client.delete(f"{BASE}/example1.com")
    assert r.status_code == 204 and r.content == b""
    assert tenant.client.get(f"{BASE}/example1.com").status_code == 404
    assert tenant.client.delete(f"{BASE}/example1.com").status_code == 404


def test_service_off(server: ServerThread, tenant: Tenant) -> None:
    set_domain(server, tenant.name, service_branch=False)
    assert tenant.client.post(BASE, json=SEED).status_code == 403


def test_rights(tenant: Tenant, role_client: Callable[[str], httpx.Client]) -> None:
    tenant.client.post(BASE, json=SEED)
    user = role_client("user")
    assert user.get(BASE).status_code == 403
    assert user.get(f"{BASE}/example1.com").status_code == 403
    reader = role_client("group_head")
    assert reader.get(BASE).status_code == 200
    assert reader.post(BASE, json={**SEED, "domain": "example2.com"}).status_code == 403
    assert reader.put(f"{BASE}/example1.com", json={"name": "x"}).status_code == 403
    assert reader.post(f"{BASE}/example1.com/sync").status_code == 403
    assert reader.delete(f"{BASE}/example1.com").status_code == 403


def test_tenant_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.client.post(BASE, json=SEED)
    other = other_tenant.client
    assert other.get(BASE).json()["items"] == []
    assert other.get(f"{BASE}/example1.com").status_code == 404
    assert other.put(f"{BASE}/example1.com", json={"name": "x"}).status_code == 404
    assert other.post(f"{BASE}/example1.com/sync").status_code == 404
    assert other.delete(f"{BASE}/example1.com").status_code == 404
    assert other.post(BASE, json=SEED).status_code == 200
    assert tenant.client.get(f"{BASE}/example1.com").json()["name"] == SEED["name"]
