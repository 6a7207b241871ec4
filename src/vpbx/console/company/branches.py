"""Company → branches, connections to other PBXs (002 §17): list with each one's sync status and counts, add,
edit (the key is write-only), sync now, delete. Forms build the API's ``BranchCreate``/``BranchUpdate`` and call
``services.branches``; a sync holds no transaction while the other PBX answers, as the API's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, checked, need, render, viewer
from vpbx.notify.ssrf import allow_private
from vpbx.schemas.branches import BranchCreate, BranchUpdate
from vpbx.secrets_store import box_for
from vpbx.services import branches, tenancy
from vpbx.store.paging import Page
from vpbx.store.repositories import trunks as repo

router = APIRouter(route_class=web.ConsoleRoute)


async def _page(request: Request, who: Viewer, errors: dict[str, str] | None = None,
                entry: dict[str, Any] | None = None, form: str = "", notice: str | None = None) -> Response:
    async with web.runtime_of(request).sessions() as session:
        rows, _ = await repo.list_branches(session, who.principal.domain_id, Page(limit=1000))
        items = [branches.branch_out(b) for b in rows]
    return render(request, "branches.html", {"title": "Другие АТС", "items": items, "errors": errors or {},
                                             "entry": entry or {}, "form": form, "notice": notice},
                  400 if errors else 200)


def _entry(form: FormData) -> dict[str, str]:
    return {k: web.text(form, k) for k in ("domain", "name", "url")}


def _body(entry: dict[str, str], key: str, creating: bool) -> dict[str, Any]:
    body: dict[str, Any] = {k: v for k, v in entry.items() if v or (k == "url" and not creating)}
    if key or creating:
        body["key"] = SecretStr(key)
    return body


@router.get("/console/branches", include_in_schema=False)
async def index(request: Request, notice: str = "", who: Viewer = Depends(viewer)) -> Response:
    need(who, "branches.get")
    return await _page(request, who, notice="Сохранено" if notice == "saved" else None)


@router.post("/console/branches", include_in_schema=False)
async def create(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "branches.create")
    form = await request.form()
    entry = _entry(form)
    runtime = web.runtime_of(request)

    async def work(session: AsyncSession) -> None:
        body = BranchCreate(**_body(entry, str(form.get("key", "")), True))
        domain = await tenancy.get_domain(session, who.principal.domain_name)
        await branches.create(session, domain, body, box_for(runtime.settings), runtime.clock.now())

    errors = await web.attempt(request, work)
    if errors:
        return await _page(request, who, errors, entry, "new")
    return web.redirect(web.url("/branches?notice=saved"), request)


@router.post("/console/branches/{remote}", include_in_schema=False)
async def update(request: Request, remote: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "branches.edit")
    form = await request.form()
    entry = _entry(form)
    runtime = web.runtime_of(request)

    async def work(session: AsyncSession) -> None:
        body = BranchUpdate(**_body(entry, str(form.get("key", "")), False))
        own = await tenancy.get_domain(session, who.principal.domain_name)
        await branches.update(session, own, remote, body, box_for(runtime.settings))

    errors = await web.attempt(request, work)
    if errors:
        return await _page(request, who, errors, entry, remote)
    return web.redirect(web.url("/branches?notice=saved"), request)


@router.post("/console/branches/{remote}/sync", include_in_schema=False)
async def sync(request: Request, remote: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "branches.edit")
    runtime = web.runtime_of(request)
    async with runtime.sessions() as session:
        target = branches.target(await branches.get(session, who.principal.domain_id, remote),
                                 box_for(runtime.settings))
    result = await branches.fetch_directory(target, private_ok=allow_private(runtime.settings))
    async with runtime.sessions() as session:
        await branches.apply(session, who.principal.domain_id, target.remote_domain, result, runtime.clock.now())
        await session.commit()
    return web.redirect(web.url("/branches?notice=saved"), request)


@router.post("/console/branches/{remote}/delete", include_in_schema=False)
async def delete(request: Request, remote: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "branches.delete")

    async def work(session: AsyncSession) -> None:
        await branches.delete(session, who.principal.domain_id, remote)

    await web.attempt(request, work)
    return web.redirect(web.url("/branches?notice=saved"), request)
