"""Small pure-ASGI middlewares: body size limit, the documents' misspelt prefix, metrics."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vpbx.api.errors import TOO_LARGE
from vpbx.metrics import HTTP_LATENCY, HTTP_REQUESTS


class _TooLarge(Exception):
    pass


async def _reply(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class BodyLimit:
    """Bodies over ``max_bytes`` get 413 before any handler reads them.

    ``PATH_LIMITS`` (path prefix -> bytes) gives routes that take larger bodies (uploads) their own limit;
    features register their prefixes there when their router is imported.
    """

    PATH_LIMITS: dict[str, int] = {}

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def limit_for(self, path: str) -> int:
        return next((n for prefix, n in self.PATH_LIMITS.items() if path.startswith(prefix)), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope["path"])
        streamed = False
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > max_bytes:
                await _reply(send, 413, {"message": TOO_LARGE})
                return
            if name == b"transfer-encoding":
                streamed = True
        if not streamed:
            # A body with a Content-Length is that long (the HTTP server holds it to it), one without either header
            # is empty: only a streamed body needs counting (the wrappers cost every GET ~3 us).
            await self.app(scope, receive, send)
            return
        seen = 0
        started = False
        replied = False

        async def limited() -> Message:
            nonlocal seen, started, replied
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    # Answer now: the framework turns an exception raised while it reads the body into
                    # its own 400, which tracking_send then drops.
                    if not started:
                        started = replied = True
                        await _reply(send, 413, {"message": TOO_LARGE})
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if replied:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except _TooLarge:
            pass


class PathAliases:
    """002 misspells the prefix as ``/crmpapi/`` in places; serve it too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/crmpapi/"):
            scope = dict(scope)
            scope["path"] = "/crmapi/" + scope["path"][len("/crmpapi/"):]
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


class HttpMetrics:
    """The HTTP request count and latency series: fed by the request log's one status-and-time wrapper
    (``RequestLog(also=...)``: a second wrapper of its own cost every request a few us)."""

    def __init__(self) -> None:
        # The labelled series, looked up once each (``labels()`` costs microseconds a request).
        self._counts: dict[tuple[str, int], Any] = {}
        self._latency: dict[str, Any] = {}

    def record(self, method: str, status: int, seconds: float) -> None:
        count = self._counts.get((method, status))
        if count is None:
            count = self._counts[(method, status)] = HTTP_REQUESTS.labels(method, str(status))
        latency = self._latency.get(method)
        if latency is None:
            latency = self._latency[method] = HTTP_LATENCY.labels(method)
        count.inc()
        latency.observe(seconds)
