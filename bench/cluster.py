"""vpbx as a cluster on PostgreSQL: one node against two (``vpbx serve --workers 2`` on one port), and failover.

* API reads: wrk (-c32) on ``/crmapi/v1/users`` of one domain, one node then two;
* simulated calls spread over 8 domains: POST /sim/v1/calls from 32 concurrent clients for ``--seconds``; with
  two nodes about half land on the domain's non-owner and are forwarded (one hop);
* failover: two nodes on their own ports; SIGKILL the owner of domain 1, time until the other owns all of the dead
  node's domains (``/readyz``), start it again, repeat ``--kills`` times: p50/p99.

    .venv/bin/python bench/cluster.py [--seconds 10] [--kills 20]

The targets (issue 15): two nodes ≥ 1.5x one for reads and ≥ 1.3x for calls, on a 2-core machine — where wrk and
the load generator share the cores with the nodes, so the ratio is bounded by what is left to them.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port, wait_http, wrk

VPBX = [sys.executable, "-m", "vpbx.cli"]
PG = os.environ.get("VPBX_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DOMAINS = 8
NUMBER = "74951234567"
SALES = ("admin", "manager", "ivan", "maria")


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def make_store(home: Path) -> tuple[str, list[str]]:
    """A fresh database with DOMAINS demo companies; their API keys."""
    from vpbx.app import build_runtime
    from vpbx.bootstrap import prepare_store
    from vpbx.services import demo, tenancy
    from vpbx.settings import Settings

    name = f"bench_cluster_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = f"{PG.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"

    async def work() -> list[str]:
        runtime = build_runtime(Settings(db=url, home=home, demo=False, cluster=False))
        try:
            await prepare_store(runtime)
            keys = []
            async with runtime.sessions() as session:
                for i in range(DOMAINS):
                    created = await tenancy.create_domain(session, f"b{i}.bench", runtime.clock.now())
                    await demo.populate(session, created.domain, runtime.clock.now())
                    keys.append(created.api_key)
                await session.commit()
            return keys
        finally:
            runtime.reader.dispose()
            await runtime.engine.dispose()

    return url, asyncio.run(work())


def serve(url: str, home: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VPBX_DEMO_PHONES": "0", "VPBX_LOG_LEVEL": "warning"}
    log = (home / f"serve-{port}.log").open("ab")
    return subprocess.Popen([*VPBX, "serve", "--port", str(port), "--db", url, "--home", str(home), "--no-demo",
                             *extra], env=env, stdout=log, stderr=log)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def ready_nodes(base: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = httpx.get(f"{base}/readyz", timeout=2).json()
            if len(body.get("nodes", [])) >= count:
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{count} nodes not up behind {base}")


def spread(base: str, keys: list[str], nodes: int, timeout: float = 30) -> dict[str, int]:
    """Every domain claimed (a request for a domain nobody owns claims it) and spread over the nodes as the
    balance aims (ceil(domains / nodes) each): the node each /readyz answer came from, with its domain count."""
    target = math.ceil(len(keys) / nodes)
    deadline = time.monotonic() + timeout
    seen: dict[str, int] = {}
    while time.monotonic() < deadline:
        for key in keys:
            httpx.get(f"{base}/sim/v1/calls", headers={"X-API-KEY": key}, timeout=10)  # 503 while moving: next pass
        seen = {}
        for _ in range(8 * nodes):  # the shared port reaches every node sooner or later
            body = httpx.get(f"{base}/readyz", timeout=5).json()
            seen[str(body["node"])] = len(body["domains"]) if isinstance(body["domains"], list) else len(keys)
        if len(seen) >= nodes and sum(seen.values()) == len(keys) and max(seen.values()) <= target:
            return seen
        time.sleep(0.5)
    raise TimeoutError(f"domains not spread over {nodes} nodes: {seen}")


async def calls_per_second(base: str, keys: list[str], seconds: float, concurrency: int = 32) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        for key in keys:  # phones answer at once and talk 1 s (set on each domain's owner, forwarded)
            for login in SALES:
                for _ in range(20):  # 503 + Retry-After: the domain is changing owner (the documented answer)
                    r = await c.put(f"/sim/v1/devices/{login}", headers={"X-API-KEY": key},
                                    json={"registered": True, "auto": {"action": "answer", "after": 0, "talk": 1}})
                    if r.status_code != 503:
                        break
                    await asyncio.sleep(float(r.headers.get("retry-after", "1")))
                r.raise_for_status()
    # The calls themselves come from wrk (C, two threads) rather than a Python client, which would take a core of
    # its own on this 2-core machine and bound both sides alike: each request picks a domain's key at random.
    lua = Path(tempfile.mkdtemp(prefix="vpbx-bench-cluster-")) / "calls.lua"
    lua.write_text("""
