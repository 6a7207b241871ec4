"""vpbx as a cluster (issue 15): real ``vpbx serve`` nodes on loopback sharing one PostgreSQL database.

* a request for a domain landing on a node that does not own it is run by the owner (one hop), answers verbatim;
* a key revoked in the store is refused by the next request on every node (LISTEN/NOTIFY);
* SIGKILL of a domain's owner mid-traffic: another node owns it within 5 s and takes new calls; every accepted call
  ends in history exactly once and is pushed once (one notification id); nothing is lost;
* SIGSTOP of an owner past its lease: the new owner ends its calls; the paused node, resumed, writes nothing for
  the domain (fenced) and gives its live state up;
* a callback scheduled on a dead owner is placed by the new one; ``--workers`` shares a port (PostgreSQL only);
  the virtual clock's advance reaches every node.

Slow (nodes start as processes): every test has its own database and nodes, so xdist runs them side by side.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from typing import Any

import httpx
import pytest
from tests.cluster.conftest import LEASE, NUMBER, OPERATOR_KEY, SALES, Cluster, Node, Tenant

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _other(owners: dict[int, Node], nodes: list[Node], tenant: Tenant) -> tuple[Node, Node]:
    owner = owners[tenant.domain_id]
    return owner, next(n for n in nodes if n is not owner)


def _phones(c: httpx.Client, *, after: float, talk: float | None) -> None:
    for login in SALES:
        r = c.put(f"/sim/v1/devices/{login}", json={"registered": True,
                                                    "auto": {"action": "answer", "after": after, "talk": talk}})
        assert r.status_code == 200, r.text


def _wait(check: Any, timeout: float, message: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, message() if callable(message) else message
        time.sleep(0.05)


def test_non_owner_forwards_to_the_owner(cluster: Cluster) -> None:
    nodes = cluster.start(2)
    owners = cluster.balanced(nodes)
    tenant = cluster.tenants[0]
    owner, other = _other(owners, nodes, tenant)
    with cluster.client(other, tenant) as via_other, cluster.client(owner, tenant) as via_owner:
        r = via_other.put("/sim/v1/devices/admin", json={"registered": True, "auto": {"action": "ignore"}})
        assert r.status_code == 200, r.text
        r = via_other.post("/sim/v1/calls", json={"from": "79101234567", "to": NUMBER})
        assert r.status_code == 201, r.text
        callid = r.json()["callid"]
        r = via_other.post(f"/sim/v1/calls/{callid}/answer", json={"user": "admin"})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "talking" and r.json()["answered_by"] == "admin"
        # The same call, read on the owner: one live state, held there.
        assert via_owner.get(f"/sim/v1/calls/{callid}").json()["state"] == "talking"
        assert via_other.get(f"/sim/v1/calls/{callid}").json() == via_owner.get(f"/sim/v1/calls/{callid}").json()
        # Errors come back verbatim too.
        missing = via_other.post("/sim/v1/calls/nope/answer", json={"user": "admin"})
        direct = via_owner.post("/sim/v1/calls/nope/answer", json={"user": "admin"})
        assert (missing.status_code, missing.json()) == (direct.status_code, direct.json())
        assert missing.status_code == 404 and missing.headers["content-type"] == direct.headers["content-type"]
        head, head_direct = via_other.head(f"/sim/v1/calls/{callid}"), via_owner.head(f"/sim/v1/calls/{callid}")
        assert (head.status_code, head.content) == (head_direct.status_code, b"")
        # REST click-to-call through the non-owner: the call lives on the owner.
        r = via_other.post("/crmapi/v1/makecall", json={"user": "ivan", "phone": "79161234567"})
        assert r.status_code == 200, r.text
        made = r.json()["callid"]
        assert via_owner.get(f"/sim/v1/calls/{made}").status_code == 200
        # The legacy makeCall too (its form is sent on as parsed).
        r = via_other.post("/sys/crm_api.wcgp", data={"cmd": "makeCall", "token": tenant.legacy_token,
                                                      "user": "maria", "phone": "79161234568"})
        assert r.status_code == 200, r.text
        legacy_id = next(iter(r.json().values()))
        assert via_owner.get(f"/sim/v1/calls/{legacy_id}").status_code == 200
        r = via_other.post(f"/sim/v1/calls/{callid}/hangup", json={"by": "client"})
        assert r.status_code == 200 and r.json()["state"] == "ended", r.text
        # The forward's cost on loopback (one extra hop), reads of one call.
        def timed(c: httpx.Client) -> list[float]:
            out = []
            for _ in range(200):
                t = time.perf_counter()
                assert c.get(f"/sim/v1/calls/{callid}").status_code == 200
                out.append((time.perf_counter() - t) * 1000)
            return sorted(out)

        direct, hop = timed(via_owner), timed(via_other)
        extra_p50 = statistics.median(hop) - statistics.median(direct)
        extra_p99 = hop[int(len(hop) * 0.99) - 1] - direct[int(len(direct) * 0.99) - 1]
        print(f"\nforward: direct p50 {statistics.median(direct):.2f} ms, via the other node p50 "
              f"{statistics.median(hop):.2f} ms p99 {hop[int(len(hop) * 0.99) - 1]:.2f} ms "
              f"(extra p50 {extra_p50:.2f} ms, p99 {extra_p99:.2f} ms)")


def test_key_revoked_is_refused_by_the_next_request_on_every_node(cluster: Cluster) -> None:
    nodes = cluster.start(2)
    tenant = cluster.tenants[1]
    clients = [cluster.client(n, tenant) for n in nodes]
    try:
        for c in clients:  # each node caches the key now
            assert c.get("/crmapi/v1/users").status_code == 200
        out = subprocess.run([sys.executable, "-m", "vpbx.cli", "key", "revoke", "--domain", tenant.name,
                              str(tenant.key_id), "--db", cluster.store, "--home", str(cluster.home)],
                             capture_output=True, text=True, timeout=60, env=cluster.env())
        assert out.returncode == 0, out.stderr
        for c in clients:  # the next request, no waiting
            assert c.get("/crmapi/v1/users").status_code == 401
            assert c.post("/sim/v1/calls", json={"from": "79101234567", "to": NUMBER}).status_code == 401
    finally:
        for c in clients:
            c.close()


class Load:
    """Threads placing incoming calls to the tenant through one node; every call answered 201 is remembered."""

    def __init__(self, node: Node, tenant: Tenant, threads: int = 3) -> None:
        self.node, self.tenant = node, tenant
        self.accepted: list[tuple[float, str]] = []
        self.refused: list[int] = []
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._place, args=(i,), daemon=True) for i in range(threads)]

    def _place(self, i: int) -> None:
        n = 0
        with httpx.Client(base_url=self.node.url, timeout=30, headers={"X-API-KEY": self.tenant.key}) as c:
            while not self.done.is_set():
                n += 1
                try:
                    r = c.post("/sim/v1/calls", json={"from": f"7910{i}{n:06d}", "to": NUMBER})
                except httpx.HTTPError:
                    continue
                if r.status_code == 201:
                    self.accepted.append((time.monotonic(), r.json()["callid"]))
                else:
                    self.refused.append(r.status_code)
                time.sleep(0.05)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        for t in self.threads:
            t.join(40)


def _drain(c: httpx.Client) -> None:
    """End what is still live: the client hangs up."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        live = c.get("/sim/v1/calls").json()
        if not live:
            return
        for call in live:
            c.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "client"})
        time.sleep(0.1)
    raise AssertionError(f"calls still live: {c.get('/sim/v1/calls').json()}")


