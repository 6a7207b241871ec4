"""CRM traffic: the delivery log (each notification's body, every attempt's time, status and answer, the next
attempt scheduled), filters by call, command and state, and replay of one or many (``notify.deliveries``); the
contact answers the CRM gave.

The ``contact`` lookups (002 §2.3) are synchronous and not in the delivery log, and vpbx keeps no log of them:
the page shows what the engine holds (the name the CRM gave each live call's caller) and lets the person ask the
CRM about a number now, showing its answer as received and as vpbx reads it (``notify.contact.probe``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, checked, need_admin, render, viewer
from vpbx.engine import engine_of
from vpbx.notify import deliveries
from vpbx.notify.contact import probe, recent_lookups
from vpbx.notify.payloads import parse_contact_answer
from vpbx.services.errors import Invalid
from vpbx.store.repositories import tenancy as tenancy_repo

router = APIRouter(route_class=web.ConsoleRoute)
COMMANDS = [("", "все"), ("history", "history"), ("event", "event"), ("rating", "rating"), ("webhook", "webhook")]
STATES = [("", "все"), ("pending", "pending"), ("delivered", "delivered"), ("failed", "failed")]
SHOWN = 200


OUTCOMES = {"answered": "Ответила", "empty": "Ответила без данных", "timeout": "Не ответила вовремя",
            "failed": "Ошибка"}  # notify.contact.Lookup.outcome, as the page says it

def _contacts(request: Request, who: Viewer) -> list[dict[str, Any]]:
    """Live calls and the contact name the CRM's answer gave their caller (None: no answer, or no name)."""
    return [{"callid": c.callid, "caller": c.caller, "dialed": c.dialed, "contact_name": c.caller_name}
            for c in engine_of(web.runtime_of(request)).list_live(who.principal.domain_id) if c.kind == "incoming"]


@router.get("/console/traffic", include_in_schema=False)
async def index(request: Request, callid: str = "", command: str = "", state: str = "", notice: str = "",
                who: Viewer = Depends(viewer)) -> Response:
    return await _page(request, who, callid, command, state, notice)


async def _page(request: Request, who: Viewer, callid: str = "", command: str = "", state: str = "",
                notice: str = "", lookup: dict[str, Any] | None = None) -> Response:
    need_admin(who)
    errors: dict[str, str] = {}
    async with web.runtime_of(request).sessions() as session:
        try:
            items, total = await deliveries.list_deliveries(session, who.principal.domain_id, callid=callid or None,
                                                            command=command or None, state=state or None,
                                                            limit=SHOWN)
        except Invalid as exc:
            items, total, errors = [], 0, web.field_errors(exc)
    return render(request, "traffic.html", {
        "title": "Обмен с CRM", "items": items, "total": total, "errors": errors, "commands": COMMANDS,
        "states": STATES, "filters": {"callid": callid, "command": command, "state": state},
        "contacts": _contacts(request, who), "lookup": lookup,
        "lookups": recent_lookups(web.runtime_of(request), who.principal.domain_id), "outcomes": OUTCOMES,
        "notice": "Поставлено в очередь" if notice == "replayed" else None}, 400 if errors else 200)


@router.post("/console/traffic/replay", include_in_schema=False)
async def replay(request: Request, who: Viewer = Depends(checked)) -> Response:
    """Replay the ticked deliveries (or the one whose button was pressed) now, with their ids and bodies."""
    need_admin(who)
    form = await request.form()
    ids = [int(str(v)) for v in form.getlist("id") if str(v).isdigit()]
    runtime = web.runtime_of(request)
    async with runtime.sessions() as session:
        for outbox_id in ids:
            await deliveries.replay(session, who.principal.domain_id, outbox_id, runtime.clock.now())
        await session.commit()
    back = str(form.get("back", ""))
    query = back if back.startswith("?") else ""
    return web.redirect(web.url("/traffic") + (query + "&" if query else "?") + "notice=replayed", request)


@router.post("/console/traffic/contact", include_in_schema=False)
async def ask_contact(request: Request, who: Viewer = Depends(checked)) -> Response:
    """Ask the CRM who calls from a number (one ``contact`` request as the engine sends it) and show its answer."""
    need_admin(who)
    phone = web.text(await request.form(), "phone")[:32] or "79000000000"
    runtime = web.runtime_of(request)
    async with runtime.sessions() as session:
        integration = await tenancy_repo.integration(session, who.principal.domain_id)
    if not integration.crm_url:
        lookup: dict[str, Any] = {"phone": phone, "error": "Адрес CRM не задан"}
    else:
        answer = await probe(runtime, integration, phone)
        parsed = parse_contact_answer(answer.status, answer.content_type, answer.body) if answer.status else None
        lookup = {"phone": phone, "status": answer.status, "error": answer.error,
                  "body": answer.body[:4096].decode("utf-8", "replace"), "latency_ms": int(answer.latency * 1000),
                  "contact_name": parsed.contact_name if parsed else None,
                  "responsible": parsed.responsible if parsed else None}
    return await _page(request, who, lookup=lookup)
