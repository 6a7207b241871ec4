"""002 §3.1 authorisation and §3.3 error codes: 401s, 403 by role, 404, 405, 413."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.services import tenancy
from vpbx.store.tables import Domain, Integration
from vpbx.testing.server import ServerThread, Tenant

T = TypeVar("T")
V1 = "/crmapi/v1"
INVALID_TOKEN = {"message": "Invalid token"}
FORBIDDEN = {"message": "Don't have permission to access"}


def in_domain(server: ServerThread, name: str, work: Callable[[AsyncSession, Domain], Awaitable[T]]) -> T:
    async def run() -> T:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, name)
            result = await work(session, domain)
            await session.commit()
            return result

    return server.call(run())


def new_key(server: ServerThread, tenant: Tenant, role: str | None = None) -> str:
    async def work(session: AsyncSession, d: Domain) -> str:
        return await tenancy.create_key(session, d, server.runtime.clock.now(), role=role, label="test")

    return in_domain(server, tenant.name, work)


def new_role(server: ServerThread, tenant: Tenant, rights: list[str]) -> str:
    async def work(session: AsyncSession, d: Domain) -> str:
        return (await tenancy.create_role(session, d, "Роль", rights)).role_id

    return in_domain(server, tenant.name, work)


@pytest.fixture
def clean_auth(server: ServerThread) -> Iterator[None]:
    server.runtime.auth.clear()
    yield
    server.runtime.auth.clear()


def client_with(server: ServerThread, key: str | None) -> httpx.Client:
    headers = {"X-API-KEY": key} if key is not None else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


# Every operation of §6, §8, §12.1, §12.6 as (method, path, body), in an order in which each succeeds.
OPERATIONS: list[tuple[str, str, Any]] = [
    ("GET", "/users", None),
    ("GET", "/users/ivan", None),
    ("POST", "/users", {"name": "x"}),
    ("PUT", "/users/ivan", {"name": "x"}),
    ("GET", "/users/ivan/groups", None),
    ("GET", "/users/ivan/subscription?group_id=sales", None),
    ("POST", "/users/ivan/subscription?group_id=sales", None),
    ("DELETE", "/users/ivan/subscription?group_id=sales", None),
    ("POST", "/users/ivan/subscription", None),
    ("DELETE", "/users/ivan/subscription", None),
    ("GET", "/users/ivan/dnd", None),
    ("POST", "/users/ivan/dnd", None),
    ("DELETE", "/users/ivan/dnd", None),
    ("GET", "/groups", None),
    ("GET", "/groups/sales", None),
    ("POST", "/groups", {"name": "x"}),
    ("PUT", "/groups/sales", {"name": "x"}),
    ("POST", "/groups/sales/users", {"add": ["anna"]}),
    ("GET", "/domain", None),
    ("GET", "/access-rights/custom-roles", None),
    # the deletions last, so that the operations above still find their objects
    ("DELETE", "/users/ivan", None),
    ("DELETE", "/groups/sales", None),
]
RIGHT = {  # the right each operation needs (002 "Права доступа")
    "GET /users": "users.get", "POST /users": "users.create", "PUT /users": "users.edit",
    "DELETE /users": "users.delete", "GET /groups": "groups.get", "POST /groups": "groups.create",
    "PUT /groups": "groups.edit", "DELETE /groups": "groups.delete", "GET /domain": "more.get",
    "GET /access-rights": "more.get",
}


def right_of(method: str, path: str) -> str:
    section = "/" + path.split("/")[1].split("?")[0]
    if section == "/users" and path.count("/") >= 3 and method != "GET":
        return "users.edit"  # subscription and DND switches
    if section == "/groups" and path.endswith("/users"):
        return "groups.edit"
    return RIGHT[f"{method} {section}"]


# --- 401 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS)
def test_every_operation_needs_a_valid_key(server: ServerThread, tenant: Tenant, method: str, path: str,
                                           body: Any) -> None:
    for key in (None, "", "not-a-key-at-all", tenant.api_key + "x"):
        with client_with(server, key) as c:
            r = c.request(method, V1 + path, json=body)
        assert (r.status_code, r.json()) == (401, INVALID_TOKEN), (key, r.text)
    # nothing changed
    assert tenant.client.get(f"{V1}/users/ivan").json()["name"] == "Иван Петров"
    assert tenant.client.get(f"{V1}/groups/sales").json()["name"] == "Отдел продаж"


def test_revoked_key(server: ServerThread, tenant: Tenant, clean_auth: None) -> None:
    key = new_key(server, tenant)
    with client_with(server, key) as c:
        assert c.get(f"{V1}/users").status_code == 200

        async def revoke(session: AsyncSession, d: Domain) -> int:
            return await tenancy.revoke_key(session, d, key[:6], server.runtime.clock.now())

        assert in_domain(server, tenant.name, revoke) == 1
        server.runtime.auth.clear()
        r = c.get(f"{V1}/users")
        assert (r.status_code, r.json()) == (401, INVALID_TOKEN)
    assert tenant.client.get(f"{V1}/users").status_code == 200  # the domain's other key still works


def test_revocation_reaches_a_cached_key_at_once(server: ServerThread, tenant: Tenant, clean_auth: None) -> None:
    key = new_key(server, tenant)
    with client_with(server, key) as c:
        assert c.get(f"{V1}/users").status_code == 200  # the key's principal is cached now

        async def revoke(session: AsyncSession, d: Domain) -> int:
            return await tenancy.revoke_key(session, d, key[:6], server.runtime.clock.now())

        in_domain(server, tenant.name, revoke)
        assert c.get(f"{V1}/users").status_code == 401  # no cache clearing, no wait (store.changes)


def test_crm_disabled(server: ServerThread, tenant: Tenant, clean_auth: None) -> None:
    async def off(session: AsyncSession, d: Domain) -> None:
        await tenancy.set_integration(session, d, enabled=False)

    async def on(session: AsyncSession, d: Domain) -> None:
        await tenancy.set_integration(session, d, enabled=True)

    in_domain(server, tenant.name, off)
    server.runtime.auth.clear()
    for method, path, body in OPERATIONS:
        r = tenant.client.request(method, V1 + path, json=body)
        assert (r.status_code, r.json()) == (401, {"message": "CRM disabled"}), (method, path)
    in_domain(server, tenant.name, on)
    server.runtime.auth.clear()
    assert tenant.client.get(f"{V1}/users").status_code == 200


def test_crm_switched_off(server: ServerThread, tenant: Tenant, clean_auth: None) -> None:
    async def switched_off(session: AsyncSession, d: Domain) -> None:
        await session.execute(update(Integration).where(Integration.domain_id == d.id).values(switched_off=True))

    in_domain(server, tenant.name, switched_off)
    server.runtime.auth.clear()
    for method, path, body in OPERATIONS:
        r = tenant.client.request(method, V1 + path, json=body)
        assert (r.status_code, r.json()) == (401, {"message": "CRM switched off"}), (method, path)

    async def enable(session: AsyncSession, d: Domain) -> None:
        await tenancy.set_integration(session, d, enabled=True)  # the operator turns it back on

    in_domain(server, tenant.name, enable)
    server.runtime.auth.clear()
    assert tenant.client.get(f"{V1}/users").status_code == 200


def test_host_naming_another_domain(server: ServerThread, tenant: Tenant, other_tenant: Tenant,
                                    clean_auth: None) -> None:
    for host in (other_tenant.name, other_tenant.name.upper(), f"{other_tenant.name}:8080"):
        r = tenant.client.get(f"{V1}/users", headers={"Host": host})
        assert (r.status_code, r.json()) == (401, INVALID_TOKEN), host
        r = tenant.client.post(f"{V1}/users", headers={"Host": host}, json={"name": "x"})
        assert r.status_code == 401
    for host in (tenant.name, f"{tenant.name}:443", "pbx.example.com", "127.0.0.1"):
        assert tenant.client.get(f"{V1}/users", headers={"Host": host}).status_code == 200, host
    assert tenant.client.get(f"{V1}/users").json()["info"]["total"] == 10


# --- 403 -------------------------------------------------------------------------------------------


def check_rights(server: ServerThread, key: str, granted: set[str]) -> None:
    server.runtime.auth.clear()
    with client_with(server, key) as c:
        for method, path, body in OPERATIONS:
            r = c.request(method, V1 + path, json=body)
            if right_of(method, path) in granted:
                assert r.status_code in (200, 204), (method, path, r.text)
            else:
                assert (r.status_code, r.json()) == (403, FORBIDDEN), (method, path, r.text)


def test_custom_role_without_the_right(server: ServerThread, tenant: Tenant, clean_auth: None) -> None:
    role = new_role(server, tenant, ["users.get", "groups.get", "more.edit"])
    check_rights(server, new_key(server, tenant, role), {"users.get", "groups.get"})
    # the forbidden writes changed nothing
    assert tenant.client.get(f"{V1}/users/ivan").json()["name"] == "Иван Петров"
    assert tenant.client.get(f"{V1}/users").json()["info"]["total"] == 10


def test_restricted_user_key(server: ServerThread, tenant: Tenant, clean_auth: None) -> None:
    check_rights(server, new_key(server, tenant, "restricted_user"), {"users.get"})
    assert tenant.client.get(f"{V1}/groups").json()["info"]["total"] == 3


def test_user_key(server: ServerThread, tenant: Tenant, clean_auth: None) -> None:
    check_rights(server, new_key(server, tenant, "user"), {"users.get", "groups.get"})


def test_group_head_key(server: ServerThread, tenant: Tenant, clean_auth: None) -> None:
    check_rights(server, new_key(server, tenant, "group_head"),
                 {"users.get", "groups.get", "more.get", "groups.edit"})


def test_full_rights(server: ServerThread, tenant: Tenant, clean_auth: None) -> None:
    role = new_role(server, tenant, ["users.get", "users.create", "users.edit", "users.delete", "groups.get",
                                     "groups.create", "groups.edit", "groups.delete", "more.get"])
    everything = {right_of(m, p) for m, p, _ in OPERATIONS}
    check_rights(server, new_key(server, tenant, role), everything)


def test_admin_role_key(server: ServerThread, tenant: Tenant, clean_auth: None) -> None:
    check_rights(server, new_key(server, tenant, "admin"), {right_of(m, p) for m, p, _ in OPERATIONS})


def test_custom_role_with_no_rights(server: ServerThread, tenant: Tenant, clean_auth: None) -> None:
    check_rights(server, new_key(server, tenant, new_role(server, tenant, [])), set())


# --- 404, 405, 413, the misspelt prefix --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/crmapi/v1/nothing", "/crmapi/v2/users", "/crmapi/v1/users/ivan/nothing", "/x"])
def test_unknown_path(tenant: Tenant, path: str) -> None:
    r = tenant.client.get(path)
    assert (r.status_code, r.json()) == (404, {"message": "Not found"})


@pytest.mark.parametrize(("method", "path"), [("PATCH", "/users"), ("DELETE", "/users"), ("PUT", "/groups"),
                                              ("PATCH", "/users/ivan"), ("POST", "/users/ivan"),
                                              ("GET", "/groups/sales/users"), ("POST", "/domain"),
                                              ("DELETE", "/access-rights/custom-roles")])
def test_method_not_allowed(tenant: Tenant, method: str, path: str) -> None:
    r = tenant.client.request(method, V1 + path)
    assert r.status_code == 405
    assert r.json() == {"message": "Method Not Allowed"}


def test_body_over_one_mebibyte(tenant: Tenant) -> None:
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    r = tenant.client.post(f"{V1}/users", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming too
        yield b'{"name": "'
        for _ in range(12):
            yield b"x" * (100 * 1024)
        yield b'"}'

    r = tenant.client.post(f"{V1}/users", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert tenant.client.get(f"{V1}/users").json()["info"]["total"] == 10
    # just under the limit is fine (the name is too long: a validation error, not 413)
    r = tenant.client.post(f"{V1}/users", json={"name": "x" * (1024 * 1024 - 100)})
    assert r.status_code == 400


def test_misspelt_prefix_is_served(tenant: Tenant) -> None:
    r = tenant.client.get("/crmpapi/v1/users/ivan")
    assert r.status_code == 200
    assert r.json() == tenant.client.get(f"{V1}/users/ivan").json()


def _answered(tenant: Tenant, method: str, status: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(tenant.client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "vpbx_http_requests_total" and sample.labels == {"method": method, "status": status}:
                return sample.value
    return 0.0


def test_every_answer_is_counted_in_the_metrics_refused_bodies_too(tenant: Tenant) -> None:
    ok, refused = _answered(tenant, "GET", "200"), _answered(tenant, "POST", "413")
    assert tenant.client.get(f"{V1}/users").status_code == 200
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    assert tenant.client.post(f"{V1}/users", content=big, headers={"content-type": "application/json"}).status_code \
        == 413
    # the GET /metrics of the first reading is counted too, by the time of the second
    assert _answered(tenant, "GET", "200") >= ok + 2
    assert _answered(tenant, "POST", "413") == refused + 1
