"""Company → domain parameters (002 §12.1, read-only: time zone, limits, services) and additional roles (12.6:
the list, and a new role with its rights ticked from ``domain.rights``). The same services as the API's
``api/v1/domain.py``; a new role is the domain owner's (it could grant any right), listing needs ``more.get``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, checked, need, need_admin, render, viewer
from vpbx.domain.rights import SECTIONS, VERBS
from vpbx.services import tenancy
from vpbx.services.errors import Invalid
from vpbx.store.repositories import tenancy as repo

router = APIRouter(route_class=web.ConsoleRoute)
VERB_LABELS = {"get": "Просмотр", "create": "Создание", "edit": "Редактирование", "delete": "Удаление"}
NAME_LENGTH = tenancy.ROLE_NAME_LENGTH


@router.get("/console/domain", include_in_schema=False)
async def params(request: Request, who: Viewer = Depends(viewer)) -> Response:
    need(who, "more.get")
    runtime = web.runtime_of(request)
    async with runtime.sessions() as session:
        domain = await tenancy.get_domain(session, who.principal.domain_name)
        found = await tenancy.domain_params(session, domain, runtime.clock.now())
    minutes = int(found["timezone"]["offset"])
    offset = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return render(request, "domain.html", {"title": "Параметры домена", "params": found, "offset": offset})


async def _roles(request: Request, who: Viewer, errors: dict[str, str] | None = None,
                 entry: dict[str, object] | None = None, notice: str | None = None) -> Response:
    async with web.runtime_of(request).sessions() as session:
        roles = await repo.custom_roles(session, who.principal.domain_id)
    return render(request, "roles.html", {
        "title": "Дополнительные роли", "roles": roles, "sections": SECTIONS, "verbs": VERBS,
        "verb_labels": VERB_LABELS, "errors": errors or {}, "entry": entry or {"name": "", "rights": []},
        "notice": notice}, 400 if errors else 200)


@router.get("/console/roles", include_in_schema=False)
async def roles(request: Request, notice: str = "", who: Viewer = Depends(viewer)) -> Response:
    need(who, "more.get")
    return await _roles(request, who, notice="Сохранено" if notice == "saved" else None)


@router.post("/console/roles", include_in_schema=False)
async def create(request: Request, who: Viewer = Depends(checked)) -> Response:
    need_admin(who)
    form = await request.form()
    name = web.text(form, "name")
    rights = [str(r) for r in form.getlist("rights")]

    async def work(session: AsyncSession) -> None:
        if not name:
            raise Invalid("name", "Укажите название роли")
        if len(name) > NAME_LENGTH:
            raise Invalid("name", f"Не длиннее {NAME_LENGTH} символов")
        domain = await tenancy.get_domain(session, who.principal.domain_name)
        await tenancy.create_role(session, domain, name, rights)  # refuses a right 12.6 does not know

    errors = await web.attempt(request, work)
    if errors:
        return await _roles(request, who, errors, {"name": name, "rights": rights})
    return web.redirect(web.url("/roles?notice=saved"), request)
