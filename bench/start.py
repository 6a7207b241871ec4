"""``vpbx serve`` start to ``/healthz`` 200 on a warm home, and the idle RSS, on SQLite and on PostgreSQL.

For each backend: a fresh store and home, one ``vpbx serve`` to warm them (migrations, the demo company), vpbx's
bytecode compiled as an install leaves it (``compileall``: where PYTHONDONTWRITEBYTECODE is set, as on this machine
kind, nothing writes it and each start compiled every module again: 0.2 s), then ``--runs`` starts timed from the
process's launch to the first ``/healthz`` 200. The idle RSS is read ``--idle`` seconds after that 200 (the demo
phones registered, nothing else happening). Targets: < 1 s and < 120 MB. The limit side is the bare interpreter:
``python -c pass`` started the same way (what no server can go under on this machine at this moment).

    .venv/bin/python bench/start.py [--runs 5] [--idle 3] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import cpu_seconds, free_port, rss_mb, wait_http
from _stores import BACKENDS, VPBX, load, store_url


def one_start(url: str, home: Path, idle: float) -> tuple[float, float, float]:
    """Seconds from launch to ``/healthz`` 200, the CPU seconds that took, and the RSS (MB) ``idle`` s later."""
    port = free_port()
    began = time.perf_counter()
    server = subprocess.Popen([*VPBX, "serve", "--port", str(port), "--db", url, "--home", str(home)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        took = time.perf_counter() - began
        cpu = cpu_seconds(server.pid)
        time.sleep(idle)
        return took, cpu, rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(15)


def bare_interpreter() -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - began


# What any server on this stack imports before it can answer (the floor under vpbx's own code, on this machine now).
STACK = ("import fastapi, uvicorn, uvloop, httptools, sqlalchemy.ext.asyncio, sqlalchemy.orm, pydantic_settings, "
         "typer, rich, prometheus_client, phonenumbers, {driver}")


def stack_imports(driver: str) -> float:
    """CPU seconds (user + system) of a fresh interpreter importing STACK: on a loaded machine the steadier figure."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", STACK.format(driver=driver)], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle", type=float, default=3.0, help="seconds after /healthz before reading RSS")
    ap.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    args = ap.parse_args()
    import compileall

    import vpbx

    compileall.compile_dir(str(Path(vpbx.__file__).parent), quiet=1)  # what pip or `make install` leaves
    print(f"# vpbx serve start (demo company, warm home); {load()}")
    for backend in BACKENDS if args.backend == "both" else (args.backend,):
        with tempfile.TemporaryDirectory(prefix=f"vpbx-bench-start-{backend}-") as t:
            tmp = Path(t)
            url = store_url(backend, tmp, "start")
            if url is None:
                print(f"{backend}: skipped (no PostgreSQL: set VPBX_BENCH_PG_URL)")
                continue
            one_start(url, tmp / "home", 0.5)  # the warm-up: migrations, demo data, caches
            starts, cpus, rss = [], [], []
            bare = [bare_interpreter() for _ in range(3)]
            stack = [stack_imports("aiosqlite" if backend == "sqlite" else "asyncpg") for _ in range(3)]
            for _ in range(args.runs):
                took, cpu, mb = one_start(url, tmp / "home", args.idle)
                starts.append(took)
                cpus.append(cpu)
                rss.append(mb)
            med, worst = statistics.median(starts), max(starts)
            print(f"{backend:8s} start to /healthz 200: median {med:5.2f} s, max {worst:5.2f} s "
                  f"({'met' if med < 1 else 'NOT met'}: < 1 s); its CPU time {statistics.median(cpus):5.2f} s; "
                  f"bare interpreter {min(bare):5.3f} s; the libraries' imports alone take "
                  f"{statistics.median(stack):5.2f} s of CPU")
            print(f"{backend:8s} idle RSS: median {statistics.median(rss):6.1f} MB, max {max(rss):6.1f} MB "
                  f"({'met' if max(rss) < 120 else 'NOT met'}: < 120 MB)")


if __name__ == "__main__":
    main()
