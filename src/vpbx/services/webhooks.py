"""Webhook subscriptions (002 §18) and the one place webhook events are created (``emit``).

An event is stored once per matching subscription in ``webhook_events`` and, in the same
transaction, handed to the CRM notifier's outbox addressed to the subscription's URL
(002 §18.4: ``cmd=webhook``, ``type``, ``crm_token``, ``id``, ``data``). A subscription made without a URL
(18.2 marks it optional) is stored with ``url = ""`` and delivers to the domain's CRM URL at the time of the event.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.notify.outbox import enqueue
from vpbx.notify.payloads import WebhookNotice
from vpbx.schemas.webhooks import WebhookCreate
from vpbx.services.errors import NotFound
from vpbx.store.repositories import trunks as repo
from vpbx.store.tables import Integration
from vpbx.store.tables.trunks import WebhookEvent, WebhookSubscription

EVENT_TYPES = ("sipregs_error",)


def subscription_out(s: WebhookSubscription, crm_url: str = "") -> dict[str, str]:
    """18.1; a subscription without its own URL shows where it delivers: the CRM URL."""
    return {"id": s.public_id, "type": s.type, "url": s.url or crm_url}


async def _crm_url(session: AsyncSession, domain_id: int) -> str:
    integration = await session.get(Integration, domain_id)
    return integration.crm_url if integration is not None else ""


async def list_subscriptions(session: AsyncSession, domain_id: int) -> list[dict[str, str]]:
    subs = await repo.subscriptions(session, domain_id)
    crm_url = await _crm_url(session, domain_id) if any(not s.url for s in subs) else ""
    return [subscription_out(s, crm_url) for s in subs]


async def add(session: AsyncSession, domain_id: int, data: WebhookCreate, now: datetime) -> WebhookSubscription:
    """A new subscription; the same type and URL again is the existing one (idempotent). Without ``url`` it
    follows the domain's CRM URL."""
    url = data.url or ""
    existing = await repo.find_subscription_by_url(session, domain_id, data.type, url)
    if existing is not None:
        return existing
    sub = WebhookSubscription(domain_id=domain_id, public_id=str(uuid.uuid4()), type=data.type, url=url,
                              created_at=now)
    session.add(sub)
    await session.flush()
    return sub


async def delete(session: AsyncSession, domain_id: int, public_id: str) -> None:
    sub = await repo.find_subscription(session, domain_id, public_id)
    if sub is None:
        raise NotFound("webhook")
    await session.delete(sub)  # its undelivered events go with it (ON DELETE CASCADE)
    await session.flush()


async def emit(session: AsyncSession, domain_id: int, type: str, data: Mapping[str, Any],
               now: datetime | None = None) -> list[WebhookEvent]:
    """Store one ``type`` event with ``data`` for each of the domain's subscriptions to it."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}")
    created_at = now or datetime.now(UTC)
    out = []
    crm_url: str | None = None
    for sub in await repo.subscriptions(session, domain_id, type):
        event = WebhookEvent(domain_id=domain_id, subscription_id=sub.id, event_id=str(uuid.uuid4()), type=type,
                             payload=dict(data), created_at=created_at)
        session.add(event)
        out.append(event)
        url = sub.url
        if not url:
            if crm_url is None:
                crm_url = await _crm_url(session, domain_id)
            url = crm_url
        if not url:  # follows the CRM URL, and there is none: kept, not sent
            continue
        # One ordering key per subscription: its events arrive in the order they happened.
        await enqueue(session, domain_id, notice(event), key=f"webhook:{sub.public_id}", url=url, now=created_at)
    if out:
        await session.flush()
    return out


def notice(event: WebhookEvent) -> WebhookNotice:
    """The PBX->CRM body of a stored event (its ``id`` is the event's id)."""
    return WebhookNotice(type=event.type, id=event.event_id, data=dict(event.payload))
