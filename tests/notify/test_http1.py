"""The notifier's HTTP client against real sockets on loopback, each server scripted byte for byte.

Keep-alive reuse, a kept connection the CRM closed while idle (replaced once, and only when no byte of the
answer came), answers delimited every way HTTP/1.1 allows (length, chunks, the connection's close), interim
1xx answers, compressed answers, the answer's bound, timeouts, refused connections, verified TLS, and what is
sent: the request line, Host, the headers, the body.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.tls import self_signed

from vpbx.notify.http1 import AnswerError, Client, ConnectError
from vpbx.notify.ssrf import Refused
from vpbx.notify.transport import MAX_ANSWER, client_session, post

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


class Server:
    """A TCP server on 127.0.0.1 whose ``handler`` runs once per connection; it counts connections and
    keeps every request it read (head and body)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went, or the test is over
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length)
        self.requests.append((head, body))
        return head, body

    def url(self, path: str = "/crm", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Server]]]:
    servers: list[Server] = []

    async def start(handler: Handler) -> Server:
        servers.append(await Server(handler).start())
        return servers[-1]

    yield start
    for server in servers:
        await server.close()


def client(limit: int = 8) -> Client:
    return client_session(private_ok=True, limit=limit)


def answer_once(wire: bytes) -> Handler:
    """A handler that reads one request, writes ``wire`` and leaves the connection to close."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.read_request(reader)
        writer.write(wire)
        await writer.drain()

    return handler


async def keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
    while True:
        await server.read_request(reader)
        writer.write(OK)
        await writer.drain()


async def test_requests_reuse_one_kept_connection_and_send_what_was_asked(serve: Any) -> None:
    server = await serve(keep_answering)
    async with client() as http:
        for n in range(5):
            answer = await post(http, server.url("/hook/a b/ж?x=1&y=два"), b"n=%d" % n,
                                {"Content-Type": "application/x-www-form-urlencoded", "webhook-id": f"msg_{n}"}, 5)
            assert (answer.status, answer.body, answer.content_type, answer.error) == \
                (200, b'{"ok":true}', "application/json", None)
    assert server.connections == 1
    head, body = server.requests[3]
    lines = head.decode("ascii").split("\r\n")
    assert lines[0] == "POST /hook/a%20b/%D0%B6?x=1&y=%D0%B4%D0%B2%D0%B0 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines and "webhook-id: msg_3" in lines
    assert "Content-Length: 3" in lines and any(line.startswith("User-Agent: vpbx/") for line in lines)
    assert body == b"n=3"


async def test_other_methods_and_the_callers_own_host(serve: Any) -> None:
    """What a cluster's forwarding sends: any method but HEAD, the caller's Host and User-Agent instead of the
    client's, no length for a GET without a body."""
    server = await serve(keep_answering)
    async with client() as http:
        got = await http.request("GET", server.url("/sim/v1/calls/1?x=1"), b"", [("host", "pbx.example:8080"),
                                                                               ("User-Agent", "curl/8")], 5)
        assert (got.status, got.raw[0]) == (200, (b"Content-Type", b"application/json"))
        assert (await http.request("DELETE", server.url(), b"{}", {}, 5)).status == 200
        for method, headers in (("HEAD", {}), ("CONNECT", {}), ("GET", {"Content-Length": "5"})):
            with pytest.raises(ValueError):
                await http.request(method, server.url(), b"", headers, 5)
    lines = server.requests[0][0].decode("ascii").split("\r\n")
    assert lines[0] == "GET /sim/v1/calls/1?x=1 HTTP/1.1"
    assert [line for line in lines if line.split(":")[0].lower() in ("host", "user-agent", "content-length")] == \
        ["host: pbx.example:8080", "User-Agent: curl/8"]
    assert server.requests[1][0].startswith(b"DELETE /crm HTTP/1.1\r\n") and server.requests[1][1] == b"{}"
    assert len(server.requests) == 2


async def test_credentials_in_the_url_are_sent_as_basic_authentication(serve: Any) -> None:
    server = await serve(keep_answering)
    async with client() as http:
        url = f"http://crm%40user:p%3Ass@127.0.0.1:{server.port}/crm"
        assert (await post(http, url, b"x", {}, 5)).status == 200
    head = server.requests[0][0].decode("ascii")
    assert "Authorization: Basic " + base64.b64encode(b"crm@user:p:ss").decode() + "\r\n" in head
    assert "crm%40user" not in head.split("\r\n")[0]


async def test_a_kept_connection_closed_while_idle_is_replaced_once(serve: Any) -> None:
    async def first_connection_drops_the_second_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                                        server: Server) -> None:
        first = server.connections == 1
        await server.read_request(reader)
        writer.write(OK)  # keep-alive promised (HTTP/1.1)
        await writer.drain()
        if first:
            await server.read_request(reader)  # then closed without a byte of answer, as an idle timeout races
            return
        await keep_answering(reader, writer, server)

    server = await serve(first_connection_drops_the_second_request)
    async with client() as http:
        assert (await post(http, server.url(), b"1", {}, 5)).status == 200
        assert (await post(http, server.url(), b"2", {}, 5)).status == 200  # sent again on a new connection
        assert (await post(http, server.url(), b"3", {}, 5)).status == 200
    assert [body for _, body in server.requests] == [b"1", b"2", b"2", b"3"]
    assert server.connections == 2


