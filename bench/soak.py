"""Soak: a real-clock ``vpbx serve`` under generated traffic for ``--minutes`` (default 20) at ``--cpm`` calls a
minute (default 600), with a real loopback CRM answering every ``contact`` and taking every push; the server's RSS
is sampled every ``--every`` seconds. Target: RSS flat (within +-10 MB) once warm (after ``--warm`` seconds: the
kept ended calls, a run's log and the caches reach their bounds; README "Memory").

Prints the RSS samples after warm-up (first, last, min, max), the least-squares slope in MB/min, the run's counts
(placed, answered, missed, errors), and every ERROR line and unretrieved task exception of the server's log.

    .venv/bin/python bench/soak.py [--minutes 20] [--cpm 600] [--warm 300] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import rss_mb
from _crm import counts, crm
from _stores import BACKENDS, load, served, store_url
from engine_server import KEY, MAIN, prepare


def get(url: str) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"X-API-KEY": KEY}), timeout=30) as r:
        return json.loads(r.read())


def post(url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"X-API-KEY": KEY, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def slope(samples: list[tuple[float, float]]) -> float:
    """MB per minute, least squares."""
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mr = sum(r for _, r in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    return 60 * sum((t - mt) * (r - mr) for t, r in samples) / var if var else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--cpm", type=float, default=600.0)
    ap.add_argument("--warm", type=float, default=None, help="seconds before RSS counts (default min(300, 1/3 run))")
    ap.add_argument("--every", type=float, default=5.0)
    ap.add_argument("--backend", choices=BACKENDS, default="sqlite")
    args = ap.parse_args()
    total = args.minutes * 60
    warm = args.warm if args.warm is not None else min(300.0, total / 3)
    print(f"# soak: {args.minutes:g} min at {args.cpm:g} calls/min, real clock, {args.backend}, warm after {warm:g} s; "
          f"{load()}")
    with tempfile.TemporaryDirectory(prefix="vpbx-bench-soak-") as t, crm() as crm_base:
        tmp = Path(t)
        url = store_url(args.backend, tmp, "soak")
        if url is None:
            raise SystemExit("no PostgreSQL: set VPBX_BENCH_PG_URL")
        home = tmp / "home"
        prepare(url, home, crm_base)
        os.environ.update(VPBX_CLOCK="real", VPBX_ALLOW_PRIVATE_CRM="1", VPBX_DEMO_PHONES="0", VPBX_LOG_LEVEL="warning")
        with served(url, home) as (base, server):
            idle = rss_mb(server.pid)
            post(f"{base}/sim/v1/traffic", {"calls_per_minute": args.cpm, "duration_s": total, "seed": 14,
                                            "numbers": [MAIN], "answer_after": [2, 6], "talk": [20, 60],
                                            "patience": [10, 40]})
            began = time.monotonic()
            samples: list[tuple[float, float]] = []
            while (now := time.monotonic() - began) < total:
                rss = rss_mb(server.pid)
                if now >= warm:
                    samples.append((now, rss))
                if int(now) % 60 < args.every:
                    print(f"  {now:6.0f} s  RSS {rss:6.1f} MB", flush=True)
                time.sleep(args.every)
            state = get(f"{base}/sim/v1/traffic")
        log = (home / "serve.log").read_text(errors="replace").splitlines()
        got = counts(crm_base)
    errors = [ln for ln in log if " error " in ln.lower() or "ERROR" in ln]
    unretrieved = [ln for ln in log if "never retrieved" in ln]
    rss = [r for _, r in samples]
    print(f"run: placed {state['placed']}, answered {state['answered']}, missed {state['missed']}, "
          f"live {state['live']}, errors {state['errors']}; the CRM took {got}")
    print(f"RSS idle before the run {idle:.1f} MB; after warm-up: first {rss[0]:.1f}, last {rss[-1]:.1f}, "
          f"min {min(rss):.1f}, max {max(rss):.1f} MB; slope {slope(samples):+.2f} MB/min over {len(rss)} samples")
    flat = max(rss) - min(rss) <= 20 and abs(rss[-1] - rss[0]) <= 10
    print(f"flat (+-10 MB): {'met' if flat else 'NOT met'}")
    print(f"server log: {len(errors)} ERROR lines, {len(unretrieved)} unretrieved task exceptions")
    for ln in (errors + unretrieved)[:10]:
        print("   ", ln[:300])


if __name__ == "__main__":
    main()
