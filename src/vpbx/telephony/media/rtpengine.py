"""A client for rtpengine's ng control protocol.

Each request is one UDP datagram ``<cookie> <bencoded dictionary>`` and the answer is ``<cookie> <bencoded
dictionary>`` with ``result`` = ``ok`` (or ``pong``), ``error`` (with ``error-reason``) or ``load limit``.
rtpengine caches answers by cookie, so a retransmission with the same cookie is safe: a lost answer never
offers a call twice. Keys and strings travel as bytes (bencode has no text type); this client speaks ``str``
to its callers. rtpengine does not sort its answers' keys, so a strict decoder (fastbencode) refuses them.

Errors a caller acts on: :class:`MediaUnavailable` (no answer after the retries, or the port refused: the
call goes on without anchoring, see :mod:`vpbx.telephony.media.service`) and :class:`RtpengineError`
(rtpengine answered, and refused the request).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import bencode  # bencode.py: lenient on key order, as rtpengine's answers need

log = logging.getLogger("vpbx.media")

DEFAULT_TIMEOUT = 1.0
DEFAULT_RETRIES = 2  # retransmissions after the first datagram (3 sends in all)


class MediaError(Exception):
    """Anything that went wrong talking to rtpengine."""


class MediaUnavailable(MediaError):
    """rtpengine did not answer (down, restarting, unreachable): media is not anchored."""


class RtpengineError(MediaError):
    """rtpengine answered with ``result: error``; ``reason`` is its ``error-reason``."""

    def __init__(self, command: str, reason: str) -> None:
        super().__init__(f"rtpengine refused {command!r}: {reason}")
        self.command = command
        self.reason = reason


def _to_wire(value: Any) -> Any:
    if isinstance(value, bool):  # bencode has no booleans: rtpengine reads flags from lists
        return int(value)
    if isinstance(value, Mapping):
        return {k: _to_wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_to_wire(v) for v in value]
    return value


def _from_wire(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {(k.decode("utf-8", "replace") if isinstance(k, bytes) else k): _from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_wire(v) for v in value]
    return value


def encode(cookie: str, message: Mapping[str, Any]) -> bytes:
    return cookie.encode() + b" " + bytes(bencode.bencode(_to_wire(message)))


def decode(datagram: bytes) -> tuple[str, dict[str, Any]]:
    """``(cookie, dictionary)``; raises ValueError on anything that is not an ng answer."""
    cookie, sep, body = datagram.partition(b" ")
    if not sep or not cookie:
        raise ValueError("no cookie")
    try:
        data = bencode.bdecode(body)
    except Exception as exc:  # the decoder raises ValueError or its own types
        raise ValueError(f"not bencode: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("not a dictionary")
    return cookie.decode("ascii", "replace"), _from_wire(data)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: NgClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.client._received(data)

    def error_received(self, exc: Exception) -> None:
        # An ICMP port unreachable on the connected socket: nobody listens; fail the waiting requests now
        # (they retry) rather than at their timeouts.
        self.client._refused(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._transport = None


class NgClient:
    """One UDP socket to one rtpengine, many requests in flight (matched by cookie)."""

    def __init__(self, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT,
                 retries: int = DEFAULT_RETRIES, quiet: bool = False) -> None:
        self.host, self.port = host, port
        self.quiet = quiet  # no warning per unanswered request (the supervisor's readiness probe)
        self.timeout, self.retries = timeout, retries
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._prefix = secrets.token_hex(4)
        self._seq = itertools.count(1)
        self._lock = asyncio.Lock()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def _ensure(self) -> asyncio.DatagramTransport:
        async with self._lock:
            if self._transport is None or self._transport.is_closing():
                loop = asyncio.get_running_loop()
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self), remote_addr=(self.host, self.port))
                self._transport = transport
            return self._transport

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(MediaUnavailable("client closed"))
        self._pending.clear()

    def _received(self, data: bytes) -> None:
        try:
            cookie, message = decode(data)
        except ValueError as exc:
            log.warning("rtpengine: unreadable answer", extra={"error": str(exc), "rtpengine": self.address,
                                                                "answer": data[:200].decode("ascii", "replace")})
            return
        fut = self._pending.get(cookie)
        if fut is not None and not fut.done():
            fut.set_result(message)

    def _refused(self, exc: Exception) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(MediaUnavailable(f"rtpengine at {self.address}: {exc}"))

    async def command(self, command: str, params: Mapping[str, Any] | None = None, *,
                      wait: float | None = None) -> dict[str, Any]:
        """Send ``command`` with ``params``; the answer's dictionary when ``result`` is ok or pong."""
        message = {"command": command, **(params or {})}
        cookie = f"{self._prefix}_{next(self._seq)}"
        datagram = encode(cookie, message)
        wait = self.timeout if wait is None else wait
        last: Exception | None = None
        try:
            for attempt in range(self.retries + 1):
                fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
                self._pending[cookie] = fut
                try:
                    transport = await self._ensure()
                    transport.sendto(datagram)
                    answer = await asyncio.wait_for(fut, wait)
                except (TimeoutError, MediaUnavailable, OSError) as exc:
                    last = exc
                    if isinstance(exc, (MediaUnavailable, OSError)) and attempt < self.retries:
                        await asyncio.sleep(min(wait, 0.2))  # a refusal is instant: give a restart a moment
                    continue
                return self._check(command, answer)
        finally:
            self._pending.pop(cookie, None)
        if not self.quiet:
            log.warning("rtpengine: no answer", extra={"command": command, "rtpengine": self.address,
                                                       "attempts": self.retries + 1, "error": str(last or "timeout")})
        raise MediaUnavailable(f"rtpengine at {self.address} did not answer {command!r} "
                               f"({self.retries + 1} attempts, {wait:g} s each): {last or 'timeout'}")

    @staticmethod
    def _check(command: str, answer: dict[str, Any]) -> dict[str, Any]:
        result = answer.get("result")
        if result in ("ok", "pong"):
            if answer.get("warning"):
                log.info("rtpengine warning", extra={"command": command, "warning": answer["warning"]})
            return answer
        if result == "load limit":
            raise MediaUnavailable(f"rtpengine refused {command!r}: load limit")
        raise RtpengineError(command, str(answer.get("error-reason") or result or "no result"))

    # --- commands -------------------------------------------------------------------------------------------

    async def ping(self, *, wait: float | None = None) -> bool:
        return (await self.command("ping", wait=wait)).get("result") == "pong"

    async def offer(self, call_id: str, from_tag: str, sdp: str, *, flags: Sequence[str] = (),
                    replace: Sequence[str] = ("origin", "session-connection"), ice: str = "remove",
                    record: bool = False, **extra: Any) -> str:
        """The SDP rewritten by rtpengine (its own address and ports) for the callee."""
        params: dict[str, Any] = {"call-id": call_id, "from-tag": from_tag, "sdp": sdp, "flags": list(flags),
                                  "replace": list(replace), "ICE": ice, **extra}
        if record:
            params["record call"] = "yes"
        return str((await self.command("offer", params))["sdp"])

    async def answer(self, call_id: str, from_tag: str, to_tag: str, sdp: str, *, flags: Sequence[str] = (),
                     replace: Sequence[str] = ("origin", "session-connection"), ice: str = "remove",
                     **extra: Any) -> str:
        params = {"call-id": call_id, "from-tag": from_tag, "to-tag": to_tag, "sdp": sdp, "flags": list(flags),
                  "replace": list(replace), "ICE": ice, **extra}
        return str((await self.command("answer", params))["sdp"])

    async def delete(self, call_id: str, from_tag: str | None = None, **extra: Any) -> dict[str, Any]:
        return await self.command("delete", {"call-id": call_id, "from-tag": from_tag, **extra})

    async def query(self, call_id: str, **extra: Any) -> dict[str, Any]:
        return await self.command("query", {"call-id": call_id, **extra})

    async def list_calls(self, limit: int = 1000) -> list[str]:
        return [str(c) for c in (await self.command("list", {"limit": limit})).get("calls", [])]

    async def start_recording(self, call_id: str, **extra: Any) -> dict[str, Any]:
        return await self.command("start recording", {"call-id": call_id, **extra})

    async def stop_recording(self, call_id: str, **extra: Any) -> dict[str, Any]:
        return await self.command("stop recording", {"call-id": call_id, **extra})

    async def play_media(self, call_id: str, from_tag: str, file: str, *, repeat_times: int | None = None,
                         **extra: Any) -> dict[str, Any]:
        """Play ``file`` (a path rtpengine can read: WAV, MP3, ...; it transcodes to the call's codec) to the party
        of ``from_tag``: that party hears it (tests/media prove the direction). ``repeat_times`` loops it."""
        return await self.command("play media", {"call-id": call_id, "from-tag": from_tag, "file": file,
                                                 "repeat-times": repeat_times, **extra})

    async def stop_media(self, call_id: str, from_tag: str, **extra: Any) -> dict[str, Any]:
        return await self.command("stop media", {"call-id": call_id, "from-tag": from_tag, **extra})

    async def block_dtmf(self, call_id: str, from_tag: str | None = None, **extra: Any) -> dict[str, Any]:
        return await self.command("block DTMF", {"call-id": call_id, "from-tag": from_tag, **extra})

    async def unblock_dtmf(self, call_id: str, from_tag: str | None = None, **extra: Any) -> dict[str, Any]:
        return await self.command("unblock DTMF", {"call-id": call_id, "from-tag": from_tag, **extra})

    async def statistics(self) -> dict[str, Any]:
        return await self.command("statistics")


def parse_address(value: str, default_port: int = 2223) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``; a bare host takes ``default_port``)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = value.rpartition(":") if ":" in value else (value, "", "")
    if not host:
        raise ValueError(f"no host in {value!r}")
    try:
        number = int(port) if port else default_port
    except ValueError as exc:
        raise ValueError(f"bad port in {value!r}") from exc
    if not 0 < number < 65536:
        raise ValueError(f"bad port in {value!r}")
    return host, number
