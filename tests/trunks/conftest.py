"""Fixtures for the §15-18 tests: keys with a role."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from vpbx.services import tenancy
from vpbx.testing.server import ServerThread, Tenant


@pytest.fixture
def role_client(server: ServerThread, tenant: Tenant) -> Iterator[Callable[[str], httpx.Client]]:
    """A client of the tenant's domain whose key has the given role."""
    clients: list[httpx.Client] = []

    def make(role: str) -> httpx.Client:
        async def work() -> str:
            async with server.runtime.sessions() as session:
                domain = await tenancy.get_domain(session, tenant.name)
                key = await tenancy.create_key(session, domain, server.runtime.clock.now(), role=role)
                await session.commit()
                return key

        client = httpx.Client(base_url=server.url, headers={"X-API-KEY": server.call(work())}, timeout=30)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()
