"""The call engine through the server: ``POST /sim/v1/traffic`` on a virtual-clock ``vpbx serve`` (a real
subprocess) with a real loopback CRM (``vpbx.crm.Receiver`` under uvicorn, its own process) answering every
``contact`` lookup and taking every push; versus a bulk insert of the same rows with the raw driver.

For each backend: the demo company (10 employees; the main number rings sales), the integration pointed at the
CRM, then one traffic run of ``--calls`` calls on the main number (Poisson, 1 call per virtual second; devices
answer 9 times out of 10 after 1-3 s and talk 5-20 s; a client waits 5-30 s). The clock is advanced
``--step`` virtual seconds per ``POST /sim/v1/clock/advance`` until the run is done; the time stops when every
call's history row is written AND every notification is delivered (the outbox drained, the CRM's count equal to
the rows delivered). Both counts are checked: nothing is left pending, nothing failed.

The limit, in the same run: the same history rows (and, second figure, the same outbox rows) inserted into a
copy of their tables (same indexes) in one transaction by the raw driver (sqlite3 / asyncpg ``executemany``,
as an ORM-free writer would). Targets: >= 1,000 complete calls/s and >= 0.3x the bulk insert.

    .venv/bin/python bench/engine_server.py [--calls 3000] [--step 120] [--backend sqlite|postgres|both]
                                            [--compare OLD/src [--rounds 3]]

``--compare`` runs another copy of vpbx's ``src/`` (an earlier commit's, copied elsewhere) the same way, the two
alternating ``--rounds`` times per backend, and sums up both side by side: on a shared machine only a same-run
comparison says which is faster. The CPU a call depends on how many events were sent (an event older than its
lifetime is never sent), so each run says how many it sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import cpu_seconds
from _crm import TOKEN, counts, crm
from _stores import BACKENDS, load, served, store_url, vpbx

KEY = "bench-key-0123456789abcdef"
OPERATOR = "bench-operator-key-0123456789"
DOMAIN = "bench.local"
MAIN = "74951234567"


def request(method: str, url: str, body: dict[str, Any] | None = None, *, operator: bool = False) -> Any:
    headers = {"X-API-KEY": KEY, "Content-Type": "application/json"}
    if operator:
        headers["X-OPERATOR-KEY"] = OPERATOR
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


# --- the store, read and written with the raw driver --------------------------------------------------------


class Raw:
    """The store through its raw driver (sqlite3 or asyncpg): counts, and the bulk-insert limit."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pg = url.startswith("postgres")

    def _dsn(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    def _path(self) -> str:
        from sqlalchemy.engine import make_url

        return str(make_url(self.url).database)

    def value(self, sql: str) -> Any:
        if not self.pg:
            with sqlite3.connect(self._path(), timeout=30) as conn:
                return conn.execute(sql).fetchone()[0]

        async def run() -> Any:
            import asyncpg

            conn = await asyncpg.connect(self._dsn())
            try:
                return await conn.fetchval(sql)
            finally:
                await conn.close()

        return asyncio.run(run())

    def db_work(self) -> tuple[int, int] | None:
        """PostgreSQL: (commits, rows written) of this database so far; None on SQLite. The statistics are
        flushed by each backend at the end of its transactions, with a short delay: sampled after a pause."""
        if not self.pg:
            return None
        time.sleep(1.0)
        row = self.value("SELECT xact_commit || ',' || (tup_inserted + tup_updated + tup_deleted) "
                         "FROM pg_stat_database WHERE datname = current_database()")
        commits, rows = str(row).split(",")
        return int(commits), int(rows)

    def bulk(self, tables: list[str]) -> float:
        """Seconds to insert every row of ``tables`` again, into copies with the same indexes, in one transaction
        (the rows are read and the copies made before the clock starts)."""
        if not self.pg:
            conn = sqlite3.connect(self._path(), timeout=30, isolation_level=None)
            try:
                work = []
                for table in tables:
                    copy = f"bench_{table}"
                    conn.execute(f"DROP TABLE IF EXISTS {copy}")
                    schema = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND sql "
                                          "IS NOT NULL ORDER BY type DESC", (table,)).fetchall()
                    for kind, name, sql in schema:  # the table first, then its indexes
                        if kind == "table":
                            conn.execute(sql.replace(f"CREATE TABLE {table}", f"CREATE TABLE {copy}", 1)
                                         .replace(f'CREATE TABLE "{table}"', f"CREATE TABLE {copy}", 1))
                        else:
                            conn.execute(sql.replace(name, f"bench_{name}", 1).replace(f" ON {table} ",
                                                                                       f" ON {copy} ", 1))
                    rows = conn.execute(f"SELECT * FROM {table}").fetchall()
                    marks = ",".join("?" * len(rows[0])) if rows else ""
                    work.append((f"INSERT INTO {copy} VALUES ({marks})", rows))
                began = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                for sql, rows in work:
                    conn.executemany(sql, rows)
                conn.execute("COMMIT")
                return time.perf_counter() - began
            finally:
                conn.close()

        async def run() -> float:
            import asyncpg

            conn = await asyncpg.connect(self._dsn())
            try:
                work = []
                for table in tables:
                    copy = f"bench_{table}"
                    await conn.execute(f"DROP TABLE IF EXISTS {copy}")
                    await conn.execute(f"CREATE TABLE {copy} (LIKE {table} INCLUDING ALL)")
                    rows = [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table}")]
                    marks = ",".join(f"${i + 1}" for i in range(len(rows[0]))) if rows else ""
                    work.append((f"INSERT INTO {copy} VALUES ({marks})", rows))
                began = time.perf_counter()
                async with conn.transaction():
                    for sql, rows in work:
                        await conn.executemany(sql, rows)
                return time.perf_counter() - began
            finally:
                await conn.close()

        return asyncio.run(run())


