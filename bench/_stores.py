"""Benchmarks on both backends: a store per backend, a ``vpbx serve`` on it, PostgreSQL's connection count.

PostgreSQL is ``VPBX_BENCH_PG_URL`` (else ``VPBX_TEST_PG_URL``, else the local server the tests use); a fresh
database per benchmark. A backend that is not there is reported as skipped, never silently left out.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import free_port, wait_http

VPBX = [sys.executable, "-m", "vpbx.cli"]
BACKENDS = ("sqlite", "postgres")


def pg_base() -> str | None:
    from vpbx.testing.postgres import url_for_tests

    return os.environ.get("VPBX_BENCH_PG_URL") or url_for_tests() or None


def store_url(backend: str, tmp: Path, name: str) -> str | None:
    """A new empty store for ``backend``; None when PostgreSQL is not there."""
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'vpbx.db'}"
    base = pg_base()
    if not base:
        return None
    from vpbx.testing.postgres import empty_database

    return empty_database(base, f"_bench_{name}")


def vpbx(url: str, home: Path, *args: str) -> str:
    done = subprocess.run([*VPBX, *args, "--db", url, "--home", str(home)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"vpbx {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


@contextmanager
def served(url: str, home: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``vpbx serve`` on the store (uvloop, httptools, one process, no access log), until the block ends."""
    port = free_port()
    log = home / "serve.log"  # its log (one line a request): shown when a measurement fails
    with log.open("wb") as out:
        server = subprocess.Popen([*VPBX, "serve", "--port", str(port), "--no-demo", "--db", url, "--home",
                                   str(home)], stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", timeout=60)
        yield base, server
    except BaseException:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if "status=200" not in ln]
        print("vpbx serve's log, without its 200s:\n" + "\n".join(lines[-40:]), file=sys.stderr)
        raise
    finally:
        server.terminate()
        server.wait(15)


def pg_sessions(url: str) -> int:
    """Connections ever opened to the database (``pg_stat_database.sessions``, PostgreSQL 14+). A backend reports
    its connection with its stats (at a transaction's end, at most once a second, or as it closes): read after a
    pause. Each reading's own connection is counted by the next reading, so new ones = after - before - 1."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    dsn = u.set(drivername="postgresql").render_as_string(hide_password=False)

    async def read() -> int:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            return int(await conn.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = $1", u.database))
        finally:
            await conn.close()

    return asyncio.run(read())


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
