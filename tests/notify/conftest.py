"""Fixtures for the notifier: a real aiohttp CRM receiver on loopback (in its own thread) and a
runtime with a running dispatcher on a fresh store (SQLite, and PostgreSQL when VPBX_TEST_PG_URL is set)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from vpbx.app import build_runtime
from vpbx.notify.dispatcher import Dispatcher
from vpbx.runtime import Runtime
from vpbx.settings import Settings
from vpbx.store import db
from vpbx.testing.postgres import SKIP_REASON, empty_database

PG_URL = os.environ.get("VPBX_TEST_PG_URL", "")


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0


class Receiver:
    """A CRM on 127.0.0.1: records every request; ``reply(hit) -> Reply`` decides each answer."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.reply: Callable[[Hit], Reply] = lambda hit: Reply()
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="crm-receiver")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/crm"

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        hit = Hit(request.path, dict(request.headers), await request.read(), time.monotonic())
        self.hits.append(hit)
        answer = self.reply(hit)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)

    def start(self, port: int = 0) -> Receiver:
        self.port = port
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def down() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(down(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'vpbx.db'}"
    if not PG_URL:
        pytest.skip(SKIP_REASON)
    return empty_database(PG_URL, "_own")


class Half:
    """A random source without jitter: every retry waits exactly its scheduled delay."""

    def random(self) -> float:
        return 0.5


@dataclass
class Harness:
    runtime: Runtime
    dispatcher: Dispatcher

    @property
    def clock(self) -> Any:
        return self.runtime.clock

    async def domain(self, crm_url: str, *, dialect: str = "form", token: str | None = None,
                     signing_secret: str | None = None, lookup_timeout: float | None = None) -> int:
        from vpbx.services import tenancy

        async with self.runtime.sessions() as s:
            created = await tenancy.create_domain(s, f"n{uuid.uuid4().hex[:10]}.test", self.runtime.clock.now())
            await tenancy.set_integration(s, created.domain, crm_url=crm_url,
                                          crm_token=token or "tok-" + uuid.uuid4().hex[:8], dialect=dialect,
                                          signing_secret=signing_secret, lookup_timeout=lookup_timeout)
            await s.commit()
            return created.domain.id

    async def enqueue(self, domain_id: int, *notices: Any, **kw: Any) -> list[str | None]:
        from vpbx.notify import service

        async with self.runtime.sessions() as s:
            ids = [await service.enqueue(s, domain_id, n, **kw) for n in notices]
            await s.commit()
        return ids

    async def advance(self, seconds: float, step: float | None = None) -> None:
        """Move the virtual clock, in steps, letting every delivery made due settle."""
        step = step or seconds
        left = seconds
        while left > 0:
            await self.runtime.clock.advance(min(step, left))
            left -= step
            await self.dispatcher.settle()

    async def rows(self, domain_id: int) -> list[Any]:
        from sqlalchemy import select

        from vpbx.store.tables import OutboxRow

        async with self.runtime.sessions() as s:
            return list((await s.scalars(select(OutboxRow).where(OutboxRow.domain_id == domain_id)
                                         .order_by(OutboxRow.id))).all())


async def make_harness(url: str, tmp: Path, **settings: Any) -> Harness:
    # The CRMs here are loopback receivers: the SSRF guard is opted out of, as in development.
    base: dict[str, Any] = {"db": url, "home": tmp, "demo": False, "clock": "virtual", "notify_poll": 0.05,
                            "allow_private_crm": True}
    base.update(settings)
    runtime = build_runtime(Settings(**base))
    await db.upgrade(runtime.engine)
    d = Dispatcher(runtime, rng=Half())
    await d.start()
    runtime.extras["notifier"] = d
    return Harness(runtime, d)


@pytest.fixture
async def harness(store_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    h = await make_harness(store_url, tmp_path)
    yield h
    await h.dispatcher.stop()
    h.runtime.reader.dispose()
    await h.runtime.engine.dispose()
