"""Issue 13 rule 8: ``POST /webhook`` without ``url`` (002 §18.2 marks both fields optional) subscribes the
domain's CRM URL: the events go there, to the same one URL as every other PBX->CRM request."""

from __future__ import annotations

from tests.compat.conftest import Env

from vpbx.services import tenancy

SIPREG = {"telnum": "79262005060", "name": "Тест", "domain": "regtest.com", "login": "trunk-login",
          "password": "S3cr3t-Pa55-xyz"}


def test_subscription_without_url_delivers_to_the_crm(env: Env) -> None:
    c = env.http
    assert c.post("/crmapi/v1/webhook", json={}).status_code == 204
    assert c.post("/crmapi/v1/webhook", json={"type": "sipregs_error"}).status_code == 204  # the same one again
    (sub,) = c.get("/crmapi/v1/webhook").json()
    assert (sub["type"], sub["url"]) == ("sipregs_error", env.crm.url)
    assert c.post("/crmapi/v1/sip-registrations", json=SIPREG).status_code == 200
    assert c.put("/sim/v1/sip-registrations/79262005060", json={"status": "auth_failed"}).status_code == 200
    (hook,) = env.wait_for("webhook")
    assert hook["type"] == "sipregs_error" and hook["crm_token"] == "tok" and hook["id"]
    # The CRM URL moves: the subscription follows it.
    moved = "http://127.0.0.1:9/crm-moved"

    async def move() -> None:
        async with env.server.runtime.sessions() as s:
            await tenancy.set_integration(s, await tenancy.get_domain(s, env.t.name), crm_url=moved)
            await s.commit()

    env.server.call(move())
    assert c.get("/crmapi/v1/webhook").json()[0]["url"] == moved
    assert c.delete(f"/crmapi/v1/webhook/{sub['id']}").status_code == 204
    assert c.get("/crmapi/v1/webhook").json() == []
