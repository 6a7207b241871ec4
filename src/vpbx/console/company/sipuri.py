"""Company → SIP forwarding (002 §16): other operators' numbers forwarded to a generated SIP address of this
PBX; add, switch on/off, delete. Forms build the API's ``SipUriCreate``/``SipUriUpdate`` and call
``services.sipuri``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, checked, need, render, viewer
from vpbx.schemas.sipregs import check_telnum
from vpbx.schemas.sipuri import SipUriCreate, SipUriUpdate
from vpbx.services import sipuri, tenancy
from vpbx.store.paging import Page
from vpbx.store.repositories import trunks as repo

router = APIRouter(route_class=web.ConsoleRoute)


async def _page(request: Request, who: Viewer, errors: dict[str, str] | None = None, telnum: str = "",
                notice: str | None = None) -> Response:
    async with web.runtime_of(request).sessions() as session:
        rows, _ = await repo.list_sipuris(session, who.principal.domain_id, Page(limit=1000))
        items = [sipuri.sipuri_out(r) for r in rows]
    return render(request, "sipuri.html", {"title": "SIP-переадресация", "items": items, "errors": errors or {},
                                           "telnum": telnum, "notice": notice}, 400 if errors else 200)


def _telnum(raw: str) -> str:
    try:
        return check_telnum(raw) or raw
    except ValueError:
        return raw


@router.get("/console/sip-forwarding", include_in_schema=False)
async def index(request: Request, notice: str = "", who: Viewer = Depends(viewer)) -> Response:
    need(who, "local_gw.get")
    return await _page(request, who, notice="Сохранено" if notice == "saved" else None)


@router.post("/console/sip-forwarding", include_in_schema=False)
async def create(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "local_gw.create")
    form = await request.form()
    telnum = web.text(form, "telnum")
    runtime = web.runtime_of(request)

    async def work(session: AsyncSession) -> None:
        body = SipUriCreate(telnum=telnum, active="active" in form)
        domain = await tenancy.get_domain(session, who.principal.domain_name)
        await sipuri.create(session, domain, body, runtime.clock.now())

    errors = await web.attempt(request, work)
    if errors:
        return await _page(request, who, errors, telnum)
    return web.redirect(web.url("/sip-forwarding?notice=saved"), request)


@router.post("/console/sip-forwarding/{telnum}", include_in_schema=False)
async def switch(request: Request, telnum: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "local_gw.edit")
    on = web.text(await request.form(), "active") == "1"

    async def work(session: AsyncSession) -> None:
        await sipuri.update(session, who.principal.domain_id, _telnum(telnum), SipUriUpdate(active=on))

    await web.attempt(request, work)
    return web.redirect(web.url("/sip-forwarding?notice=saved"), request)


@router.post("/console/sip-forwarding/{telnum}/delete", include_in_schema=False)
async def delete(request: Request, telnum: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "local_gw.delete")

    async def work(session: AsyncSession) -> None:
        await sipuri.delete(session, who.principal.domain_id, _telnum(telnum))

    await web.attempt(request, work)
    return web.redirect(web.url("/sip-forwarding?notice=saved"), request)
