"""The engine never discards a write: a failing store delays the engine's writes (retried with back-off, counted
in /metrics) while calls go on; and bursts of click-to-calls and simulator calls neither stall the server nor
lose a call (the engine's writes have a connection pool of their own)."""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from sqlalchemy import event, func, select
from tests.notify.conftest import Receiver

from vpbx.engine import engine_of
from vpbx.services import tenancy
from vpbx.settings import Settings
from vpbx.store.tables import CallRecord
from vpbx.testing.server import ServerThread, Tenant, create_tenant

NUMBER = "74951234567"  # the demo company's main number: the sales department
SALES = ("admin", "manager", "ivan", "maria")
BURST = 64


def start_server(store_url: str, home: Path, clock: str) -> ServerThread:
    return ServerThread(Settings(db=store_url, home=home, demo=False, port=0, clock=clock,
                                 allow_private_crm=True)).start()


@pytest.fixture
def real_server(store_url: str, tmp_path: Path) -> Iterator[ServerThread]:
    server = start_server(store_url, tmp_path, "real")
    yield server
    server.stop()


@pytest.fixture
def virtual_server(store_url: str, tmp_path: Path) -> Iterator[ServerThread]:
    server = start_server(store_url, tmp_path, "virtual")
    yield server
    server.stop()


def connect_crm(server: ServerThread, tenant: Tenant, url: str) -> None:
    async def work() -> None:
        async with server.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, tenant.name)
            await tenancy.set_integration(s, domain, crm_url=url, crm_token="tok")
            await s.commit()

    server.call(work())


def history_counts(server: ServerThread, callids: set[str]) -> dict[str, int]:
    async def work() -> dict[str, int]:
        async with server.runtime.sessions() as s:
            rows = await s.execute(select(CallRecord.callid, func.count()).where(
                CallRecord.callid.in_(sorted(callids))).group_by(CallRecord.callid))
            return {c: n for c, n in rows.all()}

    return server.call(work())


def failures(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    found = re.search(r"^vpbx_engine_write_failures_total (\S+)$", text, re.M)
    assert found, "the counter is exported"
    return float(found.group(1))


def test_failed_writes_are_retried_while_calls_go_on(real_server: ServerThread, receiver: Receiver) -> None:
    tenant = create_tenant(real_server)
    connect_crm(real_server, tenant, receiver.url)
    client = tenant.client
    for login in SALES:
        r = client.put(f"/sim/v1/devices/{login}",
                       json={"registered": True, "auto": {"action": "answer", "after": 0.2}})
        assert r.status_code == 200, r.text
    before = failures(client)

    failing = threading.Event()
    write_engine = engine_of(real_server.runtime)._write_engine
    target = (write_engine or real_server.runtime.engine).sync_engine

    def store_down(*_args: Any) -> None:
        if failing.is_set():
            raise ConnectionError("the store is down (injected)")

    event.listen(target, "before_cursor_execute", store_down)
    try:
        failing.set()
        placed: dict[str, Any] = {}

        def place() -> None:
            placed["r"] = client.post("/sim/v1/calls", json={"from": "79101234567", "to": NUMBER})

        caller = threading.Thread(target=place)
        caller.start()

        def answered_meanwhile() -> bool:
            calls = client.get("/sim/v1/calls").json()
            return any(c["state"] == "talking" for c in calls) and failures(client) >= before + 2

        assert receiver.wait_for(answered_meanwhile, timeout=30), "the call went on while its writes failed"
        assert "r" not in placed, "the simulator answers once the call is written"
        failing.clear()
        caller.join(30)
        assert placed["r"].status_code == 201, placed["r"].text
        callid = placed["r"].json()["callid"]
        assert placed["r"].json()["state"] == "talking"
        r = client.post(f"/sim/v1/calls/{callid}/hangup", json={"by": "client"})
        assert r.status_code == 200, r.text
    finally:
        failing.clear()
        event.remove(target, "before_cursor_execute", store_down)

    def pushed() -> list[dict[str, str]]:
        return [dict(parse_qsl(h.body.decode())) | {"id": h.headers.get("webhook-id", "")} for h in receiver.hits]

    assert receiver.wait_for(lambda: any(p.get("cmd") == "history" for p in pushed()), timeout=30)
    assert history_counts(real_server, {callid}) == {callid: 1}
    mine = [p for p in pushed() if p.get("callid") == callid]
    assert len({p["id"] for p in mine if p["cmd"] == "history"}) == 1
    events = [(p["type"], p["user"]) for p in mine if p["cmd"] == "event"]
    answerer = next(user for kind, user in events if kind == "ACCEPTED")
    assert ("INCOMING", answerer) in events and ("COMPLETED", answerer) in events, events
    assert failures(client) >= before + 2


def test_a_burst_of_makecalls_neither_stalls_nor_loses_a_call(virtual_server: ServerThread) -> None:
    """64 click-to-calls (and 16 simulator calls) at once: every request answered well within the pool's 30 s
    timeout, and every call (nobody picks up: ``Cancel`` after the ring) leaves exactly one history row."""
    tenant = create_tenant(virtual_server)
    for login in SALES:
        assert tenant.client.put(f"/sim/v1/devices/{login}", json={"registered": True}).status_code == 200
    start = threading.Barrier(BURST + 16)
    headers = {"X-API-KEY": tenant.api_key}

    def makecall(n: int) -> tuple[int, float, dict[str, Any]]:
        with httpx.Client(base_url=virtual_server.url, headers=headers, timeout=60) as c:
            start.wait(30)
            t0 = time.monotonic()
            r = c.post("/crmapi/v1/makecall", json={"user": SALES[n % len(SALES)], "phone": f"7916{n:07d}"})
            return r.status_code, time.monotonic() - t0, r.json()

    def simcall(n: int) -> tuple[int, float, dict[str, Any]]:
        with httpx.Client(base_url=virtual_server.url, headers=headers, timeout=60) as c:
            start.wait(30)
            t0 = time.monotonic()
            r = c.post("/sim/v1/calls", json={"from": f"7910{n:07d}", "to": NUMBER})
            return r.status_code, time.monotonic() - t0, r.json()

    with ThreadPoolExecutor(BURST + 16) as pool:
        futures = [pool.submit(makecall, n) for n in range(BURST)] + [pool.submit(simcall, n) for n in range(16)]
        results = [f.result() for f in futures]
    statuses: defaultdict[int, int] = defaultdict(int)
    for status, _, _ in results:
        statuses[status] += 1
    assert statuses == {200: BURST, 201: 16}, [(s, b) for s, _, b in results if s not in (200, 201)][:3]
    slowest = max(took for _, took, _ in results)
    assert slowest < 15, f"a request took {slowest:.1f} s"
    callids = {body["callid"] for _, _, body in results}
    assert len(callids) == BURST + 16

    async def ring_out() -> None:  # nobody answers: the click-to-calls end as Cancel, the others as Missed
        await virtual_server.runtime.clock.advance(3600)  # type: ignore[union-attr]
        await engine_of(virtual_server.runtime).flush()

    virtual_server.call(ring_out())
    assert history_counts(virtual_server, callids) == dict.fromkeys(callids, 1)
