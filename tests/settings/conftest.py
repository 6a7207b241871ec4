"""Helpers for §12.2-12.8, §13 and §14 tests: the tenant's domain, its numbers, keys with rights."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.services import tenancy
from vpbx.store.tables import Telnum
from vpbx.testing.server import ServerThread, Tenant

T = TypeVar("T")


@pytest.fixture
def run(server: ServerThread, tenant: Tenant) -> Callable[..., Any]:
    """Run ``work(session, domain_id)`` for the tenant on the server's loop, committing after it."""

    def go(work: Callable[[AsyncSession, int], Coroutine[Any, Any, T]], name: str | None = None) -> T:
        async def main() -> T:
            async with server.runtime.sessions() as session:
                domain = await tenancy.get_domain(session, name or tenant.name)
                result = await work(session, domain.id)
                await session.commit()
                return result

        return server.call(main())

    return go


@pytest.fixture
def add_numbers(server: ServerThread, run: Callable[..., Any]) -> Callable[..., None]:
    """Give the tenant's domain external numbers (the numbers feature's table, as the operator would)."""

    def add(*numbers: str, tenant_name: str | None = None) -> None:
        async def work(session: AsyncSession, domain_id: int) -> None:
            for n in numbers:
                session.add(Telnum(domain_id=domain_id, telnum=n, created_at=server.runtime.clock.now(),
                                   example=True))  # the test tenants share these numbers

        run(work, tenant_name)

    return add


@pytest.fixture
def client_with(server: ServerThread, tenant: Tenant) -> Iterator[Callable[..., httpx.Client]]:
    """A client of the tenant's domain whose key has a custom role with exactly ``rights``."""
    clients: list[httpx.Client] = []

    def make(*rights: str) -> httpx.Client:
        async def work() -> str:
            async with server.runtime.sessions() as session:
                domain = await tenancy.get_domain(session, tenant.name)
                role = await tenancy.create_role(session, domain, "test", list(rights))
                key = await tenancy.create_key(session, domain, server.runtime.clock.now(), role=role.role_id)
                await session.commit()
                return key

        client = httpx.Client(base_url=server.url, headers={"X-API-KEY": server.call(work())}, timeout=30)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()

