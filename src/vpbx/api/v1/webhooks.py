"""002 §18 Webhook: event subscriptions. 002 names no right: they are domain settings, so reading
needs ``more.get`` and adding or removing ``more.edit`` (Основные настройки)."""

from __future__ import annotations

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api.auth import Principal, get_runtime, require
from vpbx.api.deps import get_session
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.runtime import Runtime
from vpbx.schemas.webhooks import WebhookCreate, WebhookOut
from vpbx.services import webhooks

router = section("18. Webhook")


@router.get("/webhook", response_model=list[WebhookOut], summary="18.1 Список подписок")
async def list_subscriptions(
    principal: Principal = Depends(require("more.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return json_response(await webhooks.list_subscriptions(session, principal.domain_id))


@router.post("/webhook", status_code=204, summary="18.2 Добавление подписки")
async def add_subscription(
    body: WebhookCreate,
    principal: Principal = Depends(require("more.edit")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    await webhooks.add(session, principal.domain_id, body, runtime.clock.now())
    await session.commit()
    return no_content()


@router.delete("/webhook/{id}", status_code=204, summary="18.3 Удаление подписки")
async def delete_subscription(
    id: str,
    principal: Principal = Depends(require("more.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await webhooks.delete(session, principal.domain_id, id)
    await session.commit()
    return no_content()
