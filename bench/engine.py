"""Simulated incoming calls per second vs a bare bulk insert of the same history and outbox rows.

One process, SQLite, the virtual clock. A department of 10 (EVENLY); every device answers after 2 s
and talks 60 s; each call leaves its history row and its CRM notifications (INCOMING, ACCEPTED,
COMPLETED, history) in the outbox (the dispatcher is off: nothing is delivered). The synchronous
``contact`` lookup is answered in-process (a CRM's latency is the CRM's; the notifier's benchmark
measures that path). Then the same number of history and outbox rows is written into a fresh store
by one bare SQLAlchemy bulk insert: the ratio is engine time / bulk time.

    .venv/bin/python bench/engine.py [--calls 3000] [--profile] [--mixed-only]

Then a mixed load (issue 7) on the same store shape: a quarter each of incoming calls, employees' outgoing
calls, click-to-calls, and incoming calls blindly transferred to the department after 10 s of talk; every
call ends answered. It prints completed calls/s (a transferred call counts once, though it leaves two
history rows).

Calls arrive every 7 virtual seconds (so up to 9 talk at once and each rings exactly one member); the
virtual clock is advanced 700 s per request. Wall time covers the whole run, flushes included.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from vpbx import gctune
from vpbx.app import build_runtime
from vpbx.bootstrap import prepare_store
from vpbx.clock import VirtualClock
from vpbx.engine import CallEngine
from vpbx.notify import service as notify_service
from vpbx.notify.payloads import ContactAnswer, ContactQuery
from vpbx.runtime import Runtime
from vpbx.schemas.groups import GroupCreate, MemberIn
from vpbx.schemas.numbers import TelnumRouteIn
from vpbx.schemas.users import UserCreate
from vpbx.services import groups, numbers, tenancy, users
from vpbx.settings import Settings
from vpbx.store.tables import CallRecord, Domain, OutboxRow
from vpbx.telephony.sim import Auto, SimTelephony

NUMBER = "74951234567"
MEMBERS = 10
GAP = 7.0
STEP = 700.0


def arrival(engine: CallEngine, domain: Domain, i: int) -> Callable[[], Awaitable[Any]]:
    async def dial() -> None:
        await engine.incoming(domain, f"7910{i:07d}", NUMBER)
    return dial


def runtime_at(tmp: Path) -> Runtime:
    settings = Settings(db=f"sqlite+aiosqlite:///{tmp / 'vpbx.db'}", home=tmp, demo=False, clock="virtual",
                        notify_dispatcher=False)
    return build_runtime(settings)


async def company(rt: Runtime) -> Domain:
    now = rt.clock.now()
    async with rt.sessions() as s:
        domain = (await tenancy.create_domain(s, "bench.local", now)).domain
        await tenancy.set_integration(s, domain, crm_url="http://127.0.0.1:9/crm", crm_token="tok")
        for i in range(MEMBERS):
            await users.create(s, domain, UserCreate(login=f"op{i}", name=f"Оператор {i}", ext=str(801 + i)), now)
        await groups.create(s, domain, GroupCreate(name="Продажи", ext="800", call_order="EVENLY", call_duration=10,
                                                   users=[MemberIn(login=f"op{i}", calls_enable=True)
                                                          for i in range(MEMBERS)]), now, group_id="sales")
        await numbers.provision(s, domain, NUMBER, now, name="Основной", main=True)
        await numbers.set_route(s, domain.id, NUMBER, TelnumRouteIn(type="group", group="sales", greeting=False))
        await s.commit()
        return domain


async def instant_contact(runtime: Runtime, domain_id: int, query: ContactQuery, **_: Any) -> ContactAnswer:
    return ContactAnswer(contact_name="ООО Ромашка", responsible=None)


def start_engine(rt: Runtime, domain: Domain) -> tuple[CallEngine, SimTelephony]:
    """The engine, with the CRM's contact answer in-process and the department's devices answering."""
    notify_service.lookup_contact = instant_contact  # type: ignore[assignment]
    engine = CallEngine(rt)
    sim = rt.telephony
    assert isinstance(sim, SimTelephony) and isinstance(rt.clock, VirtualClock)
    for i in range(MEMBERS):
        sim.set_registered(domain.id, f"op{i}", True)
        sim.set_auto(domain.id, f"op{i}", Auto("answer", 2.0, 60.0))
    return engine, sim


async def engine_run(tmp: Path, calls: int, profile: bool) -> tuple[float, list[dict[str, Any]], list[dict[str, Any]]]:
    rt = runtime_at(tmp)
    await prepare_store(rt)
    domain = await company(rt)
    engine, _ = start_engine(rt, domain)
    prof = cProfile.Profile() if profile else None
    began = time.perf_counter()
    if prof:
        prof.enable()
    # Arrivals every GAP virtual seconds: with 10 members talking 62 s each, EVENLY hands every call to the
    # next free member (up to 9 calls at once). The clock is advanced in STEP-second requests, each followed
    # by a flush as POST /sim/v1/clock/advance does before it answers.
    for i in range(calls):
        rt.clock.call_later(GAP * i, arrival(engine, domain, i))
    t, horizon = 0.0, GAP * calls + 70
    while t < horizon:
        await rt.clock.advance(STEP)
        await engine.flush()
        t += STEP
    if prof:
        prof.disable()
    elapsed = time.perf_counter() - began
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
    async with rt.sessions() as s:
        statuses = dict((await s.execute(select(CallRecord.status, func.count()).group_by(CallRecord.status))).all())
        assert statuses == {"Success": calls}, statuses
        hist = [dict(r._mapping) for r in await s.execute(select(CallRecord.__table__))]
        outbox = [dict(r._mapping) for r in await s.execute(select(OutboxRow.__table__))]
    await rt.engine.dispose()
    for rows in (hist, outbox):
        for r in rows:
            r.pop("id")
    return elapsed, hist, outbox


AGENTS = 10  # employees who call out (outgoing and click-to-call), beside the department's members


async def mixed_run(tmp: Path, calls: int) -> tuple[float, dict[str, int]]:
    rt = runtime_at(tmp)
    await prepare_store(rt)
    domain = await company(rt)
    now = rt.clock.now()
    async with rt.sessions() as s:
        for i in range(AGENTS):
            await users.create(s, domain, UserCreate(login=f"ag{i}", name=f"Агент {i}", ext=str(901 + i)), now)
        await s.commit()
        agents = [await users.get(s, domain.id, f"ag{i}") for i in range(AGENTS)]
    engine, sim = start_engine(rt, domain)
    for i in range(AGENTS):
        sim.set_registered(domain.id, f"ag{i}", True)
        sim.set_auto(domain.id, f"ag{i}", Auto("answer", 2.0, None))  # click-to-call: the agent picks up
    for i in range(calls):
        sim.set_external(domain.id, f"7920{i:07d}", Auto("answer", 3.0, 30.0))

    def transfer_later(callid: str) -> Callable[[], Awaitable[None]]:
        async def go() -> None:
            call = engine.live.get(callid)
            if call is not None and call.state == "talking" and call.answered_by:
                await engine.transfer(domain.id, callid, call.answered_by, "sales")
        return go

    def arrive(i: int) -> Callable[[], Awaitable[None]]:
        async def go() -> None:
            kind, agent = i % 4, agents[(i // 2) % AGENTS]  # an agent calls again 140 s later
            if kind == 0:
                await engine.incoming(domain, f"7910{i:07d}", NUMBER)
            elif kind == 1:
                await engine.outgoing(domain, agent.login, f"7920{i:07d}")
            elif kind == 2:
                await engine.make_call(domain, f"7920{i:07d}", clid=NUMBER, user=agent)
            else:
                call = await engine.incoming(domain, f"7910{i:07d}", NUMBER)
                rt.clock.call_later(12.0, transfer_later(call.callid))
        return go

    began = time.perf_counter()
    for i in range(calls):
        rt.clock.call_later(GAP * i, arrive(i))
    t, horizon = 0.0, GAP * calls + 200
    while t < horizon:
        await rt.clock.advance(STEP)
        await engine.flush()
        t += STEP
    elapsed = time.perf_counter() - began
    async with rt.sessions() as s:
        statuses = dict((await s.execute(select(CallRecord.status, func.count()).group_by(CallRecord.status))).all())
    await rt.engine.dispose()
    return elapsed, statuses


async def bulk_run(tmp: Path, hist: list[dict[str, Any]], outbox: list[dict[str, Any]]) -> float:
    """The limit: the same rows, one transaction, executemany (the domain row must exist first)."""
    rt = runtime_at(tmp)
    await prepare_store(rt)
    async with rt.sessions() as s:
        await tenancy.create_domain(s, "bench.local", rt.clock.now())
        await s.commit()
    began = time.perf_counter()
    async with rt.engine.begin() as conn:
        await conn.execute(insert(CallRecord.__table__), hist)
        await conn.execute(insert(OutboxRow.__table__), outbox)
    elapsed = time.perf_counter() - began
    await rt.engine.dispose()
    return elapsed


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--mixed-only", action="store_true", help="only the mixed load")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vpbx-bench-warm-") as w:
        await engine_run(Path(w), 50, False)  # imports, caches, the first statements compiled
    gctune.tune()  # as `vpbx serve` does once the server is built
    if not args.mixed_only:
        await incoming_only(args)
    with tempfile.TemporaryDirectory(prefix="vpbx-bench-mixed-") as m:
        mixed_s, statuses = await mixed_run(Path(m), args.calls)
    expected = args.calls + args.calls // 4  # a transferred call leaves two history rows
    print(f"mixed load: {args.calls} calls (incoming, outgoing, click-to-call, transferred) in {mixed_s:.2f} s = "
          f"{args.calls / mixed_s:.0f} calls/s; history rows by status {statuses} (expected {expected} Success)")


async def incoming_only(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="vpbx-bench-engine-") as a, \
            tempfile.TemporaryDirectory(prefix="vpbx-bench-bulk-") as b:
        engine_s, hist, outbox = await engine_run(Path(a), args.calls, args.profile)
        bulk_s = await bulk_run(Path(b), hist, outbox)
    rate, bulk_rate = args.calls / engine_s, args.calls / bulk_s
    print(f"calls: {args.calls}, history rows: {len(hist)}, outbox rows: {len(outbox)} "
          f"({len(outbox) / args.calls:.1f} per call)")
    print(f"engine:      {engine_s:7.2f} s  {rate:9.0f} calls/s")
    print(f"bulk insert: {bulk_s:7.2f} s  {bulk_rate:9.0f} calls/s (the same rows, one transaction)")
    print(f"ratio engine/bulk: {rate / bulk_rate:.3f}   target >= 1000 calls/s: {'met' if rate >= 1000 else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