def _history_ids(cluster: Cluster) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = defaultdict(set)
    for r in list(cluster.crm.requests):
        n = r.notice
        if n is not None and n.command == "history":
            ids[str(n.callid)].add(r.headers.get("webhook-id", ""))
    return ids


def _recovered(node: Node) -> float:
    import re

    text = httpx.get(f"{node.url}/metrics", timeout=5).text
    return sum(float(m.group(1)) for m in re.finditer(
        r'^vpbx_engine_calls_recovered_total\{[^}]*\} (\S+)$', text, re.M))


def test_sigkill_of_the_owner_mid_traffic_fails_over_within_5_s(cluster: Cluster) -> None:
    nodes = cluster.start(2)
    owners = cluster.balanced(nodes)
    tenant = cluster.tenants[0]
    owner, survivor = _other(owners, nodes, tenant)
    with cluster.client(survivor, tenant) as c:
        _phones(c, after=0.3, talk=30)  # forwarded: the phones live on the owner
        with Load(survivor, tenant) as load:
            _wait(lambda: len(load.accepted) >= 10, 30, "no calls placed")
            owner.kill()
            killed = time.monotonic()
            _wait(lambda: tenant.domain_id in survivor.owned(), 10, "the survivor never took the domain")
            took = time.monotonic() - killed
            _wait(lambda: any(t > killed for t, _ in load.accepted), 10, "no call taken after the kill")
            first_call = min(t for t, _ in load.accepted if t > killed) - killed
            _phones(c, after=0.3, talk=1)  # the phones lived on the dead node: registered again on the new owner
            count = len(load.accepted)
            _wait(lambda: len(load.accepted) >= count + 5, 20, "the new owner takes no calls")
        _drain(c)
    accepted = [callid for _, callid in load.accepted]
    assert len(set(accepted)) == len(accepted)
    recovered = _recovered(survivor)
    assert recovered > 0, "no call was live at the kill: the test proves nothing"
    assert took < 5.0, f"failover took {took:.2f} s"
    rows = cluster.query("SELECT callid, status FROM call_history WHERE domain_id = :d", d=tenant.domain_id)
    per_call: dict[str, int] = defaultdict(int)
    for callid, _status in rows:
        per_call[callid] += 1
    assert [c for c in accepted if per_call.get(c) != 1] == [], "history rows per accepted call"
    assert [c for c, n in per_call.items() if n > 1] == []
    assert cluster.query("SELECT count(*) FROM live_calls")[0][0] == 0
    _wait(lambda: set(per_call) <= set(_history_ids(cluster)), 60,
          lambda: f"history not pushed: {sorted(set(per_call) - set(_history_ids(cluster)))[:5]}")
    ids = _history_ids(cluster)
    assert [c for c in per_call if len(ids[c]) != 1] == [], "a call pushed under two notification ids"
    assert set(load.refused) <= {503}, load.refused
    print(f"\nSIGKILL: domain owned again after {took:.2f} s, first new call {first_call:.2f} s after the kill; "
          f"{len(accepted)} calls accepted, {int(recovered)} ended by recovery, {len(load.refused)} refused (503)")


