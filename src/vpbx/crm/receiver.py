"""The answering side of the PBX->CRM requests, framework-free: ``Receiver.handle`` takes a body and
headers and gives a status and a JSON answer; the receiver is also an ASGI app to mount in FastAPI or
Starlette (``app.mount("/vpbx", receiver)``) or to serve alone (``uvicorn mymodule:receiver``).

    receiver = Receiver(crm_token="secret")

    @receiver.on_contact
    def who(query: ContactQuery) -> dict[str, str]:
        return {"contact_name": "ООО Ромашка", "responsible": "andy"}

    @receiver.on_event
    async def pop_card(event: EventNotice) -> None: ...

Checks, in order: a body that is not a PBX request -> 400 ``{"error": "Invalid parameters"}``; a wrong or
missing ``crm_token`` -> 401 ``{"error": "Invalid token"}``; with ``signing_secret``, a bad Standard
Webhooks signature -> 401 ``{"error": "Invalid signature"}`` (``contact`` lookups are synchronous and
the PBX does not sign them: they are verified only when they carry a signature). A notification whose
``webhook-id`` was already handled is acknowledged without calling the handler again (the PBX
retries until it gets a 2xx, so a CRM sees duplicates). The handled ids live in a ``DedupeStore``
(``vpbx.crm.dedupe``): memory by default (bounded, LRU), a SQLite file to survive restarts and share them
between worker processes, or Redis. A handler that raises answers 500 and the id is not remembered, so the
PBX's retry is handled.

Handlers (one rule for every ``on_*``): each registration ADDS a handler; ``remove(handler)`` takes one
away. Every notification handler (history, event, rating, webhook) runs, in registration order; the first
that raises stops the rest and answers 500. ``contact`` needs one answer: the handlers are asked in
registration order and the first that returns an answer (not ``None``) wins; the rest are not called;
none answering means "route by the dial plan" (``{}``).
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from vpbx.crm.dedupe import Claim, DedupeStore, MemoryDedupe
from vpbx.crm.parse import MalformedRequest, ParsedRequest, parse_request
from vpbx.notify import signing
from vpbx.notify.payloads import ContactAnswer, ContactQuery, EventNotice, HistoryNotice, RatingNotice, WebhookNotice

log = logging.getLogger("vpbx.crm")

MAX_BODY = 1024 * 1024
INVALID_PARAMETERS = "Invalid parameters"
INVALID_TOKEN = "Invalid token"
INVALID_SIGNATURE = "Invalid signature"

F = TypeVar("F", bound=Callable[..., Any])
ContactResult = ContactAnswer | Mapping[str, Any] | None
# ASGI's receive and send, typed as Starlette and FastAPI type them, so the receiver mounts in either.
AsgiReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
AsgiSend = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver answers: a status and a JSON object."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    duplicate: bool = False

    def encode(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _contact_body(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if isinstance(result, ContactAnswer):
        result = asdict(result)
    if not isinstance(result, Mapping):
        raise TypeError("an on_contact handler returns a ContactAnswer, a mapping or None")
    return {k: v for k, v in result.items() if k in ("contact_name", "responsible") and v is not None}


async def _call(handler: Callable[..., Any], arg: Any) -> Any:
    if inspect.iscoroutinefunction(handler):
        return await handler(arg)
    result = await asyncio.to_thread(handler, arg)
    if inspect.isawaitable(result):
        result = await result
    return result


BUSY_POLL = 0.02  # seconds between two looks at a notification another request (or worker) is handling


class Receiver:
    """Parses, authenticates, deduplicates and dispatches the PBX's requests to registered handlers."""

    def __init__(self, crm_token: str | None, *, signing_secret: str | None = None,
                 tolerance: int = signing.DEFAULT_TOLERANCE, dedupe_size: int = 10_000,
                 dedupe: DedupeStore | None = None, busy_wait: float = 30.0, max_body: int = MAX_BODY) -> None:
        """``crm_token`` is the key set in the PBX's integration (``None`` skips the check: tests only).

        ``dedupe``: where handled notification ids are kept (default ``MemoryDedupe(dedupe_size)``; a
        ``SqliteDedupe(path)`` survives restarts and is shared by worker processes). A notification another
        worker is handling is waited for at most ``busy_wait`` seconds, then answered 409 so the PBX retries.
        """
        self.crm_token = crm_token
        self.signing_secret = signing_secret
        self.tolerance = tolerance
        self.max_body = max_body
        self.dedupe: DedupeStore = dedupe if dedupe is not None else MemoryDedupe(dedupe_size)
        self.busy_wait = busy_wait
        self._handlers: dict[str, list[Callable[..., Any]]] = {c: [] for c in ("contact", "history", "event",
                                                                              "rating", "webhook")}
        self._observers: list[Callable[[ParsedRequest | None, Mapping[str, str], bytes, Answer], None]] = []

    # registration --------------------------------------------------------------------------------

    def on_contact(self, handler: F) -> F:
        """``handler(ContactQuery) -> {"contact_name", "responsible"} | ContactAnswer | None``.

        Handlers are asked in registration order; the first answer that is not ``None`` wins."""
        self._handlers["contact"].append(handler)
        return handler

    def on_history(self, handler: F) -> F:
        """``handler(HistoryNotice)``: after each call."""
        self._handlers["history"].append(handler)
        return handler

    def on_event(self, handler: F) -> F:
        """``handler(EventNotice)``: INCOMING, ACCEPTED, COMPLETED, CANCELLED, OUTGOING, TRANSFERRED."""
        self._handlers["event"].append(handler)
        return handler

    def on_rating(self, handler: F) -> F:
        """``handler(RatingNotice)``: the client's score after the conversation."""
        self._handlers["rating"].append(handler)
        return handler

    def on_webhook(self, handler: F) -> F:
        """``handler(WebhookNotice)``: subscribed events (``sipregs_error``)."""
        self._handlers["webhook"].append(handler)
        return handler

    def remove(self, handler: Callable[..., Any]) -> None:
        """Take a handler registered with any ``on_*`` away (``ValueError`` if it is not registered)."""
        for handlers in self._handlers.values():
            if handler in handlers:
                handlers.remove(handler)
                return
        raise ValueError("the handler is not registered")

    def observe(self, observer: Callable[[ParsedRequest | None, Mapping[str, str], bytes, Answer], None]) -> None:
        """Called with every request and its answer (the parsed request is None when it did not parse)."""
        self._observers.append(observer)

    # the framework-free core ---------------------------------------------------------------------

    def _check(self, parsed: ParsedRequest, headers: Mapping[str, str], body: bytes) -> Answer | None:
        if self.crm_token is not None and not hmac.compare_digest(
                (parsed.crm_token or "").encode("utf-8"), self.crm_token.encode("utf-8")):
            return Answer(401, {"error": INVALID_TOKEN})
        if self.signing_secret:
            signed = any(k.lower() == signing.SIGNATURE_HEADER for k in headers)
            if parsed.command != "contact" or signed:
                try:
                    signing.verify(self.signing_secret, headers, body, tolerance=self.tolerance)
                except signing.SignatureError as exc:
                    return Answer(401, {"error": INVALID_SIGNATURE, "detail": str(exc)})
        return None

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """Answer one request; ``headers`` any mapping (case-insensitive lookups are done here)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        parsed: ParsedRequest | None = None
        try:
            parsed = parse_request(body, lowered.get("content-type"))
        except MalformedRequest as exc:
            answer = Answer(400, {"error": INVALID_PARAMETERS, "detail": str(exc)})
        else:
            answer = self._check(parsed, lowered, body) or await self._dispatch(parsed, lowered)
        for observer in self._observers:
            observer(parsed, lowered, body, answer)
        return answer

    async def _dispatch(self, parsed: ParsedRequest, headers: Mapping[str, str]) -> Answer:
        notice = parsed.notice
        if isinstance(notice, ContactQuery):
            try:
                for handler in list(self._handlers["contact"]):
                    result = await _call(handler, notice)
                    if result is not None:
                        return Answer(200, _contact_body(result))
            except Exception:
                log.exception("on_contact handler failed")
                return Answer(500, {"error": "Internal error"})
            return Answer(200, {})
        key = headers.get(signing.ID_HEADER) or (notice.id if isinstance(notice, WebhookNotice) else None)
        if not key:
            return await self._notify(parsed)
        try:
            claim = await self._claim(key)
        except Exception:
            log.exception("the dedupe store failed")
            return Answer(503, {"error": "Try again later"})
        if claim is Claim.DONE:
            return Answer(200, {}, duplicate=True)
        if claim is Claim.BUSY:  # still handled elsewhere: the PBX retries later
            return Answer(409, {"error": "Being handled"})
        answer = await self._notify(parsed)
        try:
            await self.dedupe.finish(key, answer.status < 300)
        except Exception:
            log.exception("the dedupe store failed")
        return answer

    async def _claim(self, key: str) -> Claim:
        """The store's claim, waiting while the same notification is handled by another request or worker."""
        deadline = asyncio.get_running_loop().time() + self.busy_wait
        while (claim := await self.dedupe.claim(key)) is Claim.BUSY:
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(BUSY_POLL)
        return claim

    async def _notify(self, parsed: ParsedRequest) -> Answer:
        try:
            for handler in list(self._handlers[parsed.command]):
                await _call(handler, parsed.notice)
        except Exception:
            log.exception("on_%s handler failed", parsed.command)
            return Answer(500, {"error": "Internal error"})
        return Answer(200, {})

    # ASGI ----------------------------------------------------------------------------------------

    async def __call__(self, scope: MutableMapping[str, Any], receive: AsgiReceive, send: AsgiSend) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await _respond(send, Answer(405, {"error": "Method Not Allowed"}), allow="POST")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _respond(send, Answer(413, {"error": "Request entity too large"}))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        await _respond(send, await self.handle(b"".join(chunks), headers))


async def _respond(send: AsgiSend, answer: Answer, allow: str = "") -> None:
    payload = answer.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if allow:
        headers.append((b"allow", allow.encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


__all__ = ["Answer", "ContactAnswer", "ContactQuery", "EventNotice", "HistoryNotice", "RatingNotice", "Receiver",
           "WebhookNotice"]
