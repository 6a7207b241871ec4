"""Helpers of the mini CRM's tests: serve it on loopback, read its server-sent events and its page."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from html import unescape
from typing import Any, TypeVar

import httpx
from examples.mini_crm.app import Server
from examples.mini_crm.store import Contact, Store
from starlette.applications import Starlette

from vpbx.testing.plugin import VpbxDomain
from vpbx.testing.server import free_port

T = TypeVar("T")


class Served:
    """The mini CRM under uvicorn on a free loopback port, in a thread with its own event loop."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        self.server = Server(app, host="127.0.0.1", port=self.port, log_level="warning", loop="asyncio")
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), name="mini-crm", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the mini CRM did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        assert not self.thread.is_alive(), "the mini CRM did not stop"


@dataclass
class MiniCrm:
    url: str
    store: Store
    http: httpx.Client

    def contact(self, phone: str) -> Contact:
        found = self.store.find_by_phone(phone)
        assert found is not None, phone
        return found


def crm_routing(domain: VpbxDomain, telnum: str, fallback: str) -> None:
    """Turn on a number's 9.1 ``crm`` option ("transfer to the responsible") through the route (9.3), keeping
    the number's route as it is."""
    now = domain.client.get_telnum(telnum)
    route = {"type": now.type, "greeting": now.greeting, "user": now.user, "group": now.group, "crm": fallback}
    assert domain.client.set_telnum_route(telnum, route).crm == fallback


class EventStream:
    """Reads the CRM's ``/events`` (server-sent events) in a thread; ``next_card`` takes the next ``call`` event."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.cards: queue.Queue[dict[str, Any]] = queue.Queue()
        self.connected = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, name="sse-reader", daemon=True)

    def _read(self) -> None:
        event, data = "message", ""
        with httpx.stream("GET", self.url, timeout=10) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():  # the CRM's keep-alive comments wake this loop up
                if self.stopped.is_set():
                    return
                if line.startswith("retry:"):
                    self.connected.set()  # the first line: the CRM has this page subscribed
                elif line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    data += line.removeprefix("data:").strip()
                elif not line and data:
                    if event == "call":
                        self.cards.put(json.loads(data))
                    event, data = "message", ""

    def __enter__(self) -> EventStream:
        self.thread.start()
        assert self.connected.wait(5), "the event stream did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(5)

    def card_for(self, callid: str, type: str, timeout: float = 5) -> dict[str, Any]:
        """The next ``type`` card of the call ``callid`` (cards of other calls come in their own order)."""
        deadline = time.monotonic() + timeout
        while True:
            card = self.next_card(max(deadline - time.monotonic(), 0.01))
            if (card["callid"], card["type"]) == (callid, type):
                return card

    def next_card(self, timeout: float = 5) -> dict[str, Any]:
        try:
            return self.cards.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no card on the event stream in {timeout}s") from None


def eventually(check: Callable[[], T | None], timeout: float = 10, what: str = "the condition") -> T:
    """``check()``'s first truthy result, polling for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.05)


def row_text(html: str, row_id: str) -> str | None:
    """The text of the page's table row ``<tr id=row_id>`` (cells separated by ``|``), or None."""
    match = re.search(rf'<tr id="{re.escape(row_id)}">(.*?)</tr>', html, re.S)
    if match is None:
        return None
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", match[1], re.S)]
    return unescape(" | ".join(cells))


def ringing(call: dict[str, Any]) -> list[str]:
    """Whose phones ring on a call, from the simulator's view of it (a leg's ``party`` is the employee, or
    ``ext:<number>`` with the employee as ``owner``)."""
    return [leg.get("owner") or leg["party"] for leg in call.get("legs") or [] if leg.get("state") == "ringing"]
