"""Sandbox (simulated telephony): a phone per employee that rings in the page over server-sent events (answer,
decline, hang up, transfer blind or attended, registered, DND), outside callers dialling the domain's numbers and,
while on the line, a keypad each (the client's keys: voice menu, rating, callback offer), generated traffic with
its progress, and the virtual clock (+5 s, +1 min, +1 h, to a time).

It drives the call engine and the simulated phones as the simulator API (/sim/v1) does; generated traffic
starts through the simulator API's own handler. The virtual clock is shared by every domain of the server, so,
as in the API, only the server's operator moves it: a session proves the operator's key once."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from vpbx.api.auth import _operator_hash
from vpbx.api.errors import ApiError
from vpbx.api.sim_traffic import TrafficIn
from vpbx.api.sim_traffic import start as start_traffic
from vpbx.clock import VirtualClock
from vpbx.console import web
from vpbx.console.calls import live_stream
from vpbx.console.web import Viewer, checked, need_admin, render, viewer
from vpbx.domain.history import iso
from vpbx.engine import CallError, engine_of, traffic
from vpbx.security import key_hash
from vpbx.services import tenancy, users
from vpbx.services.errors import NotFound
from vpbx.store.paging import Page
from vpbx.store.repositories import directory as dir_repo
from vpbx.store.repositories import numbers as numbers_repo
from vpbx.telephony.sim import SimTelephony

router = APIRouter(route_class=web.ConsoleRoute)


def _sim(request: Request) -> SimTelephony:
    telephony = web.runtime_of(request).telephony
    if not isinstance(telephony, SimTelephony):
        raise NotFound("simulator")
    return telephony


async def _people(request: Request, who: Viewer) -> list[dict[str, Any]]:
    rows, _ = await dir_repo.list_users(web.runtime_of(request).reader, who.principal.domain_id, Page(limit=1000))
    return [{"login": u.login, "name": u.name, "ext": u.ext, "dnd": u.dnd} for u in rows]


def phones(request: Request, who: Viewer, people: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each employee's phone now: registered, and the calls ringing it or talking on it."""
    sim = _sim(request)
    domain_id = who.principal.domain_id
    lines: dict[str, list[dict[str, Any]]] = {p["login"]: [] for p in people}
    for call in engine_of(web.runtime_of(request)).list_live(domain_id):
        for leg in call.legs.values():
            login = leg.owner or leg.party
            if login in lines and leg.state in ("ringing", "talking"):
                lines[login].append({"callid": call.callid, "state": leg.state, "party": leg.party,
                                     "caller": call.caller, "caller_name": leg.caller_name or call.caller_name,
                                     "dialed": call.dialed})
    return [dict(p, registered=sim.is_registered(domain_id, p["login"]), lines=lines[p["login"]]) for p in people]


def clients(request: Request, who: Viewer) -> list[dict[str, Any]]:
    """Outside callers on the line now (the domain's live incoming calls): their keypad reaches the voice menu,
    the rating and the callback offer, as the simulator API's ``dtmf`` (the client's keys)."""
    return [{"callid": c.callid, "caller": c.caller, "dialed": c.dialed, "state": c.state}
            for c in engine_of(web.runtime_of(request)).list_live(who.principal.domain_id)
            if c.kind == "incoming"]


@router.get("/console/sandbox", include_in_schema=False)
async def index(request: Request, notice: str = "", who: Viewer = Depends(viewer)) -> Response:
    need_admin(who)
    runtime = web.runtime_of(request)
    people = await _people(request, who)
    async with runtime.sessions() as session:
        numbers, _ = await numbers_repo.list_telnums(session, who.principal.domain_id, Page(limit=1000))
    return render(request, "sandbox.html", {
        "title": "Песочница", "phones": phones(request, who, people), "numbers": [n.telnum for n in numbers],
        "clients": clients(request, who),
        "virtual": isinstance(runtime.clock, VirtualClock), "now": iso(runtime.clock.now()),
        "operator": _is_operator(request, who), "traffic": _traffic(request, who), "errors": {},
        "notice": notice or None})


@router.get("/console/sandbox/phones", include_in_schema=False)
async def phone_events(request: Request, who: Viewer = Depends(viewer)) -> Response:
    need_admin(who)
    people = await _people(request, who)
    lang = web.lang_of(request)
    template = web.env.get_template("phones.html")

    def draw() -> str:
        return template.render(phones=phones(request, who, people), clients=clients(request, who),
                               t=lambda s: web.translate(lang, s))

    return await live_stream(request, "phones", draw)


