"""The notifier's HTTP client: HTTP/1.1 POSTs over kept-alive connections, answers parsed by httptools.

Why not aiohttp (the stack's first choice): a delivery is one small POST and one small answer, and aiohttp's
client spent 75-80 us of CPU on each (its session, connector, tracing, timeouts and multidicts), measured
against 17-29 us for this client on the same loopback CRM (bench/delivery.py prints both). That was half of
what a delivery cost vpbx. The parser is httptools (llhttp), the one uvicorn's server side already runs; TLS is
the standard library's, verified against the system's CAs. A cluster's forwarded commands use it too
(``cluster.forward``: half the hop's cost of httpx's client).

What it does, and no more: POST (and, for forwarded commands, the other methods but HEAD) with a Content-Length
body; keep-alive per (scheme, host, port); the answer's status, headers and body, the body bounded (a longer one
is cut and its connection closed); no redirects, no proxies, no cookies. Names are resolved by ``SafeResolver``
(the SSRF guard) and the connection goes to an address it checked. A kept connection the peer closed while it
was idle is replaced once, when not a byte of the answer came back (a notification carries a stable id, so a
CRM that did take it sees a duplicate it can recognise, as with any retry).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httptools

from vpbx.notify.resolver import SafeResolver
from vpbx.notify.ssrf import Refused, check_url

KEEPALIVE = 15.0  # seconds a connection may stay idle before it is closed rather than reused (as aiohttp)
DNS_TTL = 10.0
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SAFE = "/%:@!$&'()*+,;=-._~?"  # left as they are in a path or query (RFC 3986 pchar, and its escapes)


class ConnectError(OSError):
    """No connection to the CRM (refused, unreachable, TLS failure)."""


class AnswerError(Exception):
    """The connection broke, or what came back is not HTTP/1.x."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[bytes, bytes]  # names lower-cased; a repeated header keeps its last value
    body: bytes
    raw: list[tuple[bytes, bytes]]  # every header as it came, in order

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None


@dataclass(frozen=True, slots=True)
class Target:
    """A URL made ready to send to: computed once per URL (the same few URLs are posted to all day)."""
    key: tuple[str, str, int]
    host: str
    port: int
    tls: bool
    line: bytes  # the request line after its method
    host_line: bytes
    auth_line: bytes  # Authorization, from credentials in the URL (or nothing)


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection and the answer being read on it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.waiter: asyncio.Future[bool] | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.raw: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.received = False
        self.headers_done = False
        self.cut = False  # the body was longer than the limit: the connection cannot be reused

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        if self.waiter is None or self.waiter.done():  # unasked bytes, or after the answer: not reusable
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(AnswerError("the CRM switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(AnswerError(f"not an HTTP answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers_done and b"content-length" not in self.headers and b"transfer-encoding" not in self.headers:
            waiter.set_result(False)  # an answer delimited by closing the connection (HTTP/1.0 style)
        else:
            waiter.set_exception(AnswerError("the CRM closed the connection" + (f": {exc}" if exc else "")))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value
        self.raw.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        room = self.limit - self.size
        if len(body) >= room:
            self.chunks.append(body[:room])
            self.size = self.limit
            self.cut = True  # what is past the limit is not read: done, and the connection goes
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(False)
            return
        self.chunks.append(body)
        self.size += len(body)

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # an interim answer (100 Continue, 103): the final one follows
            self._reset()
            self.received = True
            return
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.parser.should_keep_alive())

    # use
    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, request: bytes) -> bool:
        """Send ``request`` and wait for its answer; True when the connection may be reused."""
        self._reset()
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(request)
        try:
            return await self.waiter
        finally:
            self.waiter = None

    def response(self) -> Response:
        body = b"".join(self.chunks)
        coding = self.headers.get(b"content-encoding", b"").strip().lower()
        if coding in (b"gzip", b"x-gzip", b"deflate") and body:
            body = _inflate(body, self.limit)
        return Response(self.status, self.headers, body, self.raw)


