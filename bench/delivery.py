"""CRM delivery throughput: the full outbox path versus a bare aiohttp keep-alive loop, in one run.

A fast aiohttp receiver runs in its own process on loopback. The baseline (the issue's limit) posts the same
bodies with one aiohttp ClientSession and ``--concurrency`` workers. A second bare loop posts them with vpbx's
own client (``vpbx.notify.http1``), no store: the ratio to it is what the outbox, the claims and the
bookkeeping cost. The outbox run enqueues N rows (one call each) in one transaction and times the dispatcher
draining them (claim, POST, record, all in the store). Prints the rates and ratios; targets: >= 2,000/s and
>= 0.7x the aiohttp loop.

    .venv/bin/python bench/delivery.py [-n 5000] [--db URL] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

CPU: dict[str, float] = {}  # this process's CPU seconds per request, by side: steadier than rates on a busy machine


def receiver_main(port: int, ready: multiprocessing.synchronize.Event) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/crm", handle)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bodies(n: int) -> list[bytes]:
    from vpbx.notify.payloads import EventNotice, EventType, build_body

    out = []
    for i in range(n):
        notice = EventNotice(type=EventType.INCOMING, callid=f"bench-{i}", phone="79990000000", user="bench",
                             direction="in")
        out.append(build_body(notice, crm_token="bench-token", dialect="form", notification_id=f"msg_{i}")[0])
    return out


async def baseline(url: str, payloads: list[bytes], concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        queue = iter(payloads)

        async def worker() -> None:
            for body in queue:
                async with http.post(url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                              "webhook-id": "x"}) as resp:
                    await resp.read()
                    assert resp.status == 200

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        CPU["bare"] = (time.process_time() - cpu) / len(payloads)
        return len(payloads) / (time.perf_counter() - started)


async def baseline_own(url: str, payloads: list[bytes], concurrency: int) -> float:
    from vpbx.notify.transport import client_session, post

    async with client_session(True, limit=concurrency) as http:
        queue = iter(payloads)

        async def worker() -> None:
            for body in queue:
                answer = await post(http, url, body, {"Content-Type": "application/x-www-form-urlencoded",
                                                      "webhook-id": "x"}, 10)
                assert answer.status == 200, answer

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        CPU["own"] = (time.process_time() - cpu) / len(payloads)
        return len(payloads) / (time.perf_counter() - started)


async def outbox_run(url: str, n: int, db_url: str, concurrency: int) -> tuple[float, float]:
    from sqlalchemy import func, select

    from vpbx.app import build_runtime
    from vpbx.notify import service
    from vpbx.notify.payloads import EventNotice, EventType
    from vpbx.services import tenancy
    from vpbx.settings import Settings
    from vpbx.store import db
    from vpbx.store.tables import OutboxRow

    home = Path(tempfile.mkdtemp(prefix="vpbx-bench-"))
    settings = Settings(db=db_url or f"sqlite+aiosqlite:///{home / 'bench.db'}", home=home, demo=False,
                        notify_domain_concurrency=concurrency,  # the rest as a server has them by default
                        allow_private_crm=True)  # the CRM here is a loopback one
    runtime = build_runtime(settings)
    await db.upgrade(runtime.engine)
    async with runtime.sessions() as s:
        created = await tenancy.create_domain(s, f"bench{uuid.uuid4().hex[:8]}.test", datetime.now(UTC))
        await tenancy.set_integration(s, created.domain, crm_url=url, crm_token="bench-token")
        await s.commit()
        domain_id = created.domain.id
    # Enqueue with no dispatcher running: only the drain is timed.
    started = time.perf_counter()
    async with runtime.sessions() as s:
        for i in range(n):
            await service.enqueue(s, domain_id, EventNotice(type=EventType.INCOMING, callid=f"bench-{i}",
                                                            phone="79990000000", user="bench", direction="in"))
        await s.commit()
    enqueue_rate = n / (time.perf_counter() - started)

    dispatcher = service.Dispatcher(runtime)
    started, cpu = time.perf_counter(), time.process_time()
    await dispatcher.start()
    asked = 0.0
    while True:
        # The store is asked when nothing is in flight, else every 0.2 s: the bench's own queries share the loop
        # with the dispatcher it measures (profiled: a count every 20 ms took a tenth of the loop).
        if dispatcher.inflight == 0 or time.perf_counter() - asked > 0.2:
            asked = time.perf_counter()
            async with runtime.sessions() as s:
                left = await s.scalar(select(func.count()).select_from(OutboxRow)
                                      .where(OutboxRow.domain_id == domain_id, OutboxRow.state == "pending"))
            if not left:
                break
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    CPU["vpbx"] = (time.process_time() - cpu) / n
    async with runtime.sessions() as s:
        delivered = await s.scalar(select(func.count()).select_from(OutboxRow)
                                   .where(OutboxRow.domain_id == domain_id, OutboxRow.state == "delivered"))
    await dispatcher.stop()
    runtime.reader.dispose()
    await runtime.engine.dispose()
    assert delivered == n, f"{delivered} of {n} delivered"
    return n / elapsed, enqueue_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000, help="notifications per run")
    parser.add_argument("--db", default="", help="store URL (default: a fresh SQLite file)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (both runs)")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass

    if args.db.startswith("postgres"):  # a database of its own: rows other runs left would be claimed too
        from vpbx.testing.postgres import empty_database

        args.db = empty_database(args.db, "_bench_delivery")
    port = free_port()
    ready = multiprocessing.Event()
    proc = multiprocessing.Process(target=receiver_main, args=(port, ready), daemon=True)
    proc.start()
    ready.wait(10)
    url = f"http://127.0.0.1:{port}/crm"
    try:
        payloads = bodies(args.n)
        asyncio.run(baseline(url, payloads[:500], args.concurrency))  # warm-up
        base = asyncio.run(baseline(url, payloads, args.concurrency))
        asyncio.run(baseline_own(url, payloads[:500], args.concurrency))
        own = asyncio.run(baseline_own(url, payloads, args.concurrency))
        rate, enqueue_rate = asyncio.run(outbox_run(url, args.n, args.db, args.concurrency))
    finally:
        proc.terminate()
        proc.join(5)
    store = "PostgreSQL" if args.db.startswith("postgres") else "SQLite"
    print(f"bare aiohttp keep-alive loop : {base:8.0f} req/s  ({args.n} posts, concurrency {args.concurrency})")
    print(f"bare loop of vpbx's client   : {own:8.0f} req/s  (no store)")
    print(f"outbox -> dispatcher ({store}): {rate:8.0f} deliveries/s  (enqueue {enqueue_rate:.0f} rows/s, untimed)")
    print(f"ratio                        : {rate / base:8.2f}x  (target >= 0.7x and >= 2000/s); "
          f"{rate / own:.2f}x of vpbx's own client's bare loop")
    print(f"CPU per request (this process): bare aiohttp {CPU['bare'] * 1e6:5.0f} us, bare vpbx client "
          f"{CPU['own'] * 1e6:5.0f} us, vpbx delivery {CPU['vpbx'] * 1e6:5.0f} us "
          f"(ratio {CPU['bare'] / CPU['vpbx']:.2f}x)")
    sys.exit(0)


if __name__ == "__main__":
    main()
