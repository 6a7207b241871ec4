"""002 §18 webhook subscriptions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from vpbx.testing.server import Tenant

BASE = "/crmapi/v1/webhook"
SEED = [{"type": "sipregs_error", "url": "https://webhook.test/31db9d90-fa0c-493c-a468-886c2b702778"},
        {"type": "sipregs_error", "url": "https://webhook.test/sadsadsa-1321sda-sadsa1321sads-aaacxz"}]


def test_add_list_delete_seed_examples(tenant: Tenant) -> None:
    assert tenant.client.get(BASE).json() == []
    for body in SEED:
        r = tenant.client.post(BASE, json=body)
        assert r.status_code == 204 and r.content == b""
    listed = tenant.client.get(BASE).json()
    assert [{"type": i["type"], "url": i["url"]} for i in listed] == SEED
    for item in listed:
        assert set(item) == {"id", "type", "url"}
        uuid.UUID(item["id"])
    r = tenant.client.delete(f"{BASE}/{listed[0]['id']}")
    assert r.status_code == 204 and r.content == b""
    assert tenant.client.get(BASE).json() == listed[1:]
    assert tenant.client.delete(f"{BASE}/{listed[0]['id']}").json() == {"message": "Not found"}


def test_type_defaults_and_same_subscription_is_kept_once(tenant: Tenant) -> None:
    assert tenant.client.post(BASE, json={"url": "http://crm.example.com/hook"}).status_code == 204
    assert tenant.client.post(BASE, json={"url": "http://crm.example.com/hook",
                                          "type": "sipregs_error"}).status_code == 204
    assert tenant.client.get(BASE).json() == [
        {"id": tenant.client.get(BASE).json()[0]["id"], "type": "sipregs_error", "url": "http://crm.example.com/hook"}
    ]


@pytest.mark.parametrize(("body", "field"), [
    ({"url": ""}, "url"),  # left out is the CRM URL (tests/compat/test_webhook_crm_url.py); empty is not a URL
    ({"url": "ftp://crm.example.com/x"}, "url"),
    ({"url": "crm.example.com/x"}, "url"),
    ({"url": "https://"}, "url"),
    ({"url": "https://crm.example.com:99999/"}, "url"),
    ({"url": "https://crm.example.com/a b"}, "url"),
    ({"url": "https://crm.example.com/" + "x" * 2100}, "url"),
    ({"url": "https://crm.example.com/", "type": "calls"}, "type"),
])
def test_add_validation(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    r = tenant.client.post(BASE, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "Validation error"
    assert r.json()["errors"][0]["field"] == field
    assert tenant.client.get(BASE).json() == []


def test_delete_unknown(tenant: Tenant) -> None:
    assert tenant.client.delete(f"{BASE}/{uuid.uuid4()}").status_code == 404
    assert tenant.client.delete(f"{BASE}/not-a-uuid").status_code == 404


def test_rights(tenant: Tenant, role_client: Callable[[str], httpx.Client]) -> None:
    tenant.client.post(BASE, json=SEED[0])
    hook_id = tenant.client.get(BASE).json()[0]["id"]
    user = role_client("user")  # no "more" rights
    assert user.get(BASE).status_code == 403
    reader = role_client("group_head")  # more.get only
    assert reader.get(BASE).status_code == 200
    assert reader.post(BASE, json=SEED[1]).status_code == 403
    assert reader.delete(f"{BASE}/{hook_id}").status_code == 403
    assert len(tenant.client.get(BASE).json()) == 1


def test_tenant_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.client.post(BASE, json=SEED[0])
    hook_id = tenant.client.get(BASE).json()[0]["id"]
    assert other_tenant.client.get(BASE).json() == []
    assert other_tenant.client.delete(f"{BASE}/{hook_id}").status_code == 404
    assert other_tenant.client.post(BASE, json=SEED[0]).status_code == 204
    assert [i["id"] for i in tenant.client.get(BASE).json()] == [hook_id]
    assert other_tenant.client.get(BASE).json()[0]["id"] != hook_id
