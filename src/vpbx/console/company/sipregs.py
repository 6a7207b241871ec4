"""Company → SIP registrations (002 §15): other operators' numbers this PBX registers for, with their status
as the telephony reports it now (the table refreshes itself every few seconds); add, edit (the password is
write-only), delete. Forms build the API's ``SipRegCreate``/``SipRegUpdate`` and call ``services.sipregs``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, checked, need, render, viewer
from vpbx.schemas.sipregs import SipRegCreate, SipRegUpdate, check_telnum
from vpbx.secrets_store import box_for
from vpbx.services import sipregs, tenancy
from vpbx.store.paging import Page
from vpbx.store.repositories import trunks as repo

router = APIRouter(route_class=web.ConsoleRoute)
TEXT = ("telnum", "name", "domain", "login", "auth_name", "proxy", "expires")


async def _rows(request: Request, who: Viewer) -> list[dict[str, Any]]:
    runtime = web.runtime_of(request)
    async with runtime.sessions() as session:
        rows, _ = await repo.list_sipregs(session, who.principal.domain_id, Page(limit=1000))
        return [sipregs.sipreg_out(r, runtime.telephony) for r in rows]


async def _page(request: Request, who: Viewer, errors: dict[str, str] | None = None,
                entry: dict[str, Any] | None = None, notice: str | None = None) -> Response:
    return render(request, "sipregs.html", {"title": "SIP-регистрации", "rows": await _rows(request, who),
                                            "errors": errors or {}, "entry": entry or {"expires": 600,
                                                                                       "active": True,
                                                                                       "outgoing": True},
                                            "notice": notice}, 400 if errors else 200)


@router.get("/console/sip-registrations", include_in_schema=False)
async def index(request: Request, notice: str = "", who: Viewer = Depends(viewer)) -> Response:
    need(who, "local_gw.get")
    return await _page(request, who, notice="Сохранено" if notice == "saved" else None)


@router.get("/console/sip-registrations/status", include_in_schema=False)
async def status(request: Request, who: Viewer = Depends(viewer)) -> Response:
    """The table alone, for the page to refresh the statuses."""
    need(who, "local_gw.get")
    return render(request, "sipregs_table.html", {"rows": await _rows(request, who)})


def _entry(form: FormData) -> dict[str, Any]:
    data: dict[str, Any] = {k: web.text(form, k) for k in TEXT}
    data.update(active="active" in form, outgoing="outgoing" in form)
    return data


def _body(data: dict[str, Any], password: str, creating: bool) -> dict[str, Any]:
    """The form as the API's JSON: empty optional fields left out (kept, or the API's default)."""
    body = {k: v for k, v in data.items() if v != "" or k == "proxy"}
    if password:
        body["password"] = SecretStr(password)
    elif creating:
        body["password"] = SecretStr("")  # the API's own message for a missing password
    return body


@router.post("/console/sip-registrations", include_in_schema=False)
async def create(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "local_gw.create")
    form = await request.form()
    data = _entry(form)
    runtime = web.runtime_of(request)

    async def work(session: AsyncSession) -> None:
        body = SipRegCreate(**_body(data, str(form.get("password", "")), True))
        domain = await tenancy.get_domain(session, who.principal.domain_name)
        await sipregs.create(session, domain, body, box_for(runtime.settings), runtime.clock.now())

    errors = await web.attempt(request, work)
    if errors:
        return await _page(request, who, errors, data)
    return web.redirect(web.url("/sip-registrations?notice=saved"), request)


async def _edit_page(request: Request, who: Viewer, telnum: str, errors: dict[str, str] | None = None,
                     entry: dict[str, Any] | None = None) -> Response:
    runtime = web.runtime_of(request)
    async with runtime.sessions() as session:
        reg = sipregs.sipreg_out(await sipregs.get(session, who.principal.domain_id, _telnum(telnum)),
                                 runtime.telephony)
    return render(request, "sipreg.html", {"title": reg["telnum"], "reg": reg, "entry": entry or reg,
                                           "errors": errors or {}}, 400 if errors else 200)


def _telnum(raw: str) -> str:
    try:
        return check_telnum(raw) or raw
    except ValueError:
        return raw


@router.get("/console/sip-registrations/{telnum}", include_in_schema=False)
async def show(request: Request, telnum: str, who: Viewer = Depends(viewer)) -> Response:
    need(who, "local_gw.get")
    return await _edit_page(request, who, telnum)


@router.post("/console/sip-registrations/{telnum}", include_in_schema=False)
async def update(request: Request, telnum: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "local_gw.edit")
    form = await request.form()
    data = _entry(form)
    data.pop("telnum")
    runtime = web.runtime_of(request)

    async def work(session: AsyncSession) -> None:
        body = SipRegUpdate(**_body(data, str(form.get("password", "")), False))
        await sipregs.update(session, who.principal.domain_id, _telnum(telnum), body, box_for(runtime.settings))

    errors = await web.attempt(request, work)
    if errors:
        return await _edit_page(request, who, telnum, errors, data | {"telnum": telnum})
    return web.redirect(web.url("/sip-registrations?notice=saved"), request)


@router.post("/console/sip-registrations/{telnum}/delete", include_in_schema=False)
async def delete(request: Request, telnum: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "local_gw.delete")
    runtime = web.runtime_of(request)

    async def work(session: AsyncSession) -> None:
        await sipregs.delete(session, who.principal.domain_id, _telnum(telnum), runtime.telephony)

    await web.attempt(request, work)
    return web.redirect(web.url("/sip-registrations?notice=saved"), request)