async def _act(request: Request, who: Viewer, action: str, callid: str, user: str, digits: str = "") -> Response:
    need_admin(who)
    engine = engine_of(web.runtime_of(request))
    try:
        call = engine.current(who.principal.domain_id, callid)  # CallError 404 outside the domain
        if action == "dtmf":
            await engine.dtmf(who.principal.domain_id, call.callid, digits)
        elif call.state in ("ended", "refused"):
            raise CallError(409, "The call is over")
        elif action in ("blind", "attended"):
            await engine.transfer(who.principal.domain_id, call.callid, user, digits, action)
        elif action == "answer":
            await engine.answered(call.callid, user)
        elif action == "decline":
            await engine.rejected(call.callid, user)
        else:
            await engine.hung_up(call.callid, user or "client")
        await engine.flush()
    except CallError as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain")
    return Response(status_code=204)


@router.post("/console/sandbox/answer", include_in_schema=False)
async def answer(request: Request, callid: str = Form(...), user: str = Form(...),
                 who: Viewer = Depends(checked)) -> Response:
    return await _act(request, who, "answer", callid, user)


@router.post("/console/sandbox/decline", include_in_schema=False)
async def decline(request: Request, callid: str = Form(...), user: str = Form(...),
                  who: Viewer = Depends(checked)) -> Response:
    return await _act(request, who, "decline", callid, user)


@router.post("/console/sandbox/hangup", include_in_schema=False)
async def hangup(request: Request, callid: str = Form(...), user: str = Form(""),
                 who: Viewer = Depends(checked)) -> Response:
    return await _act(request, who, "hangup", callid, user)


@router.post("/console/sandbox/dtmf", include_in_schema=False)
async def dtmf(request: Request, callid: str = Form(...), digits: str = Form(...),
               who: Viewer = Depends(checked)) -> Response:
    return await _act(request, who, "dtmf", callid, "", digits[:32])


@router.post("/console/sandbox/transfer", include_in_schema=False)
async def transfer(request: Request, callid: str = Form(...), user: str = Form(...), to: str = Form(""),
                   mode: str = Form("blind"), who: Viewer = Depends(checked)) -> Response:
    """The employee on the call transfers it: blind (the client rings the target at once) or attended (the
    employee talks to the target first; hanging up completes the transfer)."""
    if mode not in ("blind", "attended"):
        return Response("mode: blind or attended", status_code=400, media_type="text/plain")
    return await _act(request, who, mode, callid, user, to.strip()[:64])


@router.post("/console/sandbox/registered", include_in_schema=False)
async def registered(request: Request, user: str = Form(...), on: str = Form(""),
                     who: Viewer = Depends(checked)) -> Response:
    need_admin(who)
    async with web.runtime_of(request).sessions() as session:
        found = await users.get(session, who.principal.domain_id, user)
    _sim(request).set_registered(who.principal.domain_id, found.login, on == "1")
    return web.redirect(web.url("/sandbox"), request)


@router.post("/console/sandbox/dnd", include_in_schema=False)
async def dnd(request: Request, user: str = Form(...), on: str = Form(""), who: Viewer = Depends(checked)) -> Response:
    need_admin(who)
    async with web.runtime_of(request).sessions() as session:
        await users.set_dnd(session, who.principal.domain_id, user, on == "1")
        await session.commit()
    return web.redirect(web.url("/sandbox"), request)


@router.post("/console/sandbox/call", include_in_schema=False)
async def place_call(request: Request, caller: str = Form(...), to: str = Form(...),
                     who: Viewer = Depends(checked)) -> Response:
    """An outside caller dials one of the domain's numbers."""
    need_admin(who)
    runtime = web.runtime_of(request)
    engine = engine_of(runtime)
    async with runtime.sessions() as session:
        domain = await tenancy.get_domain(session, who.principal.domain_name)
    try:
        call = await engine.incoming(domain, caller.strip(), to.strip())
        await engine.flush()
    except CallError as exc:
        return web.redirect(web.url("/sandbox?notice=") + exc.message, request)
    return web.redirect(web.url(f"/sandbox?notice={call.callid}"), request)


def _operators(request: Request) -> set[str]:
    """Sessions (by their token's hash) that proved the operator's key; in memory, as the sign-in throttle."""
    extras = web.runtime_of(request).extras
    found = extras.get("console_operators")
    if not isinstance(found, set):
        found = extras["console_operators"] = set()
    return found


def _is_operator(request: Request, who: Viewer) -> bool:
    return who.token_hash in _operators(request)


