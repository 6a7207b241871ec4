"""002 §15 SIP registrations, the simulator's trunk status and §15.6 sipregs_error events."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.trunks.trunk_helpers import set_domain, stored_events

from vpbx.notify.payloads import build_body
from vpbx.secrets_store import box_for, secret_path
from vpbx.services import tenancy
from vpbx.store.tables.trunks import SipRegistration
from vpbx.testing.server import ServerThread, Tenant

BASE = "/crmapi/v1/sip-registrations"
SEED = {"telnum": "79262005060", "name": "Тест", "domain": "regtest.com", "login": "trunk-login",
        "password": "S3cr3t-Pa55-xyz"}
SEED_OUT = {"telnum": "79262005060", "name": "Тест", "active": True, "domain": "regtest.com", "expires": 600,
            "auth_name": "", "proxy": "", "status": "success", "outgoing": True}
PASSWORD = SEED["password"]


def add(client: httpx.Client, **over: Any) -> httpx.Response:
    return client.post(BASE, json={**SEED, **over})


def test_create_get_list_seed_examples(tenant: Tenant) -> None:
    r = add(tenant.client)
    assert r.status_code == 200, r.text
    assert r.json() == SEED_OUT
    assert tenant.client.get(f"{BASE}/79262005060").json() == SEED_OUT
    body = tenant.client.get(BASE).json()
    assert body["items"] == [SEED_OUT]
    assert body["info"] == {"search": "", "total": 1, "start": 0, "limit": 1, "next": None}


def test_create_with_every_field_and_update(tenant: Tenant) -> None:
    r = add(tenant.client, telnum="+7 (495) 190-41-98", active=False, auth_name="auth1", expires=120,
            proxy="sip:Proxy.Op.ru:5060", outgoing=False)
    assert r.status_code == 200, r.text
    assert r.json() == {"telnum": "74951904198", "name": "Тест", "active": False, "domain": "regtest.com",
                        "expires": 120, "auth_name": "auth1", "proxy": "proxy.op.ru:5060", "status": "disabled",
                        "outgoing": False}
    r = tenant.client.put(f"{BASE}/84951904198", json={"name": "Новый", "domain": "sip.other.ru", "active": True,
                                                        "expires": 300, "proxy": "", "outgoing": True,
                                                        "login": "l2", "password": "n3w-pass"})
    assert r.status_code == 200, r.text
    assert r.json() == {"telnum": "74951904198", "name": "Новый", "active": True, "domain": "sip.other.ru",
                        "expires": 300, "auth_name": "auth1", "proxy": "", "status": "success", "outgoing": True}
    # An empty body changes nothing.
    assert tenant.client.put(f"{BASE}/74951904198", json={}).json() == r.json()


def test_delete(tenant: Tenant) -> None:
    add(tenant.client)
    r = tenant.client.delete(f"{BASE}/79262005060")
    assert r.status_code == 204 and r.content == b""
    assert tenant.client.get(f"{BASE}/79262005060").status_code == 404
    assert tenant.client.delete(f"{BASE}/79262005060").json() == {"message": "Not found"}
    assert tenant.client.get(BASE).json()["info"]["total"] == 0


def test_search_and_paging(tenant: Tenant) -> None:
    add(tenant.client)
    add(tenant.client, telnum="74951904198", name="Второй", domain="sip.beeline.ru")
    add(tenant.client, telnum="74957770000", name="Третий", domain="regtest.com")
    assert [i["telnum"] for i in tenant.client.get(BASE, params={"search": "ВТОР"}).json()["items"]] == \
        ["74951904198"]
    assert tenant.client.get(BASE, params={"search": "regtest"}).json()["info"]["total"] == 2
    page = tenant.client.get(BASE, params={"start": 1, "limit": 1}).json()
    assert [i["telnum"] for i in page["items"]] == ["74951904198"]
    assert page["info"]["next"] == 2


@pytest.mark.parametrize(("body", "field"), [
    ({"telnum": None}, "telnum"),
    ({"telnum": "12"}, "telnum"),
    ({"telnum": "abc"}, "telnum"),
    ({"name": ""}, "name"),
    ({"name": None}, "name"),
    ({"domain": None}, "domain"),
    ({"domain": "bad host"}, "domain"),
    ({"domain": "a..b"}, "domain"),
    ({"domain": "host:70000"}, "domain"),
    ({"login": None}, "login"),
    ({"login": ""}, "login"),
    ({"password": None}, "password"),
    ({"password": ""}, "password"),
    ({"expires": 5}, "expires"),
    ({"expires": 100000}, "expires"),
    ({"expires": "soon"}, "expires"),
    ({"active": "maybe"}, "active"),
    ({"outgoing": "maybe"}, "outgoing"),
    ({"proxy": "not a host"}, "proxy"),
])
def test_create_validation(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    data = {k: v for k, v in {**SEED, **body}.items() if v is not None}
    r = tenant.client.post(BASE, json=data)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "Validation error"
    assert field in [e["field"] for e in r.json()["errors"]]
    assert PASSWORD not in r.text


def test_update_validation_and_not_found(tenant: Tenant) -> None:
    add(tenant.client)
    for body, field in (({"expires": 1}, "expires"), ({"domain": "x y"}, "domain"), ({"name": ""}, "name"),
                        ({"password": ""}, "password")):
        r = tenant.client.put(f"{BASE}/79262005060", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["errors"][0]["field"] == field
    assert tenant.client.put(f"{BASE}/79990000000", json={"name": "x"}).status_code == 404
    assert tenant.client.get(f"{BASE}/not-a-number").status_code == 400


def test_duplicate_number(tenant: Tenant) -> None:
    assert add(tenant.client).status_code == 200
    r = add(tenant.client, telnum="8 926 200 50 60")
    assert r.status_code == 400
    assert r.json()["errors"] == [{"field": "telnum", "message": "79262005060 already has a SIP registration"}]
    assert tenant.client.post("/crmapi/v1/sipuri-transfers", json={"telnum": "79262005060"}).status_code == 400


def test_limit_and_counter(server: ServerThread, tenant: Tenant) -> None:
    set_domain(server, tenant.name, limit_local_gw=2)
    assert add(tenant.client).status_code == 200
    assert tenant.client.post("/crmapi/v1/sipuri-transfers", json={"telnum": "74951904198"}).status_code == 200
    assert tenant.client.get("/crmapi/v1/domain").json()["limits"]["local_gw"] == {"used": 2, "total": 2}
    r = add(tenant.client, telnum="74957770000")
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "limits.local_gw"
    tenant.client.delete(f"{BASE}/79262005060")
    assert add(tenant.client, telnum="74957770000").status_code == 200
    set_domain(server, tenant.name, limit_local_gw=0)
    assert add(tenant.client, telnum="74957770001").status_code == 400


def test_service_off(server: ServerThread, tenant: Tenant) -> None:
    set_domain(server, tenant.name, service_local_gw=False)
    assert add(tenant.client).json() == {"message": "Don't have permission to access"}
    assert add(tenant.client).status_code == 403


def test_rights(tenant: Tenant, role_client: Callable[[str], httpx.Client]) -> None:
    add(tenant.client)
    user = role_client("user")  # no local_gw right at all
    assert user.get(BASE).status_code == 403
    assert user.get(f"{BASE}/79262005060").status_code == 403
    reader = role_client("group_head")  # every .get
    assert reader.get(BASE).status_code == 200
    assert reader.get(f"{BASE}/79262005060").status_code == 200
    assert add(reader, telnum="74951904198").status_code == 403
    assert reader.put(f"{BASE}/79262005060", json={"name": "x"}).status_code == 403
    assert reader.delete(f"{BASE}/79262005060").status_code == 403
    assert tenant.client.get(BASE, headers={"X-API-KEY": "wrong-key-0123456789"}).status_code == 401


def test_custom_role_rights(server: ServerThread, tenant: Tenant) -> None:
    async def work() -> str:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
            role = await tenancy.create_role(session, domain, "trunks", ["local_gw.get", "local_gw.create"])
            key = await tenancy.create_key(session, domain, server.runtime.clock.now(), role=role.role_id)
            await session.commit()
            return key

    with httpx.Client(base_url=server.url, headers={"X-API-KEY": server.call(work())}) as c:
        assert add(c).status_code == 200
        assert c.get(BASE).status_code == 200
        assert c.put(f"{BASE}/79262005060", json={"name": "x"}).status_code == 403
        assert c.delete(f"{BASE}/79262005060").status_code == 403


def test_tenant_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    add(tenant.client)
    other = other_tenant.client
    assert other.get(BASE).json()["items"] == []
    assert other.get(f"{BASE}/79262005060").status_code == 404
    assert other.put(f"{BASE}/79262005060", json={"name": "x"}).status_code == 404
    assert other.delete(f"{BASE}/79262005060").status_code == 404
    # The same number is another tenant's own business.
    assert add(other, name="Чужой").status_code == 200
    assert tenant.client.get(f"{BASE}/79262005060").json()["name"] == "Тест"
    assert [i["name"] for i in other.get(BASE).json()["items"]] == ["Чужой"]


def test_password_is_write_only_encrypted_and_never_logged(server: ServerThread, tenant: Tenant,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts = [add(tenant.client).text, tenant.client.get(BASE).text, tenant.client.get(f"{BASE}/79262005060").text,
             tenant.client.put(f"{BASE}/79262005060", json={"password": PASSWORD + "2"}).text,
             tenant.client.post(BASE, json={**SEED, "telnum": "bad"}).text,
             tenant.client.put(f"{BASE}/79262005060", json={"password": PASSWORD, "expires": -1}).text,
             tenant.client.get("/openapi.json").text]
    for text in texts:
        assert PASSWORD not in text
        assert "password" not in text or text.startswith("{\"openapi\"") or "errors" in text
    assert PASSWORD not in caplog.text

    async def stored() -> tuple[str, str]:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
            row = await session.scalar(select(SipRegistration).where(SipRegistration.domain_id == domain.id,
                                                                     SipRegistration.telnum == "79262005060"))
            assert row is not None
            return row.password_sealed, box_for(server.settings).open(row.password_sealed)

    sealed, plain = server.call(stored())
    assert PASSWORD not in sealed
    assert plain == PASSWORD + "2"  # the update took


def test_server_secret_is_generated_once_with_mode_0600(server: ServerThread, tenant: Tenant) -> None:
    add(tenant.client)
    assert not server.settings.secret
    path = secret_path(server.settings.home)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first = path.read_text()
    add(tenant.client, telnum="74951904198")
    assert path.read_text() == first


# --- the simulator and sipregs_error ---------------------------------------------------------

SIM = "/sim/v1/sip-registrations"
HOOK = {"type": "sipregs_error", "url": "https://webhook.test/31db9d90-fa0c-493c-a468-886c2b702778"}


def test_sim_status_shows_in_the_api(tenant: Tenant) -> None:
    add(tenant.client)
    r = tenant.client.put(f"{SIM}/79262005060", json={"status": "auth_failed"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "auth_failed"
    assert tenant.client.get(f"{BASE}/79262005060").json()["status"] == "auth_failed"
    assert tenant.client.get(BASE).json()["items"][0]["status"] == "auth_failed"
    tenant.client.put(f"{SIM}/79262005060", json={"status": "success"})
    assert tenant.client.get(f"{BASE}/79262005060").json()["status"] == "success"
    # Deleted and added again: starts afresh.
    tenant.client.put(f"{SIM}/79262005060", json={"status": "timeout"})
    tenant.client.delete(f"{BASE}/79262005060")
    assert add(tenant.client).json()["status"] == "success"


def test_sim_validation_auth_and_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    add(tenant.client)
    assert tenant.client.put(f"{SIM}/79262005060", json={"status": "bogus"}).status_code == 400
    assert tenant.client.put(f"{SIM}/79262005060", json={}).status_code == 400
    assert tenant.client.put(f"{SIM}/79262005060", json={"status": "error"},
                             headers={"X-API-KEY": ""}).status_code == 401
    assert tenant.client.put(f"{SIM}/79990000000", json={"status": "error"}).status_code == 404
    assert other_tenant.client.put(f"{SIM}/79262005060", json={"status": "error"}).status_code == 404
    assert tenant.client.get(f"{BASE}/79262005060").json()["status"] == "success"


def test_failure_emits_sipregs_error(server: ServerThread, tenant: Tenant, other_tenant: Tenant) -> None:
    assert tenant.client.post("/crmapi/v1/webhook", json=HOOK).status_code == 204
    second = {"url": "http://crm.example.com/hooks"}  # type defaults to sipregs_error
    assert tenant.client.post("/crmapi/v1/webhook", json=second).status_code == 204
    other_tenant.client.post("/crmapi/v1/webhook", json=HOOK)
    add(tenant.client)
    add(other_tenant.client)
    assert stored_events(server, tenant.name) == []

    tenant.client.put(f"{SIM}/79262005060", json={"status": "waiting"})  # not a failure
    assert stored_events(server, tenant.name) == []
    tenant.client.put(f"{SIM}/79262005060", json={"status": "auth_failed"})
    events = stored_events(server, tenant.name)
    assert sorted(e["url"] for e in events) == sorted([HOOK["url"], second["url"]])
    for e in events:
        assert e["type"] == "sipregs_error"
        assert e["payload"] == {"telnum": "79262005060", "name": "Тест", "domain": "regtest.com"}
        assert PASSWORD not in str(e["payload"])
    assert len({e["event_id"] for e in events}) == 2
    # Each event is in the notifier's outbox, addressed to its subscription.
    queued = tenant.client.get("/sim/v1/deliveries", params={"command": "webhook"}).json()
    assert queued["info"]["total"] == 2, queued
    assert sorted(d["url"] for d in queued["items"]) == sorted([HOOK["url"], second["url"]])
    # The notifier's body (002 §18.4).
    body, ctype = build_body(events[0]["notice"], crm_token="tok", dialect="json")
    assert ctype == "application/json"
    import json
    assert json.loads(body) == {"cmd": "webhook", "crm_token": "tok", "type": "sipregs_error",
                                "id": events[0]["event_id"],
                                "data": {"telnum": "79262005060", "name": "Тест", "domain": "regtest.com"}}

    # Still failing in the same way: no new event; another failure or a relapse: a new one.
    tenant.client.put(f"{SIM}/79262005060", json={"status": "auth_failed"})
    assert len(stored_events(server, tenant.name)) == 2
    tenant.client.put(f"{SIM}/79262005060", json={"status": "timeout"})
    assert len(stored_events(server, tenant.name)) == 4
    tenant.client.put(f"{SIM}/79262005060", json={"status": "success"})
    tenant.client.put(f"{SIM}/79262005060", json={"status": "error"})
    assert len(stored_events(server, tenant.name)) == 6
    assert stored_events(server, other_tenant.name) == []  # the other tenant's trunk is fine


def test_no_event_without_subscription_or_when_inactive(server: ServerThread, tenant: Tenant) -> None:
    add(tenant.client)
    tenant.client.put(f"{SIM}/79262005060", json={"status": "error"})
    assert stored_events(server, tenant.name) == []
    tenant.client.post("/crmapi/v1/webhook", json=HOOK)
    add(tenant.client, telnum="74951904198", active=False)
    tenant.client.put(f"{SIM}/74951904198", json={"status": "error"})
    assert stored_events(server, tenant.name) == []
    # Deleting the subscription drops its undelivered events.
    tenant.client.put(f"{SIM}/79262005060", json={"status": "success"})
    tenant.client.put(f"{SIM}/79262005060", json={"status": "error"})
    assert len(stored_events(server, tenant.name)) == 1
    hook_id = tenant.client.get("/crmapi/v1/webhook").json()[0]["id"]
    tenant.client.delete(f"/crmapi/v1/webhook/{hook_id}")
    assert stored_events(server, tenant.name) == []
