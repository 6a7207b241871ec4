"""Live calls survive a crash: a real ``vpbx serve`` under simulated load is killed (SIGKILL) several times; the
next start ends every call that was live. Every call the simulator accepted (201) ends with exactly one history
row and exactly one history push (one notification id: the receiver may see a delivery that was in flight at a
kill twice, with the same id), and every employee who got INCOMING/OUTGOING/ACCEPTED gets the closing event."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from sqlalchemy import text
from tests.notify.conftest import Receiver

from vpbx import engine as call_engine
from vpbx.app import build_runtime
from vpbx.bootstrap import prepare_store
from vpbx.engine import engine_of, recovery
from vpbx.services import demo, tenancy
from vpbx.settings import Settings
from vpbx.store import db
from vpbx.testing.server import ServerThread, create_tenant, free_port

NUMBER = "74951234567"  # the demo company's main number: the sales department, by order
SALES = ("admin", "manager", "ivan", "maria")
CALLERS = ("sergey", "anna")  # support employees who place outgoing calls
KILLS = 3
ROUND_SECONDS = 2.0  # load before each kill (and after the last start)
DRIVERS = 4  # threads placing calls
OPERATOR_KEY = "crash-test-operator-key"
OPENING = ("INCOMING", "OUTGOING", "ACCEPTED")
CLOSING = ("COMPLETED", "CANCELLED", "TRANSFERRED")


def create_domain(store: str, home: Path, crm_url: str) -> str:
    """The demo company on a fresh store, its integration pointing at the receiver; its API key."""
    async def work() -> str:
        runtime = build_runtime(Settings(db=store, home=home, demo=False))
        try:
            await prepare_store(runtime)
            async with runtime.sessions() as session:
                created = await tenancy.create_domain(session, "crash.test", runtime.clock.now())
                await demo.populate(session, created.domain, runtime.clock.now())
                await tenancy.set_integration(session, created.domain, crm_url=crm_url)
                await session.commit()
            return created.api_key
        finally:
            await runtime.engine.dispose()

    return asyncio.run(work())


class Server:
    """``vpbx serve`` as a subprocess, started again on the same store after each kill."""

    def __init__(self, store: str, home: Path, clock: str, env: dict[str, str]) -> None:
        self.store, self.home, self.clock, self.env = store, home, clock, env
        self.port = free_port()
        self.log = home / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.recovered: list[float] = []  # vpbx_engine_calls_recovered_total after each start

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vpbx.cli", "serve", "--port", str(self.port), "--db", self.store,
             "--home", str(self.home), "--no-demo", "--clock", self.clock, "--allow-private-crm"],
            env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    self.recovered.append(recovered(httpx.get(f"{self.url}/metrics", timeout=5).text))
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.05)
        raise AssertionError(f"server did not start: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def recovered(metrics: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(r'^vpbx_engine_calls_recovered_total\{[^}]*\} (\S+)$',
                                                      metrics, re.M))


class Load:
    """Threads placing calls through the simulator (incoming to the main number, outgoing from support) while the
    server is up; on the virtual clock one more moves the clock along. Remembers every call answered 201."""

    def __init__(self, server: Server, key: str) -> None:
        self.server, self.key = server, key
        self.accepted: list[str] = []
        self.up = threading.Event()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._place, args=(n,), daemon=True) for n in range(DRIVERS)]
        if server.clock == "virtual":
            self.threads.append(threading.Thread(target=self._advance, daemon=True))

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=15,
                            headers={"X-API-KEY": self.key, "X-OPERATOR-KEY": OPERATOR_KEY})

    def _place(self, n: int) -> None:
        rng = random.Random(n)
        with self._client() as client:
            while not self.done.is_set():
                if not self.up.wait(0.05):
                    continue
                if rng.random() < 0.2:
                    body = {"from": f"user:{rng.choice(CALLERS)}", "to": f"7916{rng.randrange(10**7):07d}"}
                else:
                    body = {"from": f"7910{rng.randrange(10**7):07d}", "to": NUMBER}
                try:
                    r = client.post("/sim/v1/calls", json=body)
                except httpx.HTTPError:
                    continue  # the server is down: not accepted
                if r.status_code == 201:
                    self.accepted.append(r.json()["callid"])
                time.sleep(0.02)

    def _advance(self) -> None:
        with self._client() as client:
            while not self.done.is_set():
                if not self.up.wait(0.05):
                    continue
                try:
                    client.post("/sim/v1/clock/advance", json={"seconds": 1})
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.done.set()
        for t in self.threads:
            t.join(30)


def prepare(server: Server, key: str) -> None:
    """Phones and outside numbers answer on their own (the simulator keeps them in memory: set at every start)."""
    with httpx.Client(base_url=server.url, headers={"X-API-KEY": key}, timeout=15) as c:
        for login in (*SALES, *CALLERS):
            r = c.put(f"/sim/v1/devices/{login}",
                      json={"registered": True, "auto": {"action": "answer", "after": 1, "talk": 3}})
            assert r.status_code == 200, r.text
        r = c.put("/sim/v1/externals", json={"auto": {"action": "answer", "after": 1, "talk": 3}})
        assert r.status_code == 200, r.text


def drain(server: Server, key: str) -> None:
    """End what is still live after the last round: the client hangs up (the virtual clock runs it out)."""
    with httpx.Client(base_url=server.url, headers={"X-API-KEY": key, "X-OPERATOR-KEY": OPERATOR_KEY},
                      timeout=30) as c:
        if server.clock == "virtual":
            assert c.post("/sim/v1/clock/advance", json={"seconds": 3600}).status_code == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            live = c.get("/sim/v1/calls").json()
            if not live:
                return
            for call in live:
                by = f"ext:{call['to']}" if call["kind"] == "outgoing" else "client"
                c.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": by})
        raise AssertionError(f"calls still live: {c.get('/sim/v1/calls').json()}")


def history_rows(store: str) -> Counter[str]:
    async def read() -> Counter[str]:
        engine = db.create_engine(store)
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(text("SELECT callid FROM call_history"))).all()
                live = (await conn.execute(text("SELECT count(*) FROM live_calls"))).scalar_one()
                assert live == 0, f"{live} calls left in live_calls"
                return Counter(r[0] for r in rows)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def pushes(receiver: Receiver) -> list[dict[str, Any]]:
    out = []
    for hit in list(receiver.hits):
        fields = dict(parse_qsl(hit.body.decode()))
        fields["id"] = hit.headers.get("webhook-id", "")
        out.append(fields)
    return out


def open_cards(received: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(callid, user) pairs that got an opening event and no closing one."""
    opened: set[tuple[str, str]] = set()
    closed: set[tuple[str, str]] = set()
    for p in received:
        if p.get("cmd") == "event":
            pair = (p["callid"], p["user"])
            if p["type"] in OPENING:
                opened.add(pair)
            elif p["type"] in CLOSING:
                closed.add(pair)
    return sorted(opened - closed)


