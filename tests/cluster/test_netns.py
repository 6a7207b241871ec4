"""Nodes on separate "hosts": each ``vpbx serve`` in its own network namespace, joined to the others and to the
database by a veth pair on a bridge (``ip netns``). The database is reached over the bridge (a socat relay to
the local PostgreSQL, which listens on loopback only). Cutting a node's link (link down) makes the other take its
domains within 5 s and end its calls once; the cut-off node gives its domains up by itself, and when its link
comes back it writes nothing for them.

Needs root, ``ip`` and ``socat`` (skipped otherwise).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url
from tests.cluster.conftest import NUMBER, SALES, Cluster, Node

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PORT = 8080


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = (["ip", "netns", "exec", ns, "ip"] if ns else ["ip"]) + list(args)
    subprocess.run(cmd, check=True, capture_output=True, timeout=20)


@dataclass
class Net:
    subnet: int
    bridge: str
    namespaces: list[str]
    links: list[str]  # the host side of each namespace's veth
    relay: subprocess.Popen[bytes]

    @property
    def gateway(self) -> str:
        return f"10.77.{self.subnet}.1"

    def address(self, i: int) -> str:
        return f"10.77.{self.subnet}.{i + 2}"


@pytest.fixture
def net() -> Iterator[Net]:
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("socat"):
        pytest.skip("needs root, ip and socat")
    existing = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    subnet = random.choice([n for n in range(20, 250) if f"vcb{n} " not in existing])
    bridge = f"vcb{subnet}"
    namespaces = [f"vcn{subnet}x{i}" for i in range(2)]
    links = [f"vc{subnet}h{i}" for i in range(2)]
    _ip("link", "add", bridge, "type", "bridge")
    relay: subprocess.Popen[bytes] | None = None
    try:
        _ip("addr", "add", f"10.77.{subnet}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for i, (ns, host) in enumerate(zip(namespaces, links, strict=True)):
            inner = f"vc{subnet}n{i}"
            subprocess.run(["ip", "netns", "add", ns], check=True, timeout=20)
            _ip("link", "add", host, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", host, "master", bridge)
            _ip("link", "set", host, "up")
            _ip("addr", "add", f"10.77.{subnet}.{i + 2}/24", "dev", inner, ns=ns)
            _ip("link", "set", inner, "up", ns=ns)
            _ip("link", "set", "lo", "up", ns=ns)
        relay = subprocess.Popen(["socat", f"TCP-LISTEN:5432,bind=10.77.{subnet}.1,reuseaddr,fork",
                                  "TCP:127.0.0.1:5432"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        yield Net(subnet, bridge, namespaces, links, relay)
    finally:
        if relay is not None:
            relay.send_signal(signal.SIGTERM)
            relay.wait(10)
        for ns in namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, timeout=20)


class NsNode(Node):
    """``vpbx serve`` inside a namespace, listening on its own address there."""

    def __init__(self, cluster: Cluster, net: Net, i: int) -> None:
        u = make_url(cluster.store)
        store = u.set(host=net.gateway, port=5432).render_as_string(hide_password=False)
        super().__init__(store, cluster.home, cluster.env(), f"ns{i}")
        self.ns, self.host, self.port = net.namespaces[i], net.address(i), PORT

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> NsNode:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, sys.executable, "-m", "vpbx.cli", "serve", "--host", self.host,
             "--port", str(self.port), "--db", self.store, "--home", str(self.home), "--no-demo",
             "--allow-private-crm"], env=self.env, stdout=out, stderr=out)
        return self


def _wait(check: Any, timeout: float, message: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def test_nodes_on_separate_hosts_link_down(cluster: Cluster, net: Net) -> None:
    nodes: list[Node] = [NsNode(cluster, net, i).start() for i in range(2)]
    cluster.nodes.extend(nodes)
    for n in nodes:
        n.wait_ready()
    owners = cluster.balanced(nodes)
    tenant = cluster.tenants[0]
    victim = owners[tenant.domain_id]
    i = nodes.index(victim)
    survivor = nodes[1 - i]
    victim_domains = set(victim.owned())
    with cluster.client(survivor, tenant) as c:
        for login in SALES:  # forwarded over the bridge to the owner's namespace
            r = c.put(f"/sim/v1/devices/{login}",
                      json={"registered": True, "auto": {"action": "answer", "after": 0.2, "talk": 60}})
            assert r.status_code == 200, r.text
        r = c.post("/sim/v1/calls", json={"from": "79101234567", "to": NUMBER})
        assert r.status_code == 201, r.text
        callid = r.json()["callid"]
        _wait(lambda: c.get(f"/sim/v1/calls/{callid}").json()["state"] == "talking", 10, "not answered")

        _ip("link", "set", net.links[i], "down")  # the victim's host is cut off: database and the other node
        cut = time.monotonic()
        _wait(lambda: victim_domains <= set(survivor.owned()), 10, "the survivor never took the domains")
        took = time.monotonic() - cut
        assert took < 5.0, took
        history = "SELECT callid, status FROM call_history WHERE domain_id = :d"
        rows = _wait(lambda: cluster.query(history, d=tenant.domain_id), 10, "the call was not ended")
        assert [r[0] for r in rows] == [callid]
        r = c.post("/sim/v1/calls", json={"from": "79101234568", "to": NUMBER})  # new calls: the new owner
        assert r.status_code == 201, r.text
        c.post(f"/sim/v1/calls/{r.json()['callid']}/hangup", json={"by": "client"})
        _wait(lambda: "lease not renewed" in victim.tail(), 15, "the cut-off node did not give its domains up")

        _ip("link", "set", net.links[i], "up")
        _wait(lambda: _answers(victim), 20, "the node did not come back")
        time.sleep(1.0)  # its next writes (beats, timers) would land now: none may
        assert [r[0] for r in cluster.query(history, d=tenant.domain_id) if r[0] == callid] == [callid]
        assert cluster.query("SELECT count(*) FROM live_calls WHERE domain_id = :d", d=tenant.domain_id)[0][0] == 0
    print(f"\nlink down: the other namespace owned the domains {took:.2f} s after the cut")


def _answers(node: Node) -> bool:
    try:
        return httpx.get(f"{node.url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
