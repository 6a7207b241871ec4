"""Company → numbers and their routes (002 §9): the route (an employee, a department, a voice menu, or a
schedule with the working-hours and off-hours targets), the IVR menu editor (9.6: a target per key), the
week-grid schedule editor (hours of each weekday, 9.9 ``schedule``), extra intervals (9.7) and special days
(9.8). The forms build the API's ``TelnumRouteIn``/``IntervalIn``/``CalendarIn`` and call ``services.numbers``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, checked, need, render, viewer
from vpbx.domain.schedule import WEEKDAYS
from vpbx.schemas.numbers import BUTTONS, CalendarIn, IntervalIn, TelnumRouteIn
from vpbx.services import numbers
from vpbx.services.errors import Invalid, NotFound
from vpbx.store.paging import Page
from vpbx.store.repositories import directory as dir_repo
from vpbx.store.repositories import numbers as repo

router = APIRouter(route_class=web.ConsoleRoute)
DAY_LABELS = ("Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс")
ROUTE_TYPES = [("user", "Сотрудник"), ("group", "Отделы"), ("ivr", "Голосовое меню"), ("scheduler", "Расписание")]
BUTTON_TYPES = [("", "—"), ("user", "Сотрудник"), ("group", "Отделы"), ("telnum", "Номер"),
                ("ivr", "Другое меню")]
TARGET_TYPES = [("user", "Сотрудник"), ("group", "Отделы"), ("telnum", "Номер"), ("offtime", "Нерабочее время")]


def grid_of(schedule: dict[str, Any] | None) -> list[list[bool]]:
    """Hours ticked per weekday: an hour is working when a working span covers any of it."""
    grid = [[False] * 24 for _ in WEEKDAYS]
    for d, day in enumerate(WEEKDAYS):
        value = (schedule or {}).get(day)
        for span in value if isinstance(value, list) else [value] if value else []:
            if span.get("holiday"):
                continue
            start, end = int(span.get("start", 0)), int(span.get("end", 0))
            for h in range(24):
                if start < (h + 1) * 3600 and end > h * 3600:
                    grid[d][h] = True
    return grid


def schedule_of(form: FormData) -> dict[str, Any]:
    """The grid as the 9.9 ``schedule``: each weekday's runs of ticked hours as working spans."""
    out: dict[str, Any] = {}
    for d, day in enumerate(WEEKDAYS):
        hours = [h for h in range(24) if f"h-{d}-{h}" in form]
        spans: list[dict[str, Any]] = []
        for h in hours:
            if spans and spans[-1]["end"] == h * 3600:
                spans[-1]["end"] = (h + 1) * 3600
            else:
                spans.append({"start": h * 3600, "end": (h + 1) * 3600, "holiday": False})
        out[day] = spans if spans else {"start": 0, "end": 0, "holiday": True}
    return out


def _target(form: FormData, prefix: str) -> dict[str, Any]:
    kind = str(form.get(f"{prefix}_type", ""))
    value = str(form.get(f"{prefix}_to", "")).strip()
    return {"type": kind, kind: value} if kind in ("user", "group", "telnum") else {"type": kind}


def _body(form: FormData, current: dict[str, Any]) -> dict[str, Any]:
    kind = str(form.get("type", ""))
    body: dict[str, Any] = {"type": kind, "greeting": bool(current.get("greeting"))}
    if kind in ("user", "group"):
        body[kind] = str(form.get("to", "")).strip()
    elif kind == "ivr":
        body["ivr"] = menu_of(form)
    elif kind == "scheduler":
        body["work"] = _target(form, "work")
        body["other"] = _target(form, "other")
        body["schedule"] = schedule_of(form)
    return body


def menu_of(form: FormData) -> dict[str, Any]:
    """The IVR editor as the 9.6 menu: each key with a target, in the keys' order."""
    items = []
    for i, button in enumerate(BUTTONS):
        kind = str(form.get(f"b-{i}-type", ""))
        if kind:
            items.append({"button": button, "type": kind, kind: str(form.get(f"b-{i}-to", "")).strip()})
    return {"name": str(form.get("ivr_name", "")).strip(), "greeting": "ivr_greeting" in form, "items": items}


