"""Tenant isolation: with another domain's key, no operation of §6, §8, §12.1, §12.6 sees or changes this one."""

from __future__ import annotations

from typing import Any

from vpbx.services import tenancy
from vpbx.testing.server import ServerThread, Tenant

V1 = "/crmapi/v1"
NOT_FOUND = (404, {"message": "Not found"})


def snapshot(t: Tenant) -> dict[str, Any]:
    c = t.client
    users = c.get(f"{V1}/users").json()
    groups = c.get(f"{V1}/groups").json()
    return {
        "users": users,
        "groups": groups,
        "dnd": {u["login"]: c.get(f"{V1}/users/{u['login']}/dnd").json() for u in users["items"]},
        "subs": {u["login"]: c.get(f"{V1}/users/{u['login']}/groups").json() for u in users["items"]},
        "domain": c.get(f"{V1}/domain").json(),
        "roles": c.get(f"{V1}/access-rights/custom-roles").json(),
    }


def make_role(server: ServerThread, name: str) -> str:
    async def work() -> str:
        async with server.runtime.sessions() as session:
            d = await tenancy.get_domain(session, name)
            role = await tenancy.create_role(session, d, "Своя роль", ["users.get"])
            await session.commit()
            return role.role_id

    return server.call(work())


def domain_id(server: ServerThread, name: str) -> int:
    async def work() -> int:
        async with server.runtime.sessions() as session:
            return (await tenancy.get_domain(session, name)).id

    return server.call(work())


def test_other_domain_sees_and_changes_nothing(server: ServerThread, tenant: Tenant, other_tenant: Tenant) -> None:
    a, b = tenant.client, other_tenant.client
    only_a = a.post(f"{V1}/users", json={"name": "Только А", "login": "only_a", "mobile": "79990001122"}).json()
    group_a = a.post(f"{V1}/groups", json={"name": "Отдел А", "users": [{"login": "only_a", "calls_enable": True}]}
                     ).json()
    role_a = make_role(server, tenant.name)
    a.post(f"{V1}/users/ivan/dnd")
    server.runtime.telephony.set_registered(domain_id(server, tenant.name), "admin", True)
    before = snapshot(tenant)

    try:
        # lists hold only B's own data
        users_b = b.get(f"{V1}/users", params={"with": "status"}).json()
        assert users_b["info"]["total"] == 10
        assert "only_a" not in [u["login"] for u in users_b["items"]]
        assert {u["status"] for u in users_b["items"]} == {"offline"}  # A's registered admin is not B's
        assert b.get(f"{V1}/users", params={"search": "Только"}).json()["info"]["total"] == 0
        assert [g["id"] for g in b.get(f"{V1}/groups").json()["items"]] == ["sales", "support", "hr"]
        assert b.get(f"{V1}/access-rights/custom-roles").json() == []
        assert b.get(f"{V1}/domain").json()["limits"]["users"] == {"used": 10, "total": -1}
        assert b.get(f"{V1}/domain").json()["limits"]["groups"] == {"used": 3, "total": -1}
        assert b.get(f"{V1}/users/ivan/dnd").json() == {"state": False}

        # A's employee and department are unknown to B, whatever the operation
        gid = group_a["id"]
        for method, path, body in [
            ("GET", "/users/only_a", None), ("PUT", "/users/only_a", {"name": "hijacked"}),
            ("DELETE", "/users/only_a", None), ("GET", "/users/only_a/groups", None),
            ("GET", "/users/only_a/subscription", None), ("POST", "/users/only_a/subscription", None),
            ("DELETE", "/users/only_a/subscription", None),
            ("GET", f"/users/only_a/subscription?group_id={gid}", None),
            ("POST", f"/users/ivan/subscription?group_id={gid}", None),
            ("DELETE", f"/users/ivan/subscription?group_id={gid}", None),
            ("GET", "/users/only_a/dnd", None), ("POST", "/users/only_a/dnd", None),
            ("DELETE", "/users/only_a/dnd", None),
            ("GET", f"/groups/{gid}", None), ("PUT", f"/groups/{gid}", {"name": "hijacked"}),
            ("DELETE", f"/groups/{gid}", None), ("POST", f"/groups/{gid}/users", {"add": ["ivan"]}),
            ("GET", f"/groups/{group_a['ext']}", None),
        ]:
            r = b.request(method, V1 + path, json=body)
            assert (r.status_code, r.json()) == NOT_FOUND, (method, path, r.text)

        # ... and cannot be referenced from B's own objects
        for method, path, body, field in [
            ("POST", "/groups", {"name": "x", "users": [{"login": "only_a", "calls_enable": True}]}, "users"),
            ("POST", "/groups", {"name": "x", "timeout": {"target": "user", "user": "only_a"}}, "timeout.user"),
            ("POST", "/groups", {"name": "x", "timeout": {"target": "group", "group": gid}}, "timeout.group"),
            ("PUT", "/groups/sales", {"users": [{"login": "only_a", "calls_enable": True}]}, "users"),
            ("POST", "/groups/sales/users", {"add": ["only_a"]}, "add"),
            ("POST", "/groups/sales/users", {"remove": ["only_a"]}, "remove"),
            ("POST", "/users", {"name": "x", "role": role_a}, "role"),
            ("PUT", "/users/ivan", {"role": role_a}, "role"),
        ]:
            r = b.request(method, V1 + path, json=body)
            assert r.status_code == 400, (method, path, r.text)
            assert [e["field"] for e in r.json()["errors"]] == [field]

        # B's extension plan and logins are its own: 713 and the login only_a are free there
        r = b.post(f"{V1}/users", json={"name": "B", "login": "only_a"})
        assert (r.status_code, r.json()["ext"]) == (200, only_a["ext"])
        assert (only_a["ext"], group_a["ext"]) == ("713", "714")
        assert b.post(f"{V1}/groups", json={"name": "B", "ext": group_a["ext"]}).status_code == 200
        assert b.post(f"{V1}/groups", json={"name": "B"}).json()["ext"] == "715"

        # B changes its own objects that share names with A's
        assert b.put(f"{V1}/users/admin", json={"name": "B admin", "ext": "7001"}).status_code == 200
        assert b.put(f"{V1}/users/only_a", json={"name": "B only"}).status_code == 200
        assert b.post(f"{V1}/users/admin/dnd").status_code == 204
        assert b.delete(f"{V1}/users/ivan/dnd").status_code == 204
        assert b.delete(f"{V1}/users/manager/subscription").status_code == 204
        assert b.post(f"{V1}/groups/sales/users", json={"remove": ["admin"], "add": ["elena"]}).status_code == 204
        assert b.put(f"{V1}/groups/support", json={"call_order": "ALL", "name": "B"}).status_code == 200
        assert b.delete(f"{V1}/users/maria").status_code == 204
        assert b.delete(f"{V1}/groups/hr").status_code == 204
        assert b.delete(f"{V1}/users/only_a").status_code == 204

        after = snapshot(tenant)
        assert after == before
        assert a.get(f"{V1}/users/only_a").json() == only_a
        assert a.get(f"{V1}/groups/{gid}").json() == group_a
        assert a.get(f"{V1}/users/admin", params={"with": "status"}).json()["status"] == "online"
        assert a.get(f"{V1}/users/manager/subscription").json() == {"state": True}
    finally:
        server.runtime.telephony.set_registered(domain_id(server, tenant.name), "admin", False)