local keys = {{{}}}
local n = 0
request = function()
  n = n + 1
  local body = string.format('{{"from": "79%09d", "to": "{}"}}', (n * 7919 + math.random(0, 9999)) % 1000000000)
  return wrk.format("POST", "/sim/v1/calls", {{["X-API-KEY"] = keys[math.random(#keys)],
                    ["Content-Type"] = "application/json"}}, body)
end
""".format(", ".join(f'"{k}"' for k in keys), NUMBER))
    return wrk(f"{base}/sim/v1/calls", int(seconds), connections=concurrency, script=str(lua))


def measure(url: str, home: Path, keys: list[str], workers: int, seconds: int) -> tuple[float, float]:
    port = free_port()
    proc = serve(url, home, port, *(["--workers", str(workers)] if workers > 1 else []))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", timeout=60)
        ready_nodes(base, workers)
        print(f"  {workers} node(s): domains owned {spread(base, keys, workers)}")
        wrk(f"{base}/crmapi/v1/users", 2, headers={"X-API-KEY": keys[0]})  # warm-up
        reads = wrk(f"{base}/crmapi/v1/users", seconds, headers={"X-API-KEY": keys[0]})
        calls = asyncio.run(calls_per_second(base, keys, seconds))
        return reads, calls
    finally:
        stop(proc)


def failover(url: str, home: Path, kills: int) -> list[float]:
    ports = [free_port(), free_port()]
    procs = [serve(url, home, p) for p in ports]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    times = []
    try:
        for b in bases:
            wait_http(f"{b}/readyz", timeout=60)
        for _ in range(kills):
            owned = [set(), set()]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # balanced again after the last restart
                owned = [set(httpx.get(f"{b}/readyz", timeout=5).json()["domains"]) for b in bases]
                if all(owned) and len(owned[0] | owned[1]) == DOMAINS:
                    break
                time.sleep(0.1)
            victim = 0 if 1 in owned[0] else 1
            other = 1 - victim
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(10)
            killed = time.monotonic()
            while not owned[victim] <= set(httpx.get(f"{bases[other]}/readyz", timeout=5).json()["domains"]):
                time.sleep(0.02)
            times.append(time.monotonic() - killed)
            procs[victim] = serve(url, home, ports[victim])
            wait_http(f"{bases[victim]}/readyz", timeout=60)
    finally:
        for p in procs:
            stop(p)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--kills", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        url, keys = make_store(home)
        try:
            print(f"cluster bench: {DOMAINS} domains, {os.cpu_count()} cores, {args.seconds} s per measurement")
            one = measure(url, home, keys, 1, args.seconds)
            print(f"1 node : reads {one[0]:8.0f}/s   calls {one[1]:7.1f}/s")
            two = measure(url, home, keys, 2, args.seconds)
            print(f"2 nodes: reads {two[0]:8.0f}/s   calls {two[1]:7.1f}/s   "
                  f"(x{two[0] / one[0]:.2f} reads, x{two[1] / one[1]:.2f} calls; targets x1.5 and x1.3)")
            if args.kills:
                times = sorted(failover(url, home, args.kills))
                p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
                print(f"failover over {len(times)} SIGKILLs: p50 {statistics.median(times):.2f} s, "
                      f"p99 {p99:.2f} s, max {times[-1]:.2f} s")
        finally:
            name = url.rsplit("/", 1)[1]
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
