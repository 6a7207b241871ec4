"""GET /crmapi/v1/users (50 employees) against a bare Starlette route returning the same bytes.

Both run as uvicorn servers with the same settings (uvloop, httptools, one worker, no access log),
measured by wrk in one run, alternating, so the ratio is fair on a noisy machine. Also measures the
time from ``vpbx serve`` start to ``/healthz`` 200 and the idle RSS.

    .venv/bin/python bench/api_reads.py [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port, rss_mb, wait_http, wrk

KEY = "bench-key-0123456789abcdef"
VPBX = [sys.executable, "-m", "vpbx.cli"]

BARE_APP = textwrap.dedent(
    """
    import sys
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    BODY = open(sys.argv[1], "rb").read()

    async def users(request):
        return Response(BODY, media_type="application/json")

    app = Starlette(routes=[Route("/crmapi/v1/users", users)])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", loop="uvloop",
                http="httptools")
    """
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--users", type=int, default=50)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vpbx-bench-"))
    env = {**os.environ, "VPBX_HOME": str(tmp)}
    subprocess.run([*VPBX, "domain", "create", "bench.local", "--api-key", KEY, "--no-demo-data"], env=env,
                   check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen([*VPBX, "serve", "--port", str(port), "--no-demo"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bare = None
    try:
        started = wait_http(f"http://127.0.0.1:{port}/healthz")
        idle_rss = rss_mb(server.pid)
        base = f"http://127.0.0.1:{port}/crmapi/v1/users"
        for i in range(args.users):
            body = f'{{"name": "Сотрудник {i}", "email": "u{i}@example.com", "mobile": "7916{i:07d}"}}'.encode()
            req = urllib.request.Request(base, data=body, method="POST",
                                         headers={"X-API-KEY": KEY, "Content-Type": "application/json"})
            urllib.request.urlopen(req).read()
        with urllib.request.urlopen(urllib.request.Request(base, headers={"X-API-KEY": KEY})) as r:
            payload = r.read()
        body_file = tmp / "users.json"
        body_file.write_bytes(payload)
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(body_file), str(bare_port)])
        wait_http(f"http://127.0.0.1:{bare_port}/crmapi/v1/users")
        bare_url = f"http://127.0.0.1:{bare_port}/crmapi/v1/users"

        wrk(base, 2, headers={"X-API-KEY": KEY})  # warm up both
        wrk(bare_url, 2)
        ours, theirs = [], []
        for _ in range(args.rounds):
            theirs.append(wrk(bare_url, args.seconds))
            ours.append(wrk(base, args.seconds, headers={"X-API-KEY": KEY}))
        o, t = sum(ours) / len(ours), sum(theirs) / len(theirs)
        print(f"response: {len(payload)} bytes, {args.users} employees, wrk -t2 -c32, {args.rounds}x{args.seconds}s")
        print(f"bare Starlette route:      {t:9.0f} req/s")
        print(f"vpbx GET /crmapi/v1/users: {o:9.0f} req/s  (auth + SQLite + serialisation)")
        print(f"ratio: {o / t:.2f}  (target >= 0.5)")
        print(f"vpbx serve start -> /healthz 200: {started * 1000:.0f} ms  (target < 1000 ms)")
        print(f"idle RSS after start: {idle_rss:.0f} MB  (target < 120 MB)")
    finally:
        server.terminate()
        if bare is not None:
            bare.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
