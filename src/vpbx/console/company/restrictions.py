"""Company → call restrictions (002 §14): the directions everyone may dial, and those added for employees and
departments. Each rule is a row of direction boxes; saving it adds and removes the difference through
``services.restrictions`` (the API's 14.2-14.4 operations)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, checked, need, render, viewer
from vpbx.domain.directions import Direction
from vpbx.domain.restrictions import ALL
from vpbx.services import restrictions
from vpbx.store.paging import Page
from vpbx.store.repositories import directory as dir_repo

router = APIRouter(route_class=web.ConsoleRoute)
CODES = [ALL, *(d.value for d in Direction)]
LABELS = {"ALL": "все направления", "LOCAL": "свой регион", "RU": "Россия", "179": "мобильные России",
          "CIS": "СНГ", "BALT": "Прибалтика", "EURO": "Европа", "AUS": "Австралия и Океания", "ASIA": "Азия",
          "AFR": "Африка", "NA": "Северная Америка", "SA": "Южная Америка", "OTH": "прочие"}


async def _page(request: Request, who: Viewer, errors: dict[str, str] | None = None, form: str = "",
                notice: str | None = None) -> Response:
    runtime = web.runtime_of(request)
    async with runtime.sessions() as session:
        overview = await restrictions.overview(session, who.principal.domain_id)
        departments, _ = await dir_repo.list_groups(session, who.principal.domain_id, Page(limit=1000))
    people, _ = await dir_repo.list_users(runtime.reader, who.principal.domain_id, Page(limit=1000))
    return render(request, "restrictions.html", {
        "title": "Ограничения звонков", "overview": overview, "codes": CODES, "labels": LABELS,
        "errors": errors or {}, "form": form, "notice": notice, "people": [(u.login, u.name) for u in people],
        "departments": [(g.group_id, g.name) for g in departments]}, 400 if errors else 200)


@router.get("/console/restrictions", include_in_schema=False)
async def index(request: Request, notice: str = "", who: Viewer = Depends(viewer)) -> Response:
    need(who, "restrictions.get")
    return await _page(request, who, notice="Сохранено" if notice == "saved" else None)


@router.post("/console/restrictions/{kind}", include_in_schema=False)
async def save(request: Request, kind: str, who: Viewer = Depends(checked)) -> Response:
    """One rule: ``main`` (everyone), ``users`` (``login``) or ``groups`` (``id``); the ticked directions are
    what it allows afterwards."""
    form = await request.form()
    wanted = [str(c) for c in form.getlist("allowed")]
    target = web.text(form, "login" if kind == "users" else "id")
    domain_id = who.principal.domain_id

    async def work(session: AsyncSession) -> None:
        current = await restrictions.overview(session, domain_id)
        if kind == "main":
            had = current["main"]
        else:
            key = "login" if kind == "users" else "id"
            had = next((r["allowed"] for r in current[kind] if r[key] == target), [])
        added = [c for c in wanted if c not in had]
        gone = [c for c in had if c not in wanted]
        if kind == "main":
            if added:
                await restrictions.add_main(session, domain_id, added)
            if gone:
                await restrictions.remove_main(session, domain_id, gone)
        elif kind == "users":
            if added:
                await restrictions.add_users(session, domain_id, [(target, added)])
            if gone:
                await restrictions.remove_user(session, domain_id, target, gone)
        else:
            if added:
                await restrictions.add_groups(session, domain_id, [(target, added)])
            if gone:
                await restrictions.remove_group(session, domain_id, target, gone)

    need(who, "restrictions.edit")
    if kind not in ("main", "users", "groups"):
        return web.redirect(web.url("/restrictions"), request)
    errors = await web.attempt(request, work, strip="0.")
    if errors:
        return await _page(request, who, errors, kind)
    return web.redirect(web.url("/restrictions?notice=saved"), request)