async def test_a_connection_seen_closed_is_not_taken_again(serve: Any) -> None:
    server = await serve(answer_once(OK))
    async with client() as http:
        assert (await post(http, server.url(), b"1", {}, 5)).status == 200
        for _ in range(200):  # until the client has seen the close
            if not any(http._idle.values()) or all(c.closed for idle in http._idle.values() for c in idle):
                break
            await asyncio.sleep(0.005)
        assert (await post(http, server.url(), b"2", {}, 5)).status == 200
    assert [body for _, body in server.requests] == [b"1", b"2"] and server.connections == 2


async def test_idle_connections_are_closed_after_the_keepalive(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from vpbx.notify import http1

    monkeypatch.setattr(http1, "KEEPALIVE", 0.05)
    server = await serve(keep_answering)
    async with client() as http:
        assert (await post(http, server.url(), b"1", {}, 5)).status == 200
        (kept,) = http._idle[("http", "127.0.0.1", server.port)]
        for _ in range(200):  # the sweep closes it without another request
            if kept.closed and not http._idle:
                break
            await asyncio.sleep(0.01)
        assert kept.closed and not http._idle and http._sweeper is None
        assert (await post(http, server.url(), b"2", {}, 5)).status == 200
    assert server.connections == 2


async def test_a_connection_that_breaks_after_part_of_the_answer_is_not_retried(serve: Any) -> None:
    server = await serve(answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"par"))
    async with client() as http:
        answer = await post(http, server.url(), b"x", {}, 5)
    assert answer.status is None and answer.error is not None and "closed the connection" in answer.error
    assert len(server.requests) == 1


@pytest.mark.parametrize("wire", [
    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
    b"HTTP/1.0 201 Created\r\n\r\n{\"a\":1}",  # delimited by the close
])
async def test_answers_delimited_every_way(serve: Any, wire: bytes) -> None:
    server = await serve(answer_once(wire))
    async with client() as http:
        got = await post(http, server.url(), b"x", {}, 5)
    assert (got.status, got.body, got.error) == (201, b'{"a":1}', None)


async def test_a_compressed_answer_is_inflated(serve: Any) -> None:
    packed = gzip.compress(b'{"contact_name":"Ann"}')

    server = await serve(answer_once(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
                                     % len(packed) + packed))
    async with client() as http:
        assert (await post(http, server.url(), b"x", {}, 5)).body == b'{"contact_name":"Ann"}'


async def test_a_long_answer_is_cut_at_the_bound_and_its_connection_not_kept(serve: Any) -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        while True:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (10 * MAX_ANSWER) + b"a" * 10 * MAX_ANSWER)
            await writer.drain()

    server = await serve(endless)
    async with client() as http:
        for _ in range(2):
            answer = await post(http, server.url(), b"x", {}, 5)
            assert answer.status == 200 and answer.body == b"a" * MAX_ANSWER
    assert server.connections == 2


async def test_a_silent_crm_times_out_and_its_connection_is_dropped(serve: Any) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.read_request(reader)
        await reader.read()  # until the client gives up and closes

    server = await serve(silent)
    async with client() as http:
        answer = await post(http, server.url(), b"x", {}, 0.2)
        assert answer.status is None and answer.error == "timeout after 0.2 s"
        assert not any(http._idle.values())


async def test_nothing_listening_is_a_connect_error_and_garbage_is_not_an_answer(serve: Any) -> None:
    server = await serve(keep_answering)
    port = server.port
    await server.close()
    await asyncio.sleep(0)
    async with client() as http:
        refused = await post(http, f"http://127.0.0.1:{port}/crm", b"x", {}, 5)
        assert refused.status is None and refused.error is not None and refused.error.startswith("connect: ")
        assert not refused.refused  # a CRM that is down is retried, not given up

    other = await serve(answer_once(b"SSH-2.0-OpenSSH_9.2\r\n"))
    async with client() as http:
        answer = await post(http, other.url(), b"x", {}, 5)
    assert answer.status is None and answer.error is not None and answer.error.startswith("AnswerError: ")


async def test_a_header_that_would_split_the_request_is_not_sent(serve: Any) -> None:
    server = await serve(keep_answering)
    async with client() as http:
        answer = await post(http, server.url(), b"x", {"X-A": "1\r\nX-Injected: 1"}, 5)
    assert answer.status is None and answer.error is not None and "cannot be sent" in answer.error
    assert server.requests == []


async def test_urls_refused_before_any_connection() -> None:
    async with client_session(private_ok=False, limit=2) as http:
        for url in ("http://127.0.0.1:9/crm", "ftp://crm.example.com/", "http://localhost/crm"):
            answer = await post(http, url, b"x", {}, 5)
            assert answer.refused and answer.error is not None and answer.error.startswith("refused: ")
        with pytest.raises(Refused):
            await http.post("http://[::1]:9/crm", b"x", {}, 5)


async def test_tls_is_verified(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert_file, key_file)
    server = await Server(keep_answering).start(tls=served)
    try:
        async with client() as http:  # the system's CAs: a self-signed CRM is not trusted
            answer = await post(http, server.url(scheme="https"), b"x", {}, 5)
            assert answer.status is None and answer.error is not None and "CERTIFICATE_VERIFY_FAILED" in answer.error
        trusted = ssl.create_default_context(cafile=str(cert_file))
        async with Client(True, 4, "vpbx/test", MAX_ANSWER, tls=trusted) as http:
            for _ in range(3):
                assert (await post(http, server.url(scheme="https"), b"x", {}, 5)).body == b'{"ok":true}'
        assert server.connections == 1  # one kept connection for the three (the refused handshake never was one)
    finally:
        await server.close()


def test_errors_are_the_documented_kinds() -> None:
    assert issubclass(ConnectError, OSError) and not issubclass(AnswerError, OSError)
