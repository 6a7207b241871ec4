"""002 §16 SIP URI transfers."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.trunks.trunk_helpers import set_domain

from vpbx.testing.server import ServerThread, Tenant

BASE = "/crmapi/v1/sipuri-transfers"
URI_RE = re.compile(r"^pbx-[A-Za-z0-9]{16}@(?P<domain>.+)$")


def test_create_get_list_seed_examples(tenant: Tenant) -> None:
    r = tenant.client.post(BASE, json={"telnum": "79262005060", "active": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"telnum", "active", "uri"}
    assert body["telnum"] == "79262005060" and body["active"] is True
    m = URI_RE.match(body["uri"])
    assert m is not None and m.group("domain") == tenant.name
    assert tenant.client.get(f"{BASE}/79262005060").json() == body
    listing = tenant.client.get(BASE).json()
    assert listing == {"items": [body], "info": {"search": "", "start": 0, "limit": 1, "total": 1, "next": None}}


def test_defaults_and_update_seed(tenant: Tenant) -> None:
    created = tenant.client.post(BASE, json={"telnum": "74951904198"}).json()
    assert created["active"] is True  # the default
    r = tenant.client.put(f"{BASE}/74951904198", json={"active": False})
    assert r.status_code == 200
    assert r.json() == {**created, "active": False}
    r = tenant.client.put(f"{BASE}/+74951904198", json={"active": True})
    assert r.json() == {"telnum": "74951904198", "uri": created["uri"], "active": True}
    assert tenant.client.put(f"{BASE}/74951904198", json={}).json() == r.json()


def test_uris_are_unique_and_unguessable(tenant: Tenant) -> None:
    uris = {tenant.client.post(BASE, json={"telnum": f"7495190410{i}"}).json()["uri"] for i in range(5)}
    assert len(uris) == 5
    assert all(URI_RE.match(u) for u in uris)


def test_delete(tenant: Tenant) -> None:
    tenant.client.post(BASE, json={"telnum": "79262005060"})
    r = tenant.client.delete(f"{BASE}/79262005060")
    assert r.status_code == 204 and r.content == b""
    assert tenant.client.get(f"{BASE}/79262005060").status_code == 404
    assert tenant.client.delete(f"{BASE}/79262005060").status_code == 404


def test_search(tenant: Tenant) -> None:
    tenant.client.post(BASE, json={"telnum": "79262005060"})
    uri = tenant.client.post(BASE, json={"telnum": "74951904198"}).json()["uri"]
    assert [i["telnum"] for i in tenant.client.get(BASE, params={"search": "4951"}).json()["items"]] == \
        ["74951904198"]
    assert tenant.client.get(BASE, params={"search": uri[:12].upper()}).json()["info"]["total"] == 1


@pytest.mark.parametrize("body", [{}, {"telnum": "12"}, {"telnum": "x"}, {"telnum": "79262005060", "active": "x"}])
def test_create_validation(tenant: Tenant, body: dict[str, Any]) -> None:
    r = tenant.client.post(BASE, json=body)
    assert r.status_code == 400
    assert r.json()["message"] == "Validation error"
    assert r.json()["errors"][0]["field"] in ("telnum", "active")


def test_update_validation_and_not_found(tenant: Tenant) -> None:
    tenant.client.post(BASE, json={"telnum": "79262005060"})
    assert tenant.client.put(f"{BASE}/79262005060", json={"active": "perhaps"}).status_code == 400
    assert tenant.client.put(f"{BASE}/79990000000", json={"active": False}).status_code == 404
    # The URI is generated, never set.
    uri = tenant.client.get(f"{BASE}/79262005060").json()["uri"]
    assert tenant.client.put(f"{BASE}/79262005060", json={"uri": "pbx-mine@x"}).json()["uri"] == uri


def test_duplicate_and_sip_registration_clash(tenant: Tenant) -> None:
    assert tenant.client.post(BASE, json={"telnum": "79262005060"}).status_code == 200
    r = tenant.client.post(BASE, json={"telnum": "89262005060"})
    assert r.status_code == 400
    assert r.json()["errors"] == [{"field": "telnum", "message": "79262005060 already has a SIP URI transfer"}]
    r = tenant.client.post("/crmapi/v1/sip-registrations", json={"telnum": "79262005060", "name": "n",
                                                                 "domain": "d.ru", "login": "l", "password": "p"})
    assert r.status_code == 400


def test_limit_and_service(server: ServerThread, tenant: Tenant) -> None:
    set_domain(server, tenant.name, limit_local_gw=1)
    assert tenant.client.post(BASE, json={"telnum": "79262005060"}).status_code == 200
    r = tenant.client.post(BASE, json={"telnum": "74951904198"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "limits.local_gw"
    assert tenant.client.get("/crmapi/v1/domain").json()["limits"]["local_gw"] == {"used": 1, "total": 1}
    set_domain(server, tenant.name, limit_local_gw=-1, service_local_gw=False)
    assert tenant.client.post(BASE, json={"telnum": "74951904198"}).status_code == 403


def test_rights(tenant: Tenant, role_client: Callable[[str], httpx.Client]) -> None:
    tenant.client.post(BASE, json={"telnum": "79262005060"})
    user = role_client("user")
    assert user.get(BASE).status_code == 403
    reader = role_client("group_head")
    assert reader.get(BASE).status_code == 200
    assert reader.get(f"{BASE}/79262005060").status_code == 200
    assert reader.post(BASE, json={"telnum": "74951904198"}).status_code == 403
    assert reader.put(f"{BASE}/79262005060", json={"active": False}).status_code == 403
    assert reader.delete(f"{BASE}/79262005060").status_code == 403


def test_tenant_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    mine = tenant.client.post(BASE, json={"telnum": "79262005060"}).json()
    other = other_tenant.client
    assert other.get(BASE).json()["items"] == []
    assert other.get(f"{BASE}/79262005060").status_code == 404
    assert other.put(f"{BASE}/79262005060", json={"active": False}).status_code == 404
    assert other.delete(f"{BASE}/79262005060").status_code == 404
    theirs = other.post(BASE, json={"telnum": "79262005060"}).json()
    assert theirs["uri"] != mine["uri"] and theirs["uri"].endswith("@" + other_tenant.name)
    assert tenant.client.get(f"{BASE}/79262005060").json() == mine
