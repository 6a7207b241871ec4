"""Calls: the dashboard (today by hour, the last 7 days answered vs missed, waiting time: SVG drawn on the server),
live calls over server-sent events, and the history with filters, recordings and a CSV of what is shown.

History comes from ``services.history`` (the 002 §4 exports), live calls from the call engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from vpbx.console import web
from vpbx.console.web import Viewer, need, render, viewer
from vpbx.domain.history import PERIODS
from vpbx.engine import engine_of
from vpbx.services import history
from vpbx.services.errors import Invalid

router = APIRouter(route_class=web.ConsoleRoute)
TYPES = [("all", "все"), ("in", "входящие"), ("out", "исходящие"), ("missed", "пропущенные")]
MISSED_STATUSES = [("", "любой"), ("1", "перезвонил сам"), ("2", "перезвонили"), ("3", "не обработан"),
                   ("4", "не дозвонились")]  # 002 §4.1 missedStatus
SHOWN = 500  # history rows a page shows (and its CSV holds)
LIVE_POLL = 0.2  # s between looks at the engine's live calls: ringing shows well within a second


def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    return {name: q.get(name, "").strip() for name in ("period", "type", "user", "client", "diversion",
                                                       "missedStatus")}


async def _history(who: Viewer, request: Request, params: dict[str, str], limit: int = SHOWN) -> list[dict[str, Any]]:
    runtime = web.runtime_of(request)
    f = history.external_filter(now=runtime.clock.now(), timezone=who.principal.timezone,
                                period=params.get("period") or "today", type=params.get("type") or None,
                                start=params.get("start") or None, end=params.get("end") or None,
                                user=params.get("user") or None, client=params.get("client") or None,
                                diversion=params.get("diversion") or None, limit=limit,
                                missed_status=[params["missedStatus"]] if params.get("missedStatus") else None)
    chunks = await history.stream_external_json(runtime.sessions, who.principal.domain_id, f, False, False)
    rows: list[dict[str, Any]] = orjson.loads(b"".join([c async for c in chunks]))
    return rows


@router.get("/console/calls", include_in_schema=False)
async def calls(request: Request, who: Viewer = Depends(viewer)) -> Response:
    need(who, "history.get")
    params = _filters(request)
    errors: dict[str, str] = {}
    try:
        rows = await _history(who, request, params)
    except Invalid as exc:
        rows, errors = [], web.field_errors(exc)
    return render(request, "calls.html", {"title": "Звонки", "rows": rows, "filters": params, "errors": errors,
                                          "periods": [(p, p) for p in PERIODS], "types": TYPES,
                                          "missed_statuses": MISSED_STATUSES,
                                          "live": _live(request, who), "csv_query": request.url.query},
                  400 if errors else 200)


@router.get("/console/calls.csv", include_in_schema=False)
async def calls_csv(request: Request, who: Viewer = Depends(viewer)) -> Response:
    """The rows the page shows, as the 4.1 CSV (same filters, same limit)."""
    need(who, "history.get")
    runtime = web.runtime_of(request)
    params = _filters(request)
    try:
        f = history.external_filter(now=runtime.clock.now(), timezone=who.principal.timezone,
                                    period=params["period"] or "today", type=params["type"] or None,
                                    user=params["user"] or None, client=params["client"] or None,
                                    diversion=params["diversion"] or None, limit=SHOWN,
                                    missed_status=[params["missedStatus"]] if params["missedStatus"] else None)
    except Invalid as exc:
        return Response(f"{exc.field}: {exc.message}", status_code=400, media_type="text/plain")
    body = await history.stream_external_csv(runtime.sessions, who.principal.domain_id, who.principal.domain_name, f)
    return StreamingResponse(body, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="calls.csv"'})


def _live(request: Request, who: Viewer) -> list[dict[str, Any]]:
    """The domain's live calls as the page shows them: who rings, who talks, since when."""
    now = web.runtime_of(request).clock.now()
    out = []
    for call in engine_of(web.runtime_of(request)).list_live(who.principal.domain_id):
        view = call.view()
        since = call.answered_at or call.started
        out.append({"callid": call.callid, "from": view["from"], "to": view["to"], "state": call.state,
                    "ringing": [leg["party"] for leg in view["legs"] if leg["state"] == "ringing"],
                    "talking": [leg["party"] for leg in view["legs"] if leg["state"] == "talking"],
                    "seconds": max(0, int((now - since).total_seconds()))})
    return out


