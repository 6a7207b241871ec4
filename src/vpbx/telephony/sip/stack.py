"""The bridge between sippy (the SIP stack) and vpbx's asyncio loop.

sippy runs its own reactor, ``EventDispatcher2`` (``ED2``): a process-wide singleton whose timers and
transaction state must only be touched from the thread running ``ED2.loop()``; its UDP receivers are threads
that hand datagrams to that loop with ``ED2.callFromThread``. vpbx runs on asyncio. So:

* the reactor runs in one daemon thread of its own (``sippy-reactor``), started once per process;
* everything vpbx asks of sippy (send a response, start a UAC, feed an event to a UA) goes through
  ``SipStack.run`` (``ED2.callFromThread``);
* everything sippy reports (a new request, a UA's event) is handed to asyncio with
  ``loop.call_soon_threadsafe`` and handled there: the store, the engine and the clock live on that loop.

sippy keeps some configuration in class attributes (``SipConf``) and the reactor is a singleton: one
``SipStack`` listens per process at a time (a second ``start`` raises).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger("vpbx.sip")
wire = logging.getLogger("vpbx.sip.wire")

T = TypeVar("T")

_reactor_lock = threading.Lock()
_reactor: threading.Thread | None = None
_active: SipStack | None = None


class _WireLog:
    """sippy's ``_sip_logger``: every message in and out, at debug level only (they carry digest responses)."""

    def write(self, *args: Any, **kwargs: Any) -> None:
        if wire.isEnabledFor(logging.DEBUG):
            wire.debug("%s", "".join(str(a) for a in args))


def _ensure_reactor() -> None:
    """Start sippy's reactor thread once; it lives as long as the process (its state is process-wide)."""
    global _reactor
    with _reactor_lock:
        if _reactor is not None and _reactor.is_alive():
            return
        started = threading.Event()

        def run() -> None:
            # ED2 is made when first imported, and binds itself to the importing thread (its wake-ups from other
            # threads signal that thread): it must be imported here, by the thread that runs its loop for good.
            from sippy.Core.EventDispatcher import ED2

            ED2.my_ident = threading.get_ident()
            started.set()
            while True:
                try:
                    ED2.loop()
                except Exception:  # pragma: no cover - sippy logs its own; keep the reactor alive
                    log.exception("sippy reactor error")

        _reactor = threading.Thread(target=run, name="sippy-reactor", daemon=True)
        _reactor.start()
        started.wait(5)


def parse_hostport(value: str, default_port: int = 5060) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) as a pair; ValueError on nonsense."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
    elif value.count(":") == 1:
        host, _, p = value.partition(":")
        port = int(p)
    else:
        host, port = value, default_port
    if not host or not 0 < port < 65536:
        raise ValueError(f"not HOST:PORT: {value!r}")
    return host, port


def local_contact() -> Any:
    """Our Contact: the listening address (sippy fills it in per socket), without sippy's "Anonymous" display
    name, which some user agents copy into the Request-URI of their ACK and BYE."""
    from sippy.SipContact import SipContact

    contact = SipContact()
    contact.address.name = None
    return contact


