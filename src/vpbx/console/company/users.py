"""Company → employees (002 §6): list, add, edit, delete, password reset, DND. Forms build the API's own pydantic
models and call ``services.users``; their field errors show next to the fields."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, checked, need, render, viewer
from vpbx.domain.rights import BUILTIN_ROLES
from vpbx.schemas.users import UserCreate, UserUpdate
from vpbx.security import new_password
from vpbx.services import tenancy, users
from vpbx.services.errors import Invalid
from vpbx.store.paging import Page
from vpbx.store.repositories import directory as repo
from vpbx.store.repositories import tenancy as tenancy_repo

router = APIRouter(route_class=web.ConsoleRoute)
FIELDS = ("login", "name", "position", "email", "ext", "mobile", "role", "password")


async def _roles(request: Request, who: Viewer) -> list[tuple[str, str]]:
    async with web.runtime_of(request).sessions() as session:
        custom = await tenancy_repo.custom_roles(session, who.principal.domain_id)
    return [(r, r) for r in BUILTIN_ROLES] + [(r.role_id, r.name) for r in custom]


async def _form_data(request: Request) -> dict[str, str]:
    form = await request.form()
    return {name: str(form.get(name, "")).strip() for name in FIELDS}


def _given(data: dict[str, str], names: tuple[str, ...]) -> dict[str, Any]:
    """Fields the person filled in; an empty field means "keep" (or the API's default), as an omitted JSON field."""
    return {k: v for k, v in data.items() if k in names and v != ""}


@router.get("/console/users", include_in_schema=False)
async def index(request: Request, search: str = "", who: Viewer = Depends(viewer)) -> Response:
    need(who, "users.get")
    runtime = web.runtime_of(request)
    rows, total = await repo.list_users(runtime.reader, who.principal.domain_id, Page(search=search, start=0,
                                                                                        limit=500))
    people = [dict(users.user_out(u), dnd=u.dnd,
                   status="online" if runtime.telephony.is_registered(who.principal.domain_id, u.login) else "offline")
              for u in rows]
    return render(request, "users.html", {"title": "Сотрудники", "people": people, "total": total, "search": search})


@router.get("/console/users/new", include_in_schema=False)
async def new(request: Request, who: Viewer = Depends(viewer)) -> Response:
    need(who, "users.create")
    return render(request, "user_form.html", {"title": "Новый сотрудник", "person": {}, "errors": {},
                                              "roles": await _roles(request, who), "creating": True})


@router.post("/console/users/new", include_in_schema=False)
async def create(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "users.create")
    data = await _form_data(request)
    runtime = web.runtime_of(request)
    try:
        body = UserCreate(**_given(data, FIELDS))
        async with runtime.sessions() as session:
            domain = await tenancy.get_domain(session, who.principal.domain_name)
            user = await users.create(session, domain, body, runtime.clock.now())
            await session.commit()
    except (ValidationError, Invalid) as exc:
        return render(request, "user_form.html", {"title": "Новый сотрудник", "person": data, "creating": True,
                                                  "errors": web.field_errors(exc),
                                                  "roles": await _roles(request, who)}, 400)
    return web.redirect(web.url(f"/users/{user.login}?notice=saved"), request)


async def _person(request: Request, who: Viewer, login: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    async with web.runtime_of(request).sessions() as session:
        user = await users.get(session, who.principal.domain_id, login)
        person = dict(users.user_out(user), dnd=user.dnd)
        return person, await users.groups(session, who.principal.domain_id, user.login)


@router.get("/console/users/{login}", include_in_schema=False)
async def show(request: Request, login: str, notice: str = "", who: Viewer = Depends(viewer)) -> Response:
    need(who, "users.get")
    person, groups = await _person(request, who, login)
    return render(request, "user_form.html", {"title": person["name"], "person": person, "groups": groups,
                                              "errors": {}, "roles": await _roles(request, who),
                                              "notice": "Сохранено" if notice == "saved" else None})


@router.post("/console/users/{login}", include_in_schema=False)
async def update(request: Request, login: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "users.edit")
    data = await _form_data(request)
    try:
        # Text fields are sent as shown (clearing one clears it); ext and role only when chosen.
        body = UserUpdate(**{k: data[k] for k in ("name", "position", "email", "mobile")},
                          **_given(data, ("ext", "role")))
        async with web.runtime_of(request).sessions() as session:
            user = await users.update(session, who.principal.domain_id, login, body)
            await session.commit()
    except (ValidationError, Invalid) as exc:
        person, groups = await _person(request, who, login)
        person.update({k: v for k, v in data.items() if k != "password"})
        return render(request, "user_form.html", {"title": person["name"], "person": person, "groups": groups,
                                                  "errors": web.field_errors(exc),
                                                  "roles": await _roles(request, who)}, 400)
    return web.redirect(web.url(f"/users/{user.login}?notice=saved"), request)


@router.post("/console/users/{login}/delete", include_in_schema=False)
async def delete(request: Request, login: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "users.delete")
    async with web.runtime_of(request).sessions() as session:
        await users.delete(session, who.principal.domain_id, login)
        await session.commit()
    return web.redirect(web.url("/users"), request)


@router.post("/console/users/{login}/password", include_in_schema=False)
async def reset_password(request: Request, login: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "users.edit")
    password = new_password()
    async with web.runtime_of(request).sessions() as session:
        await users.update(session, who.principal.domain_id, login, UserUpdate(password=password))
        await session.commit()
    person, groups = await _person(request, who, login)
    return render(request, "user_form.html", {"title": person["name"], "person": person, "groups": groups,
                                              "errors": {}, "roles": await _roles(request, who),
                                              "new_password": password})


@router.post("/console/users/{login}/dnd", include_in_schema=False)
async def dnd(request: Request, login: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "users.edit")
    form = await request.form()
    async with web.runtime_of(request).sessions() as session:
        user = await users.get(session, who.principal.domain_id, login)
        await users.set_dnd(session, who.principal.domain_id, user.login, form.get("on") == "1")
        await session.commit()
    back = str(form.get("back", ""))
    return web.redirect(web.url("/users") if back == "list" else web.url(f"/users/{user.login}"), request)

