"""Helpers for the §15-18 tests: domain limits and services, stored webhook events."""

from __future__ import annotations

from typing import Any

from vpbx.services import tenancy
from vpbx.services import webhooks as webhook_service
from vpbx.store.repositories import trunks as trunk_repo
from vpbx.testing.server import ServerThread


def set_domain(server: ServerThread, name: str, **fields: Any) -> None:
    async def work() -> None:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, name)
            for k, v in fields.items():
                setattr(domain, k, v)
            await session.commit()

    server.call(work())


def stored_events(server: ServerThread, name: str) -> list[dict[str, Any]]:
    async def work() -> list[dict[str, Any]]:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, name)
            rows = await trunk_repo.events(session, domain.id)
            return [{"type": e.type, "payload": e.payload, "event_id": e.event_id, "url": s.url,
                     "subscription": s.public_id, "notice": webhook_service.notice(e)} for e, s in rows]

    return server.call(work())