async def live_stream(request: Request, event: str, draw: Any) -> StreamingResponse:
    """Server-sent events: ``draw()`` (an HTML fragment) sent as ``event`` whenever it changes."""

    async def events() -> AsyncIterator[bytes]:
        last = None
        yield b": open\n\n"
        while not await request.is_disconnected():
            html = draw()
            if html != last:
                last = html
                data = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
                yield f"event: {event}\n{data}\n".encode()
            await asyncio.sleep(LIVE_POLL)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/console/calls/live", include_in_schema=False)
async def live(request: Request, who: Viewer = Depends(viewer)) -> Response:
    need(who, "history.get")
    lang = web.lang_of(request)
    template = web.env.get_template("live_calls.html")

    def draw() -> str:
        return template.render(calls=_live(request, who), t=lambda s: web.translate(lang, s))

    return await live_stream(request, "calls", draw)


# --- the dashboard -----------------------------------------------------------------------------------


def _bars(values: list[float], labels: list[str], width: int = 600, height: int = 160,
          second: list[float] | None = None) -> dict[str, Any]:
    """Bar geometry for the SVG template (one or two series side by side)."""
    top = max([*values, *(second or []), 1.0])
    step = width / max(len(values), 1)
    bars = []
    for i, v in enumerate(values):
        w = step * (0.4 if second is not None else 0.8)
        h = height * v / top
        bar: dict[str, Any] = {"x": i * step + step * 0.1, "y": height - h, "w": w, "h": h, "v": v, "label": labels[i]}
        if second is not None:
            h2 = height * second[i] / top
            bar.update({"x2": bar["x"] + w, "y2": height - h2, "h2": h2, "v2": second[i]})
        bars.append(bar)
    return {"bars": bars, "width": width, "height": height, "top": top}


async def _dashboard(request: Request, who: Viewer) -> dict[str, Any]:
    runtime = web.runtime_of(request)
    tz = ZoneInfo(who.principal.timezone)
    now = runtime.clock.now().astimezone(tz)
    first_day = (now - timedelta(days=6)).replace(hour=0, minute=0, second=0, microsecond=0)
    start = first_day.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = await _week(who, request, start)
    per_hour = [0.0] * 24
    days = [(first_day + timedelta(days=i)).date() for i in range(7)]
    answered = [0.0] * 7
    missed = [0.0] * 7
    waits: list[int] = []
    for r in rows:
        at = datetime.fromisoformat(r["start"].replace("Z", "+00:00")).astimezone(tz)
        if at.date() == now.date():
            per_hour[at.hour] += 1
        if at.date() in days:
            i = days.index(at.date())
            if r.get("type") != "missed":
                answered[i] += 1
                waits.append(int(r.get("wait") or 0))
            else:
                missed[i] += 1
    return {"hours": _bars(per_hour, [str(h) for h in range(24)]),
            "week": _bars(answered, [d.strftime("%d.%m") for d in days], second=missed),
            "average_wait": round(sum(waits) / len(waits), 1) if waits else 0, "total": len(rows)}


async def _week(who: Viewer, request: Request, start: str) -> list[dict[str, Any]]:
    runtime = web.runtime_of(request)
    end = runtime.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    f = history.external_filter(now=runtime.clock.now(), timezone=who.principal.timezone, start=start, end=end)
    chunks = await history.stream_external_json(runtime.sessions, who.principal.domain_id, f, False, False)
    rows: list[dict[str, Any]] = orjson.loads(b"".join([c async for c in chunks]))
    return rows


@router.get("/console/", include_in_schema=False)
async def home(request: Request, who: Viewer = Depends(viewer)) -> Response:
    context: dict[str, Any] = {"title": "Главная"}
    if who.can("history.get"):
        context["dashboard"] = await _dashboard(request, who)
    return render(request, "home.html", context)