# The real clock by default; VPBX_CRASH_CLOCKS=real,virtual runs the virtual clock too (its recovery is also covered
# in process below). Server starts dominate the runtime.
CLOCKS = [c.strip() for c in os.environ.get("VPBX_CRASH_CLOCKS", "real").split(",") if c.strip()]


@pytest.mark.parametrize("clock", CLOCKS)
def test_sigkill_under_load_ends_every_live_call(store_url: str, tmp_path: Path, receiver: Receiver,
                                                 clock: str) -> None:
    env = {**os.environ, "VPBX_NOTIFY_LEASE": "3", "VPBX_NOTIFY_POLL": "0.2", "VPBX_NOTIFY_TIMEOUT": "5",
           "VPBX_OPERATOR_KEY": OPERATOR_KEY,
           "VPBX_NOTIFY_EVENT_TTL": "1000000"}  # events outlive the virtual hour the drain moves the clock by
    key = create_domain(store_url, tmp_path, receiver.url)

    server = Server(store_url, tmp_path, clock, env)
    load = Load(server, key)
    load.start()
    try:
        for _ in range(KILLS):
            server.start()
            prepare(server, key)
            load.up.set()
            time.sleep(ROUND_SECONDS)  # load runs: calls ring, talk and end while others start
            server.kill()
            load.up.clear()
        server.start()
        prepare(server, key)
        load.up.set()
        time.sleep(ROUND_SECONDS)
        load.up.clear()
        load.stop()
        drain(server, key)

        accepted = set(load.accepted)
        assert len(accepted) == len(load.accepted)
        assert sum(server.recovered) > 0, "no call was live at a kill: the test proves nothing"
        rows = history_rows(store_url)  # every call is over: none is left in live_calls
        assert {c for c in accepted if rows[c] != 1} == set(), "history rows per accepted call"
        assert [c for c, n in rows.items() if n > 1] == [], "a call with two history rows"

        def history_ids() -> dict[str, set[str]]:
            ids: dict[str, set[str]] = defaultdict(set)
            for p in pushes(receiver):
                if p.get("cmd") == "history":
                    ids[p["callid"]].add(p["id"])
            return ids

        def delivered() -> bool:  # every call with a history row (accepted or not) is pushed, every card closed
            return set(rows) <= set(history_ids()) and not open_cards(pushes(receiver))

        assert receiver.wait_for(delivered, timeout=90), (len(set(rows) - set(history_ids())),
                                                          open_cards(pushes(receiver))[:10])
        ids = history_ids()
        assert [c for c, s in ids.items() if len(s) != 1] == [], "a call pushed twice"
        assert set(ids) == set(rows)
        print(f"\n{clock}: {len(accepted)} calls accepted, {KILLS} kills, {int(sum(server.recovered))} calls "
              f"ended by recovery, {sum(rows.values())} history rows, "
              f"{sum(len(s) for s in ids.values())} history pushes")
    finally:
        load.stop()
        server.stop()


