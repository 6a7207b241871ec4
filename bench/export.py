"""History CSV export (002 §4.1) of 1M rows through the real endpoint vs ``sqlite3 -csv`` on the same table.

Two domains in one SQLite store: one with 10k rows, one with 1M. A ``vpbx serve`` process exports each
(``GET /crmapi/v1/history/csv`` with start/end covering every row, read to the end by a streaming
client); the server's peak RSS (VmHWM) is read after each export: a streaming export keeps it flat
from 10k to 1M rows. Then ``sqlite3 -csv`` runs the same query (same columns, filter and order).

    .venv/bin/python bench/export.py [--rows 1000000] [--small 10000] [--keep]

The machine's load average is printed before and after: on a shared machine compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port, rss_mb, wait_http

VPBX = [sys.executable, "-m", "vpbx.cli"]
KEYS = {"small.local": "bench-small-0123456789abcdef", "big.local": "bench-big-0123456789abcdefgh"}
START = datetime(2025, 1, 1, tzinfo=UTC)
QUERY = ("SELECT callid, type, status, destination, client, user_login, group_id, diversion, start, wait, duration, "
         "link, rating FROM call_history WHERE domain_id = {d} AND start >= '2025-01-01 00:00:00.000000' "
         "AND start < '2025-12-31 00:00:00.000000' ORDER BY start DESC, id DESC")


def peak_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def fill(db: Path, domain: str, rows: int) -> int:
    conn = sqlite3.connect(db)
    domain_id = conn.execute("SELECT id FROM domains WHERE name = ?", (domain,)).fetchone()[0]
    rnd = random.Random(7)
    statuses = ["Success"] * 7 + ["Missed", "Cancel"]

    def gen() -> object:
        for i in range(rows):
            status = rnd.choice(statuses)
            ok = status == "Success"
            start = START + timedelta(seconds=i * 20)
            yield (domain_id, f"{i:012d}{rnd.getrandbits(64):016x}", "in", status, "user" if ok else "group",
                   f"7910{rnd.randrange(10**7):07d}", "manager" if ok else "", "Ольга Смирнова" if ok else "",
                   "704" if ok else "", "", "manager" if ok else "", "", "sales", "Отдел продаж", "74951234567",
                   "Основной", start.strftime("%Y-%m-%d %H:%M:%S.%f"), rnd.randrange(30), rnd.randrange(600) if ok
                   else 0, f"https://pbx.example/records/{i}" if ok else "", None, None if ok else 3, "")

    conn.executemany(
        "INSERT INTO call_history (domain_id, callid, type, status, destination, client, user_login, user_name, "
        "user_ext, user_telnum, first_login, first_name, group_id, group_name, diversion, telnum_name, start, wait, "
        "duration, link, rating, missed_status, note) VALUES (" + ",".join("?" * 23) + ")", gen())
    conn.commit()
    conn.close()
    return int(domain_id)


def export(url: str, key: str) -> tuple[float, int, int]:
    """Seconds, bytes and lines of one streamed export."""
    req = urllib.request.Request(f"{url}/crmapi/v1/history/csv?start=20250101T000000Z&end=20251230T235959Z",
                                 headers={"X-API-KEY": key})
    began = time.perf_counter()
    size = lines = 0
    with urllib.request.urlopen(req, timeout=600) as r:
        assert r.status == 200
        while chunk := r.read(1 << 16):
            size += len(chunk)
            lines += chunk.count(b"\n")
    return time.perf_counter() - began, size, lines


def sqlite_csv(db: Path, domain_id: int) -> tuple[float, int, int, float]:
    """Seconds, bytes, lines and peak RSS (MB) of ``sqlite3 -csv`` on the same query."""
    began = time.perf_counter()
    proc = subprocess.Popen(["sqlite3", "-csv", str(db), QUERY.format(d=domain_id)], stdout=subprocess.PIPE)
    size = lines = 0
    assert proc.stdout is not None
    while chunk := proc.stdout.read(1 << 16):
        size += len(chunk)
        lines += chunk.count(b"\n")
    _, status, usage = os.wait4(proc.pid, 0)
    assert status == 0
    return time.perf_counter() - began, size, lines, usage.ru_maxrss / 1024


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def run(args: argparse.Namespace, tmp: Path) -> None:
    env = {**os.environ, "VPBX_HOME": str(tmp)}
    for name, key in KEYS.items():
        subprocess.run([*VPBX, "domain", "create", name, "--api-key", key, "--no-demo-data"], env=env, check=True,
                       capture_output=True)
    db = tmp / "vpbx.db"
    began = time.perf_counter()
    small_id = fill(db, "small.local", args.small)
    big_id = fill(db, "big.local", args.rows)
    print(f"filled {args.small} + {args.rows} rows in {time.perf_counter() - began:.1f} s "
          f"({db.stat().st_size / 1e6:.0f} MB)")
    print(f"before the exports: {load()}")
    port = free_port()
    server = subprocess.Popen([*VPBX, "serve", "--port", str(port), "--no-demo"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz")
        idle = rss_mb(server.pid)
        s_small, b_small, l_small = export(url, KEYS["small.local"])
        hwm_small = peak_mb(server.pid)
        s_big, b_big, l_big = export(url, KEYS["big.local"])
        hwm_big = peak_mb(server.pid)
    finally:
        server.terminate()
        server.wait(10)
    assert (l_small, l_big) == (args.small, args.rows), (l_small, l_big)
    q_small = sqlite_csv(db, small_id)
    q_big = sqlite_csv(db, big_id)
    print(f"server idle RSS {idle:.0f} MB")
    print(f"vpbx   {args.small:>9} rows: {s_small:6.2f} s {b_small / 1e6:7.1f} MB  peak RSS {hwm_small:6.1f} MB")
    print(f"vpbx   {args.rows:>9} rows: {s_big:6.2f} s {b_big / 1e6:7.1f} MB  peak RSS {hwm_big:6.1f} MB  "
          f"{args.rows / s_big:,.0f} rows/s")
    print(f"sqlite3 -csv {args.small:>4} rows: {q_small[0]:6.2f} s {q_small[1] / 1e6:7.1f} MB  peak RSS "
          f"{q_small[3]:6.1f} MB")
    print(f"sqlite3 -csv {args.rows} rows: {q_big[0]:6.2f} s {q_big[1] / 1e6:7.1f} MB  peak RSS {q_big[3]:6.1f} MB")
    print(f"speed ratio vpbx/sqlite3 at {args.rows} rows: {q_big[0] / s_big:.2f} (target >= 0.5); "
          f"server peak RSS growth 10k -> {args.rows}: {hwm_big - hwm_small:+.1f} MB")
    print(f"after the exports: {load()}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--keep", action="store_true", help="keep the store (its directory is printed)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vpbx-bench-export-"))
    try:
        run(args, tmp)
    finally:
        if args.keep:
            print(f"store kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
