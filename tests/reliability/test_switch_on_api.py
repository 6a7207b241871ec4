"""A CRM switched off after failing for days (002 §3.3: every request answers 401 ``CRM switched off``) can be
switched back on through the API: ``PUT /crmapi/v1/integration {"enabled": true}`` answers even then, and
re-sends what waited."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from vpbx.services import tenancy
from vpbx.services.errors import Invalid
from vpbx.store.tables import Integration
from vpbx.testing.server import ServerThread, Tenant


def switch_off(server: ServerThread, tenant: Tenant) -> None:
    async def work() -> None:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
            await session.execute(update(Integration).where(Integration.domain_id == domain.id)
                                  .values(switched_off=True))
            await session.commit()
    server.call(work())


def switched_off(server: ServerThread, tenant: Tenant) -> bool:
    async def work() -> bool:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
            return bool(await session.scalar(select(Integration.switched_off)
                                              .where(Integration.domain_id == domain.id)))
    return server.call(work())


def test_a_switched_off_integration_is_switched_on_through_the_api(server: ServerThread, tenant: Tenant) -> None:
    c = tenant.client
    assert c.get("/crmapi/v1/users").status_code == 200
    switch_off(server, tenant)
    r = c.get("/crmapi/v1/users")
    assert r.status_code == 401 and r.json() == {"message": "CRM switched off"}
    assert c.get("/crmapi/v1/integration").status_code == 200  # the integration itself still answers
    r = c.put("/crmapi/v1/integration", json={"enabled": False})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "enabled"
    assert switched_off(server, tenant)
    assert c.put("/crmapi/v1/integration", json={"enabled": True}).status_code == 204
    assert not switched_off(server, tenant)
    assert c.get("/crmapi/v1/users").status_code == 200
    assert c.get("/crmapi/v1/integration").json()["enabled"] is True


def test_a_user_key_cannot_switch_it_on(server: ServerThread, tenant: Tenant) -> None:
    async def user_key() -> str:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
            key = await tenancy.create_key(session, domain, server.runtime.clock.now(), role="user")
            await session.commit()
            return key
    key = server.call(user_key())
    switch_off(server, tenant)
    r = tenant.client.put("/crmapi/v1/integration", json={"enabled": True}, headers={"X-API-KEY": key})
    assert r.status_code == 403
    assert switched_off(server, tenant)


def test_a_sealed_looking_secret_is_refused(server: ServerThread, tenant: Tenant) -> None:
    """A typed ``sealed:`` value would be stored as a secret that opens to nothing; the service every caller goes
    through (the CLI, the cabinet) refuses it, and what was stored stays."""
    async def attempt(field: str) -> str:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
            column = select(getattr(Integration, field)).where(Integration.domain_id == domain.id)
            stored = await session.scalar(column)
            with pytest.raises(Invalid) as caught:
                await tenancy.set_integration(session, domain, **{field: "sealed:v1:gAAAA"})
            await session.rollback()
            assert await session.scalar(column) == stored
            return caught.value.field
    for field in ("crm_token", "signing_secret"):
        assert server.call(attempt(field)) == field
