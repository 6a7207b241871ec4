"""SIP over TCP and TLS for sippy (RFC 3261 §18), which only has UDP (and WebSocket) transports of its own.

sippy plugs a transport in as a ``Network_server``: it hands received bytes to the transaction manager
(``data_callback(data, Remote_address, server, rtime)``) and sends with ``server.send_to(data, address)``; a
server transaction answers through the server its request came in on. Here:

* ``StreamServer`` (one per transport, ``tcp`` or ``tls``) listens and keeps the open connections by the
  peer's address; sippy's client transactions pick it by the target's transport (``stack._Manager``).
* Every ``Connection`` is itself a ``Network_server`` for sippy: a request that came in on it is answered on it
  (RFC 3261 §18.2.2), and a request to the peer's address goes out on it, so a phone behind NAT is reached
  through the connection it registered on (RFC 5626 §5.3: the flow is reused). With no open connection to an
  address, a new one is opened (to the registered Contact when the flow was a registration's, see ``remember``).
* The bytes are only framed here (RFC 3261 §18.3: the headers end at an empty line, Content-Length bytes of body
  follow); sippy parses the messages. A CRLFCRLF keep-alive is answered with CRLF (RFC 5626 §4.4.1).
* A connection sending something that cannot be framed (not SIP, headers or body too large, a message left
  half-sent) is closed; the server keeps serving the others.

The sockets live on one asyncio loop in a thread of its own (``sip-stream``); what they receive goes to sippy's
reactor thread with ``ED2.callFromThread``, what sippy sends comes back with ``call_soon_threadsafe`` (both keep
the order of the messages).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

from sippy.Network_server import Network_server, Network_server_opts, Remote_address
from sippy.SipTransactionManager import SipTransactionManager

log = logging.getLogger("vpbx.sip.stream")

Address = tuple[str, int]

MAX_HEADERS = 16 * 1024  # bytes before the empty line that ends a message's headers
MAX_BODY = 64 * 1024  # Content-Length accepted: SDP is a few hundred bytes
INCOMPLETE_SECONDS = 32.0  # a message begun must be complete within this (64*T1, as long as a transaction lives)
IDLE_SECONDS = 3900.0  # a connection nothing came on for longer than the longest registration (3600 s) closes
MAX_CONNECTIONS = 4096  # open connections per transport: past it new ones are refused (descriptors are finite)
MAX_WRITE_BUFFER = 1024 * 1024  # unsent bytes to a peer that stopped reading: the connection closes
MAX_ROUTES = 10_000  # remembered registration flows (source -> Contact)

PING = b"\r\n\r\n"  # RFC 5626 §3.5.1 keep-alive, answered with one CRLF (the pong)
PONG = b"\r\n"


class FramingError(Exception):
    """The bytes on a connection are not a stream of SIP messages: it closes."""


def _local_ip_toward(remote: Address) -> str | None:
    """The local address a connection to ``remote`` leaves from (a UDP socket's route lookup: nothing is sent)."""
    family = socket.AF_INET6 if ":" in remote[0] else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(remote)
            return str(probe.getsockname()[0])
    except OSError:
        return None


def _key(address: Any) -> Address:
    """sippy writes IPv6 hosts in brackets, sockets do not: one spelling for the lookups."""
    return str(address[0]).strip("[]"), int(address[1])


class Framer:
    """Cuts a connection's bytes into SIP messages (RFC 3261 §18.3) and keep-alive pings (``PING``)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    @property
    def partial(self) -> bool:
        """A message has begun and is not complete yet (CRLFs alone are keep-alive traffic, not a message)."""
        return bool(self.buf.lstrip(b"\r\n"))

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out: list[bytes] = []
        buf = self.buf
        while buf:
            if buf.startswith(PING):
                out.append(PING)
                del buf[:4]
                continue
            if buf.startswith(b"\r\n") and len(buf) > 2 and buf[2:3] != b"\r":
                del buf[:2]  # a lone CRLF: a pong, or the CRLF RFC 3261 §7.5 lets precede a message
                continue
            if buf[:1] in (b"\r", b"\n") and len(buf) < 4:
                break  # a ping or a pong still arriving
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADERS:
                    raise FramingError("headers too long")
                break
            if end > MAX_HEADERS:
                raise FramingError("headers too long")
            length = self._content_length(bytes(buf[:end]))
            total = end + 4 + length
            if len(buf) < total:
                break
            out.append(bytes(buf[:total]))
            del buf[:total]
        return out

    @staticmethod
    def _content_length(head: bytes) -> int:
        lines = head.split(b"\r\n")
        first = lines[0]
        if not (first.startswith(b"SIP/2.0 ") or first.endswith(b" SIP/2.0")):
            raise FramingError("not a SIP start line")
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if colon and name.strip().lower() in (b"content-length", b"l"):
                try:
                    length = int(value.strip())
                except ValueError:
                    raise FramingError("bad Content-Length") from None
                if not 0 <= length <= MAX_BODY:
                    raise FramingError("Content-Length out of range")
                return length
        return 0  # RFC 3261 §18.3 makes it mandatory on streams; without one, the message has no body


class _Io:
    """The asyncio loop the stream sockets live on, in a daemon thread started once per process."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def loop(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="sip-stream", daemon=True).start()
                cls._loop = loop
            return cls._loop

    @classmethod
    def call(cls, fn: Callable[..., Any], *args: Any) -> None:
        cls.loop().call_soon_threadsafe(fn, *args)

    @classmethod
    def run(cls, coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        """Run ``coro`` on the stream loop and wait for it (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coro, cls.loop()).result(timeout)


class Connection(Network_server):  # type: ignore[misc]
    """One TCP or TLS connection, as sippy's server for the messages it carries."""

    def __init__(self, listener: StreamServer, remote: Address, *, outbound: bool) -> None:
        super().__init__(listener.uopts)
        self.transport = listener.transport
        self.listener = listener
        self.remote = remote
        self.outbound = outbound
        self.ra = Remote_address(remote, self.transport)
        # Listening on a wildcard address, Via and Contact name the address this connection uses.
        self.local_host = _local_ip_toward(remote) if outbound and listener.wildcard else None
        self.writer: asyncio.StreamWriter | None = None  # None while an outbound connection is being opened
        self.pending: list[bytes] = []
        self.closed = False

    def __repr__(self) -> str:
        return f"<{self.transport} connection {self.remote[0]}:{self.remote[1]}>"

    # --- sippy's side (reactor thread) -------------------------------------------------------------

    def getSIPaddr(self) -> tuple[Address, str]:
        # Via and Contact name the listening port, on the local address this connection uses.
        host, port = self.listener.uopts.laddress
        if self.local_host:
            host = f"[{self.local_host}]" if ":" in self.local_host else self.local_host
        return (host, port), self.transport

    def send_to(self, data: bytes | str, address: Any, delayed: bool = False) -> None:
        if isinstance(data, str):
            data = data.encode()
        if self.closed:  # RFC 3261 §18.2.2: the connection is gone, a new one to the address goes
            self.listener.send_to(data, address)
            return
        _Io.call(self._write, data)

    def join(self) -> None:
        pass

    def shutdown(self) -> None:
        _Io.call(self.close)

    def fix_contact(self, msg: Any) -> None:
        """Point the Contact of a message from the directly connected peer at this connection (its source
        address, with this transport): sippy sends a dialog's requests to its Contact, and the address a phone
        behind NAT writes there is not reachable; its connection is (RFC 5626 §5.3: the flow is reused)."""
        try:
            if msg.countHFs("contact") != 1:
                return
            body = msg.getHFBody("contact")
            if getattr(body, "asterisk", False):
                return
            url = body.getUrl()
        except Exception:  # an unparsable Contact is sippy's to refuse, not ours
            return
        host, port = self.remote
        url.host, url.port, url.transport = (f"[{host}]" if ":" in host else host), port, self.transport

    # --- the socket's side (stream thread) -----------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.closed:  # closed meanwhile: lost, as a datagram would be (the transaction retries or times out)
            return
        if self.writer is None:
            self.pending.append(data)
            return
        self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("SIP peer does not read: connection closed", extra={"peer": self.remote[0]})
            self.close()

    def attach(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        sock = writer.get_extra_info("sockname")
        if sock and self.listener.wildcard:
            self.local_host = str(sock[0])
        pending, self.pending = self.pending, []
        for data in pending:
            self._write(data)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.listener.forget(self)
        if self.writer is not None:
            self.writer.close()

    async def serve(self, reader: asyncio.StreamReader) -> None:
        """Read messages until the peer closes, the connection idles out or sends what cannot be framed."""
        from sippy.Core.EventDispatcher import ED2
        from sippy.Time.MonoTime import MonoTime

        framer = Framer()
        try:
            while not self.closed:
                timeout = INCOMPLETE_SECONDS if framer.partial else IDLE_SECONDS
                data = await asyncio.wait_for(reader.read(65536), timeout)
                if not data:
                    if framer.partial:
                        log.info("SIP connection closed mid-message", extra={"peer": self.remote[0]})
                    break
                for item in framer.feed(data):
                    if item == PING:
                        if self.writer is not None:
                            self.writer.write(PONG)
                        continue
                    ED2.callFromThread(self.handle_read, item, self.ra, MonoTime())
        except FramingError as exc:
            log.info("SIP connection closed: %s", exc, extra={"peer": self.remote[0], "transport": self.transport})
        except TimeoutError:
            log.info("SIP connection timed out", extra={"peer": self.remote[0], "partial": framer.partial})
        except (OSError, ssl.SSLError) as exc:
            log.info("SIP connection failed: %s", exc, extra={"peer": self.remote[0]})
        finally:
            self.close()


class StreamServer(Network_server):  # type: ignore[misc]
    """Listens for SIP on one stream transport and keeps its connections (see the module's docstring)."""

    def __init__(self, uopts: Network_server_opts, transport: str, *, server_ssl: ssl.SSLContext | None = None,
                 client_ssl: ssl.SSLContext | None = None) -> None:
        super().__init__(uopts)
        self.transport = transport
        self.server_ssl, self.client_ssl = server_ssl, client_ssl
        host = str(self.uopts.laddress[0])
        self.wildcard = host in ("0.0.0.0", "::", "[::]", "")
        self._lock = threading.Lock()
        self.connections: dict[Address, Connection] = {}  # by the peer's address
        self.routes: OrderedDict[Address, Address] = OrderedDict()  # a registration's source -> its Contact
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self.closing = False

    def start(self) -> None:
        """Listen (from any thread but the stream loop's); OSError when the address is taken."""
        host, port = self.uopts.laddress
        self._server = _Io.run(asyncio.start_server(self._accepted, str(host).strip("[]"), int(port),
                                                    ssl=self.server_ssl, reuse_address=True))
        log.info("SIP listening", extra={"sip_host": host, "sip_port": port, "transport": self.transport})

    # --- sippy's side (reactor thread) -------------------------------------------------------------

    def send_to(self, data: bytes | str, address: Any, delayed: bool = False) -> None:
        self.connection_to(address).send_to(data, address)

    def addr2str(self, address: Any) -> str:
        return f"{self.transport}:{address[0]}:{address[1]}"

    def connection_to(self, address: Any) -> Connection:
        """The open connection to ``address``, or a new one (to the Contact of a registration's closed flow)."""
        key = _key(address)
        with self._lock:
            found = self.connections.get(key)
            if found is not None and not found.closed:
                return found
            target = self.routes.get(key, key)
            found = self.connections.get(target)
            if found is not None and not found.closed:
                return found
            conn = Connection(self, target, outbound=True)
            self.connections[target] = conn
        _Io.call(self._connect, conn)
        return conn

    def known(self, address: Any) -> Connection | None:
        """The connection to use for ``address`` if it is a peer of this transport: one connected, or a
        registration's flow (``remember``); None otherwise."""
        key = _key(address)
        with self._lock:
            found = self.connections.get(key)
            if found is not None and not found.closed:
                return found
            if key not in self.routes:
                return None
        return self.connection_to(key)

    def remember(self, source: Any, contact: Any) -> None:
        """A phone registered over this transport from ``source``: were that connection to close, requests to it
        go to the ``contact`` it registered (a new connection)."""
        with self._lock:
            self.routes[_key(source)] = _key(contact)
            self.routes.move_to_end(_key(source))
            while len(self.routes) > MAX_ROUTES:
                self.routes.popitem(last=False)

    def forget_route(self, source: Any) -> None:
        with self._lock:
            self.routes.pop(_key(source), None)

    def join(self) -> None:
        pass

    def shutdown(self) -> None:
        try:
            _Io.run(self._close(), 5)
        except Exception:  # pragma: no cover - shutting down anyway
            log.exception("SIP stream transport did not close")
        self.uopts.data_callback = None

    # --- the sockets (stream thread) -----------------------------------------------------------------

    def forget(self, conn: Connection) -> None:
        with self._lock:
            if self.connections.get(conn.remote) is conn:
                del self.connections[conn.remote]

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not peer or self.closing:
            writer.close()
            return
        remote = _key(peer)
        conn = Connection(self, remote, outbound=False)
        old: Connection | None = None
        with self._lock:
            full = len(self.connections) >= MAX_CONNECTIONS
            if not full:
                old = self.connections.get(remote)
                self.connections[remote] = conn
        if full:
            log.warning("SIP connection refused: too many open", extra={"peer": remote[0]})
            writer.close()
            return
        if old is not None and not old.closed:
            old.close()
        conn.attach(writer)
        await conn.serve(reader)

    async def _open(self, conn: Connection) -> None:
        host, port = conn.remote
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                host, port, ssl=self.client_ssl, server_hostname="" if self.client_ssl else None), 10)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            # The requests queued for it are lost: their transactions time out (408) as they would on UDP.
            log.info("SIP connection could not be opened: %s", exc,
                     extra={"peer": host, "port": port, "transport": self.transport})
            conn.pending.clear()
            conn.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        conn.attach(writer)
        await conn.serve(reader)

    def _connect(self, conn: Connection) -> None:
        task = asyncio.ensure_future(self._open(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self) -> None:
        self.closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        with self._lock:
            conns = list(self.connections.values())
        for conn in conns:
            conn.close()
        for task in list(self._tasks):
            task.cancel()


class TransactionManager(SipTransactionManager):  # type: ignore[misc]
    """sippy's transaction manager, choosing TCP and TLS too: a request to a ``transport=tcp``/``tls`` target goes
    on that transport; one to an address without a transport (UDP by default) goes on the connection that
    address has open or registered over (``StreamServer.known``): a phone registered over TCP gets its calls
    over TCP. The stream servers are ``global_config["_vpbx_streams"]`` (transport -> ``StreamServer``)."""

    _came_on: Any = None  # the server the message being handled came in on (reactor thread)

    def streams(self) -> dict[str, StreamServer]:
        found: dict[str, StreamServer] = self.global_config.get("_vpbx_streams", {}) if self.global_config else {}
        return found

    def newTransaction(self, msg: Any, resp_cb: Any = None, laddress: Any = None, userv: Any = None,
                       *args: Any, **kwargs: Any) -> Any:
        if userv is None:
            userv = self.stream_for(*msg.getTarget())
        return super().newTransaction(msg, resp_cb, laddress, userv, *args, **kwargs)

    def stream_for(self, address: Any, transport: Any) -> Connection | None:
        name = str(transport).lower()
        streams = self.streams()
        if name in ("tcp", "tls"):
            server = streams.get(name)
            if server is None:
                raise RuntimeError(f"SIP over {name.upper()} is not listening")
            return server.connection_to(address)
        if name == "udp":
            for server in streams.values():
                found = server.known(address)
                if found is not None:
                    return found
        return None

    def timerA(self, t: Any) -> None:
        # A reliable transport does not retransmit requests or non-2xx final responses (RFC 3261 §17.1.1.2,
        # §17.2.1); a 2xx to an INVITE is still sent again until its ACK comes (§13.3.1.4).
        if isinstance(t.userv, Connection) and not str(t.data or "").startswith("SIP/2.0 2"):
            t.teA = None
            return
        super().timerA(t)

    def handleIncoming(self, data_in: Any, ra: Any, server: Any, rtime: Any) -> None:
        self._came_on = server
        try:
            super().handleIncoming(data_in, ra, server, rtime)
        finally:
            self._came_on = None

    def incomingRequest(self, msg: Any, checksum: Any, tids: Any, server: Any) -> None:
        # Only a request straight from the peer (one Via); a REGISTER's Contact is the binding as the phone
        # gave it (the registrar keeps the flow by the source address).
        if isinstance(server, Connection) and msg.getMethod() != "REGISTER" and msg.countHFs("via") == 1:
            server.fix_contact(msg)
        super().incomingRequest(msg, checksum, tids, server)

    def incomingResponse(self, msg: Any, t: Any, checksum: Any) -> None:
        if isinstance(self._came_on, Connection) and msg.countHFs("record-route") == 0:
            self._came_on.fix_contact(msg)
        super().incomingResponse(msg, t, checksum)


def client_context() -> ssl.SSLContext:
    """For connections vpbx opens to phones over TLS: phones present self-signed certificates, so theirs is not
    verified (a phone is authenticated by its digest on REGISTER, and normally reached on that flow)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def server_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