# --- what recovery makes of each kind of live call (in process: a stop with calls live leaves them too) -------


def outbox_and_history(store: str) -> tuple[list[tuple[str, dict[str, str]]], dict[str, tuple[Any, ...]],
                                            dict[str, tuple[Any, ...]], int]:
    async def read() -> Any:
        engine = db.create_engine(store)
        try:
            async with engine.connect() as conn:
                outbox = [(r[0], dict(parse_qsl(r[1]))) for r in (await conn.execute(text(
                    "SELECT command, body FROM notify_outbox ORDER BY id"))).all()]
                history = {r[0]: tuple(r[1:]) for r in (await conn.execute(text(
                    "SELECT callid, type, status, wait, duration, missed_status FROM call_history"))).all()}
                inner = {r[0]: tuple(r[1:]) for r in (await conn.execute(text(
                    "SELECT callid, status FROM inner_call_history"))).all()}
                live = (await conn.execute(text("SELECT count(*) FROM live_calls"))).scalar_one()
                return outbox, history, inner, live
        finally:
            await engine.dispose()

    result: tuple[list[tuple[str, dict[str, str]]], dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]], int] = \
        asyncio.run(read())
    return result


def leave_calls_live(store: str, home: Path) -> dict[str, str]:
    """A server on the virtual clock with one call of each kind live, stopped 30 s after the answers."""
    server = ServerThread(Settings(db=store, home=home, demo=False, port=0, clock="virtual",
                                   allow_private_crm=True)).start()
    try:
        tenant = create_tenant(server)

        async def crm() -> None:
            async with server.runtime.sessions() as s:
                domain = await tenancy.get_domain(s, tenant.name)
                await tenancy.set_integration(s, domain, crm_url="http://127.0.0.1:9/crm", crm_token="tok")
                await s.commit()

        server.call(crm())
        c = tenant.client
        for login in ("admin", "manager", "ivan", "maria", "sergey", "anna", "user1", "elena", "director"):
            assert c.put(f"/sim/v1/devices/{login}", json={"registered": True}).status_code == 200
        assert c.put("/sim/v1/externals", json={"auto": {"action": "ignore"}}).status_code == 200
        assert c.put("/sim/v1/externals/79160000002",
                     json={"auto": {"action": "answer", "after": 1, "talk": None}}).status_code == 200
        calls = {
            "talking": c.post("/sim/v1/calls", json={"from": "79100000002", "to": NUMBER}).json()["callid"],
            "ringing": c.post("/sim/v1/calls", json={"from": "79100000001", "to": NUMBER}).json()["callid"],
            "dialled": c.post("/sim/v1/calls", json={"from": "user:sergey", "to": "79160000001"}).json()["callid"],
            "out_talking": c.post("/sim/v1/calls",
                                  json={"from": "user:user1", "to": "79160000002"}).json()["callid"],
            "makecall": c.post("/crmapi/v1/makecall", json={"user": "anna", "phone": "79160000003"}).json()["callid"],
            "internal": c.post("/sim/v1/calls", json={"from": "user:elena", "to": "user:director"}).json()["callid"],
        }
        r = c.post(f"/sim/v1/calls/{calls['talking']}/answer", json={"user": "admin"})
        assert r.status_code == 200 and r.json()["state"] == "talking", r.text
        assert c.post("/sim/v1/clock/advance", json={"seconds": 30}).status_code == 200
        live = {call["callid"]: call for call in c.get("/sim/v1/calls").json()}
        assert set(calls.values()) <= set(live), "every call is still live when the server stops"
        assert live[calls["out_talking"]]["state"] == "talking"
        return calls
    finally:
        server.stop()