def test_each_key_reaches_its_own_domain(tenant: Tenant, other_tenant: Tenant) -> None:
    a, b = tenant.client, other_tenant.client
    assert a.post(f"{V1}/users", json={"name": "A", "login": "a_only"}).status_code == 200
    assert b.post(f"{V1}/users", json={"name": "B", "login": "b_only"}).status_code == 200
    assert a.get(f"{V1}/users/b_only").status_code == 404
    assert b.get(f"{V1}/users/a_only").status_code == 404
    assert a.get(f"{V1}/users/713").json()["login"] == "a_only"
    assert b.get(f"{V1}/users/713").json()["login"] == "b_only"
    assert a.get(f"{V1}/users", params={"search": "_only"}).json()["items"][0]["login"] == "a_only"
    assert b.get(f"{V1}/users", params={"search": "_only"}).json()["info"]["total"] == 1


def test_host_of_the_other_domain_is_refused(server: ServerThread, tenant: Tenant, other_tenant: Tenant) -> None:
    server.runtime.auth.clear()  # the known domain names are cached too
    for t, other in ((tenant, other_tenant), (other_tenant, tenant)):
        for method, path, body in (("GET", "/users", None), ("GET", "/groups/sales", None),
                                   ("POST", "/users/ivan/dnd", None), ("DELETE", "/groups/hr", None),
                                   ("GET", "/domain", None)):
            r = t.client.request(method, V1 + path, json=body, headers={"Host": other.name})
            assert (r.status_code, r.json()) == (401, {"message": "Invalid token"}), (method, path)
        assert t.client.get(f"{V1}/users", headers={"Host": t.name}).status_code == 200
    assert tenant.client.get(f"{V1}/groups/hr").status_code == 200
    assert tenant.client.get(f"{V1}/users/ivan/dnd").json() == {"state": False}