def test_sigstop_past_the_lease_is_fenced(cluster: Cluster) -> None:
    nodes = cluster.start(2)
    owners = cluster.balanced(nodes)
    tenant = cluster.tenants[2]
    owner, other = _other(owners, nodes, tenant)
    with cluster.client(other, tenant) as c:
        _phones(c, after=0.2, talk=LEASE + 1)  # the calls' talk ends while the owner is paused
        calls = []
        for i in range(3):
            r = c.post("/sim/v1/calls", json={"from": f"7911000000{i}", "to": NUMBER})
            assert r.status_code == 201, r.text
            calls.append(r.json()["callid"])
        _wait(lambda: any(c.get(f"/sim/v1/calls/{x}").json()["state"] == "talking" for x in calls), 10,
              "calls not answered")
        owner.signal(signal.SIGSTOP)
        paused = time.monotonic()
        _wait(lambda: tenant.domain_id in other.owned(), 10, "the other node never took the domain")
        took = time.monotonic() - paused
        history = "SELECT callid FROM call_history WHERE domain_id = :d"
        _wait(lambda: {r[0] for r in cluster.query(history, d=tenant.domain_id)} >= set(calls), 10,
              "the new owner did not end the paused node's calls")
        time.sleep(max(0.0, LEASE + 1.5 - (time.monotonic() - paused)))  # the calls' timers are due on the paused node
        counts = "SELECT (SELECT count(*) FROM call_history WHERE domain_id = :d), " \
                 "(SELECT count(*) FROM notify_outbox WHERE domain_id = :d), " \
                 "(SELECT count(*) FROM live_calls WHERE domain_id = :d)"
        before = tuple(cluster.query(counts, d=tenant.domain_id)[0])
        owner.signal(signal.SIGCONT)
        _wait(lambda: "lost domains" in owner.tail() or "fenced" in owner.tail(), 10,
              lambda: f"the resumed node did not notice: {owner.tail()[-1500:]}")
        _wait(lambda: tenant.domain_id not in owner.owned(), 10, "the resumed node still claims the domain")
        # Its calls' timers ran on resumption: every write they tried was refused.
        assert tuple(cluster.query(counts, d=tenant.domain_id)[0]) == before
        rows = cluster.query(history, d=tenant.domain_id)
        assert sorted(r[0] for r in rows) == sorted(calls), "each call ended exactly once"
        # The resumed node forwards the domain's commands to its new owner.
        with cluster.client(owner, tenant) as via_resumed:
            r = via_resumed.post("/sim/v1/calls", json={"from": "79112223344", "to": NUMBER})
            assert r.status_code == 201, r.text
            assert c.get(f"/sim/v1/calls/{r.json()['callid']}").status_code == 200
        _drain(c)
    print(f"\nSIGSTOP: domain owned by the other node {took:.2f} s after the pause; the resumed node was fenced")