@router.post("/console/sandbox/operator", include_in_schema=False)
async def operator(request: Request, key: str = Form(""), who: Viewer = Depends(checked)) -> Response:
    """Unlock the clock for this session with the server operator's key (the one ``X-OPERATOR-KEY`` takes)."""
    need_admin(who)
    runtime = web.runtime_of(request)
    if not key or not hmac.compare_digest(key_hash(key.strip()), _operator_hash(runtime)):
        return web.redirect(web.url("/sandbox?notice=operator-key"), request)
    _operators(request).add(who.token_hash)
    return web.redirect(web.url("/sandbox"), request)


async def _move_clock(request: Request, who: Viewer, seconds: float) -> Response:
    runtime = web.runtime_of(request)
    if not _is_operator(request, who):
        return web.redirect(web.url("/sandbox?notice=operator-key"), request)
    if isinstance(runtime.clock, VirtualClock) and 0 <= seconds <= 366 * 86400:
        await runtime.clock.advance(seconds)
        await engine_of(runtime).flush()
    return web.redirect(web.url("/sandbox"), request)


@router.post("/console/sandbox/clock", include_in_schema=False)
async def advance(request: Request, seconds: float = Form(0), who: Viewer = Depends(checked)) -> Response:
    need_admin(who)
    return await _move_clock(request, who, seconds)


@router.post("/console/sandbox/clock/to", include_in_schema=False)
async def advance_to(request: Request, at: str = Form(""), who: Viewer = Depends(checked)) -> Response:
    """Go to a moment (the domain's local time): every timer due on the way runs, in order."""
    need_admin(who)
    runtime = web.runtime_of(request)
    try:
        target = datetime.fromisoformat(at.strip())
    except ValueError:
        return web.redirect(web.url("/sandbox?notice=clock-time"), request)
    if target.tzinfo is None:
        target = target.replace(tzinfo=ZoneInfo(who.principal.timezone))
    seconds = (target - runtime.clock.now()).total_seconds()
    if seconds < 0:
        return web.redirect(web.url("/sandbox?notice=clock-back"), request)
    return await _move_clock(request, who, seconds)


# --- generated traffic ----------------------------------------------------------------------------


def _traffic(request: Request, who: Viewer) -> dict[str, Any] | None:
    run = traffic.run_of(web.runtime_of(request), who.principal.domain_id)
    return run.status() if run is not None else None


def _traffic_view(request: Request, who: Viewer, errors: dict[str, str] | None = None,
                  status: int = 200, part: str = "") -> Response:
    # htmx swaps only 2xx answers: the fragment with its errors comes as 200 to the page, 4xx to anything else
    code = 200 if request.headers.get("hx-request") else status
    found = _traffic(request, who)
    if part == "status" and found is not None:  # the refreshing part alone: the stop button stays put
        return render(request, "traffic_status.html", {"traffic": found}, code)
    return render(request, "traffic_run.html", {"traffic": found, "errors": errors or {}}, code)


@router.get("/console/sandbox/traffic", include_in_schema=False)
async def traffic_progress(request: Request, part: str = "", who: Viewer = Depends(viewer)) -> Response:
    """The run's progress, for the page to refresh while it runs."""
    need_admin(who)
    return _traffic_view(request, who, part=part)


@router.post("/console/sandbox/traffic", include_in_schema=False)
async def traffic_start(request: Request, who: Viewer = Depends(checked)) -> Response:
    need_admin(who)
    form = await request.form()
    numbers = [str(n) for n in form.getlist("numbers") if str(n)]
    data: dict[str, Any] = {k: web.text(form, k) for k in ("calls_per_minute", "duration_s", "answer_probability",
                                                           "seed") if web.text(form, k)}
    if numbers:
        data["numbers"] = numbers
    try:
        await start_traffic(TrafficIn(**data), principal=who.principal, runtime=web.runtime_of(request))
    except ValidationError as exc:
        return _traffic_view(request, who, web.field_errors(exc), 400)
    except ApiError as exc:
        return _traffic_view(request, who, {"traffic": exc.message}, exc.status)
    return _traffic_view(request, who)


@router.post("/console/sandbox/traffic/stop", include_in_schema=False)
async def traffic_stop(request: Request, who: Viewer = Depends(checked)) -> Response:
    need_admin(who)
    runtime = web.runtime_of(request)
    run = traffic.run_of(runtime, who.principal.domain_id)
    if run is not None:
        run.stop()
        await engine_of(runtime).flush()
    return _traffic_view(request, who)
