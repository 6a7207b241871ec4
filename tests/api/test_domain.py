"""002 §12.1 Параметры домена and §12.6 Дополнительные роли."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.services import tenancy
from vpbx.store.tables import Domain
from vpbx.testing.server import ServerThread, Tenant, create_tenant

T = TypeVar("T")
DOMAIN = "/crmapi/v1/domain"
ROLES = "/crmapi/v1/access-rights/custom-roles"


def in_domain(server: ServerThread, name: str, work: Callable[[AsyncSession, Domain], Awaitable[T]]) -> T:
    async def run() -> T:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, name)
            result = await work(session, domain)
            await session.commit()
            return result

    return server.call(run())


def test_demo_domain_parameters(tenant: Tenant) -> None:
    r = tenant.client.get(DOMAIN)
    assert r.status_code == 200
    assert r.json() == {
        "timezone": {"name": "Europe/Moscow", "offset": 180},
        "limits": {"users": {"used": 10, "total": -1}, "groups": {"used": 3, "total": -1},
                   "local_gw": {"used": 0, "total": -1}},
        "services": {"record": True, "local_gw": True, "branch": True},
    }


def test_documented_example(server: ServerThread) -> None:
    t = create_tenant(server, demo_data=False)
    try:
        assert t.client.post("/crmapi/v1/users", json={"name": "Единственный"}).status_code == 200
        for i in range(5):
            assert t.client.post("/crmapi/v1/groups", json={"name": f"Отдел {i}"}).status_code == 200

        async def work(session: AsyncSession, d: Domain) -> None:
            await tenancy.set_limits(session, d, users=15, groups=7, local_gw=1)
            d.service_branch = False

        in_domain(server, t.name, work)
        # 002 §12.1 example, field for field
        assert t.client.get(DOMAIN).json() == {
            "timezone": {"name": "Europe/Moscow", "offset": 180},
            "limits": {"users": {"used": 1, "total": 15}, "local_gw": {"used": 0, "total": 1},
                       "groups": {"used": 5, "total": 7}},
            "services": {"record": True, "local_gw": True, "branch": False},
        }
    finally:
        t.client.close()


def test_used_counts_follow_changes(tenant: Tenant) -> None:
    c = tenant.client
    assert c.post("/crmapi/v1/users", json={"name": "x"}).status_code == 200
    assert c.delete("/crmapi/v1/groups/hr").status_code == 204
    limits = c.get(DOMAIN).json()["limits"]
    assert limits["users"] == {"used": 11, "total": -1}
    assert limits["groups"] == {"used": 2, "total": -1}


def test_timezone_offset_in_minutes(server: ServerThread) -> None:
    for zone, offset in (("Asia/Yekaterinburg", 300), ("Asia/Kolkata", 330), ("UTC", 0), ("Asia/Kamchatka", 720)):
        t = create_tenant(server, demo_data=False, timezone=zone)
        try:
            assert t.client.get(DOMAIN).json()["timezone"] == {"name": zone, "offset": offset}
        finally:
            t.client.close()


def test_limits_set_back_to_unlimited(server: ServerThread, tenant: Tenant) -> None:
    async def limit(session: AsyncSession, d: Domain) -> None:
        await tenancy.set_limits(session, d, users=10, groups=3)

    async def unlimit(session: AsyncSession, d: Domain) -> None:
        await tenancy.set_limits(session, d, users=-1, groups=-1)

    in_domain(server, tenant.name, limit)
    assert tenant.client.post("/crmapi/v1/users", json={"name": "x"}).status_code == 400
    assert tenant.client.post("/crmapi/v1/groups", json={"name": "x"}).status_code == 400
    in_domain(server, tenant.name, unlimit)
    assert tenant.client.post("/crmapi/v1/users", json={"name": "x"}).status_code == 200
    assert tenant.client.post("/crmapi/v1/groups", json={"name": "x"}).status_code == 200
    assert tenant.client.get(DOMAIN).json()["limits"]["users"] == {"used": 11, "total": -1}


def test_custom_roles(server: ServerThread, tenant: Tenant) -> None:
    r = tenant.client.get(ROLES)
    assert (r.status_code, r.json()) == (200, [])

    async def work(session: AsyncSession, d: Domain) -> list[str]:
        first = await tenancy.create_role(session, d, "Бухгалтерия", ["users.get", "groups.get", "more.edit"])
        second = await tenancy.create_role(session, d, "Наблюдатель", ["history.get"])
        return [first.role_id, second.role_id]

    ids = in_domain(server, tenant.name, work)
    roles = tenant.client.get(ROLES).json()
    assert [r["id"] for r in roles] == ids
    assert all(i.startswith("custom_") and len(i) == len("custom_542ec326-860e-429a-9457-ff2fff9e15e4") for i in ids)
    # 002 §12.6 example (rights as a set: the order carries no meaning)
    assert {**roles[0], "rights": sorted(roles[0]["rights"])} == {
        "id": ids[0], "name": "Бухгалтерия", "rights": sorted(["users.get", "groups.get", "more.edit"])}
    assert roles[1] == {"id": ids[1], "name": "Наблюдатель", "rights": ["history.get"]}
