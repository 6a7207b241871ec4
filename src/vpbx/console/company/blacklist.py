"""Company → blacklist (002 §11): the numbers and masks with their comments and blocked-call counts, add one,
remove one, and the "block anonymous callers" option. Forms build the API's ``BlacklistIn`` and call
``services.blacklist``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, checked, need, render, viewer
from vpbx.schemas.blacklist import BlacklistIn
from vpbx.services import blacklist

router = APIRouter(route_class=web.ConsoleRoute)


async def _page(request: Request, who: Viewer, errors: dict[str, str] | None = None,
                entry: dict[str, str] | None = None, notice: str | None = None) -> Response:
    runtime = web.runtime_of(request)
    async with runtime.sessions() as session:
        items = await blacklist.listing(session, who.principal.domain_id, runtime.clock.now(), True)
        anonymous = await blacklist.block_anonymous(session, who.principal.domain_id)
    return render(request, "blacklist.html", {"title": "Черный список", "items": items, "anonymous": anonymous,
                                              "errors": errors or {}, "entry": entry or {}, "notice": notice},
                  400 if errors else 200)


@router.get("/console/blacklist", include_in_schema=False)
async def index(request: Request, notice: str = "", who: Viewer = Depends(viewer)) -> Response:
    need(who, "blacklist.get")
    return await _page(request, who, notice="Сохранено" if notice == "saved" else None)


@router.post("/console/blacklist", include_in_schema=False)
async def add(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "blacklist.create")
    form = await request.form()
    entry = {"telnum": web.text(form, "telnum"), "comment": web.text(form, "comment")}
    now = web.runtime_of(request).clock.now()

    async def work(session: AsyncSession) -> None:
        await blacklist.add(session, who.principal.domain_id, [BlacklistIn(**entry)], now)

    errors = await web.attempt(request, work, strip="0.")
    if errors:
        return await _page(request, who, errors, entry)
    return web.redirect(web.url("/blacklist?notice=saved"), request)


@router.post("/console/blacklist/delete", include_in_schema=False)
async def delete(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "blacklist.delete")
    telnum = web.text(await request.form(), "telnum")

    async def work(session: AsyncSession) -> None:
        await blacklist.remove(session, who.principal.domain_id, [telnum])

    errors = await web.attempt(request, work)
    if errors:
        return await _page(request, who, errors)
    return web.redirect(web.url("/blacklist?notice=saved"), request)


@router.post("/console/blacklist/anonymous", include_in_schema=False)
async def anonymous(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "blacklist.edit")
    on = web.text(await request.form(), "on") == "1"

    async def work(session: AsyncSession) -> None:
        await blacklist.set_block_anonymous(session, who.principal.domain_id, on)

    await web.attempt(request, work)
    return web.redirect(web.url("/blacklist?notice=saved"), request)
