"""A real ``vpbx serve`` killed with SIGKILL in the middle of 1,000 notifications loses none."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
from tests.notify.conftest import Receiver, Reply

from vpbx.testing.server import free_port

PER_DOMAIN = 8


def cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "vpbx.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout


def serve(port: int, store: str, home: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "vpbx.cli", "serve", "--port", str(port), "--db", store,
                             "--home", str(home), "--no-demo", "--allow-private-crm"], env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"server did not start: {log.read_text()[-2000:]}")


def test_sigkill_mid_delivery_loses_nothing(store_url: str, tmp_path: Path, receiver: Receiver) -> None:
    receiver.reply = lambda hit: Reply(delay=0.01)
    env = {**os.environ, "VPBX_NOTIFY_TIMEOUT": "2", "VPBX_NOTIFY_LEASE": "3",
           "VPBX_NOTIFY_DOMAIN_CONCURRENCY": str(PER_DOMAIN), "VPBX_NOTIFY_POLL": "0.2"}
    store = ["--db", store_url, "--home", str(tmp_path)]
    created = cli("domain", "create", "kill.test", "--no-demo-data", *store, env=env)
    match = re.search(r"API key: (\S+)", created)
    assert match, created
    key = match.group(1)
    cli("integration", "set", "-d", "kill.test", "--crm-url", receiver.url, *store, env=env)

    port = free_port()
    log = tmp_path / "server.log"
    proc = serve(port, store_url, tmp_path, env, log)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-KEY": key}, timeout=60)
        r = client.post("/sim/v1/deliveries/test", json={"count": 1000})
        assert r.status_code == 201, r.text
        ids = set(r.json()["ids"])
        assert len(ids) == 1000
        assert receiver.wait_for(lambda: len(receiver.hits) >= 250, timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        before = len({h.headers["webhook-id"] for h in receiver.hits})
        assert before < 1000, "killed too late to prove anything"

        proc = serve(port, store_url, tmp_path, env, log)

        def received() -> set[str]:
            return {h.headers["webhook-id"] for h in receiver.hits}

        assert receiver.wait_for(lambda: ids <= received(), timeout=60), len(ids - received())
        counts = Counter(h.headers["webhook-id"] for h in receiver.hits)
        twice = [uid for uid, n in counts.items() if n > 1]
        # Only attempts in flight at the kill (outcome unknown) may arrive twice: at most what was leased.
        assert len(twice) <= 2 * 4 * PER_DOMAIN, len(twice)  # 2 x the claim depth
        assert set(counts) == ids

        def all_delivered() -> bool:
            info = client.get("/sim/v1/deliveries", params={"state": "delivered", "limit": 1}).json()["info"]
            return bool(info["total"] == 1000)

        assert receiver.wait_for(all_delivered, timeout=20)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
