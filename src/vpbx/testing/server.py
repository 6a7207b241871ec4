"""A real vpbx server on a loopback port, in a background thread with its own event loop."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import uvicorn

from vpbx.app import build_runtime, create_app
from vpbx.runtime import Runtime
from vpbx.settings import Settings

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# A test server's defaults where its settings leave them unset: its CRMs are loopback receivers (the SSRF
# guard would refuse them), and one test session's deliberate wrong keys all come from 127.0.0.1 (the
# failed-login limit would lock the suite out). Tests of those guards set them explicitly.
# In-process servers are one node each: no cluster (tests/cluster runs real `vpbx serve` nodes instead).
TEST_DEFAULTS = {"allow_private_crm": True, "auth_fail_limit": 1_000_000, "cluster": False}


class ServerThread:
    def __init__(self, settings: Settings) -> None:
        unset = {k: v for k, v in TEST_DEFAULTS.items() if k not in settings.model_fields_set}
        self.settings = settings.model_copy(update={"port": settings.port or free_port(), **unset})
        self.runtime: Runtime = build_runtime(self.settings)
        self.app = create_app(self.settings, runtime=self.runtime)
        self.loop = asyncio.new_event_loop()
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=self._run, name="vpbx-test-server", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    @property
    def operator_key(self) -> str:
        """The server operator's key (``X-OPERATOR-KEY``): moves the shared virtual clock."""
        from vpbx.secrets_store import operator_key

        return operator_key(self.settings)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.settings.port, log_level="warning",
                                loop="asyncio", lifespan="on")
        self._server = uvicorn.Server(config)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # pragma: no cover - surfaced by start()
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        assert self._server is not None
        task = asyncio.ensure_future(self._server.serve())
        while not self._server.started and not task.done():  # noqa: ASYNC110 - uvicorn exposes a flag only
            await asyncio.sleep(0.01)
        self._started.set()
        await task

    def start(self) -> ServerThread:
        self._thread.start()
        self._started.wait(30)
        if self._error is not None or self._server is None or not self._server.started:
            raise RuntimeError(f"vpbx test server did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(15)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the server's loop (its store, clock and engine live there)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@dataclass
class Tenant:
    name: str
    api_key: str
    legacy_token: str
    client: httpx.Client
    extra: dict[str, Any] = field(default_factory=dict)


def create_tenant(server: ServerThread, *, demo_data: bool = True, timezone: str = "Europe/Moscow",
                  name: str | None = None) -> Tenant:
    from vpbx.services import demo, tenancy

    domain_name = name or f"t{uuid.uuid4().hex[:12]}.test"

    async def work() -> tenancy.CreatedDomain:
        async with server.runtime.sessions() as session:
            created = await tenancy.create_domain(session, domain_name, server.runtime.clock.now(),
                                                  timezone=timezone)
            if demo_data:
                await demo.populate(session, created.domain, server.runtime.clock.now())
            await session.commit()
            return created

    created = server.call(work())
    # The fixtures play the operator too (they move the shared virtual clock); a tenant's own key alone
    # cannot (tests/reliability/test_clock_tenancy.py).
    client = httpx.Client(base_url=server.url, headers={"X-API-KEY": created.api_key,
                                                        "X-OPERATOR-KEY": server.operator_key}, timeout=30)
    return Tenant(domain_name, created.api_key, created.legacy_token, client)


def retire_tenant(server: ServerThread, tenant: Tenant) -> None:
    """A test's tenant when the test ends: its integration off, so the server stops delivering to (and probing)
    a CRM receiver that is gone with the test; then its client closed."""
    from vpbx.services import tenancy
    from vpbx.services.errors import NotFound

    async def work() -> None:
        async with server.runtime.sessions() as session:
            try:
                domain = await tenancy.get_domain(session, tenant.name)
            except NotFound:  # the test deleted it
                return
            await tenancy.set_integration(session, domain, enabled=False)
            await session.commit()

    try:
        server.call(work())
    finally:
        tenant.client.close()
