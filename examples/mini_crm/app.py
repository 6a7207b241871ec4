"""A mini CRM on vpbx's kit: ``vpbx.crm.Receiver`` answers the PBX, ``vpbx.client.AsyncClient`` calls it.

- The PBX asks ``contact`` on every incoming call: the receiver answers the contact's name and
  responsible employee from the store.
- ``event`` notifications become pop-up cards, pushed to every open page by server-sent events.
- ``history`` notifications fill the call log.
- The page's click-to-call buttons call ``POST /crmapi/v1/makecall`` through the SDK.

Mounted at ``/vpbx/``: that is the CRM URL to set in the PBX's integration.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.templating import Jinja2Templates

from vpbx.client import AsyncClient, VpbxError
from vpbx.crm import ContactQuery, EventNotice, EventType, HistoryNotice, Receiver
from vpbx.schemas.users import UserOut

from .store import Store

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
CARD_EVENTS = {EventType.INCOMING, EventType.ACCEPTED, EventType.COMPLETED, EventType.CANCELLED}


@dataclass(frozen=True)
class Settings:
    pbx_url: str  # the PBX, e.g. http://127.0.0.1:8080
    api_key: str  # the domain's X-API-KEY
    crm_token: str  # the crm_token set in the domain's integration: the PBX sends it with every request
    db: str = ":memory:"  # SQLite file of contacts and calls
    keepalive: float = 15.0  # seconds between comments on an idle event stream


class Cards:
    """Call cards for the open pages: each page's event stream has a queue; a card goes to every queue."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, str] | None]] = set()

    def subscribe(self) -> asyncio.Queue[dict[str, str] | None]:
        queue: asyncio.Queue[dict[str, str] | None] = asyncio.Queue(maxsize=100)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, str] | None]) -> None:
        self._queues.discard(queue)

    def publish(self, card: dict[str, str]) -> None:
        for queue in self._queues:
            if not queue.full():  # a page that stopped reading misses cards rather than holding memory
                queue.put_nowait(card)

    def close(self) -> None:
        """End every page's event stream (the server stops; the pages reconnect to the next one)."""
        for queue in self._queues:
            while queue.full():
                queue.get_nowait()
            queue.put_nowait(None)


def build_receiver(settings: Settings, store: Store, cards: Cards) -> Receiver:
    receiver = Receiver(crm_token=settings.crm_token)

    @receiver.on_contact
    async def who_calls(query: ContactQuery) -> dict[str, str] | None:
        # The caller waits for this answer (the PBX gives up after its lookup timeout): a local lookup only.
        contact = store.find_by_phone(query.phone)
        if contact is None:
            return None  # unknown: the PBX routes the call by its dial plan
        answer = {"contact_name": contact.name}
        if contact.responsible:
            answer["responsible"] = contact.responsible
        return answer

    @receiver.on_event
    async def pop_card(event: EventNotice) -> None:
        if event.type in CARD_EVENTS and event.direction == "in":
            contact = store.find_by_phone(event.phone)
            cards.publish({"type": event.type.value, "callid": event.callid, "phone": event.phone,
                           "contact": contact.name if contact else "", "user": event.user, "ext": event.ext or ""})

    @receiver.on_history
    async def log_call(call: HistoryNotice) -> None:
        store.log_call(call.callid, call.start, call.type, call.phone, call.user, call.status.value, call.duration,
                       call.link)

    return receiver


def create_app(settings: Settings, store: Store | None = None) -> Starlette:
    own_store = store is None
    store = store or Store(settings.db)
    cards = Cards()
    pbx = AsyncClient(settings.pbx_url, settings.api_key, timeout=10)

    async def render(request: Request, *, notice: str = "", error: str = "", status: int = 200) -> Response:
        employees: list[UserOut] = []
        try:
            employees = [u async for u in pbx.iter_users()]
        except (VpbxError, httpx.HTTPError) as exc:
            error = error or f"Cannot read the PBX's employees: {exc}"
        context = {"contacts": store.contacts(), "calls": store.calls(), "employees": employees,
                   "notice": notice, "error": error}
        return templates.TemplateResponse(request, "index.html", context, status_code=status)

    async def index(request: Request) -> Response:
        return await render(request)

    async def click_to_call(request: Request) -> Response:
        contact = store.contact(int(request.path_params["contact_id"]))
        if contact is None:
            return await render(request, error="No such contact", status=404)
        user = str((await request.form()).get("user") or contact.responsible)
        try:
            call = await pbx.make_call(contact.phone, user=user or None)
        except VpbxError as exc:  # the PBX's own message: "400 Validation error (user: no employee 'x' ...)"
            return await render(request, error=f"The PBX refused the call: {exc}", status=exc.status)
        except httpx.HTTPError as exc:
            return await render(request, error=f"The PBX is unreachable: {exc}", status=502)
        return await render(request, notice=f"Calling {contact.name} ({contact.phone}): {user}'s phone rings first "
                                            f"(call {call.callid})")

    async def events(request: Request) -> Response:
        queue = cards.subscribe()  # before the answer starts: a page that sees the stream open gets every card

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                while True:
                    try:
                        card = await asyncio.wait_for(queue.get(), settings.keepalive)
                    except TimeoutError:
                        yield ": keep-alive\n\n"  # also tells a closed page from an idle one
                        continue
                    if card is None:
                        return
                    yield f"event: call\ndata: {json.dumps(card, ensure_ascii=False)}\n\n"
            finally:
                cards.unsubscribe(queue)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await pbx.aclose()
        if own_store:
            store.close()

    app = Starlette(routes=[
        Route("/", index),
        Route("/contacts/{contact_id:int}/call", click_to_call, methods=["POST"]),
        Route("/events", events),
        Mount("/vpbx", app=build_receiver(settings, store, cards)),
    ], lifespan=lifespan)
    app.state.store = store
    app.state.cards = cards
    return app


class Server(uvicorn.Server):
    """Uvicorn serving the mini CRM (``Server(app, host=..., port=...).run()``). Uvicorn waits for the answers
    under way before it stops, and a page's event stream never ends: this one ends them first."""

    def __init__(self, app: Starlette, **config: Any) -> None:
        super().__init__(uvicorn.Config(app, **config))
        self.app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.app.state.cards.close()
        await super().shutdown(sockets)