def _inflate(body: bytes, limit: int) -> bytes:
    """A compressed answer (the request accepts gzip and deflate, as aiohttp's did), inflated up to ``limit``; as
    it came when it does not inflate."""
    for wbits in (47, -15):  # gzip or zlib (auto-detected), then raw deflate, which some servers send as deflate
        try:
            return zlib.decompressobj(wbits).decompress(body, limit)
        except zlib.error:
            continue
    return body


class Client:
    """Kept-alive connections to CRMs, at most ``limit`` requests at once; an async context manager."""

    def __init__(self, private_ok: bool, limit: int, user_agent: str, max_answer: int,
                 tls: ssl.SSLContext | None = None, connect_timeout: float | None = None) -> None:
        self.private_ok = private_ok
        self.resolver = SafeResolver(private_ok)
        self.user_agent = user_agent.encode("latin-1")
        self.max_answer = max_answer
        self._slots = asyncio.Semaphore(limit)
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._limit = limit
        self._targets: dict[str, Target | Refused] = {}
        self._addresses: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._tls = tls  # the system's CAs unless given (tests give their own)
        self.connect_timeout = connect_timeout  # within the request's own timeout
        self._sweeper: asyncio.TimerHandle | None = None
        self.closed = False

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()

    def target(self, url: str) -> Target:
        """``url`` checked (``check_url``) and made ready to send to, remembered per URL; Refused when it may not
        be called."""
        found = self._targets.get(url)
        if found is None:
            try:
                found = self._target(url)
            except Refused as exc:
                found = exc
            if len(self._targets) >= 4096:
                self._targets.clear()
            self._targets[url] = found
        if isinstance(found, Refused):
            raise Refused(str(found))
        return found

    def _target(self, url: str) -> Target:
        host = check_url(url, self.private_ok)
        parts = urlsplit(url)
        try:
            port = parts.port
            name = host if host.isascii() else host.encode("idna").decode("ascii")
        except (ValueError, UnicodeError) as exc:
            raise Refused(f"bad URL: {exc}") from exc
        tls = parts.scheme == "https"
        port = port or (443 if tls else 80)
        # as aiohttp (yarl) sends it: spaces and non-ASCII characters percent-encoded, escapes kept
        path = quote(parts.path or "/", safe=_SAFE) + (f"?{quote(parts.query, safe=_SAFE)}" if parts.query else "")
        shown = f"[{name}]" if ":" in name else name
        host_header = shown if port == (443 if tls else 80) else f"{shown}:{port}"
        auth = b""
        if parts.username is not None:  # https://user:password@crm/...: Basic authentication, as aiohttp sent it
            secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            auth = b"Authorization: Basic " + base64.b64encode(secret) + b"\r\n"
        return Target((parts.scheme, name, port), name, port, tls, f" {path} HTTP/1.1\r\n".encode("ascii"),
                      f"Host: {host_header}\r\n".encode("ascii"), auth)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:  # noqa: ASYNC109
        """POST ``body`` to ``url`` within ``timeout`` seconds. Raises Refused (the URL or its addresses may not
        be called), ConnectError, AnswerError, TimeoutError, ValueError (a header that cannot be sent)."""
        return await self.request("POST", url, body, headers, timeout)

    async def request(self, method: str, url: str, body: bytes, headers: Mapping[str, str] | list[tuple[str, str]],
                      timeout: float) -> Response:  # noqa: ASYNC109
        """``post`` with another method (not HEAD: its answer's length would be waited for). Headers the caller
        gives replace the client's own Host, User-Agent and Accept-Encoding."""
        if method not in _METHODS:
            raise ValueError(f"method {method!r} is not sent")
        target = self.target(url)
        given, names = _headers(headers)
        parts = [method.encode("ascii"), target.line]
        if "host" not in names:
            parts.append(target.host_line)
        parts.append(target.auth_line)
        if "user-agent" not in names:
            parts += (b"User-Agent: ", self.user_agent, b"\r\n")
        if "accept-encoding" not in names:
            parts.append(b"Accept-Encoding: gzip, deflate\r\n")
        parts.append(given)
        if body or method not in ("GET", "DELETE", "OPTIONS"):
            parts += (b"Content-Length: ", str(len(body)).encode(), b"\r\n")
        parts += (b"\r\n", body)
        request = b"".join(parts)
        async with asyncio.timeout(timeout), self._slots:
            conn = self._take(target.key)
            if conn is not None:
                try:
                    return await self._exchange(target, conn, request)
                except AnswerError:
                    if conn.received:
                        raise
                    # a kept connection closed by the CRM while idle, before a byte of the answer: once again on
                    # a new connection
            return await self._exchange(target, await self._connect(target), request)

    async def _exchange(self, target: Target, conn: _Connection, request: bytes) -> Response:
        reusable = False
        try:
            reusable = await conn.exchange(request)
            return conn.response()
        finally:
            if reusable and not conn.cut and not conn.closed and not self.closed:
                self._keep(target.key, conn)
            else:
                conn.close()

    def _take(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < KEEPALIVE:
                return conn
            conn.close()
        return None

    def _keep(self, key: tuple[str, str, int], conn: _Connection) -> None:
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = deque()
        if len(idle) >= self._limit:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(KEEPALIVE, self._sweep)

    def _sweep(self) -> None:
        """Close the connections idle past KEEPALIVE (a CRM posted to once must not hold a socket for good)."""
        self._sweeper = None
        now = time.monotonic()
        for key, idle in list(self._idle.items()):
            while idle and (idle[0].closed or now - idle[0].idle_since >= KEEPALIVE):  # the oldest are first
                idle.popleft().close()
            if not idle:
                del self._idle[key]
        if self._idle and not self.closed:
            self._sweeper = asyncio.get_running_loop().call_later(KEEPALIVE, self._sweep)

    async def _connect(self, target: Target) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            addresses = await self._resolve(target.host, target.port)
        except Refused:
            raise
        except OSError as exc:
            raise ConnectError(str(exc)) from exc
        tls = self._context() if target.tls else None
        failures: list[str] = []
        for address in addresses:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    _, conn = await loop.create_connection(lambda: _Connection(self.max_answer), address,
                                                           target.port, ssl=tls,
                                                           server_hostname=target.host if tls else None)
                return conn
            except TimeoutError:
                failures.append(f"{address}: no answer within {self.connect_timeout:g} s")
            except OSError as exc:
                failures.append(f"{address}: {exc}")
        raise ConnectError(f"cannot connect to {target.host}:{target.port} ({'; '.join(failures)})")

    async def _resolve(self, host: str, port: int) -> list[str]:
        found = self._addresses.get((host, port))
        now = time.monotonic()
        if found is not None and found[0] > now:
            return found[1]
        addresses = [result["host"] for result in await self.resolver.resolve(host, port)]
        if len(self._addresses) >= 1024:
            self._addresses.clear()
        self._addresses[(host, port)] = (now + DNS_TTL, addresses)
        return addresses

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls


def _headers(headers: Mapping[str, str] | list[tuple[str, str]]) -> tuple[bytes, set[str]]:
    """The header lines, and their names lower-cased; ValueError for one that would split the request."""
    lines = []
    names = set()
    for name, value in headers.items() if isinstance(headers, Mapping) else headers:
        if not name.isascii() or any(c in name for c in "\r\n: ") or any(c in value for c in "\r\n\0"):
            raise ValueError(f"header {name!r} cannot be sent")
        lines.append(f"{name}: {value}\r\n")
        names.add(name.lower())
    if "content-length" in names or "transfer-encoding" in names:
        raise ValueError("the body's length is the client's to send")
    return "".join(lines).encode("latin-1"), names
