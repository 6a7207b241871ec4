"""``/sim/v1/deliveries`` on the shared test server: the log, filters, replay, the diagnostics load."""

from __future__ import annotations

from tests.notify.conftest import Receiver

from vpbx.testing.server import ServerThread, Tenant


def point_crm(server: ServerThread, tenant: Tenant, url: str) -> None:
    from vpbx.services import tenancy

    async def work() -> None:
        async with server.runtime.sessions() as s:
            await tenancy.set_integration(s, await tenancy.get_domain(s, tenant.name), crm_url=url, crm_token="tk")
            await s.commit()

    server.call(work())


def test_delivery_log_and_replay(server: ServerThread, tenant: Tenant, other_tenant: Tenant,
                                 receiver: Receiver) -> None:
    point_crm(server, tenant, receiver.url)
    r = tenant.client.post("/sim/v1/deliveries/test", json={"count": 5})
    assert r.status_code == 201, r.text
    ids = r.json()["ids"]
    assert len(ids) == 5
    assert receiver.wait_for(lambda: len(receiver.hits) >= 5)
    assert {h.headers["webhook-id"] for h in receiver.hits} == set(ids)

    def delivered() -> bool:
        return tenant.client.get("/sim/v1/deliveries", params={"state": "delivered"}).json()["info"]["total"] == 5

    assert receiver.wait_for(delivered)
    body = tenant.client.get("/sim/v1/deliveries", params={"command": "event", "limit": 2}).json()
    assert body["info"]["total"] == 5 and len(body["items"]) == 2
    item = body["items"][0]
    assert item["state"] == "delivered" and item["notification_id"] in ids
    (attempt,) = item["log"]
    assert attempt["status_code"] == 200 and attempt["outcome"] == "success" and attempt["latency_ms"] >= 0
    one = tenant.client.get("/sim/v1/deliveries", params={"callid": item["callid"]}).json()
    assert [i["id"] for i in one["items"]] == [item["id"]]

    r = tenant.client.post(f"/sim/v1/deliveries/{item['id']}/replay")
    assert r.status_code == 200 and r.json()["state"] == "pending"
    assert receiver.wait_for(lambda: len(receiver.hits) == 6)
    assert receiver.hits[-1].headers["webhook-id"] == item["notification_id"]

    # Another domain sees none of it.
    assert other_tenant.client.get("/sim/v1/deliveries").json()["info"]["total"] == 0
    assert other_tenant.client.post(f"/sim/v1/deliveries/{item['id']}/replay").status_code == 404
    assert tenant.client.get("/sim/v1/deliveries", params={"state": "bogus"}).status_code == 400
    assert tenant.client.get("/sim/v1/deliveries", headers={"X-API-KEY": ""}).status_code == 401


def test_test_load_needs_a_crm_url(tenant: Tenant) -> None:
    r = tenant.client.post("/sim/v1/deliveries/test", json={"count": 1})
    assert r.status_code == 400
