"""The receiver's de-duplication stores: one contract (memory, SQLite file, Redis), a receiver restarted on the
same SQLite file, and several worker processes sharing it, each notification handled exactly once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vpbx.crm import Claim, DedupeStore, EventNotice, EventType, MemoryDedupe, Receiver, RedisDedupe, SqliteDedupe
from vpbx.notify.payloads import build_body

TOKEN = "dedupe-token"
EVENT = EventNotice(type=EventType.INCOMING, callid="c1", phone="79101234567", user="ivan", direction="in")
REDIS_URL = "redis://127.0.0.1:6379/15"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def redis_store(**kwargs: Any) -> RedisDedupe:
    return RedisDedupe(REDIS_URL, prefix=f"vpbx-test:{uuid.uuid4().hex}:", **kwargs)


def redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.exceptions.ConnectionError:
        return False


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., DedupeStore]]:
    """A factory of fresh stores of one kind (keyword arguments: ``lease``)."""
    made: list[Any] = []

    def make(**kwargs: Any) -> DedupeStore:
        if request.param == "memory":
            store: Any = MemoryDedupe(**kwargs)
        elif request.param == "sqlite":
            store = SqliteDedupe(tmp_path / f"seen-{len(made)}.db", **kwargs)
        else:
            if not redis_up():
                pytest.skip("no Redis on 127.0.0.1:6379")
            store = redis_store(**kwargs)
        made.append(store)
        return store

    yield make
    for store in made:
        if isinstance(store, SqliteDedupe):
            store.close()


def deliver(receiver: Receiver, nid: str) -> Any:
    body, ctype = build_body(EVENT, crm_token=TOKEN, dialect="form", notification_id=nid)
    return receiver.handle(body, {"Content-Type": ctype, "webhook-id": nid})


def test_the_contract(make_store: Callable[..., DedupeStore]) -> None:
    async def main() -> None:
        store = make_store()
        assert isinstance(store, DedupeStore)
        assert await store.claim("a") is Claim.NEW
        assert await store.claim("a") is Claim.BUSY  # being handled
        await store.finish("a", False)  # the handler failed: the retry handles it
        assert await store.claim("a") is Claim.NEW
        await store.finish("a", True)
        assert await store.claim("a") is Claim.DONE
        assert await store.claim("b") is Claim.NEW  # ids are independent

    asyncio.run(main())


def test_a_claim_whose_worker_died_lapses(make_store: Callable[..., DedupeStore], request: pytest.FixtureRequest
                                          ) -> None:
    async def main() -> None:
        if "redis" in request.node.name:
            store = make_store(lease=2)  # Redis expires the claim on its own clock: a real (short) lease
            assert await store.claim("a") is Claim.NEW
            assert await store.claim("a") is Claim.BUSY
            deadline = time.monotonic() + 30
            while (claim := await store.claim("a")) is Claim.BUSY and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            assert claim is Claim.NEW
            return
        clock = Clock()
        store = make_store(lease=60, clock=clock)
        assert await store.claim("a") is Claim.NEW
        clock.now += 59
        assert await store.claim("a") is Claim.BUSY
        clock.now += 2
        assert await store.claim("a") is Claim.NEW

    asyncio.run(main())


def test_sqlite_forgets_after_the_ttl(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteDedupe(tmp_path / "seen.db", ttl=100, clock=clock)

    async def main() -> None:
        await store.claim("a")
        await store.finish("a", True)
        clock.now += 99
        assert await store.claim("a") is Claim.DONE
        clock.now += 2
        assert await store.claim("a") is Claim.NEW

    asyncio.run(main())
    store.close()


class _LockedOnce:
    """A connection whose first switch to WAL is answered as SQLite answers a worker whose sibling switches the new
    file at the same moment ("database is locked", at once)."""

    def __init__(self, db: sqlite3.Connection, error: str) -> None:
        self.db, self.error = db, error

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "PRAGMA journal_mode=WAL" and self.error:
            error, self.error = self.error, ""
            raise sqlite3.OperationalError(error)
        return self.db.execute(sql, *args)

    def close(self) -> None:
        self.db.close()


def test_the_switch_to_wal_is_tried_again_when_a_sibling_process_holds_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **kw: _LockedOnce(connect(*a, **kw), "database is locked"))
    store = SqliteDedupe(tmp_path / "seen.db")
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    async def main() -> None:
        assert await store.claim("a") is Claim.NEW

    asyncio.run(main())
    store.close()
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **kw: _LockedOnce(connect(*a, **kw), "disk I/O error"))
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        SqliteDedupe(tmp_path / "other.db")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=12))
def test_the_receiver_runs_a_handler_until_it_succeeds_then_never_again(
        make_store: Callable[..., DedupeStore], deliveries: list[tuple[str, bool]]) -> None:
    """Any sequence of deliveries (an id, and whether the handler fails this time): the handler runs for a
    delivery exactly when that id never succeeded before; a failure answers 500, the rest 200."""
    receiver = Receiver(TOKEN, dedupe=make_store())
    fail_next: list[bool] = []
    ran: list[int] = []

    @receiver.on_event
    def handler(event: EventNotice) -> None:
        ran.append(1)
        if fail_next[-1]:
            raise RuntimeError("the CRM's database is down")

    async def main() -> None:
        succeeded: set[str] = set()
        for nid, fails in deliveries:
            fail_next.append(fails)
            before = len(ran)
            answer = await deliver(receiver, nid)
            expected_run = nid not in succeeded
            assert (len(ran) - before == 1) == expected_run
            assert answer.status == (500 if expected_run and fails else 200)
            assert answer.duplicate == (not expected_run)
            if expected_run and not fails:
                succeeded.add(nid)

    asyncio.run(main())


def test_a_restarted_receiver_remembers_what_it_handled(tmp_path: Path) -> None:
    handled: list[str] = []

    async def run_once(nids: list[str]) -> list[bool]:
        store = SqliteDedupe(tmp_path / "seen.db")
        receiver = Receiver(TOKEN, dedupe=store)
        receiver.on_event(lambda e: handled.append(e.callid))
        answers = [await deliver(receiver, nid) for nid in nids]
        store.close()
        return [a.duplicate for a in answers]

    assert asyncio.run(run_once(["n1", "n2"])) == [False, False]
    assert asyncio.run(run_once(["n2", "n3", "n1"])) == [True, False, True]  # a new process, the same file
    assert len(handled) == 3
    assert asyncio.run(Receiver(TOKEN).handle(*_args("n1"))).duplicate is False  # memory: forgets on restart


def _args(nid: str) -> tuple[bytes, dict[str, str]]:
    body, ctype = build_body(EVENT, crm_token=TOKEN, dialect="form", notification_id=nid)
    return body, {"Content-Type": ctype, "webhook-id": nid}


WORKER = textwrap.dedent("""
    import asyncio, json, random, sys, time
    from pathlib import Path
    from vpbx.crm import EventNotice, EventType, Receiver, RedisDedupe, SqliteDedupe
    from vpbx.notify.payloads import build_body

    kind, where, go, count = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    store = SqliteDedupe(where) if kind == "sqlite" else RedisDedupe("redis://127.0.0.1:6379/15", prefix=where)
    receiver = Receiver("dedupe-token", dedupe=store)
    handled = []

    @receiver.on_event
    async def handler(event):
        handled.append(event.callid)
        await asyncio.sleep(0.002)

    async def main():
        nids = [f"n{i}" for i in range(count)] * 2  # the PBX's retries and replays, too
        random.shuffle(nids)
        bodies = []
        for nid in nids:
            event = EventNotice(type=EventType.INCOMING, callid=nid, phone="79101234567", user="ivan",
                                direction="in")
            body, ctype = build_body(event, crm_token="dedupe-token", dialect="form", notification_id=nid)
            bodies.append((body, {"Content-Type": ctype, "webhook-id": nid}))
        while not go.exists():  # every worker starts at once
            time.sleep(0.005)
        answers = await asyncio.gather(*(receiver.handle(b, h) for b, h in bodies))
        assert all(a.status == 200 for a in answers), [a.status for a in answers]

    asyncio.run(main())
    print(json.dumps(handled))
""")


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_several_worker_processes_handle_each_notification_once(tmp_path: Path, kind: str) -> None:
    if kind == "redis" and not redis_up():
        pytest.skip("no Redis on 127.0.0.1:6379")
    where = str(tmp_path / "seen.db") if kind == "sqlite" else f"vpbx-test:{uuid.uuid4().hex}:"
    go = tmp_path / "go"
    count, workers = 60, 4
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, kind, where, str(go), str(count)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(workers)]
    go.touch()
    handled: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        handled += json.loads(out)
    assert sorted(handled) == sorted(f"n{i}" for i in range(count))  # each once, across every worker
