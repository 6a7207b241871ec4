"""Company → webhooks (002 §18): subscriptions to ``sipregs_error``, with their own URL or the CRM's; add,
delete. The form builds the API's ``WebhookCreate`` and calls ``services.webhooks``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, checked, need, render, viewer
from vpbx.schemas.webhooks import WebhookCreate
from vpbx.services import webhooks

router = APIRouter(route_class=web.ConsoleRoute)


async def _page(request: Request, who: Viewer, errors: dict[str, str] | None = None, url: str = "",
                notice: str | None = None) -> Response:
    async with web.runtime_of(request).sessions() as session:
        items = await webhooks.list_subscriptions(session, who.principal.domain_id)
    return render(request, "webhooks.html", {"title": "Вебхуки", "items": items, "errors": errors or {},
                                             "hook_url": url, "types": [(t, t) for t in webhooks.EVENT_TYPES],
                                             "notice": notice}, 400 if errors else 200)


@router.get("/console/webhooks", include_in_schema=False)
async def index(request: Request, notice: str = "", who: Viewer = Depends(viewer)) -> Response:
    need(who, "more.get")
    return await _page(request, who, notice="Сохранено" if notice == "saved" else None)


@router.post("/console/webhooks", include_in_schema=False)
async def add(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "more.edit")
    form = await request.form()
    hook_url = web.text(form, "url")
    now = web.runtime_of(request).clock.now()

    async def work(session: AsyncSession) -> None:
        body = WebhookCreate(type=web.text(form, "type") or "sipregs_error", url=hook_url or None)
        await webhooks.add(session, who.principal.domain_id, body, now)

    errors = await web.attempt(request, work)
    if errors:
        return await _page(request, who, errors, hook_url)
    return web.redirect(web.url("/webhooks?notice=saved"), request)


@router.post("/console/webhooks/{public_id}/delete", include_in_schema=False)
async def delete(request: Request, public_id: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "more.edit")

    async def work(session: AsyncSession) -> None:
        await webhooks.delete(session, who.principal.domain_id, public_id)

    await web.attempt(request, work)
    return web.redirect(web.url("/webhooks?notice=saved"), request)
