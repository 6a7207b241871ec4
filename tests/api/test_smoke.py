from vpbx.testing.server import Tenant


def test_users_list_needs_a_key(tenant: Tenant) -> None:
    r = tenant.client.get("/crmapi/v1/users", headers={"X-API-KEY": ""})
    assert r.status_code == 401
    assert r.json() == {"message": "Invalid token"}


def test_users_list(tenant: Tenant) -> None:
    r = tenant.client.get("/crmapi/v1/users")
    assert r.status_code == 200
    body = r.json()
    assert body["info"]["total"] == 10
    assert body["items"][0]["login"] == "admin"