def menu_errors(errors: dict[str, str], menu: dict[str, Any]) -> dict[str, str]:
    """The API's ``ivr.items.<n>...`` errors named by the key's row (``b-<i>``) so they show beside it."""
    out: dict[str, str] = {}
    for field, message in errors.items():
        parts = field.split(".")
        if len(parts) >= 3 and parts[:2] == ["ivr", "items"] and parts[2].isdigit() \
                and int(parts[2]) < len(menu["items"]):
            out[f"b-{BUTTONS.index(menu['items'][int(parts[2])]['button'])}"] = message
        else:
            out[field] = message
    return out


def _menu_rows(menu: dict[str, Any] | None) -> list[dict[str, str]]:
    by_button = {i["button"]: i for i in (menu or {}).get("items", [])}
    rows = []
    for i, button in enumerate(BUTTONS):
        item = by_button.get(button, {})
        kind = str(item.get("type", ""))
        rows.append({"i": str(i), "button": button, "type": kind, "to": str(item.get(kind, "") or "")})
    return rows


def _target_value(t: dict[str, Any] | None) -> str:
    if not t:
        return ""
    return str(t.get(t.get("subtype") or t.get("type") or "", "") or "")


def _rules(number: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The number's extra intervals and special days, each with its route's name."""
    out: dict[str, list[dict[str, Any]]] = {"interval": [], "calendar": []}
    for route in number.get("custom_routes") or []:
        for kind, key in (("interval", "interval_schedule"), ("calendar", "calendar_schedule")):
            out[kind] += [dict(rule, route_name=route.get("name", "")) for rule in route.get(key, [])]
    return out


async def _page(request: Request, who: Viewer, telnum: str, errors: dict[str, str] | None = None,
                notice: str | None = None, status: int = 200, rule_form: dict[str, Any] | None = None,
                menu: dict[str, Any] | None = None, route_type: str | None = None) -> Response:
    runtime = web.runtime_of(request)
    async with runtime.sessions() as session:
        row = await numbers.get(session, who.principal.domain_id, telnum)
        number = (await numbers.render(session, who.principal.domain_id, [row]))[0]
        people, _ = await dir_repo.list_users(runtime.reader, who.principal.domain_id, Page(limit=1000))
        departments, _ = await dir_repo.list_groups(session, who.principal.domain_id, Page(limit=1000))
    if route_type:  # a refused form shows the route the person chose, with the API's errors
        number["type"] = route_type
    return render(request, "number.html", {
        "title": number["telnum"], "number": number, "errors": errors or {}, "notice": notice,
        "grid": grid_of(number.get("schedule")), "days": DAY_LABELS, "route_types": ROUTE_TYPES,
        "target_types": TARGET_TYPES, "people": people, "departments": departments,
        "target_value": _target_value, "menu": menu or number.get("ivr") or {},
        "menu_rows": _menu_rows(menu or number.get("ivr")),
        "button_types": BUTTON_TYPES, "weekdays": list(zip(WEEKDAYS, DAY_LABELS, strict=True)),
        "rules": _rules(number), "rule_form": rule_form or {}}, status)


@router.get("/console/numbers", include_in_schema=False)
async def index(request: Request, who: Viewer = Depends(viewer)) -> Response:
    need(who, "telnums.get")
    async with web.runtime_of(request).sessions() as session:
        rows, _ = await repo.list_telnums(session, who.principal.domain_id, Page(limit=1000))
        listed = await numbers.render(session, who.principal.domain_id, rows)
    return render(request, "numbers.html", {"title": "Номера", "numbers": listed})


@router.get("/console/numbers/{telnum}", include_in_schema=False)
async def show(request: Request, telnum: str, who: Viewer = Depends(viewer)) -> Response:
    need(who, "telnums.get")
    return await _page(request, who, telnum)


@router.post("/console/numbers/{telnum}", include_in_schema=False)
async def save(request: Request, telnum: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "telnums.edit")
    form = await request.form()
    try:
        async with web.runtime_of(request).sessions() as session:
            row = await numbers.get(session, who.principal.domain_id, telnum)
            current = (await numbers.render(session, who.principal.domain_id, [row]))[0]
            await numbers.set_route(session, who.principal.domain_id, telnum,
                                    TelnumRouteIn(**_body(form, current)))
            await session.commit()
    except (ValidationError, Invalid) as exc:
        menu = menu_of(form)
        return await _page(request, who, telnum, menu_errors(web.field_errors(exc), menu), status=400, menu=menu,
                           route_type=str(form.get("type", "")) or None)
    return await _page(request, who, telnum, notice="Сохранено")


def _seconds(value: str) -> float | str:
    """``HH:MM`` of a time field as seconds of the day (anything else is passed on for the API to refuse)."""
    hours, _, minutes = value.partition(":")
    if hours.isdigit() and minutes[:2].isdigit():
        return int(hours) * 3600 + int(minutes[:2]) * 60
    return value


def _route_choice(form: FormData) -> dict[str, Any]:
    route_id = str(form.get("route_id", "")).strip()
    return {"route_id": route_id} if route_id else {"route_name": str(form.get("route_name", "")).strip() or None}


@router.post("/console/numbers/{telnum}/intervals", include_in_schema=False)
async def add_interval(request: Request, telnum: str, who: Viewer = Depends(checked)) -> Response:
    """9.7: an extra interval (weekdays, from, to) on a route of the number."""
    need(who, "telnums.edit")
    form = await request.form()
    entry = {"kind": "interval", "days": [str(d) for d in form.getlist("days")], "start": web.text(form, "start"),
             "end": web.text(form, "end"), **_route_choice(form)}

    async def work(session: AsyncSession) -> None:
        body = IntervalIn(route_id=entry.get("route_id"), route_name=entry.get("route_name"), days=entry["days"],
                          start=_seconds(entry["start"]), end=_seconds(entry["end"]))
        await numbers.save_rule(session, who.principal.domain_id, telnum, "interval", body)

    errors = await web.attempt(request, work)
    if errors:
        return await _page(request, who, telnum, errors, status=400, rule_form=entry)
    return await _page(request, who, telnum, notice="Сохранено")


@router.post("/console/numbers/{telnum}/special-days", include_in_schema=False)
async def add_special_day(request: Request, telnum: str, who: Viewer = Depends(checked)) -> Response:
    """9.8: a special day (from, to; or the production calendar's holidays) on a route of the number."""
    need(who, "telnums.edit")
    form = await request.form()
    entry = {"kind": "calendar", "start": web.text(form, "start"), "end": web.text(form, "end"),
             "calendar_predefined": "calendar_predefined" in form, **_route_choice(form)}

    async def work(session: AsyncSession) -> None:
        body = CalendarIn(route_id=entry.get("route_id"), route_name=entry.get("route_name"),
                          start=entry["start"] or None, end=entry["end"] or None,
                          calendar_predefined=entry["calendar_predefined"])
        await numbers.save_rule(session, who.principal.domain_id, telnum, "calendar", body)

    errors = await web.attempt(request, work)
    if errors:
        return await _page(request, who, telnum, errors, status=400, rule_form=entry)
    return await _page(request, who, telnum, notice="Сохранено")


@router.post("/console/numbers/{telnum}/rules/{kind}/{rule_id}/delete", include_in_schema=False)
async def delete_rule(request: Request, telnum: str, kind: str, rule_id: str,
                      who: Viewer = Depends(checked)) -> Response:
    need(who, "telnums.edit")
    if kind not in ("interval", "calendar"):
        raise NotFound(kind)
    async with web.runtime_of(request).sessions() as session:
        await numbers.delete_rule(session, who.principal.domain_id, telnum, kind, rule_id)
        await session.commit()
    return await _page(request, who, telnum, notice="Сохранено")


@router.post("/console/numbers/{telnum}/enabled", include_in_schema=False)
async def switch(request: Request, telnum: str, who: Viewer = Depends(checked)) -> Response:
    """9.4/9.5: stop or resume taking calls on the number (``on`` = 1 switches it on)."""
    need(who, "telnums.edit")
    on = web.text(await request.form(), "on") == "1"
    async with web.runtime_of(request).sessions() as session:
        await numbers.set_enabled(session, who.principal.domain_id, telnum, on)  # NotFound outside the domain
        await session.commit()
    return await _page(request, who, telnum, notice="Прием звонков включен" if on else "Прием звонков выключен")
