"""Company → departments (002 §8): list, add, edit (name, extension, ring strategy, ring time, timeout, members
with calls on/off), delete. The forms build the API's ``GroupCreate``/``GroupUpdate`` and call ``services.groups``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, checked, need, render, viewer
from vpbx.schemas.groups import GroupCreate, GroupUpdate, MemberIn
from vpbx.services import groups, tenancy
from vpbx.services.errors import Invalid
from vpbx.store.paging import Page
from vpbx.store.repositories import directory as repo

router = APIRouter(route_class=web.ConsoleRoute)
ORDERS = [("ALL", "ALL"), ("EVENLY", "EVENLY"), ("BYORDER", "BYORDER"), ("WATERFALL", "WATERFALL")]
TARGETS = [("voicemail", "voicemail"), ("user", "user"), ("group", "group"), ("telnum", "telnum"),
           ("msg_busy", "msg_busy")]


async def _everyone(request: Request, who: Viewer) -> list[Any]:
    rows, _ = await repo.list_users(web.runtime_of(request).reader, who.principal.domain_id, Page(limit=1000))
    return list(rows)


def _body(form: FormData) -> dict[str, Any]:
    """The form as the API's JSON body: members in the order ticked, each with calls on or off."""
    members = [MemberIn(login=str(login), calls_enable=f"calls:{login}" in form) for login in form.getlist("member")]
    body: dict[str, Any] = {"name": str(form.get("name", "")).strip(), "call_order": form.get("call_order"),
                            "users": members}
    for name in ("ext", "call_duration"):
        if str(form.get(name, "")).strip():
            body[name] = str(form.get(name)).strip()
    target = str(form.get("timeout_target", ""))
    if target:
        timeout: dict[str, Any] = {"target": target, "time": str(form.get("timeout_time", "") or 120)}
        if target in ("user", "group", "telnum"):
            timeout[target] = str(form.get("timeout_to", "")).strip() or None
        body["timeout"] = timeout
    return body


async def _form(request: Request, who: Viewer, group: dict[str, Any], errors: dict[str, str], creating: bool,
                status: int = 200) -> Response:
    return render(request, "group_form.html", {"title": group.get("name") or "Отделы", "group": group,
                                               "errors": errors, "creating": creating, "orders": ORDERS,
                                               "targets": TARGETS, "everyone": await _everyone(request, who)},
                  status)


@router.get("/console/groups", include_in_schema=False)
async def index(request: Request, who: Viewer = Depends(viewer)) -> Response:
    need(who, "groups.get")
    async with web.runtime_of(request).sessions() as session:
        rows, _ = await repo.list_groups(session, who.principal.domain_id, Page(limit=1000))
        departments = await groups.render(session, rows)
    return render(request, "groups.html", {"title": "Отделы", "departments": departments})


@router.get("/console/groups/new", include_in_schema=False)
async def new(request: Request, who: Viewer = Depends(viewer)) -> Response:
    need(who, "groups.create")
    return await _form(request, who, {"call_order": "BYORDER", "users": []}, {}, True)


def _echo(form: FormData) -> dict[str, Any]:
    """What the person sent, to show again with the errors."""
    return {"name": form.get("name"), "ext": form.get("ext"), "call_order": form.get("call_order"),
            "call_duration": form.get("call_duration"),
            "timeout": {"target": form.get("timeout_target"), "time": form.get("timeout_time")},
            "users": [{"login": str(m), "calls_enable": f"calls:{m}" in form} for m in form.getlist("member")]}


@router.post("/console/groups/new", include_in_schema=False)
async def create(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "groups.create")
    form = await request.form()
    runtime = web.runtime_of(request)
    try:
        body = GroupCreate(**_body(form))
        async with runtime.sessions() as session:
            domain = await tenancy.get_domain(session, who.principal.domain_name)
            group = await groups.create(session, domain, body, runtime.clock.now())
            await session.commit()
    except (ValidationError, Invalid) as exc:
        return await _form(request, who, _echo(form), web.field_errors(exc), True, 400)
    return web.redirect(web.url(f"/groups/{group.group_id}"), request)


@router.get("/console/groups/{group_id}", include_in_schema=False)
async def show(request: Request, group_id: str, who: Viewer = Depends(viewer)) -> Response:
    need(who, "groups.get")
    async with web.runtime_of(request).sessions() as session:
        group = (await groups.render(session, [await groups.get(session, who.principal.domain_id, group_id)]))[0]
    return await _form(request, who, group, {}, False)


@router.post("/console/groups/{group_id}", include_in_schema=False)
async def update(request: Request, group_id: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "groups.edit")
    form = await request.form()
    try:
        body = GroupUpdate(**_body(form))
        async with web.runtime_of(request).sessions() as session:
            await groups.update(session, who.principal.domain_id, group_id, body)
            await session.commit()
    except (ValidationError, Invalid) as exc:
        echo = _echo(form) | {"id": group_id}
        return await _form(request, who, echo, web.field_errors(exc), False, 400)
    return web.redirect(web.url(f"/groups/{group_id}"), request)


@router.post("/console/groups/{group_id}/delete", include_in_schema=False)
async def delete(request: Request, group_id: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "groups.delete")
    async with web.runtime_of(request).sessions() as session:
        await groups.delete(session, who.principal.domain_id, group_id)
        await session.commit()
    return web.redirect(web.url("/groups"), request)
