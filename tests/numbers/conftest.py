"""Helpers for §9-11 tests: service calls on the server's loop, keys with a role, operator provisioning."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.services import numbers, sims, tenancy
from vpbx.store.tables import Domain
from vpbx.testing.server import ServerThread, Tenant

T = TypeVar("T")
V1 = "/crmapi/v1"

Work = Callable[[AsyncSession, Domain], Awaitable[T]]


def in_domain(server: ServerThread, name: str, work: Work[T]) -> T:
    """Run ``work(session, domain)`` on the server's loop and commit."""

    async def main() -> T:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, name)
            result = await work(session, domain)
            await session.commit()
            return result

    return server.call(main())


class Operator:
    """What the operator does outside the API: provisioning numbers and SIM cards, direct edits."""

    def __init__(self, server: ServerThread) -> None:
        self.server = server

    def run(self, tenant: Tenant, work: Work[T]) -> T:
        return in_domain(self.server, tenant.name, work)

    def number(self, tenant: Tenant, number: str, **kw: Any) -> None:
        # Every test's tenant shares one server and the documents' example numbers: examples stay outside the
        # one-domain-per-number key (store.tables.numbers), as the demo company's do.
        kw.setdefault("example", True)

        async def work(session: AsyncSession, domain: Domain) -> None:
            await numbers.provision(session, domain, number, self.server.runtime.clock.now(), **kw)

        self.run(tenant, work)

    def sim(self, tenant: Tenant, number: str, sms: bool = False) -> None:
        async def work(session: AsyncSession, domain: Domain) -> None:
            await sims.provision(session, domain, number, sms_confirmation=sms, example=True)

        self.run(tenant, work)

    def edit_number(self, tenant: Tenant, number: str, **fields: Any) -> None:
        async def work(session: AsyncSession, domain: Domain) -> None:
            row = await numbers.get(session, domain.id, number)
            for k, v in fields.items():
                setattr(row, k, v)

        self.run(tenant, work)


@pytest.fixture
def operator(server: ServerThread) -> Operator:
    return Operator(server)


@pytest.fixture
def role_client(server: ServerThread, tenant: Tenant) -> Iterator[Callable[[str], httpx.Client]]:
    """A client of the tenant's domain whose key has the given role (built-in or custom)."""
    clients: list[httpx.Client] = []

    def make(role: str) -> httpx.Client:
        async def work(session: AsyncSession, domain: Domain) -> str:
            return await tenancy.create_key(session, domain, server.runtime.clock.now(), role=role)

        client = httpx.Client(base_url=server.url, headers={"X-API-KEY": in_domain(server, tenant.name, work)},
                              timeout=30)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def custom_role(server: ServerThread, tenant: Tenant) -> Callable[[list[str]], str]:
    """A custom role of the tenant's domain holding exactly the given rights; returns its id."""

    def make(rights: list[str]) -> str:
        async def work(session: AsyncSession, domain: Domain) -> str:
            role = await tenancy.create_role(session, domain, "r", rights)
            return role.role_id

        return in_domain(server, tenant.name, work)

    return make
