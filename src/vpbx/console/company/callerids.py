"""Company → caller IDs (002 §13): the company's main number, personal numbers of employees and departments,
regional numbers. Forms build the API's ``MainSet``/``UserCallerIdSet``/``GroupCallerIdSet``/``RegionCallerIdSet``
and call ``services.callerids``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, checked, need, render, viewer
from vpbx.schemas.callerids import GroupCallerIdSet, MainSet, RegionCallerIdSet, UserCallerIdSet
from vpbx.services import callerids
from vpbx.store.paging import Page
from vpbx.store.repositories import directory as dir_repo

router = APIRouter(route_class=web.ConsoleRoute)
MODES = [("all", "все номера"), ("mobile", "мобильные"), ("fixed", "городские")]


async def _page(request: Request, who: Viewer, errors: dict[str, str] | None = None, form: str = "",
                notice: str | None = None) -> Response:
    runtime = web.runtime_of(request)
    domain_id = who.principal.domain_id
    async with runtime.sessions() as session:
        overview = await callerids.overview(session, domain_id)
        telnums = await callerids.telnums(session, domain_id)
        departments, _ = await dir_repo.list_groups(session, domain_id, Page(limit=1000))
    people, _ = await dir_repo.list_users(runtime.reader, domain_id, Page(limit=1000))
    numbers = [(n["telnum"], n["telnum"]) for n in telnums if n["enabled"]]
    return render(request, "callerids.html", {
        "title": "Исходящие номера", "overview": overview, "numbers": numbers, "errors": errors or {},
        "form": form, "people": [(u.login, u.name) for u in people],
        "departments": [(g.group_id, g.name) for g in departments],
        "regions": [(r["id"], r["name"]) for r in callerids.regions()], "modes": MODES, "notice": notice},
        400 if errors else 200)


@router.get("/console/caller-ids", include_in_schema=False)
async def index(request: Request, notice: str = "", who: Viewer = Depends(viewer)) -> Response:
    need(who, "callerids.get")
    return await _page(request, who, notice="Сохранено" if notice == "saved" else None)


async def _change(request: Request, who: Viewer, form_name: str, work: Any) -> Response:
    errors = await web.attempt(request, work)
    if errors:
        return await _page(request, who, errors, form_name)
    return web.redirect(web.url("/caller-ids?notice=saved"), request)


@router.post("/console/caller-ids/main", include_in_schema=False)
async def set_main(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "callerids.edit")
    form = await request.form()

    async def work(session: AsyncSession) -> None:
        body = MainSet(telnum=web.text(form, "telnum"))
        await callerids.set_main(session, who.principal.domain_id, body.telnum)

    return await _change(request, who, "main", work)


@router.post("/console/caller-ids/{kind}", include_in_schema=False)
async def set_personal(request: Request, kind: str, who: Viewer = Depends(checked)) -> Response:
    """A personal number of an employee (``users``), a department (``groups``) or a region (``regions``)."""
    need(who, "callerids.edit")
    form = await request.form()
    domain_id = who.principal.domain_id

    async def work(session: AsyncSession) -> None:
        telnum = web.text(form, "telnum")
        if kind == "users":
            user = UserCallerIdSet(login=web.text(form, "login"), telnum=telnum)
            await callerids.set_user(session, domain_id, user.login, user.telnum)
        elif kind == "groups":
            group = GroupCallerIdSet(id=web.text(form, "id"), telnum=telnum)
            await callerids.set_group(session, domain_id, group.id, group.telnum)
        else:
            region = RegionCallerIdSet(id=web.text(form, "id"), mode=web.text(form, "mode") or "all",
                                       telnum=telnum)
            await callerids.set_region(session, domain_id, region.id, region.mode, region.telnum)

    if kind not in ("users", "groups", "regions"):
        return web.redirect(web.url("/caller-ids"), request)
    return await _change(request, who, kind, work)


@router.post("/console/caller-ids/{kind}/delete", include_in_schema=False)
async def remove(request: Request, kind: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "callerids.delete")
    form = await request.form()
    domain_id = who.principal.domain_id

    async def work(session: AsyncSession) -> None:
        if kind == "users":
            await callerids.remove_user(session, domain_id, web.text(form, "login"))
        elif kind == "groups":
            await callerids.remove_group(session, domain_id, web.text(form, "id"))
        elif kind == "regions":
            await callerids.remove_region(session, domain_id, web.text(form, "id"), web.text(form, "mode") or "all")

    return await _change(request, who, kind, work)
