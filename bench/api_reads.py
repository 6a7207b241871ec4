"""Every configuration read of REST v1 and the legacy API against a bare Starlette route serving the same bytes
with auth, on SQLite and on PostgreSQL, and the database connections the reads open once warm.

For each backend: a store with the demo company plus ``--users`` more employees, a ``vpbx serve`` on it, and one
bare Starlette app (uvicorn, uvloop, httptools, one process, like ``vpbx serve``) answering each path with the
bytes vpbx answered, after checking the key (``X-API-KEY``, or the legacy ``token``; in the form for the legacy
commands POSTed as form fields, as the legacy API's clients send them, where the bare app reads the form with the
same ``parse_qsl``). wrk (-c32) measures each
path on both, alternating, in the same run, so the ratio holds on a noisy machine. On PostgreSQL the connections
vpbx opens while measured (after a warm-up) are counted from ``pg_stat_database.sessions``.

    .venv/bin/python bench/api_reads.py [--seconds 3] [--rounds 1] [--backend sqlite|postgres|both]

Also prints ``vpbx serve`` start to ``/healthz`` 200 and the idle RSS (SQLite run).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port, rss_mb, wait_http, wrk
from _stores import BACKENDS, load, pg_sessions, served, store_url, vpbx

KEY = "bench-key-0123456789abcdef"
DOMAIN = "bench.local"
V1 = "/crmapi/v1"
LEGACY = "/sys/crm_api.wcgp"
# (label, path with query, form body or None for a GET); {token} is the domain's legacy token.
READS: list[tuple[str, str, str | None]] = [
    ("users", f"{V1}/users", None),
    ("users page", f"{V1}/users?start=10&limit=20", None),
    ("users with status", f"{V1}/users?with=status", None),
    ("user", f"{V1}/users/ivan", None),
    ("groups", f"{V1}/groups", None),
    ("group", f"{V1}/groups/{{group}}", None),
    ("telnums", f"{V1}/telnums", None),
    ("telnum", f"{V1}/telnums/74951234567", None),
    ("caller-ids", f"{V1}/caller-ids", None),
    ("caller-ids/telnums", f"{V1}/caller-ids/telnums", None),
    ("blacklist", f"{V1}/blacklist/telnums", None),
    ("sip-registrations", f"{V1}/sip-registrations", None),
    ("legacy accounts", f"{LEGACY}?cmd=accounts&token={{token}}", None),
    ("legacy groups", f"{LEGACY}?cmd=groups&token={{token}}", None),
    ("legacy accounts POST", LEGACY, "cmd=accounts&token={token}"),
    ("legacy groups POST", LEGACY, "cmd=groups&token={token}"),
]

BARE_APP = textwrap.dedent(
    """
    import json, sys
    from urllib.parse import parse_qsl
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response

    spec = json.load(open(sys.argv[1]))
    KEY, TOKEN = spec["key"], spec["token"]
    BODIES = {(p, q): bytes.fromhex(b) for p, q, b in spec["bodies"]}
    DENIED = b'{"message":"Invalid token"}'

    async def app_route(request):
        path = request.url.path
        if request.method == "POST":  # a legacy command in form fields
            form = (await request.body()).decode()
            if dict(parse_qsl(form, keep_blank_values=True)).get("token") != TOKEN:
                return Response(DENIED, 401, media_type="application/json")
            return Response(BODIES[(path, form)], media_type="application/json")
        if path == "/sys/crm_api.wcgp":
            if request.query_params.get("token") != TOKEN:
                return Response(DENIED, 401, media_type="application/json")
        elif request.headers.get("x-api-key") != KEY:
            return Response(DENIED, 401, media_type="application/json")
        return Response(BODIES[(path, request.url.query)], media_type="application/json")

    from starlette.routing import Route
    app = Starlette(routes=[Route(p, app_route, methods=["GET", "POST"]) for p in sorted({p for p, _ in BODIES})])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", loop="uvloop",
                http="httptools", access_log=False)
    """
)


def request(base: str, path: str, body: object = None, form: str | None = None) -> bytes:
    """GET ``path``; POST ``body`` as JSON, or ``form`` as form fields."""
    data: bytes | None = None
    ctype = "application/json"
    if form is not None:
        data, ctype = form.encode(), "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(base + path, headers={"X-API-KEY": KEY, "Content-Type": ctype}, data=data,
                                 method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=60) as r:
        return bytes(r.read())


def post_script(tmp: Path, label: str, form: str) -> str:
    """A wrk Lua script POSTing ``form`` (wrk's own requests are GETs)."""
    script = tmp / f"wrk-{label.replace(' ', '-')}.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.body = "{form}"\n'
                      'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n')
    return str(script)