# --- one backend --------------------------------------------------------------------------------------------


def prepare(url: str, home: Path, crm_base: str) -> None:
    vpbx(url, home, "db", "upgrade")
    vpbx(url, home, "domain", "create", DOMAIN, "--api-key", KEY)
    vpbx(url, home, "integration", "set", "--domain", DOMAIN, "--crm-url", f"{crm_base}/crm", "--crm-token", TOKEN,
         "--on")


def contact_waits(base: str) -> tuple[float, float]:
    """(lookups, seconds waited on them) so far, from the server's /metrics: the engine places a call only once its
    ``contact`` lookup is answered, and on a virtual clock the next call waits for that one."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as r:
        text = r.read().decode()
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("vpbx_crm_contact_seconds_count", "vpbx_crm_contact_seconds_sum"):
            found[name] = float(value)
    return found.get("vpbx_crm_contact_seconds_count", 0.0), found.get("vpbx_crm_contact_seconds_sum", 0.0)


def drained(raw: Raw, crm_base: str) -> tuple[bool, int, int]:
    pending = int(raw.value("SELECT count(*) FROM notify_outbox WHERE state = 'pending'"))
    delivered = int(raw.value("SELECT count(*) FROM notify_outbox WHERE state = 'delivered'"))
    took = sum(v for k, v in counts(crm_base).items() if k != "contact")
    return pending == 0 and took >= delivered, pending, delivered


def run_backend(backend: str, calls: int, step: float, profile: str = "", label: str = "") -> dict[str, float] | None:
    with tempfile.TemporaryDirectory(prefix=f"vpbx-bench-engine-{backend}-") as t, crm() as crm_base:
        tmp = Path(t)
        url = store_url(backend, tmp, "engine")
        if url is None:
            print(f"{backend}: skipped (no PostgreSQL: set VPBX_BENCH_PG_URL)")
            return None
        home = tmp / "home"
        prepare(url, home, crm_base)
        os.environ.update(VPBX_CLOCK="virtual", VPBX_OPERATOR_KEY=OPERATOR, VPBX_ALLOW_PRIVATE_CRM="1",
                          VPBX_DEMO_PHONES="0", VPBX_LOG_LEVEL="warning")
        raw = Raw(url)
        with served(url, home) as (base, server):
            spy = None
            if profile:  # py-spy (PyPI) samples the server: collapsed stacks, one file per backend
                import subprocess

                spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(server.pid),
                                        "-r", "200", "-f", "raw", "-o", f"{profile}.{backend}.txt"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            cpm = 60.0
            body = {"calls_per_minute": cpm, "duration_s": calls * 60.0 / cpm, "seed": 14, "numbers": [MAIN],
                    "answer_probability": 0.9, "answer_after": [1, 3], "talk": [5, 20], "patience": [5, 30]}
            # One call first, untimed: the first CRM request loads the HTTP client (lazily, to start fast).
            warm = request("POST", f"{base}/sim/v1/calls", {"from": "79100000000", "to": MAIN})
            request("POST", f"{base}/sim/v1/calls/{warm['callid']}/hangup", {"by": "client"})
            while not drained(raw, crm_base)[0]:
                time.sleep(0.02)
            history0 = int(raw.value("SELECT count(*) FROM call_history"))
            db0 = raw.db_work()
            cpu0 = cpu_seconds(server.pid)
            waits0 = contact_waits(base)
            began = time.perf_counter()
            request("POST", f"{base}/sim/v1/traffic", body)
            advances = 0
            while True:
                request("POST", f"{base}/sim/v1/clock/advance", {"seconds": step}, operator=True)
                advances += 1
                state = request("GET", f"{base}/sim/v1/traffic")
                if state["state"] != "running":
                    break
            engine_done = time.perf_counter() - began
            lookups, waited = (b - a for a, b in zip(waits0, contact_waits(base), strict=True))
            deadline = time.perf_counter() + 600
            while not (d := drained(raw, crm_base))[0]:
                if time.perf_counter() > deadline:
                    raise SystemExit(f"the outbox did not drain: {d[1]} pending")
                time.sleep(0.02)
            elapsed = time.perf_counter() - began
            cpu = cpu_seconds(server.pid) - cpu0
            db1 = raw.db_work()
            if spy is not None:
                import signal

                spy.send_signal(signal.SIGINT)
                spy.wait(30)
        placed = int(state["placed"])
        history = int(raw.value("SELECT count(*) FROM call_history")) - history0
        # Events older than their lifetime are never sent (a late "ringing" is worse than none): with the virtual
        # clock moved by --step at a time, many are. They are not failures; every other failed row is one.
        expired = int(raw.value("SELECT count(*) FROM notify_outbox WHERE state = 'failed' "
                                "AND last_error LIKE 'expired%'"))
        failed = int(raw.value("SELECT count(*) FROM notify_outbox WHERE state = 'failed'")) - expired
        outbox = int(raw.value("SELECT count(*) FROM notify_outbox"))
        got = counts(crm_base)
        bulk_hist = raw.bulk(["call_history"])
        bulk_both = raw.bulk(["call_history", "notify_outbox"])
    rate = history / elapsed
    backend += label
    print(f"{backend}: {placed} calls placed ({state['answered']} answered, {state['missed']} missed), "
          f"{history} history rows, {outbox} notifications ({failed} failed, {expired} events expired unsent), "
          f"CRM took {got}; {advances} advances")
    print(f"{backend}:   vpbx: calls done {engine_done:6.2f} s, drained {elapsed:6.2f} s = {rate:7.0f} "
          f"complete calls/s ({'met' if rate >= 1000 else 'NOT met'}: >= 1000)")
    print(f"{backend}:   vpbx's CPU: {cpu:6.2f} s = {cpu * 1000 / history:5.2f} ms a call, {history / cpu:7.0f} "
          f"calls per CPU-second (what one free core would do; the machine is shared)")
    if lookups:
        print(f"{backend}:   contact lookups: {lookups:.0f}, the engine waited {waited:5.2f} s on them "
              f"({waited * 1000 / lookups:5.2f} ms each, {waited * 100 / engine_done:3.0f}% of the calls' time)")
    if db0 is not None and db1 is not None:  # the capacity model's per-call database cost (README)
        commits, rows = ((b - a) / history for a, b in zip(db0, db1, strict=True))
        print(f"{backend}:   database work a call: {commits:5.2f} commits, {rows:5.1f} rows written "
              f"(inserted + updated + deleted, pg_stat_database)")
    for label, seconds in (("history rows", bulk_hist), ("history + outbox rows", bulk_both)):
        limit = history / seconds
        print(f"{backend}:   bulk insert of the {label:22s}: {seconds:6.3f} s = {limit:8.0f} calls/s; "
              f"ratio {rate / limit:5.3f}x ({'met' if rate / limit >= 0.3 else 'NOT met'}: >= 0.3x)")
    return {"rate": rate, "cpu_ms": cpu * 1000 / history, "sent": sum(v for k, v in got.items() if k != "contact")}


def compare(backend: str, calls: int, step: float, old: str, rounds: int) -> None:
    """This tree and ``old`` alternately (PYTHONPATH for the server and the CLI), then both side by side."""
    mine = os.environ.get("PYTHONPATH")
    runs: dict[str, list[dict[str, float]]] = {"this tree": [], "compared": []}
    try:
        for _ in range(rounds):
            for name, path in (("compared", old), ("this tree", mine)):
                if path:
                    os.environ["PYTHONPATH"] = path
                else:
                    os.environ.pop("PYTHONPATH", None)
                figures = run_backend(backend, calls, step, label=f" [{name}]")
                if figures is None:
                    return
                runs[name].append(figures)
    finally:
        if mine:
            os.environ["PYTHONPATH"] = mine
        else:
            os.environ.pop("PYTHONPATH", None)
    for name, each in runs.items():
        rates = sorted(r["rate"] for r in each)
        cpus = sorted(r["cpu_ms"] for r in each)
        sent = sorted(int(r["sent"]) for r in each)
        print(f"{backend} [{name}]: complete calls/s {', '.join(f'{r:.0f}' for r in rates)} "
              f"(median {statistics.median(rates):.0f}); ms of CPU a call {', '.join(f'{c:.2f}' for c in cpus)} "
              f"(median {statistics.median(cpus):.2f}); pushes sent {', '.join(map(str, sent))}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--step", type=float, default=120.0, help=(
        "virtual seconds per clock advance (120: under an event's 300 s lifetime, so every push is sent; with 600 "
        "many events expire unsent while the clock jumps)"))
    ap.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    ap.add_argument("--profile", default="", help="py-spy the server into PROFILE.<backend>.txt (collapsed)")
    ap.add_argument("--compare", metavar="SRC", help="also run a copy of vpbx's src/ (e.g. an earlier commit's), "
                                                     "alternating with this tree")
    ap.add_argument("--rounds", type=int, default=3, help="with --compare: runs of each tree per backend")
    args = ap.parse_args()
    print(f"# engine through the server (virtual clock, loopback CRM); {load()}")
    for backend in BACKENDS if args.backend == "both" else (args.backend,):
        if args.compare:
            compare(backend, args.calls, args.step, args.compare, args.rounds)
        else:
            run_backend(backend, args.calls, args.step, args.profile)


if __name__ == "__main__":
    main()
