"""``GET /history/json`` and ``/history/csv`` over a period of 1,000 calls against a bare Starlette route running the
same SELECT with the raw driver (sqlite3 / asyncpg) and encoding the rows with the same orjson / CSV encoders, on
SQLite and on PostgreSQL, measured by wrk (-c32) in one run, alternating. Both sides answer the same bytes (checked).

The bare route is the limit: no auth beyond a key comparison, no streaming, the whole result in one body. vpbx
streams (an export's memory stays flat whatever its size: bench/export.py exports 1M rows); its peak RSS is
printed before and after the run.

    .venv/bin/python bench/history.py [--calls 1000] [--seconds 3] [--rounds 1] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port, rss_mb, wait_http, wrk
from _stores import BACKENDS, load, served, store_url, vpbx

KEY = "bench-key-0123456789abcdef"
DOMAIN = "bench.local"
DAY = datetime(2025, 3, 1, tzinfo=UTC)
QUERY = "start=20250301T000000Z&end=20250301T235959Z"

BARE_APP = textwrap.dedent(
    """
    import json, sqlite3, sys
    from datetime import datetime
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    from vpbx.services.history import external_csv_chunk, external_json_chunk

    spec = json.load(open(sys.argv[1]))
    KEY, DOMAIN = spec["key"], spec["domain"]
    state = {}

    def params(values):
        return [datetime.fromisoformat(v[3:]) if isinstance(v, str) and v.startswith("dt:") else v for v in values]

    async def fetch(kind):
        sql, args = spec[kind]
        if spec["backend"] == "sqlite":
            return state["conn"].execute(sql, args).fetchall()
        return await state["pool"].fetch(sql, *params(args))

    async def as_json(request):
        if request.headers.get("x-api-key") != KEY:
            return Response(b'{"message":"Invalid token"}', 401, media_type="application/json")
        return Response(b"[" + external_json_chunk(await fetch("json"), False, False) + b"]",
                        media_type="application/json")

    async def as_csv(request):
        if request.headers.get("x-api-key") != KEY:
            return Response(b'{"message":"Invalid token"}', 401, media_type="application/json")
        return Response(external_csv_chunk(await fetch("csv"), DOMAIN), media_type="text/csv; charset=utf-8")

    import contextlib

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if spec["backend"] == "sqlite":
            state["conn"] = sqlite3.connect(spec["path"], check_same_thread=False)
        else:
            import asyncpg
            # as many queries at once as vpbx runs exports (8)
            state["pool"] = await asyncpg.create_pool(spec["dsn"], min_size=4, max_size=8)
        yield

    app = Starlette(routes=[Route("/crmapi/v1/history/json", as_json), Route("/crmapi/v1/history/csv", as_csv)],
                    lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", loop="uvloop",
                http="httptools", access_log=False)
    """
)


def fill(url: str, calls: int) -> None:
    """``calls`` external calls of the bench domain over one day, as the engine writes them."""
    from sqlalchemy import insert, select

    from vpbx.store import db
    from vpbx.store.tables import CallRecord, Domain

    async def work() -> None:
        engine = db.create_engine(url)
        try:
            async with engine.begin() as conn:
                domain_id = (await conn.execute(select(Domain.id).where(Domain.name == DOMAIN))).scalar_one()
                rows = []
                for i in range(calls):
                    ok = i % 5 != 0
                    rows.append({
                        "domain_id": domain_id, "callid": f"{i:012d}bench{i:011d}", "type": "in" if i % 3 else "out",
                        "status": "Success" if ok else "Missed", "destination": "user" if ok else "group",
                        "client": f"7910{i:07d}", "user_login": "manager" if ok else "", "user_name":
                        "Ольга Смирнова" if ok else "", "user_ext": "704" if ok else "", "group_id": "sales",
                        "group_name": "Отдел продаж", "diversion": "74951234567", "telnum_name": "Основной",
                        "start": DAY + timedelta(seconds=i * 60), "wait": i % 30, "duration": (i * 7) % 600 if ok
                        else 0, "link": f"https://pbx.example/records/{i}" if ok else "", "rating": None,
                        "missed_status": None if ok else 3, "note": ""})
                await conn.execute(insert(CallRecord.__table__), rows)
        finally:
            await engine.dispose()

    asyncio.run(work())


def statements(url: str) -> dict[str, Any]:
    """The SQL and parameters vpbx runs for the two exports, as the driver receives them."""
    from sqlalchemy.engine import make_url

    from vpbx.services.history import external_filter
    from vpbx.store import db
    from vpbx.store.reader import driver_sql
    from vpbx.store.repositories.calls import EXTERNAL_CSV_COLUMNS, EXTERNAL_EXPORT_COLUMNS, external_query
    from vpbx.store.tables import Domain

    engine = db.create_engine(url)

    async def domain_id() -> int:
        from sqlalchemy import select

        try:
            async with engine.connect() as conn:
                return int((await conn.execute(select(Domain.id).where(Domain.name == DOMAIN))).scalar_one())
        finally:
            await engine.dispose()

    did = asyncio.run(domain_id())
    f = external_filter(now=datetime.now(UTC), timezone="Europe/Moscow", start="20250301T000000Z",
                        end="20250301T235959Z")
    out: dict[str, Any] = {}
    for kind, columns in (("json", EXTERNAL_EXPORT_COLUMNS), ("csv", EXTERNAL_CSV_COLUMNS)):
        sql, params = driver_sql(external_query(did, f, columns), engine.dialect)
        out[kind] = [sql, [f"dt:{p.isoformat()}" if isinstance(p, datetime) else p for p in params]]
    u = make_url(db.normalize_url(url))
    out["dsn"] = u.set(drivername="postgresql").render_as_string(hide_password=False)
    out["path"] = u.database
    return out


def get(url: str) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"X-API-KEY": KEY}), timeout=60) as r:
        return bytes(r.read())


def measure(backend: str, args: argparse.Namespace, tmp: Path) -> None:
    home = tmp / backend
    home.mkdir()
    url = store_url(backend, home, "history")
    if url is None:
        print(f"\n{backend}: skipped (no PostgreSQL here)")
        return
    vpbx(url, home, "domain", "create", DOMAIN, "--api-key", KEY, "--no-demo-data")
    fill(url, args.calls)
    spec = {"key": KEY, "domain": DOMAIN, "backend": backend, **statements(url)}
    spec_file = tmp / f"history-{backend}.json"
    spec_file.write_text(json.dumps(spec))
    with served(url, home) as (base, server):
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(spec_file), str(bare_port)])
        try:
            bare_base = f"http://127.0.0.1:{bare_port}"
            wait_http(f"{bare_base}/crmapi/v1/history/csv?{QUERY}", headers={"X-API-KEY": KEY})
            results = []
            for kind in ("json", "csv"):
                ours_url = f"{base}/crmapi/v1/history/{kind}?{QUERY}"
                bare_url = f"{bare_base}/crmapi/v1/history/{kind}?{QUERY}"
                body = get(ours_url)
                assert body == get(bare_url), f"{kind}: the two sides answer different bytes"
                count = len(json.loads(body)) if kind == "json" else body.count(b"\r\n")
                assert count == args.calls, (kind, count)
                wrk(ours_url, 1, headers={"X-API-KEY": KEY})
                wrk(bare_url, 1, headers={"X-API-KEY": KEY})
                ours, theirs = [], []
                for _ in range(args.rounds):
                    theirs.append(wrk(bare_url, args.seconds, headers={"X-API-KEY": KEY}))
                    ours.append(wrk(ours_url, args.seconds, headers={"X-API-KEY": KEY}))
                results.append((kind, len(body), sum(ours) / len(ours), sum(theirs) / len(theirs)))
            rss = rss_mb(server.pid)
        finally:
            bare.terminate()
            bare.wait(10)
    print(f"\n{backend}: {args.calls} calls in the period, wrk -t2 -c32, {args.rounds}x{args.seconds}s per side, "
          f"{load()}")
    print(f"{'export':<16}{'bytes':>9}{'bare req/s':>12}{'vpbx req/s':>12}{'ratio':>8}")
    for kind, size, o, t in results:
        print(f"GET /history/{kind:<5}{size:>10}{t:12.0f}{o:12.0f}{o / t:8.2f}{'' if o / t >= 0.5 else '  < 0.5'}")
    print(f"vpbx RSS after the run: {rss:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    args = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M')} {platform.node()} {platform.machine()}, {load()}")
    with tempfile.TemporaryDirectory(prefix="vpbx-bench-") as d:
        for backend in BACKENDS if args.backend == "both" else (args.backend,):
            measure(backend, args, Path(d))


if __name__ == "__main__":
    main()
