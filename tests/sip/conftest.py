"""A vpbx server with SIP on a loopback UDP port (one per backend), sipp and baresip as phones and carriers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import store_url

from vpbx.crm import Receiver
from vpbx.services import tenancy
from vpbx.settings import Settings
from vpbx.store.repositories import carriers
from vpbx.telephony.sip import sip_of
from vpbx.testing.plugin import CrmReceiver, LoopbackServer, serve_app
from vpbx.testing.server import ServerThread, Tenant, create_tenant, retire_tenant

SCENARIOS = Path(__file__).parent / "scenarios"

if shutil.which("sipp") is None:  # pragma: no cover - CI installs sip-tester
    pytest.skip("sipp (Debian sip-tester) is not installed", allow_module_level=True)


_next_port = [20000 + (os.getpid() * 7919) % 20000]


def free_udp_port() -> int:
    """A UDP port no earlier test of this session used: the server may still retransmit to a finished sipp's
    port for a while (RFC 3261 timers), and a new sipp there would take those messages for its own."""
    while True:
        _next_port[0] = 20000 + (_next_port[0] - 20000 + 1) % 20000
        port = _next_port[0]
        try:  # free on TCP too: the server's SIP port listens on both
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port


_media_blocks = [0]


def media_ports() -> dict[str, int]:
    """An rtpengine port range of this test process's own (100 ports, above sipp's 20000-40000): each SIP server
    starts its own rtpengine, and two of them bound to one port would share its packets between them."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else os.getpid() % 19
    _media_blocks[0] += 1
    base = 41000 + ((index % 19) * 10 + _media_blocks[0] % 10) * 100
    return {"rtpengine_port_min": base, "rtpengine_port_max": base + 99}


@dataclass
class SipServer:
    server: ServerThread
    sip_port: int


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def sip_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipServer]:
    tmp = tmp_path_factory.mktemp(f"sip-{request.param}")
    port = free_udp_port()
    settings = Settings(db=store_url(str(request.param), tmp), home=tmp, demo=False, port=0, sip=f"127.0.0.1:{port}",
                        sip_auth_fail_limit=5, **media_ports())
    srv = ServerThread(settings).start()
    yield SipServer(srv, port)
    srv.stop()


@pytest.fixture
def sip_tenant(sip_server: SipServer) -> Iterator[Tenant]:
    t = create_tenant(sip_server.server)
    yield t
    retire_tenant(sip_server.server, t)
    sip = sip_of(sip_server.server.runtime)
    assert sip is not None
    sip.guard.clear()  # every sipp comes from 127.0.0.1: one test's block must not refuse the next test


class Sipp:
    """One sipp process (``-m 1``) against the server's SIP port."""

    def __init__(self, sip: SipServer, scenario: str, *, port: int | None = None, keys: dict[str, str] | None = None,
                 user: str = "", password: str = "", timeout: int = 30, uas: bool = False,
                 target: int | None = None, extra: Sequence[str] = ()) -> None:
        """``target``: another port of the server's than its SIP port (a TLS wrapper's); ``extra``: more of sipp's
        options (``-t t1`` for TCP, ``-cid_str`` for a Call-ID chosen beforehand)."""
        self.port = port or free_udp_port()
        # sipp reads -key values in message text only, not in attributes: the scenario gets them written in.
        text = (SCENARIOS / scenario).read_text()
        for k, v in (keys or {}).items():
            text = text.replace(f"[{k}]", v)
        self._file = tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False)
        self._file.write(text)
        self._file.close()
        cmd = ["sipp", "-sf", self._file.name, "-m", "1", "-i", "127.0.0.1", "-p", str(self.port),
               "-timeout", f"{timeout}s", "-timeout_error", "-nostdin", "-recv_timeout", str(timeout * 1000)]
        if user:
            cmd += ["-au", user, "-ap", password]
        cmd += extra
        if os.environ.get("VPBX_SIPP_TRACE"):  # debugging: sipp's message logs next to the scenario copy
            cmd += ["-trace_msg", "-message_file", self._file.name + ".msg"]
        if not uas:  # a UAS (a phone waiting for calls) only listens
            cmd.append(f"127.0.0.1:{target or sip.sip_port}")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 40) -> int:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        Path(self._file.name).unlink(missing_ok=True)
        return int(self.proc.returncode)

    def output(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.read().decode(errors="replace")[-3000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        Path(self._file.name).unlink(missing_ok=True)


@pytest.fixture
def sipp(sip_server: SipServer) -> Iterator[list[Sipp]]:
    started: list[Sipp] = []
    yield started
    for s in started:
        s.kill()


def new_number() -> str:
    return "7499" + str(uuid.uuid4().int)[:7]


def attach_crm(srv: ServerThread, tenant: Tenant, token: str) -> tuple[CrmReceiver, LoopbackServer]:
    """A loopback CRM receiver recording what the tenant's integration sends it."""
    receiver = CrmReceiver(Receiver(token))
    receiver.receiver.observe(receiver._record)
    served: LoopbackServer = serve_app(receiver.receiver)

    async def work() -> None:
        async with srv.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, tenant.name)
            await tenancy.set_integration(s, domain, crm_url=served.url + "/crm", crm_token=token)
            await s.commit()

    srv.call(work())
    return receiver, served


@pytest.fixture
def crm(sip_server: SipServer, sip_tenant: Tenant) -> Iterator[CrmReceiver]:
    receiver, served = attach_crm(sip_server.server, sip_tenant, "crm-token")
    yield receiver
    served.stop()


@pytest.fixture
def carrier_port(sip_server: SipServer) -> Iterator[int]:
    port = free_udp_port()
    srv = sip_server.server
    name = f"c{port}"

    async def add() -> None:
        async with srv.runtime.sessions() as s:
            await carriers.add_carrier(s, name, "127.0.0.1", port)
            await s.commit()

    async def remove() -> None:
        async with srv.runtime.sessions() as s:
            await carriers.remove_carrier(s, name)
            await s.commit()

    srv.call(add())
    yield port
    srv.call(remove())