def measure(backend: str, args: argparse.Namespace, tmp: Path) -> list[tuple[str, float, float]] | None:
    home = tmp / backend
    home.mkdir()
    url = store_url(backend, home, "reads")
    if url is None:
        print(f"\n{backend}: skipped (no PostgreSQL here)")
        return None
    vpbx(url, home, "domain", "create", DOMAIN, "--api-key", KEY)  # the demo company: users, groups, numbers
    began = time.perf_counter()
    with served(url, home) as (base, server):
        started = time.perf_counter() - began
        idle = rss_mb(server.pid)
        for i in range(args.users):
            request(base, f"{V1}/users", {"name": f"Сотрудник {i}", "email": f"u{i}@example.com",
                                          "mobile": f"7916{i:07d}"})
        request(base, f"{V1}/blacklist/telnums", [{"telnum": f"7999{i:07d}", "comment": "bench"} for i in range(20)])
        groups = json.loads(request(base, f"{V1}/groups"))["items"]
        legacy_token = _legacy_token(url, home)
        paths = [(label, p.format(group=groups[0]["id"], token=legacy_token),
                  f.format(token=legacy_token) if f is not None else None) for label, p, f in READS]
        answers = {(p, f): request(base, p, form=f) for _, p, f in paths}
        bodies = [(p, f, body.hex()) if f is not None else (*p.partition("?")[::2], body.hex())
                  for (p, f), body in answers.items()]
        scripts = {label: post_script(tmp, f"{backend}-{label}", f) for label, _, f in paths if f is not None}
        spec = tmp / f"bare-{backend}.json"
        spec.write_text(json.dumps({"key": KEY, "token": legacy_token, "bodies": bodies}))
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(spec), str(bare_port)])
        try:
            bare_base = f"http://127.0.0.1:{bare_port}"
            wait_http(bare_base + paths[0][1], headers={"X-API-KEY": KEY})
            for _, p, f in paths:  # the same bytes on both sides
                assert request(bare_base, p, form=f) == answers[(p, f)], p
            for label, p, _ in paths:  # warm-up: caches filled, the pool at its working size
                wrk(base + p, 1, headers={"X-API-KEY": KEY}, script=scripts.get(label))
            time.sleep(1.5)
            sessions_before = pg_sessions(url) if backend == "postgres" else 0
            results = []
            for label, p, _ in paths:
                ours, theirs = [], []
                for _ in range(args.rounds):
                    theirs.append(wrk(bare_base + p, args.seconds, headers={"X-API-KEY": KEY},
                                      script=scripts.get(label)))
                    ours.append(wrk(base + p, args.seconds, headers={"X-API-KEY": KEY}, script=scripts.get(label)))
                results.append((label, sum(ours) / len(ours), sum(theirs) / len(theirs)))
            time.sleep(1.5)
            opened = pg_sessions(url) - sessions_before - 1 if backend == "postgres" else None
        finally:
            bare.terminate()
            bare.wait(10)
    print(f"\n{backend}: {args.users} extra employees, wrk -t2 -c32, {args.rounds}x{args.seconds}s per side, {load()}")
    print(f"{'read':<22}{'bare req/s':>12}{'vpbx req/s':>12}{'ratio':>8}")
    for label, o, t in results:
        print(f"{label:<22}{t:12.0f}{o:12.0f}{o / t:8.2f}{'' if o / t >= 0.5 else '  < 0.5'}")
    worst = min(o / t for _, o, t in results)
    print(f"lowest ratio: {worst:.2f}  (target >= 0.5 on every read)")
    if opened is not None:
        print(f"PostgreSQL connections opened while measured (after warm-up): {opened}  (target 0)")
    if backend == "sqlite":
        print(f"vpbx serve start -> /healthz 200: {started * 1000:.0f} ms; idle RSS {idle:.0f} MB")
    return results


def _legacy_token(url: str, home: Path) -> str:
    """A legacy token set for the bench (the domain's own is shown once, at creation)."""
    token = "bench-legacy-token-0123456789"
    vpbx(url, home, "integration", "set", "--domain", DOMAIN, "--legacy-token", token)
    return token


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    args = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M')} {platform.node()} {platform.processor() or platform.machine()}, "
          f"{load()}")
    with tempfile.TemporaryDirectory(prefix="vpbx-bench-") as d:
        for backend in BACKENDS if args.backend == "both" else (args.backend,):
            measure(backend, args, Path(d))


if __name__ == "__main__":
    main()