def test_a_callback_scheduled_on_a_dead_owner_is_placed_by_the_new_one(cluster: Cluster) -> None:
    nodes = cluster.start(2)
    owners = cluster.balanced(nodes)
    tenant = cluster.tenants[1]
    owner, survivor = _other(owners, nodes, tenant)
    cluster.execute("UPDATE users SET mobile_redirect_enabled = false WHERE domain_id = :d", d=tenant.domain_id)
    with cluster.client(survivor, tenant) as c:
        assert c.put("/crmapi/v1/groups/sales", json={"advanced": "callback"}).status_code == 200
        for login in SALES:  # nobody free: the client is offered a callback at once
            assert c.put(f"/sim/v1/devices/{login}", json={"registered": False}).status_code == 200
        r = c.post("/sim/v1/calls", json={"from": "79101234567", "to": NUMBER})
        assert r.status_code == 201, r.text
        callid = r.json()["callid"]
        _wait(lambda: c.get(f"/sim/v1/calls/{callid}").json()["state"] == "offer", 10, "no callback offer")
        r = c.post(f"/sim/v1/calls/{callid}/dtmf", json={"digits": "1"})
        assert r.status_code == 200 and r.json()["callback_requested"], r.text
        _wait(lambda: cluster.query("SELECT count(*) FROM pending_callbacks WHERE domain_id = :d",
                                    d=tenant.domain_id)[0][0] == 1, 5, "the callback was not kept")
        owner.kill()  # the callback is due 5 s after the offer was taken: on the dead node
        _wait(lambda: tenant.domain_id in survivor.owned(), 10, "the survivor never took the domain")
        r = c.put("/sim/v1/devices/manager", json={"registered": True, "auto": {"action": "ignore"}})
        assert r.status_code == 200, r.text

        def placed() -> list[Any]:
            return [x for x in c.get("/sim/v1/calls").json() if x.get("callback_of") == callid]

        back = _wait(placed, 15, "the new owner did not place the callback")
        assert back[0]["kind"] == "outgoing"
        assert cluster.query("SELECT count(*) FROM pending_callbacks WHERE domain_id = :d",
                             d=tenant.domain_id)[0][0] == 0


def test_workers_share_one_port(cluster: Cluster) -> None:
    """``vpbx serve --workers 2``: two nodes behind one port; any request reaches the domain's owner."""
    from vpbx.testing.server import free_port

    port = free_port()
    log = cluster.home / "workers.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "vpbx.cli", "serve", "--workers", "2", "--port", str(port),
                                 "--db", cluster.store, "--home", str(cluster.home), "--no-demo",
                                 "--allow-private-crm"], env=cluster.env(), stdout=out, stderr=out)
    try:
        url = f"http://127.0.0.1:{port}"

        def nodes_seen() -> bool:
            try:
                body = httpx.get(f"{url}/readyz", timeout=2).json()
            except (httpx.HTTPError, ValueError):
                return False
            return len(body.get("nodes", [])) == 2

        _wait(nodes_seen, 60, lambda: log.read_text()[-3000:])
        tenant = cluster.tenants[3]
        with httpx.Client(base_url=url, timeout=30, headers={"X-API-KEY": tenant.key}) as c:
            r = c.put("/sim/v1/devices/admin", json={"registered": True, "auto": {"action": "ignore"}})
            assert r.status_code == 200, r.text
            for _ in range(10):  # new connections: the kernel spreads them over both workers
                with httpx.Client(base_url=url, timeout=30, headers={"X-API-KEY": tenant.key}) as fresh:
                    r = fresh.post("/sim/v1/calls", json={"from": "79101234567", "to": NUMBER})
                    assert r.status_code == 201, r.text
                    assert fresh.get(f"/sim/v1/calls/{r.json()['callid']}").json()["state"] == "ringing"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_workers_refused_on_sqlite(tmp_path: Any) -> None:
    out = subprocess.run([sys.executable, "-m", "vpbx.cli", "serve", "--workers", "2", "--home", str(tmp_path),
                          "--no-demo"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "VPBX_DB": ""})
    assert out.returncode == 2
    assert "PostgreSQL" in out.stderr


def test_virtual_clock_advance_reaches_every_node(cluster: Cluster) -> None:
    env = {**cluster.env(), "VPBX_CLOCK": "virtual"}
    nodes = [Node(cluster.store, cluster.home, env, f"v{i}").start() for i in range(2)]
    cluster.nodes.extend(nodes)
    for n in nodes:
        n.wait_ready()
    tenant = cluster.tenants[0]
    with cluster.client(nodes[0], tenant) as a, cluster.client(nodes[1], tenant) as b:
        start = b.get("/sim/v1/clock").json()["now"]
        r = a.post("/sim/v1/clock/advance", json={"seconds": 90}, headers={"X-OPERATOR-KEY": OPERATOR_KEY})
        assert r.status_code == 200, r.text
        assert b.get("/sim/v1/clock").json()["now"] == r.json()["now"] != start
