"""Keypad presses heard by rtpengine (RFC 4733 telephone-events in the RTP it forwards).

rtpengine started with ``--dtmf-log-dest=HOST:PORT`` sends one JSON datagram per finished key press::

    {"callid": "...", "source_tag": "<the pressing party's tag>", "tags": [...], "type": "DTMF",
     "timestamp": 1796445194, "source_ip": "127.0.0.1", "event": 2, "duration": 120, "volume": 10}

:class:`DtmfListener` receives them on loopback and calls ``on_digit(callid, source_tag, digit)`` with the digit
as the simulator's ``dtmf`` takes it (``0``–``9``, ``*``, ``#``, ``A``–``D``), so the engine's menus, ratings and
call-back offers run the same code for a phone as for the simulator. SIP INFO presses come from the SIP port.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("vpbx.media")

DIGITS = "0123456789*#ABCD"
OnDigit = Callable[[str, str, str], Awaitable[None] | None]


def digit_of(event: object) -> str | None:
    return DIGITS[event] if isinstance(event, int) and 0 <= event < len(DIGITS) else None


class DtmfListener(asyncio.DatagramProtocol):
    def __init__(self, on_digit: OnDigit) -> None:
        self.on_digit = on_digit
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, on_digit: OnDigit, host: str = "127.0.0.1", port: int = 0) -> DtmfListener:
        listener = cls(on_digit)
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: listener, local_addr=(host, port))
        return listener

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            log.warning("unreadable DTMF report from rtpengine", extra={"source": str(addr)})
            return
        if not isinstance(event, dict) or event.get("type", "DTMF") != "DTMF":
            return
        digit = digit_of(event.get("event"))
        callid, tag = event.get("callid"), event.get("source_tag")
        if digit is None or not isinstance(callid, str) or not isinstance(tag, str):
            return
        log.debug("DTMF", extra={"callid": callid, "tag": tag})  # never the digit: it may be a PIN
        result = self.on_digit(callid, tag, digit)
        if asyncio.iscoroutine(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("DTMF handler failed", exc_info=task.exception())

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
