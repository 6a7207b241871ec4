"""Configuration writes at 32 connections: create, update and delete of employees, departments and number
routes, on SQLite and on PostgreSQL (issue 14 "Writes": >= 500/s, p99 < 50 ms, the event loop's lag p99 < 5 ms).

The server is vpbx's app under uvicorn as ``vpbx serve`` runs it (uvloop, httptools), plus a probe that
measures how late a 5 ms sleep on its event loop wakes up (the loop's lag: hashing or blocking I/O on the loop
shows here). The load is a pool of clients (aiohttp, keep-alive) each repeating one cycle of seven writes:
employee create (no password: 002 §6.3 generates one), employee update, department create, department update,
a number's route pointed at the new employee, department delete, employee delete. It also counts 5xx answers and
the server's "database is locked" log lines (both must be 0), and reports the server's CPU time per write (all its
threads: on a shared machine the steadiest figure, and what bounds the rate; then per thread: the event loop's,
the SQLite driver's, the hashing pool's) and its garbage collector's passes (the full ones apart).

    .venv/bin/python bench/writes.py [--backend sqlite|postgres|both] [--seconds 10] [--connections 32]
                                     [--compare OLD/src] [--profile PREFIX] [--workers N] [--rate R]

``--compare`` runs another copy of vpbx's ``src/`` (an earlier commit's, checked out elsewhere) with the same load,
alternating with this tree per backend, and prints both in one table: on a busy machine only figures taken side
by side compare. ``--profile`` records the server with py-spy (raw stacks; py-spy on PATH).

``--rate R`` paces the clients to R writes a second in all (an open schedule: each write waits for its slot), so the
loop's lag can be read below saturation: it then shows a step that blocks the loop, not the queue of a saturated one.

``--workers N`` (PostgreSQL only, as ``vpbx serve`` allows): the server is ``vpbx serve --workers N`` itself, N
processes sharing the port, as a host with more cores runs it; its CPU is summed over the processes, and the
loop's lag is not measured (the probe lives in the bench's own server).

PostgreSQL: ``VPBX_TEST_PG_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``); the bench
creates a database of its own beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port, tree_cpu_seconds, wait_http

KEY = "bench-key-0123456789abcdef"
VPBX = [sys.executable, "-m", "vpbx.cli"]
V1 = "/crmapi/v1"
NUMBERS = ("74951234567", "74957654321", "78121234567")  # the demo company's

SERVER = textwrap.dedent(
    """
    import asyncio, gc, sys, time
    import uvicorn
    from starlette.responses import JSONResponse
    from vpbx.app import create_app
    from vpbx.settings import Settings

    lags = []
    pauses = []  # the garbage collector's passes (ms): a pause of the loop that is not I/O
    began_gc = [0.0]
    full = []  # the full collections' passes (ms)

    def on_gc(phase, info):
        if phase == "start":
            began_gc[0] = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - began_gc[0]) * 1000)
            if info.get("generation") == 2:
                full.append(pauses[-1])

    gc.callbacks.append(on_gc)

    async def probe():  # perf_counter: uvloop's loop.time() counts whole milliseconds
        while True:
            began = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(max(0.0, time.perf_counter() - began - 0.005))

    def thread_cpu():  # CPU seconds per thread (the event loop's, the SQLite driver's, the hashing pool's, ...)
        import os, threading
        names = {t.native_id: t.name for t in threading.enumerate()}
        out = {}
        for tid in os.listdir("/proc/self/task"):
            try:
                fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            name = names.get(int(tid), "other")
            name = "event loop" if name == "MainThread" else name.split("-")[0].split("_")[0]
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return out

    app = create_app(Settings())
    try:  # as `vpbx serve` does once the app is built (a tree without it: the collector's defaults)
        from vpbx import gctune
        gctune.tune()
    except ImportError:
        pass
    probes = []

    @app.get("/_bench/lag", include_in_schema=False)
    async def lag(reset: bool = False):
        if not probes:  # started by the first call, on the server's loop
            probes.append(asyncio.get_running_loop().create_task(probe()))
        data = sorted(lags)
        gcs = sorted(pauses)
        if reset:
            lags.clear()
            pauses.clear()
            full.clear()
        pick = lambda q: data[min(len(data) - 1, int(q * len(data)))] * 1000 if data else 0.0
        return JSONResponse({"samples": len(data), "p50_ms": pick(0.5), "p99_ms": pick(0.99),
                             "max_ms": data[-1] * 1000 if data else 0.0, "cpu_s": time.process_time(),
                             "threads": thread_cpu(),
                             "gc_passes": len(gcs), "gc_max_ms": gcs[-1] if gcs else 0.0,
                             "gc_total_ms": sum(gcs), "gc_full": len(full), "gc_full_max_ms": max(full, default=0.0)})

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
                loop="uvloop", http="httptools")
    """
)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    data = sorted(values)
    return data[min(len(data) - 1, int(q * len(data)))]


class Load:
    def __init__(self, base: str) -> None:
        self.base = base
        self.latencies: list[float] = []
        self.by_op: dict[str, list[float]] = {}
        self.statuses: dict[int, int] = {}
        self.errors: list[str] = []
        self.measuring = False
        self.elapsed = 0.0
        self.lag: dict[str, Any] = {}
        self.rate = 0.0  # writes a second in all (0: as fast as the answers come)
        self._slot = 0
        self._paced_from = 0.0

    def pace(self, rate: float) -> None:
        self.rate, self._slot, self._paced_from = rate, 0, time.monotonic()

    async def call(self, http: aiohttp.ClientSession, op: str, method: str, path: str,
                   body: dict[str, object] | None = None) -> dict[str, object] | None:
        if self.rate:
            self._slot += 1
            wait = self._paced_from + self._slot / self.rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        began = time.perf_counter()
        async with http.request(method, self.base + path, json=body) as resp:
            data = await resp.read()
            status = resp.status
        elapsed = time.perf_counter() - began
        if self.measuring:
            self.latencies.append(elapsed)
            self.by_op.setdefault(op, []).append(elapsed)
            self.statuses[status] = self.statuses.get(status, 0) + 1
        if status >= 300 or not data:
            if status >= 300 and (status >= 500 or len(self.errors) < 5):
                self.errors.append(f"{method} {path}: {status} {data[:200]!r}")
            return None
        parsed: dict[str, object] = orjson.loads(data)
        return parsed

    async def client(self, http: aiohttp.ClientSession, n: int, until: float) -> None:
        i = 0
        while time.monotonic() < until:
            i += 1
            user = await self.call(http, "user create", "POST", f"{V1}/users", {"name": f"Bench {n}.{i}"})
            if user is None:
                continue
            login = str(user["login"])
            await self.call(http, "user update", "PUT", f"{V1}/users/{login}",
                            {"position": "Инженер", "email": f"b{n}.{i}@example.com"})
            group = await self.call(http, "group create", "POST", f"{V1}/groups",
                                    {"name": f"Dept {n}.{i}", "users": [{"login": login, "calls_enable": True}]})
            if group is not None:
                await self.call(http, "group update", "PUT", f"{V1}/groups/{group['id']}",
                                {"name": f"Dept {n}.{i}b", "call_order": "EVENLY"})
            await self.call(http, "route update", "POST", f"{V1}/telnums/{NUMBERS[n % len(NUMBERS)]}",
                            {"type": "user", "user": login, "greeting": False})
            if group is not None:
                await self.call(http, "group delete", "DELETE", f"{V1}/groups/{group['id']}")
            await self.call(http, "user delete", "DELETE", f"{V1}/users/{login}")


NO_PROBE = {"samples": 0, "p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan"), "threads": {},
            "gc_passes": float("nan"), "gc_max_ms": float("nan"), "gc_total_ms": float("nan"),
            "gc_full": float("nan"), "gc_full_max_ms": float("nan")}


async def run_load(base: str, seconds: float, connections: int, workers_pid: int | None = None,
                   rate: float = 0.0) -> Load:
    """``workers_pid``: the server is ``vpbx serve --workers`` (no probe): its processes' CPU is read from /proc."""
    load = Load(base)
    if rate:
        load.pace(rate)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers={"X-API-KEY": KEY}) as http:
        if workers_pid is None:
            async with http.get(base + "/_bench/lag") as r:
                await r.read()
        warm = time.monotonic() + 2
        await asyncio.gather(*(load.client(http, n, warm) for n in range(connections)))
        if workers_pid is None:
            async with http.get(base + "/_bench/lag?reset=true") as r:
                before = await r.json()
                cpu_before = float(before["cpu_s"])
        else:
            before, cpu_before = dict(NO_PROBE), tree_cpu_seconds(workers_pid)
        load.measuring = True
        if rate:
            load.pace(rate)
        began = time.monotonic()
        await asyncio.gather(*(load.client(http, n, began + seconds) for n in range(connections)))
        load.elapsed = time.monotonic() - began
        if workers_pid is None:
            async with http.get(base + "/_bench/lag") as r:
                load.lag = await r.json()
        else:
            load.lag = {**NO_PROBE, "cpu_s": tree_cpu_seconds(workers_pid)}
        load.lag["cpu_s"] = float(load.lag["cpu_s"]) - cpu_before
        load.lag["threads"] = {name: cpu - before["threads"].get(name, 0.0)
                               for name, cpu in load.lag["threads"].items()}
    return load


