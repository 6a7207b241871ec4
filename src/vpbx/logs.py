"""Structured logs: key=value text for people, JSON lines for machines (``--log-json``).

What the server logs, each as one record with fields (never a key, token, password or signed link):

* ``vpbx.access`` ``request``: method, path, status, ms, domain and key_id when authenticated;
* ``vpbx.audit`` ``configuration changed``: who (domain, key_id, role) and what (method, path) for every
  successful mutating REST v1 request (``makecall`` places a call: not a change) and legacy ``set_dnd`` /
  ``subscribeOnCalls`` (role ``legacy token``, the ``cmd``);
* ``vpbx.calls`` ``call started`` / ``call ended``: callid, domain, direction, from, to, status;
* ``vpbx.deliveries`` ``crm delivery``: outbox_id, domain_id, command, attempt, crm (scheme and host only), http_status,
  error, ms, state (delivered, pending = retried later, failed).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from vpbx.engine.model import Call

_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
LEVELS = ("debug", "info", "warning", "error", "critical")
MASK = "***"
# Query parameters and URL parts that are secrets: passwords, tokens, keys (legacy ``token=``, DSN ``password=``).
_SECRET_WORDS = ("pass", "secret", "token", "key", "auth", "sig")
# Paths whose tail is a credential: a recording link is a signed token valid without a key.
_SECRET_PATHS = ("/records/",)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOT_CHANGES = ("/crmapi/v1/makecall",)  # mutating requests that act rather than configure
LEGACY = "/sys/crm_api"
LEGACY_CHANGES = frozenset({"set_dnd", "subscribeoncalls"})  # legacy commands that change the configuration

access = logging.getLogger("vpbx.access")
audit = logging.getLogger("vpbx.audit")
calls = logging.getLogger("vpbx.calls")
deliveries = logging.getLogger("vpbx.deliveries")


class _SecondsCache(logging.Formatter):
    """``formatTime`` once a second, not once a record (strftime was a fifth of an access line's cost)."""

    _second = -1
    _text = ""

    def stamp(self, record: logging.LogRecord, fmt: str) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._text = second, self.formatTime(record, fmt)
        return self._text


class JsonFormatter(_SecondsCache):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.stamp(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in _STD})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class KeyValueFormatter(_SecondsCache):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _STD)
        line = f"{self.stamp(record, '%H:%M:%S')} {record.levelname.lower():7} {record.name}: " \
               f"{record.getMessage()}"
        if extra:
            line += " " + extra
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is at each record (as logging's last-resort handler does), not the stream of
    the moment of ``configure``: one that was replaced and closed since (a CLI run in-process, captured output)
    would fail each record with "I/O operation on closed file"."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr


def configure(level: str = "info", json: bool = False) -> None:
    """Send the ``vpbx`` loggers to stderr at ``level`` (one of ``LEVELS``), as text or JSON lines."""
    if level.lower() not in LEVELS:
        raise ValueError(f"log level: one of {', '.join(LEVELS)}")
    # No caller lookup (a walk up the stack per record) and no thread or process names: no formatter here
    # prints them, and an access line is written per request (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = _Stderr()
    handler.setFormatter(JsonFormatter() if json else KeyValueFormatter())
    root = logging.getLogger("vpbx")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # uvicorn's own messages (start-up failures, protocol errors) in the same format; vpbx logs requests.
    server = logging.getLogger("uvicorn")
    server.handlers[:] = [handler]
    server.setLevel(max(logging.WARNING, root.level))
    server.propagate = False


# --- secrets out ---------------------------------------------------------------------------------------


def _secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def redact_url(url: str) -> str:
    """``url`` with its password and secret-looking query values masked (a store URL, a CRM URL)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if ("@" not in parts.netloc or ":" not in parts.netloc.rsplit("@", 1)[0]) and \
            not any(_secret(k) for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
        return url  # nothing to hide (and a ``sqlite:///path`` keeps its three slashes)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + MASK
        netloc = f"{userinfo}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if _secret(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def safe_path(path: str) -> str:
    for prefix in _SECRET_PATHS:
        if path.startswith(prefix):
            return prefix + MASK
    return path


# --- requests and configuration changes ------------------------------------------------------------


async def observed(app: ASGIApp, scope: Scope, receive: Receive, send: Send,
                   done: Callable[[int, float], None]) -> None:
    """Run ``app`` and call ``done(status, seconds)`` when it ends, however it ends (500 if no response started):
    the one status-and-time wrapper the request log and the HTTP metrics share."""
    began = time.perf_counter()
    status = 500

    async def observe(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    try:
        await app(scope, receive, observe)
    finally:
        done(status, time.perf_counter() - began)


class RequestLog:
    """One ``vpbx.access`` record per HTTP request, and a ``vpbx.audit`` record per configuration change.

    The domain comes from the principal the auth dependency leaves in the request's state; the query
    string is never logged (the legacy API carries its token there), only the legacy ``cmd``.
    """

    def __init__(self, app: ASGIApp, also: Callable[[str, int, float], None] | None = None) -> None:
        self.app = app
        self.also = also  # (method, status, seconds) of every request, logged or not: the HTTP metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        also, logged = self.also, access.isEnabledFor(logging.INFO)

        def done(status: int, seconds: float) -> None:
            if also is not None:
                also(scope["method"], status, seconds)
            if logged:
                self._record(scope, status, seconds * 1000)

        await observed(self.app, scope, receive, send, done)

    @staticmethod
    def _record(scope: Scope, status: int, ms: float) -> None:
        method, path = scope["method"], safe_path(scope["path"])
        fields: dict[str, Any] = {"method": method, "path": path, "status": status, "ms": round(ms, 2)}
        state = scope.get("state") or {}
        cmd = state.get("cmd")  # the legacy API's command (query or form), set once the token is checked
        if cmd is None and path.startswith(LEGACY) and scope.get("query_string"):
            cmd = dict(parse_qsl(scope["query_string"].decode("latin-1"))).get("cmd", "")[:64]
        if cmd:
            fields["cmd"] = cmd
        principal = state.get("principal")  # REST v1: the key's Principal; legacy: the token's Caller
        key_id = getattr(principal, "key_id", None)
        if principal is not None:
            fields["domain"] = principal.domain_name
            if key_id is not None:
                fields["key_id"] = key_id
        access.info("request", extra=fields)
        if principal is None or status >= 400:
            return
        if method in MUTATING and path.startswith("/crmapi/v1/") and not path.startswith(NOT_CHANGES):
            audit.info("configuration changed", extra={
                "domain": principal.domain_name, "key_id": key_id,
                "role": getattr(principal, "role", None) or "full", "method": method, "path": path})
        elif path.startswith(LEGACY) and cmd and cmd.lower() in LEGACY_CHANGES:
            audit.info("configuration changed", extra={
                "domain": principal.domain_name, "key_id": None, "role": "legacy token", "method": method,
                "path": path, "cmd": cmd})


# --- calls and deliveries ------------------------------------------------------------------------------


def call_started(call: Call) -> None:
    if calls.isEnabledFor(logging.INFO):
        calls.info("call started", extra={"callid": call.callid, "domain": call.domain_name,
                                          "direction": call.kind, "from": call.caller, "to": call.dialed})


def call_ended(call: Call) -> None:
    if calls.isEnabledFor(logging.INFO):
        fields = {"callid": call.callid, "domain": call.domain_name, "direction": call.kind, "from": call.caller,
                  "to": call.dialed, "status": call.status or call.state}
        if call.reason:
            fields["reason"] = call.reason
        if call.answered_by:
            fields["answered_by"] = call.answered_by
        calls.info("call ended", extra=fields)


def delivery(*, outbox_id: int, domain_id: int, command: Any, attempt: int, url: str, status: int | None,
             error: str | None, seconds: float, state: str) -> None:
    """One CRM delivery attempt and its outcome (``state``: delivered, pending = retried later, failed)."""
    if not deliveries.isEnabledFor(logging.INFO):
        return
    parts = urlsplit(url) if url else None
    # The host only: CRMs put secrets in the path too (webhook URLs with a token segment).
    where = urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], "", "", "")) if parts else ""
    level = logging.INFO if state != "failed" else logging.WARNING
    deliveries.log(level, "crm delivery", extra={
        "outbox_id": outbox_id, "domain_id": domain_id, "command": getattr(command, "value", command),
        "attempt": attempt, "crm": where, "http_status": status, "error": error, "ms": round(seconds * 1000, 1),
        "state": state})
