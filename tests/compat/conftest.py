"""Compatibility fixtures: one real server per backend on the VIRTUAL clock, a fresh demo tenant per test, and a
loopback receiver that keeps the PBX's requests byte for byte, so strict client parsers (``clients.py``) read
exactly what a CRM would.

PostgreSQL runs in a database of its own (``<VPBX_TEST_PG_URL's db>_compat``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from tests.compat.clients import CLIENTS, SETUP, Captured
from tests.store.test_store import engine  # noqa: F401  (a fresh SQLite or PostgreSQL store: the migration tests)

from vpbx.services import tenancy
from vpbx.settings import Settings
from vpbx.testing.postgres import empty_database
from vpbx.testing.server import ServerThread, Tenant, create_tenant, free_port

PG_URL = os.environ.get("VPBX_TEST_PG_URL", "")
SALES_NUMBER = "74951234567"  # the demo company's main number: department sales, no greeting
ADMIN_NUMBER = "74957654321"  # routes to admin, with a greeting
IVR_NUMBER = "78121234567"  # the demo menu: 1 sales, 2 support, 0 admin, with a greeting
CLIENT = "79101234567"
PEOPLE = ("admin", "manager", "ivan", "maria", "sergey", "anna", "user1", "elena", "director")


@pytest.fixture(scope="session")
def cserver(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp(f"compat-{backend}")
    if backend == "sqlite":
        db = f"sqlite+aiosqlite:///{tmp / 'vpbx.db'}"
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL tests need VPBX_TEST_PG_URL (set by .ci/run)")
        db = empty_database(PG_URL, "_compat")
    srv = ServerThread(Settings(db=db, home=tmp, demo=False, port=0, clock="virtual")).start()
    yield srv
    srv.stop()


class Receiver:
    """The CRM's one URL: every request kept as sent; ``contact`` answered with a name."""

    def __init__(self) -> None:
        self.got: list[Captured] = []
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/crm"

    async def _handle(self, request: web.Request) -> web.Response:
        req = Captured(request.headers.get("Content-Type", ""), await request.read())
        self.got.append(req)
        if b"contact" in req.body and req.cmd == "contact":
            return web.json_response({"contact_name": "ООО Ромашка"})
        return web.json_response({})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/crm", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class Env:
    """A tenant whose CRM is the receiver, configured as one of ``clients.CLIENTS``."""

    def __init__(self, server: ServerThread, tenant: Tenant, crm: Receiver) -> None:
        self.server, self.t, self.crm = server, tenant, crm
        self.client_name = "form"

    @property
    def http(self) -> httpx.Client:
        return self.t.client

    def configure(self, client_name: str) -> None:
        dialect, edition = SETUP[client_name]
        self.client_name = client_name

        async def work() -> None:
            async with self.server.runtime.sessions() as s:
                domain = await tenancy.get_domain(s, self.t.name)
                edition_kw = {"legacy_edition": edition} if dialect == "legacy" else {}
                await tenancy.set_integration(s, domain, crm_url=self.crm.url, crm_token="tok", dialect=dialect,
                                              **edition_kw)
                await s.commit()

        self.server.call(work())

    # --- the simulator -------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        r = self.http.post("/sim/v1/clock/advance", json={"seconds": seconds})
        assert r.status_code == 200, r.text

    def dial(self, frm: str = CLIENT, to: str = SALES_NUMBER) -> str:
        r = self.http.post("/sim/v1/calls", json={"from": frm, "to": to})
        assert r.status_code == 201, r.text
        return str(r.json()["callid"])

    def act(self, callid: str, action: str, **body: Any) -> dict[str, Any]:
        r = self.http.post(f"/sim/v1/calls/{callid}/{action}", json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def call(self, callid: str) -> dict[str, Any]:
        return dict(self.http.get(f"/sim/v1/calls/{callid}").json())

    # --- what the CRM got, through the strict client --------------------------------------------

    def requests(self, cmd: str, callid: str | None = None) -> list[dict[str, Any]]:
        parser = CLIENTS[self.client_name]
        out = []
        for req in list(self.crm.got):
            if req.cmd != cmd:
                continue
            parsed = parser.parse(req)
            if callid is None or parsed.get("callid") == callid:
                out.append(parsed)
        return out

    def wait_for(self, cmd: str, callid: str | None = None, count: int = 1,
                 timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.requests(cmd, callid)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {cmd} for {callid}: {[r.body for r in self.crm.got]}")

    def history_push(self, callid: str) -> dict[str, Any]:
        (found,) = self.wait_for("history", callid)
        return found

    # --- the exports ------------------------------------------------------------------------------

    def history_json(self, callid: str) -> dict[str, Any]:
        rows = [r for r in self.http.get("/crmapi/v1/history/json", params={
            "period": "this_month", "processMissed": "true"}).json() if r["uid"] == callid]
        assert len(rows) == 1, rows
        return dict(rows[0])

    def history_csv(self, callid: str) -> list[str]:
        r = self.http.get("/crmapi/v1/history/csv", params={"period": "this_month"})
        assert r.status_code == 200, r.text
        rows = [line.split(",") for line in r.text.split("\r\n") if line.startswith(callid + ",")]
        assert len(rows) == 1, r.text
        return rows[0]

    def legacy_csv(self, callid: str) -> list[str]:
        r = self.http.post("/sys/crm_api.wcgp", data={"cmd": "history", "period": "this_month",
                                                      "token": self.t.legacy_token})
        assert r.status_code == 200, r.text
        rows = [line.split(",") for line in r.text.split("\r\n") if line.startswith(callid + ",")]
        assert len(rows) == 1, r.text
        return rows[0]


@pytest.fixture
def env(cserver: ServerThread) -> Iterator[Env]:
    tenant = create_tenant(cserver)
    crm = Receiver()
    cserver.call(crm.start())
    e = Env(cserver, tenant, crm)
    e.configure("form")
    for login in PEOPLE:
        assert tenant.client.put(f"/sim/v1/devices/{login}", json={"registered": True}).status_code == 200
    yield e
    cserver.call(crm.stop())
    tenant.client.close()


@pytest.fixture
def configure(env: Env) -> Callable[[str], Env]:
    def apply(client_name: str) -> Env:
        env.configure(client_name)
        return env

    return apply