class SipStack:
    """One listening SIP endpoint. ``on_request(req, t)`` runs on the reactor thread for every new request
    outside a dialog sippy already tracks; it returns sippy's ``(response, cancel_cb, noack_cb)`` or None."""

    def __init__(self, host: str, port: int, on_request: Callable[[Any, Any], Any]) -> None:
        self.host, self.port = host, port
        self._on_request = on_request
        # TCP listens at host:port beside UDP; TLS at ``tls_address`` when a certificate is given (``install``).
        self.tls_cert: str | None = None
        self.tls_key: str | None = None
        self.tls_address: tuple[str, int] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.config: dict[str, Any] = {}
        self._tm: Any = None
        self._outbox: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()  # for the reactor thread
        self._outbox_due = False
        self._inbox: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()  # for the asyncio loop
        self._inbox_due = False

    # --- threads -----------------------------------------------------------------------------------

    # Each hop between the threads wakes the other one up (a write to its wake-up pipe, a GIL hand-over): under
    # load that was a large share of a call's cost. Work for the other side queues up (a deque: append and popleft
    # are atomic) and ONE wake-up drains everything queued meanwhile, in order.

    def run(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the reactor thread (fire and forget), after the work queued before it."""
        self._outbox.append((fn, args))
        if not self._outbox_due:
            self._outbox_due = True
            from sippy.Core.EventDispatcher import ED2

            ED2.callFromThread(self._drain_outbox)

    def _drain_outbox(self) -> None:
        self._outbox_due = False  # before draining: work queued from now on schedules another drain
        self._drain(self._outbox, "reactor")

    @staticmethod
    def _drain(box: deque[tuple[Callable[..., Any], tuple[Any, ...]]], where: str) -> None:
        while box:
            try:
                fn, args = box.popleft()
            except IndexError:  # pragma: no cover - emptied meanwhile
                return
            try:
                fn(*args)
            except Exception:
                log.exception("SIP work failed", extra={"thread": where})

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the reactor thread and await its result."""
        future: Future[T] = Future()

        def work() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

        self.run(work)
        return await asyncio.wrap_future(future)

    def to_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        """From the reactor thread: run ``fn(*args)`` on the asyncio loop, after the work queued before it."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        self._inbox.append((fn, args))
        if not self._inbox_due:
            self._inbox_due = True
            try:
                loop.call_soon_threadsafe(self._drain_inbox)
            except RuntimeError:  # pragma: no cover - the loop closed meanwhile
                self._inbox_due = False

    def _drain_inbox(self) -> None:
        self._inbox_due = False
        self._drain(self._inbox, "asyncio")

    # --- life ------------------------------------------------------------------------------------

    async def start(self) -> None:
        global _active
        if _active is not None:
            raise RuntimeError("one SIP stack per process: another one is listening")
        self.loop = asyncio.get_running_loop()
        _ensure_reactor()
        from sippy.SipConf import SipConf

        SipConf.my_uaname = "vpbx"
        self.config = {"_sip_address": self.host, "_sip_port": self.port, "_sip_logger": _WireLog()}

        def make() -> Any:
            # Imported here, on the reactor thread: sippy's modules bind the reactor when first imported.
            from sippy.Udp_server import Udp_server, Udp_server_opts

            from vpbx.telephony.sip import stream

            class Opts(Udp_server_opts):  # type: ignore[misc]
                # One sender and one receiver thread: messages leave in the order sippy sends them (a 202 before
                # the BYE that follows it, a 180 before the 200); several would reorder them.
                nworkers = 1

            class Manager(stream.TransactionManager):
                model_udp_server = (Udp_server, Opts)

            tm = Manager(self.config, self._dispatch)
            try:
                self.config["_vpbx_streams"] = self._streams(stream, tm)
            except BaseException:
                tm.cp_timer.cancel()
                tm.l4r.shutdown()
                raise
            self.config["_sip_tm"] = tm
            return tm

        self._tm = await self.call(make)
        _active = self
        log.info("SIP listening", extra={"sip_host": self.host, "sip_port": self.port, "transport": "udp"})

    def _streams(self, stream: Any, tm: Any) -> dict[str, Any]:
        """TCP at the SIP address, TLS at ``tls_address`` (with a certificate): listening, or OSError."""
        from sippy.Network_server import Network_server_opts

        servers = {"tcp": stream.StreamServer(Network_server_opts((self.host, self.port), tm.handleIncoming), "tcp")}
        if self.tls_cert and self.tls_key and self.tls_address is not None:
            servers["tls"] = stream.StreamServer(
                Network_server_opts(self.tls_address, tm.handleIncoming), "tls",
                server_ssl=stream.server_context(self.tls_cert, self.tls_key), client_ssl=stream.client_context())
        started: list[Any] = []
        try:
            for server in servers.values():
                server.start()
                started.append(server)
        except BaseException:
            for server in started:
                server.shutdown()
            raise
        return servers

    def remember_flow(self, transport: str, source: tuple[str, int], contact: tuple[str, int]) -> None:
        """A phone registered over ``transport`` from ``source``. Over TCP/TLS, requests to it take that connection,
        or a new one to its ``contact`` once it is gone (``stream.StreamServer.remember``); over UDP, a stream
        flow remembered for that source before is forgotten (the phone moved to UDP)."""
        for name, server in self.config.get("_vpbx_streams", {}).items():
            if name == transport:
                server.remember(source, contact)
            else:
                server.forget_route(source)

    def _dispatch(self, req: Any, t: Any) -> Any:
        try:
            return self._on_request(req, t)
        except Exception:
            log.exception("SIP request handler failed")
            return (req.genResponse(500, "Server Internal Error"), None, None)

    async def stop(self) -> None:
        global _active
        tm = self._tm
        self._tm = None
        if tm is not None:
            def close() -> None:
                # The sockets close; the manager's state stays for the dialogs' timers still pending on the
                # process-wide reactor (``tm.shutdown()`` would leave them crashing on its emptied state).
                tm.cp_timer.cancel()
                tm.l4r.shutdown()
                for server in self.config.get("_vpbx_streams", {}).values():
                    server.shutdown()
            try:
                await asyncio.wait_for(self.call(close), 5)
            except Exception:  # pragma: no cover - shutting down anyway
                log.exception("SIP stack shutdown failed")
        if _active is self:
            _active = None

    @property
    def tm(self) -> Any:
        return self._tm

    def send_response(self, t: Any, resp: Any) -> None:
        """Answer a server transaction held open (REGISTER, OPTIONS answered after the store was asked)."""
        def send() -> None:
            tm = self._tm
            if tm is not None:
                try:
                    tm.sendResponse(resp, t)
                except Exception:
                    log.exception("SIP response not sent")
        self.run(send)