def bench(backend: str, seconds: float, connections: int, profile: str | None = None,
          src: str | None = None, label: str = "", workers: int = 1, rate: float = 0.0) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="vpbx-bench-writes-"))
    env = {**os.environ, "VPBX_HOME": str(tmp)}
    if src:  # another tree of vpbx's code (``--compare``): the same bench, side by side in one run
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    if backend == "postgres":
        from vpbx.testing.postgres import empty_database

        env["VPBX_DB"] = empty_database(os.environ.get("VPBX_TEST_PG_URL",
                                                       "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    else:
        env.pop("VPBX_DB", None)
    subprocess.run([*VPBX, "domain", "create", "bench.local", "--api-key", KEY], env=env, check=True,
                   capture_output=True)
    port = free_port()
    log = tmp / "server.log"
    with open(log, "wb") as out:
        cmd = [sys.executable, "-c", SERVER, str(port)]
        if workers > 1:  # vpbx's own supervisor: N processes on the port (SO_REUSEPORT), as `vpbx serve` runs them
            cmd = [*VPBX, "serve", "--workers", str(workers), "--port", str(port), "--no-demo",
                   "--log-level", "warning"]
        if profile:  # py-spy's flame data of the server (a tool of the developer's, not a dependency)
            cmd = ["py-spy", "record", "-r", "250", "-f", "raw", "-o", f"{profile}-{backend}.txt", "--", *cmd]
        server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        load = asyncio.run(run_load(f"http://127.0.0.1:{port}", seconds, connections,
                                    server.pid if workers > 1 else None, rate))
    finally:
        if profile:
            server.send_signal(signal.SIGINT)  # py-spy writes its file as it stops
        else:
            server.terminate()
        server.wait(30)
    text = log.read_text(errors="replace")
    total = len(load.latencies)
    figures = {
        "writes_per_s": total / load.elapsed,
        "p50_ms": percentile(load.latencies, 0.5) * 1000,
        "p99_ms": percentile(load.latencies, 0.99) * 1000,
        "loop_lag_p99_ms": float(load.lag["p99_ms"]),
        "server_cpu_ms_per_write": float(load.lag["cpu_s"]) * 1000 / max(1, total),
        "loop_lag_max_ms": float(load.lag["max_ms"]),
        "5xx": float(sum(n for s, n in load.statuses.items() if s >= 500)),
        "database_is_locked": float(text.count("database is locked")),
    }
    if workers > 1:
        label += f" [vpbx serve --workers {workers}]"
    if rate:
        label += f" [paced at {rate:.0f} writes/s]"
    print(f"\n{backend}{label}: {total} writes in {load.elapsed:.1f} s at {connections} connections ({load_avg()})")
    print(f"  statuses {dict(sorted(load.statuses.items()))}")
    for op, values in load.by_op.items():
        print(f"  {op:<13} n={len(values):<6} p50 {percentile(values, 0.5) * 1000:6.1f} ms"
              f"  p99 {percentile(values, 0.99) * 1000:6.1f} ms")
    print(f"  writes/s {figures['writes_per_s']:.0f} (target >= 500)   p99 {figures['p99_ms']:.1f} ms (target < 50)")
    if workers > 1:
        print(f"  server CPU {figures['server_cpu_ms_per_write']:.2f} ms per write (its {workers} processes); "
              "the loop's lag is not measured (no probe in `vpbx serve`)")
    else:
        print(f"  event-loop lag p99 {figures['loop_lag_p99_ms']:.2f} ms (target < 5), "
              f"max {figures['loop_lag_max_ms']:.1f} ms")
        print(f"  server CPU {figures['server_cpu_ms_per_write']:.2f} ms per write (its process, every thread); "
              f"garbage collector: {load.lag['gc_passes']:.0f} passes, {load.lag['gc_total_ms']:.0f} ms, "
              f"longest {load.lag['gc_max_ms']:.1f} ms; {load.lag['gc_full']:.0f} full, longest "
              f"{load.lag['gc_full_max_ms']:.1f} ms")
        threads = sorted(load.lag["threads"].items(), key=lambda kv: -kv[1])
        print("  its threads, CPU ms per write: " + ", ".join(f"{name} {cpu * 1000 / max(1, total):.2f}"
                                                              for name, cpu in threads if cpu > 0))
    print(f"  5xx {figures['5xx']:.0f}   'database is locked' {figures['database_is_locked']:.0f}")
    for line in load.errors[:5]:
        print(f"  ! {line}")
    return figures


def load_avg() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--profile", help="record the server with py-spy into PREFIX-<backend>.txt (raw stacks)")
    ap.add_argument("--rate", type=float, default=0.0, help="pace the load at R writes/s in all (default: none)")
    ap.add_argument("--workers", type=int, default=1, help="PostgreSQL: vpbx serve --workers N as the server")
    ap.add_argument("--compare", metavar="SRC", help="also run a copy of vpbx's src/ (e.g. an earlier commit's), "
                    "alternating with this tree's, and print both")
    args = ap.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if args.workers > 1:
        if "sqlite" in backends and args.backend != "both":
            raise SystemExit("--workers needs PostgreSQL (vpbx serve refuses it on SQLite: one writer, one process)")
        backends = ["postgres"]
    rows: list[tuple[str, dict[str, float]]] = []
    for backend in backends:
        if args.compare:
            rows.append((f"{backend} (compared)", bench(backend, args.seconds, args.connections, src=args.compare,
                                                        label=" [compared tree]", workers=args.workers,
                                                        rate=args.rate)))
        name = backend if args.workers == 1 else f"{backend} ×{args.workers}"
        rows.append((name, bench(backend, args.seconds, args.connections, args.profile, workers=args.workers,
                                 rate=args.rate)))
    print(f"\n{args.connections} connections, {args.seconds:.0f} s measured after 2 s of warm-up, server and load "
          f"on this machine ({os.cpu_count()} cores, {load_avg()})")
    print(f"{'':<20} {'writes/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'lag p99 ms':>11} {'CPU ms/write':>13} {'5xx':>4} "
          f"{'locked':>7}")
    for name, f in rows:
        print(f"{name:<20} {f['writes_per_s']:>9.0f} {f['p50_ms']:>8.1f} {f['p99_ms']:>8.1f} "
              f"{f['loop_lag_p99_ms']:>11.2f} {f['server_cpu_ms_per_write']:>13.2f} {f['5xx']:>4.0f} "
              f"{f['database_is_locked']:>7.0f}")


if __name__ == "__main__":
    main()
