"""A cluster of real ``vpbx serve`` processes on loopback sharing one fresh PostgreSQL database, its domains made
with the store's own services, and a loopback CRM receiving every domain's pushes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from vpbx.app import build_runtime
from vpbx.bootstrap import prepare_store
from vpbx.crm import Receiver
from vpbx.services import demo, tenancy
from vpbx.settings import Settings
from vpbx.store import db
from vpbx.testing.plugin import CrmReceiver, LoopbackServer, serve_app
from vpbx.testing.postgres import SKIP_REASON, empty_database
from vpbx.testing.server import free_port

PG_URL = os.environ.get("VPBX_TEST_PG_URL", "")
OPERATOR_KEY = "cluster-test-operator-key"
NUMBER = "74951234567"  # the demo company's main number: sales, by order
SALES = ("admin", "manager", "ivan", "maria")
LEASE = 3.0


@dataclass
class Tenant:
    domain_id: int
    name: str
    key: str
    key_id: int
    legacy_token: str = ""


class Node:
    """One ``vpbx serve`` process of the cluster."""

    def __init__(self, store: str, home: Path, env: dict[str, str], name: str) -> None:
        self.store, self.home, self.env = store, home, env
        self.port = free_port()
        self.log = home / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Node:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vpbx.cli", "serve", "--port", str(self.port), "--db", self.store,
             "--home", str(self.home), "--no-demo", "--allow-private-crm"],
            env=self.env, stdout=out, stderr=out)
        return self

    def wait_ready(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{self.url}/readyz", timeout=2)
                if r.status_code == 200:
                    body: dict[str, Any] = r.json()
                    return body
            except httpx.HTTPError:
                pass
            assert self.proc is not None and self.proc.poll() is None, self.tail()
            time.sleep(0.05)
        raise AssertionError(f"node did not start: {self.tail()}")

    def owned(self) -> list[int]:
        return list(httpx.get(f"{self.url}/readyz", timeout=5).json()["domains"])

    def tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log.exists() else ""

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Cluster:
    store: str
    home: Path
    crm: CrmReceiver
    tenants: list[Tenant]
    nodes: list[Node] = field(default_factory=list)
    served: list[LoopbackServer] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {**os.environ, "VPBX_OPERATOR_KEY": OPERATOR_KEY, "VPBX_CLUSTER_LEASE": str(LEASE),
                "VPBX_NOTIFY_LEASE": "3", "VPBX_NOTIFY_POLL": "0.2", "VPBX_NOTIFY_TIMEOUT": "5",
                "VPBX_DB_POOL": "6", "VPBX_DEMO_PHONES": "0"}

    def start(self, count: int) -> list[Node]:
        nodes = [Node(self.store, self.home, self.env(), f"node{len(self.nodes) + i}").start() for i in range(count)]
        self.nodes.extend(nodes)
        for n in nodes:
            n.wait_ready()
        return nodes

    def balanced(self, nodes: list[Node], timeout: float = 20) -> dict[int, Node]:
        """Wait until the live ``nodes`` own every domain between them, evenly (a spread of at most one); the owner
        of each domain."""
        deadline = time.monotonic() + timeout
        while True:
            owned = {id(n): n.owned() for n in nodes}
            counts = sorted(len(v) for v in owned.values())
            every = sorted(d for v in owned.values() for d in v)
            if every == sorted(t.domain_id for t in self.tenants) and counts[-1] - counts[0] <= 1:
                return {d: n for n in nodes for d in owned[id(n)]}
            assert time.monotonic() < deadline, f"not balanced: {owned}\n" + "\n".join(n.tail() for n in nodes)
            time.sleep(0.1)

    def client(self, node: Node, tenant: Tenant) -> httpx.Client:
        return httpx.Client(base_url=node.url, timeout=30,
                            headers={"X-API-KEY": tenant.key, "X-OPERATOR-KEY": OPERATOR_KEY})

    def execute(self, sql: str, **params: Any) -> None:
        """A write straight to the store, signalled to every node's caches as the services' commits are."""
        async def run() -> None:
            engine = db.create_engine(self.store, pool_size=1)
            try:
                async with engine.begin() as conn:
                    await conn.execute(text(sql), params)
                    await conn.execute(text("SELECT pg_notify('vpbx_changes', '')"))
            finally:
                await engine.dispose()

        asyncio.run(run())

    def query(self, sql: str, **params: Any) -> list[Any]:
        async def run() -> list[Any]:
            engine = db.create_engine(self.store, pool_size=1)
            try:
                async with engine.connect() as conn:
                    return list((await conn.execute(text(sql), params)).all())
            finally:
                await engine.dispose()

        return asyncio.run(run())


def make_tenants(store: str, home: Path, crm_url: str, crm_token: str, count: int) -> list[Tenant]:
    """The demo company ``count`` times on a fresh store, each integration pointing at the loopback CRM."""
    async def work() -> list[Tenant]:
        runtime = build_runtime(Settings(db=store, home=home, demo=False, cluster=False))
        try:
            await prepare_store(runtime)
            out = []
            async with runtime.sessions() as session:
                for i in range(count):
                    created = await tenancy.create_domain(session, f"c{i}-{uuid.uuid4().hex[:8]}.test",
                                                          runtime.clock.now())
                    await demo.populate(session, created.domain, runtime.clock.now())
                    await tenancy.set_integration(session, created.domain, crm_url=crm_url, crm_token=crm_token)
                    out.append(Tenant(created.domain.id, created.domain.name, created.api_key, 0,
                                      created.legacy_token))
                await session.commit()
            for t in out:
                t.key_id = int((await _key_ids(runtime, t.domain_id))[0])
            return out
        finally:
            runtime.reader.dispose()
            await runtime.engine.dispose()

    return asyncio.run(work())


async def _key_ids(runtime: Any, domain_id: int) -> list[int]:
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(text("SELECT id FROM api_keys WHERE domain_id = :d ORDER BY id"), {"d": domain_id})
        return [int(r[0]) for r in rows]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if not PG_URL:
        pytest.skip(SKIP_REASON)
    store = empty_database(PG_URL, "_cluster")
    token = f"crm-{uuid.uuid4().hex[:16]}"
    crm = CrmReceiver(Receiver(token))
    crm.receiver.observe(crm._record)
    served = serve_app(crm.receiver)
    crm.url = served.url + "/crm"
    tenants = make_tenants(store, tmp_path, crm.url, token, 4)
    c = Cluster(store, tmp_path, crm, tenants, served=[served])
    try:
        yield c
    finally:
        for n in c.nodes:
            n.stop()
        for s in c.served:
            s.stop()