def test_recovery_ends_each_kind_of_call_with_its_status(store_url: str, tmp_path: Path) -> None:
    calls = leave_calls_live(store_url, tmp_path)
    before, _, _, live = outbox_and_history(store_url)
    assert live == len(calls)
    server = ServerThread(Settings(db=store_url, home=tmp_path, demo=False, port=0, clock="virtual")).start()
    server.stop()
    outbox, history, inner, live = outbox_and_history(store_url)
    assert live == 0
    assert history[calls["talking"]][:2] == ("in", "Success") and history[calls["talking"]][3] == 30
    assert history[calls["ringing"]][1] == "Missed" and history[calls["ringing"]][4] == 3
    assert history[calls["dialled"]][:2] == ("out", "Missed")
    assert history[calls["out_talking"]][:2] == ("out", "Success") and history[calls["out_talking"]][3] == 29
    assert history[calls["makecall"]][:2] == ("out", "Cancel")
    assert inner == {calls["internal"]: ("noanswer",)}
    added = outbox[len(before):]
    pushed = Counter(body["callid"] for command, body in added if command == "history")
    assert pushed == Counter({calls[k]: 1 for k in ("talking", "ringing", "dialled", "out_talking", "makecall")})
    events = [{"cmd": "event", **body} for command, body in outbox if command == "event"]
    assert open_cards(events) == []
    closing = {(body["callid"], body["type"]) for command, body in added if command == "event"}
    assert (calls["talking"], "COMPLETED") in closing and (calls["ringing"], "CANCELLED") in closing
    assert (calls["dialled"], "CANCELLED") in closing and (calls["out_talking"], "COMPLETED") in closing


def test_racing_recoveries_end_each_call_once(store_url: str, tmp_path: Path) -> None:
    """Two nodes recovering the same domain at once (one of them failing its first tries): every call ends once."""
    calls = leave_calls_live(store_url, tmp_path)
    before, _, _, _ = outbox_and_history(store_url)

    async def race() -> list[int]:
        runtimes = [build_runtime(Settings(db=store_url, home=tmp_path, demo=False, clock="virtual"))
                    for _ in range(2)]
        await prepare_store(runtimes[0])
        engines = [engine_of(rt) for rt in runtimes]
        flaky = (engines[1]._write_engine or runtimes[1].engine).sync_engine
        left = [2]

        def fail_twice(*_args: Any) -> None:
            if left[0] > 0:
                left[0] -= 1
                raise ConnectionError("the store is down (injected)")

        from sqlalchemy import event

        event.listen(flaky, "before_cursor_execute", fail_twice)
        try:
            return list(await asyncio.gather(*(recovery.recover_all(rt) for rt in runtimes)))
        finally:
            for rt in runtimes:
                await call_engine.stop(rt)
                await rt.engine.dispose()

    ended = asyncio.run(race())
    assert sum(ended) == len(calls)
    outbox, history, inner, live = outbox_and_history(store_url)
    assert live == 0
    assert len(history) + len(inner) == len(calls)
    pushed = Counter(body["callid"] for command, body in outbox[len(before):] if command == "history")
    assert set(pushed.values()) == {1} and len(pushed) == len(calls) - 1  # the internal call pushes nothing
