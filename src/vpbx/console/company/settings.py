"""Company → settings of 002 §12: call recording (external / internal, the employees not recorded), the
secretary console's employees (BLF, §12.7) and the company answering machine (§12.8: forward to everyone,
employees, departments, an extra address). Forms build the API's ``RecordUpdate``/``AmUpdate`` and call
``services.settings``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, checked, need, render, viewer
from vpbx.schemas.settings import AmUpdate, RecordUpdate
from vpbx.services import settings
from vpbx.store.paging import Page
from vpbx.store.repositories import directory as dir_repo

router = APIRouter(route_class=web.ConsoleRoute)
LISTS = {"record": settings.RECORD_EXCEPTIONS, "blf": settings.BLF, "am": settings.AM}


async def _page(request: Request, who: Viewer, errors: dict[str, str] | None = None, form: str = "",
                notice: str | None = None) -> Response:
    runtime = web.runtime_of(request)
    domain_id = who.principal.domain_id
    async with runtime.sessions() as session:
        record = await settings.record(session, domain_id)
        blf = await settings.blf_users(session, domain_id)
        am = await settings.am(session, domain_id)
        departments, _ = await dir_repo.list_groups(session, domain_id, Page(limit=1000))
    people, _ = await dir_repo.list_users(runtime.reader, domain_id, Page(limit=1000))
    return render(request, "settings.html", {
        "title": "Настройки", "record": record, "lists": {"record": record["users_exception"], "blf": blf,
                                                          "am": am["users"]},
        "am": am, "people": [(u.login, u.name) for u in people],
        "departments": [(g.group_id, g.name) for g in departments], "errors": errors or {}, "form": form,
        "notice": notice}, 400 if errors else 200)


@router.get("/console/settings", include_in_schema=False)
async def index(request: Request, notice: str = "", who: Viewer = Depends(viewer)) -> Response:
    need(who, "more.get")
    return await _page(request, who, notice="Сохранено" if notice == "saved" else None)


async def _done(request: Request, who: Viewer, errors: dict[str, str], form: str) -> Response:
    if errors:
        return await _page(request, who, errors, form)
    return web.redirect(web.url("/settings?notice=saved"), request)


@router.post("/console/settings/record", include_in_schema=False)
async def save_record(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "more.edit")
    form = await request.form()

    async def work(session: AsyncSession) -> None:
        body = RecordUpdate(external="external" in form, inner="inner" in form)
        await settings.set_record(session, who.principal.domain_id, external=body.external, inner=body.inner)

    return await _done(request, who, await web.attempt(request, work), "record")


@router.post("/console/settings/am", include_in_schema=False)
async def save_am(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "more.edit")
    form = await request.form()

    async def work(session: AsyncSession) -> None:
        body = AmUpdate(all="all" in form, email=web.text(form, "email"))
        await settings.set_am(session, who.principal.domain_id, all_=body.all, email=body.email)

    return await _done(request, who, await web.attempt(request, work), "am")


@router.post("/console/settings/{kind}/users", include_in_schema=False)
async def add_user(request: Request, kind: str, who: Viewer = Depends(checked)) -> Response:
    """An employee added to a list: not recorded (``record``), on the secretary console (``blf``), getting the
    answering machine's messages (``am``)."""
    need(who, "more.edit")
    login = web.text(await request.form(), "login")

    async def work(session: AsyncSession) -> None:
        await settings.add_to_list(session, who.principal.domain_id, LISTS[kind], [login], field="login")

    if kind not in LISTS:
        return web.redirect(web.url("/settings"), request)
    return await _done(request, who, await web.attempt(request, work), kind)


@router.post("/console/settings/{kind}/users/delete", include_in_schema=False)
async def remove_user(request: Request, kind: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "more.delete")
    login = web.text(await request.form(), "login")

    async def work(session: AsyncSession) -> None:
        await settings.remove_from_list(session, who.principal.domain_id, LISTS[kind], [login], field="login")

    if kind not in LISTS:
        return web.redirect(web.url("/settings"), request)
    return await _done(request, who, await web.attempt(request, work), kind)


@router.post("/console/settings/am/groups", include_in_schema=False)
async def add_am_group(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "more.edit")
    group_id = web.text(await request.form(), "id")

    async def work(session: AsyncSession) -> None:
        await settings.add_am_groups(session, who.principal.domain_id, [group_id], field="id")

    return await _done(request, who, await web.attempt(request, work), "am-groups")


@router.post("/console/settings/am/groups/delete", include_in_schema=False)
async def remove_am_group(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "more.delete")
    group_id = web.text(await request.form(), "id")

    async def work(session: AsyncSession) -> None:
        await settings.remove_am_groups(session, who.principal.domain_id, [group_id], field="id")

    return await _done(request, who, await web.attempt(request, work), "am-groups")
